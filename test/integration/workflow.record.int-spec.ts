import type { Redis } from 'ioredis';
import { uniqueId, waitFor } from '../support/env.js';
import { isolatedRepository, scriptedRedis } from '../support/redis.js';
import type { AddSignalResult, RecordResult, StoredWorkflow } from '../../src/workflow/workflow.repository.js';
import { claimDue, expectWithin, repositoriesOnOnePrefix, signalJson, signalOptions, sleep, startInput, timed } from './repository-fixtures.js';

/**
 * `WorkflowRepository` against a real Redis: record-3.lua (decisions on signals, by version), finish-2.lua
 * (decisions on workflows the sweeper claimed for their timeout), mark-published-3.lua, and their races.
 */
let redis: Redis;
let redis2: Redis;

beforeAll(() => {
  redis = scriptedRedis();
  redis2 = scriptedRedis();
});

afterAll(async () => {
  await Promise.all([redis.quit(), redis2.quit()]);
});

describe('record (record-3.lua)', () => {
  const decision = '{"corr_id":"x", "status":"completed","decision":{"action":"trade","note":"é ü ☃ \\"q\\""},"n":1.50}';

  it('on the current version it records: final status, decision byte-for-byte, finished now, not published, due at now + lease; a second record finds it closed', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rec');
    const started = await repo.start(startInput(corrId, { timeoutMs: 300_000 }));
    const added = await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.7), signalOptions(5_000));
    if (added.kind !== 'added') throw new Error(added.kind);
    expect(added.workflow.version).toBe(1);
    const k = repo.keys.forWorkflow(corrId);

    const { value: result, before, after } = await timed(() => repo.record(added.workflow, 'completed', decision, 9_000));

    expect(result).toEqual({ kind: 'recorded' });
    const stored = await redis.hgetall(k.wf);
    expect(stored.status).toBe('completed');
    expect(stored.decision).toBe(decision);
    expect(Buffer.compare(Buffer.from(stored.decision, 'utf8'), Buffer.from(decision, 'utf8'))).toBe(0);
    expect(stored.published).toBeUndefined(); // absent until mark-published
    expect(stored.claim).toBeUndefined(); // nothing is claimed for a record
    expect(stored.ver).toBe('1');
    expect(stored.started).toBe(String(started.workflow.startedMs));
    expect(stored.deadline).toBe(String(started.workflow.deadlineMs));
    expectWithin(Number(stored.finished), before, after);
    expect(await redis.hgetall(k.sig)).toEqual({ momentum: signalJson('momentum', 0.7) });
    const score = Number(await redis.zscore(k.deadlines, corrId));
    expectWithin(score, before + 9_000, after + 9_000);
    expect(score).toBeLessThan(started.workflow.deadlineMs - 60_000);

    const inspected = (await repo.inspect(corrId)).workflow;
    expect(inspected).toEqual({
      ...added.workflow,
      status: 'completed',
      decisionJson: decision,
      published: false,
      finishedMs: Number(stored.finished),
    });

    // The same version again (a redelivered signal's handler, another replica): closed, nothing changes.
    expect(await repo.record(added.workflow, 'failed', '{"other":true}', 60_000)).toEqual({ kind: 'closed', status: 'completed' });
    expect(await redis.hgetall(k.wf)).toEqual(stored);
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(score);
  });

  it('records a failed decision on version 0 (in_progress, no signal yet)', async () => {
    const repo = isolatedRepository(redis, 2);
    const corrId = uniqueId('rec-failed');
    const started = await repo.start(startInput(corrId));
    expect(started.workflow).toMatchObject({ status: 'in_progress', version: 0 });

    expect(await repo.record(started.workflow, 'failed', '{"status":"failed"}', 10_000)).toEqual({ kind: 'recorded' });

    expect(await redis.hmget(repo.keys.forWorkflow(corrId).wf, 'status', 'decision', 'ver')).toEqual(['failed', '{"status":"failed"}', '0']);
  });

  it('with an outdated version it returns the current snapshot and changes nothing; recording on that snapshot then succeeds', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rec-old');
    await repo.start(startInput(corrId));
    const first = await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.7), signalOptions(5_000));
    if (first.kind !== 'added') throw new Error(first.kind);
    await repo.addSignal(corrId, 'risk', signalJson('risk', 0.8), signalOptions(5_000));
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);
    const sigBefore = await redis.hgetall(k.sig);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    const result = await repo.record(first.workflow, 'completed', '{"on":1}', 10_000);

    expect(result.kind).toBe('outdated');
    if (result.kind !== 'outdated') throw new Error('unreachable');
    expect(result.workflow).toEqual((await repo.inspect(corrId)).workflow);
    expect(result.workflow).toMatchObject({
      status: 'waiting_for_agents',
      version: 2,
      decisionJson: null,
      signals: { momentum: signalJson('momentum', 0.7), risk: signalJson('risk', 0.8) },
    });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.hgetall(k.sig)).toEqual(sigBefore);
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);

    // A version that does not match (here: ahead of the stored one) is outdated too, not recorded.
    const ahead = await repo.record({ ...result.workflow, version: 3 }, 'completed', '{"on":3}', 10_000);
    expect(ahead).toEqual({ kind: 'outdated', workflow: result.workflow });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);

    expect(await repo.record(result.workflow, 'completed', '{"on":2}', 10_000)).toEqual({ kind: 'recorded' });
    expect(await redis.hmget(k.wf, 'status', 'decision')).toEqual(['completed', '{"on":2}']);
  });

  it('on a newer workflow of the same corr_id (the evaluated one expired after its retention): closed, nothing changed', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rec-reused');
    await repo.start(startInput(corrId));
    const stale = await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.7), signalOptions(5_000));
    if (stale.kind !== 'added') throw new Error(stale.kind);
    // The first workflow ends and its keys expire; a new trigger opens another one with the same corr_id,
    // and it reaches the same version.
    const k = repo.keys.forWorkflow(corrId);
    await redis.del(k.wf, k.sig);
    await redis.zrem(k.deadlines, corrId);
    await new Promise((r) => setTimeout(r, 5));
    await repo.start(startInput(corrId));
    const fresh = await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.9), signalOptions(5_000));
    if (fresh.kind !== 'added') throw new Error(fresh.kind);
    expect(fresh.workflow.version).toBe(stale.workflow.version);
    expect(fresh.workflow.startedMs).not.toBe(stale.workflow.startedMs);
    const wfBefore = await redis.hgetall(k.wf);

    expect(await repo.record(stale.workflow, 'completed', '{"stale":true}', 10_000)).toEqual({ kind: 'closed', status: 'waiting_for_agents' });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await repo.record(fresh.workflow, 'completed', '{"fresh":true}', 10_000)).toEqual({ kind: 'recorded' });
  });

  it('on an unknown, a sweeper-claimed (evaluating), a timed-out, a recorded or a published workflow: closed with its status, nothing created or changed', async () => {
    const repo = isolatedRepository(redis, 4);

    // Unknown here: a real snapshot, from another prefix.
    const missing = uniqueId('rec-missing');
    const elsewhere = await isolatedRepository(redis, 4).start(startInput(missing));
    expect(await repo.record(elsewhere.workflow, 'completed', decision, 10_000)).toEqual({ kind: 'closed', status: '' });
    const km = repo.keys.forWorkflow(missing);
    expect(await redis.exists(km.wf, km.sig, km.deadlines)).toBe(0);

    // Claimed by the sweeper for its timeout; the snapshot is the one a signal's handler evaluated.
    const evaluating = uniqueId('rec-eval');
    await repo.start(startInput(evaluating, { timeoutMs: 0 }));
    const seen = await repo.addSignal(evaluating, 'risk', signalJson('risk', 0.5), signalOptions(5_000));
    if (seen.kind !== 'added') throw new Error(seen.kind);
    await claimDue(repo, evaluating);

    // Timed out by the sweeper (claimed, then finished), not yet published.
    const timedOut = uniqueId('rec-timeout');
    const timedOutStart = await repo.start(startInput(timedOut, { timeoutMs: 0 }));
    const timedOutClaim = await claimDue(repo, timedOut);
    expect(await repo.finish(timedOutClaim, 'timeout', '{"action":"timeout"}', 10_000)).toBe(true);

    const recorded = uniqueId('rec-done');
    const recordedStart = await repo.start(startInput(recorded));
    expect(await repo.record(recordedStart.workflow, 'completed', '{"action":"trade"}', 10_000)).toEqual({ kind: 'recorded' });

    const published = uniqueId('rec-pub');
    const publishedStart = await repo.start(startInput(published));
    expect(await repo.record(publishedStart.workflow, 'completed', '{"action":"no_trade"}', 10_000)).toEqual({ kind: 'recorded' });
    expect(await repo.markPublished(publishedStart.workflow, 60_000)).not.toBeNull();

    const cases = [
      { corrId: evaluating, snapshot: seen.workflow, status: 'evaluating' },
      { corrId: timedOut, snapshot: timedOutStart.workflow, status: 'timeout' },
      { corrId: recorded, snapshot: recordedStart.workflow, status: 'completed' },
      { corrId: published, snapshot: publishedStart.workflow, status: 'completed' },
    ];
    for (const c of cases) {
      const k = repo.keys.forWorkflow(c.corrId);
      const wfBefore = await redis.hgetall(k.wf);
      const sigBefore = await redis.hgetall(k.sig);
      const scoreBefore = await redis.zscore(k.deadlines, c.corrId);
      const current = (await repo.inspect(c.corrId)).workflow;
      if (!current) throw new Error(`${c.corrId} missing`);

      // Both the snapshot its handler saw and a fresh one are refused.
      expect(await repo.record(c.snapshot, 'completed', decision, 60_000)).toEqual({ kind: 'closed', status: c.status });
      expect(await repo.record(current, 'failed', decision, 60_000)).toEqual({ kind: 'closed', status: c.status });

      expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
      expect(await redis.hgetall(k.sig)).toEqual(sigBefore);
      expect(await redis.zscore(k.deadlines, c.corrId)).toBe(scoreBefore);
    }

    // The sweeper's claim was not disturbed: it still finishes.
    expect(await repo.finish(seen.workflow, 'timeout', '{"action":"timeout"}', 10_000)).toBe(true);
  });

  it('RACE: 20 concurrent records of the same version with different decisions: exactly one is recorded, its decision stored', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('race');
    await repo.start(startInput(corrId));
    const added = await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.7), signalOptions(5_000));
    if (added.kind !== 'added') throw new Error(added.kind);
    const attempts = Array.from({ length: 20 }, (_, i) => ({ status: i % 3 === 0 ? ('failed' as const) : ('completed' as const), json: `{"by":${i}}` }));

    const results = await Promise.all(attempts.map((a) => repo.record(added.workflow, a.status, a.json, 10_000)));

    const winners = attempts.filter((_, i) => results[i].kind === 'recorded');
    expect(winners).toHaveLength(1);
    const k = repo.keys.forWorkflow(corrId);
    expect(await redis.hmget(k.wf, 'status', 'decision')).toEqual([winners[0].status, winners[0].json]);
    for (const r of results) if (r.kind !== 'recorded') expect(r).toEqual({ kind: 'closed', status: winners[0].status });
  });

  it('RACE: concurrent records over two connections, on 10 workflows: exactly one winner each, its decision stored', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const ids = Array.from({ length: 10 }, (_, i) => uniqueId(`race2-${i}`));
    const snapshots = await Promise.all(ids.map(async (id) => (await repoA.start(startInput(id))).workflow));

    const attempts = snapshots.flatMap((snapshot) =>
      Array.from({ length: 20 }, (_, i) => {
        const json = `{"id":${JSON.stringify(snapshot.corrId)},"by":${i}}`;
        const repo = i % 2 === 0 ? repoA : repoB;
        return repo.record(snapshot, 'completed', json, 10_000).then((r) => ({ id: snapshot.corrId, json, won: r.kind === 'recorded' }));
      }),
    );
    const results = await Promise.all(attempts);

    for (const id of ids) {
      const winners = results.filter((r) => r.id === id && r.won);
      expect(winners).toHaveLength(1);
      expect(await redis.hget(repoA.keys.forWorkflow(id).wf, 'decision')).toBe(winners[0].json);
    }
  });

  it('RACE: record vs a concurrent addSignal: either the record wins and the signal is late, or the signal is stored and the record is outdated; never both', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const momentum = signalJson('momentum', 0.7);
    const risk = signalJson('risk', 0.8);

    /** A workflow with one signal (version 1): the snapshot a handler evaluated. */
    async function opened(): Promise<{ corrId: string; snapshot: StoredWorkflow }> {
      const corrId = uniqueId('rec-vs-sig');
      await repoA.start(startInput(corrId));
      const added = await repoA.addSignal(corrId, 'momentum', momentum, signalOptions(5_000));
      if (added.kind !== 'added') throw new Error(added.kind);
      return { corrId, snapshot: added.workflow };
    }

    /** Checks the pair of results against what Redis holds; returns which one won. */
    async function check(corrId: string, record: RecordResult, signal: AddSignalResult): Promise<'record' | 'signal'> {
      const k = repoA.keys.forWorkflow(corrId);
      const stored = await redis.hgetall(k.wf);
      const sig = await redis.hgetall(k.sig);
      if (record.kind === 'recorded') {
        expect(signal).toEqual({ kind: 'late', status: 'completed' });
        expect(stored).toMatchObject({ status: 'completed', decision: `{"id":${JSON.stringify(corrId)}}`, ver: '1' });
        expect(sig).toEqual({ momentum });
        return 'record';
      }
      expect(signal.kind).toBe('added');
      expect(record.kind).toBe('outdated');
      if (record.kind !== 'outdated' || signal.kind !== 'added') throw new Error('unreachable');
      expect(record.workflow).toEqual(signal.workflow);
      expect(record.workflow).toMatchObject({ status: 'waiting_for_agents', version: 2, signals: { momentum, risk } });
      expect(stored.status).toBe('waiting_for_agents');
      expect(stored.decision).toBeUndefined();
      expect(stored.ver).toBe('2');
      expect(sig).toEqual({ momentum, risk });
      return 'signal';
    }

    // On one connection Redis runs them in the order sent: each outcome once, for certain (scripts loaded by `opened`, and by a
    // first record, so that no NOSCRIPT retry reorders them).
    const warm = await opened();
    expect(await repoA.record(warm.snapshot, 'completed', '{}', 10_000)).toEqual({ kind: 'recorded' });
    const ordered1 = await opened();
    const [rec1, sig1] = await Promise.all([
      repoA.record(ordered1.snapshot, 'completed', `{"id":${JSON.stringify(ordered1.corrId)}}`, 10_000),
      repoA.addSignal(ordered1.corrId, 'risk', risk, signalOptions(5_000)),
    ]);
    expect(await check(ordered1.corrId, rec1, sig1)).toBe('record');
    const ordered2 = await opened();
    const [sig2, rec2] = await Promise.all([
      repoA.addSignal(ordered2.corrId, 'risk', risk, signalOptions(5_000)),
      repoA.record(ordered2.snapshot, 'completed', `{"id":${JSON.stringify(ordered2.corrId)}}`, 10_000),
    ]);
    expect(await check(ordered2.corrId, rec2, sig2)).toBe('signal');

    // Over two connections, sent in alternating order: whichever wins, exactly one of the two is stored.
    const workflows = await Promise.all(Array.from({ length: 40 }, () => opened()));
    const pairs = await Promise.all(
      workflows.map(async ({ corrId, snapshot }, i) => {
        const json = `{"id":${JSON.stringify(corrId)}}`;
        if (i % 2 === 0) {
          const [record, signal] = await Promise.all([
            repoA.record(snapshot, 'completed', json, 10_000),
            repoB.addSignal(corrId, 'risk', risk, signalOptions(5_000)),
          ]);
          return { corrId, record, signal };
        }
        const [signal, record] = await Promise.all([
          repoB.addSignal(corrId, 'risk', risk, signalOptions(5_000)),
          repoA.record(snapshot, 'completed', json, 10_000),
        ]);
        return { corrId, record, signal };
      }),
    );
    for (const p of pairs) await check(p.corrId, p.record, p.signal);
  });
});

describe('finish (finish-2.lua, on workflows the sweeper claimed)', () => {
  const decision = '{"corr_id":"x", "status":"timeout","decision":{"action":"timeout","note":"é ü ☃ \\"q\\""},"n":1.50}';

  it('an unclaimed (open), a recorded or an unknown workflow cannot be finished, and nothing changes', async () => {
    const repo = isolatedRepository(redis, 4);
    const open = uniqueId('fin-open');
    const openStart = await repo.start(startInput(open));
    const recorded = uniqueId('fin-recorded');
    const recordedStart = await repo.start(startInput(recorded));
    expect(await repo.record(recordedStart.workflow, 'completed', '{"action":"trade"}', 10_000)).toEqual({ kind: 'recorded' });

    for (const snapshot of [openStart.workflow, recordedStart.workflow]) {
      const k = repo.keys.forWorkflow(snapshot.corrId);
      const wfBefore = await redis.hgetall(k.wf);
      const scoreBefore = await redis.zscore(k.deadlines, snapshot.corrId);
      expect(await repo.finish(snapshot, 'timeout', decision, 60_000)).toBe(false);
      expect(await repo.finish((await repo.inspect(snapshot.corrId)).workflow!, 'failed', decision, 60_000)).toBe(false);
      expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
      expect(await redis.zscore(k.deadlines, snapshot.corrId)).toBe(scoreBefore);
    }

    const missing = uniqueId('fin-missing');
    const elsewhere = await isolatedRepository(redis, 4).start(startInput(missing));
    expect(await repo.finish(elsewhere.workflow, 'timeout', decision, 60_000)).toBe(false);
    const km = repo.keys.forWorkflow(missing);
    expect(await redis.exists(km.wf, km.sig)).toBe(0);
    expect(await redis.zscore(km.deadlines, missing)).toBeNull();
  });

  it('a claimed workflow: final status, decision byte-for-byte, not published, due at now + lease; a second finish is refused and changes nothing', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('fin');
    await repo.start(startInput(corrId, { timeoutMs: 0 }));
    const claimed = await claimDue(repo, corrId, 60_000);
    const k = repo.keys.forWorkflow(corrId);
    expect(await redis.hget(k.wf, 'status')).toBe('evaluating');

    const { value: ok, before, after } = await timed(() => repo.finish(claimed, 'timeout', decision, 9_000));

    expect(ok).toBe(true);
    const stored = await redis.hgetall(k.wf);
    expect(stored.status).toBe('timeout');
    expect(stored.decision).toBe(decision);
    expect(Buffer.compare(Buffer.from(stored.decision, 'utf8'), Buffer.from(decision, 'utf8'))).toBe(0);
    expect(stored.published).toBeUndefined(); // absent until mark-published
    expect(stored.claim).toBeUndefined(); // no claim token any more
    expectWithin(Number(stored.finished), before, after);
    // Moved from the claim's lease (now + 60 s) to the finish's (now + 9 s).
    const score = Number(await redis.zscore(k.deadlines, corrId));
    expectWithin(score, before + 9_000, after + 9_000);

    const inspected = (await repo.inspect(corrId)).workflow;
    expect(inspected).toEqual({ ...claimed, status: 'timeout', decisionJson: decision, published: false, finishedMs: Number(stored.finished) });

    expect(await repo.finish(claimed, 'failed', '{"other":true}', 60_000)).toBe(false);
    expect(await redis.hgetall(k.wf)).toEqual(stored);
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(score);
  });

  it('records the final status failed (an onTimeout that threw)', async () => {
    const repo = isolatedRepository(redis, 2);
    const corrId = uniqueId('fin-failed');
    await repo.start(startInput(corrId, { timeoutMs: 0 }));
    const claimed = await claimDue(repo, corrId);
    expect(await repo.finish(claimed, 'failed', '{"status":"failed"}', 10_000)).toBe(true);
    expect(await redis.hmget(repo.keys.forWorkflow(corrId).wf, 'status', 'decision')).toEqual(['failed', '{"status":"failed"}']);
  });

  it('a snapshot of another start time (a newer workflow of the same corr_id, also being timed out) is refused; its own snapshot finishes it', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('fin-reused');
    await repo.start(startInput(corrId, { timeoutMs: 0 }));
    const old = await claimDue(repo, corrId);
    // The old workflow's keys expire (its claimant stalled); a new trigger opens and the sweeper claims it again.
    const k = repo.keys.forWorkflow(corrId);
    await redis.del(k.wf, k.sig);
    await redis.zrem(k.deadlines, corrId);
    await sleep(5);
    await repo.start(startInput(corrId, { timeoutMs: 0 }));
    const fresh = await claimDue(repo, corrId);
    expect(fresh.startedMs).not.toBe(old.startedMs);
    const wfBefore = await redis.hgetall(k.wf);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    expect(await repo.finish(old, 'timeout', '{"by":"old"}', 60_000)).toBe(false);
    expect(await repo.finish({ ...fresh, startedMs: fresh.startedMs + 1 }, 'timeout', '{"by":"plus1"}', 60_000)).toBe(false);

    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
    expect(await repo.finish(fresh, 'timeout', '{"by":"fresh"}', 60_000)).toBe(true);
    expect(await redis.hmget(k.wf, 'status', 'decision')).toEqual(['timeout', '{"by":"fresh"}']);
  });

  it.each([
    ['the first claimant (lease expired) finishes first', 'A'],
    ['the second claimant finishes first', 'B'],
  ] as const)('RACE: the sweeper re-claims an expired timeout claim; %s: it wins, the other is refused', async (_how, first) => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId(`reclaim-${first}`);
    await repo.start(startInput(corrId, { timeoutMs: 0 }));
    const claimA = await claimDue(repo, corrId, 50);
    const k = repo.keys.forWorkflow(corrId);

    const job = await waitFor('the sweeper to re-claim the expired lease', async () => {
      const { jobs } = await repo.sweep(10, 60_000);
      return jobs.find((j) => j.workflow.corrId === corrId);
    });
    expect(job.kind).toBe('timeout');
    expect(job.workflow).toEqual(claimA); // the same frozen snapshot for every claimant
    const claimB = job.workflow;
    expect(await redis.hget(k.wf, 'status')).toBe('evaluating');

    const [winner, loser] = first === 'A' ? [claimA, claimB] : [claimB, claimA];
    const { value: won, before, after } = await timed(() => repo.finish(winner, 'timeout', `{"by":"${first}"}`, 20_000));
    expect(won).toBe(true);
    const stored = await redis.hgetall(k.wf);
    const score = await redis.zscore(k.deadlines, corrId);
    expectWithin(Number(score), before + 20_000, after + 20_000);

    expect(await repo.finish(loser, 'failed', '{"by":"second"}', 60_000)).toBe(false);
    expect(await redis.hgetall(k.wf)).toEqual(stored);
    expect(stored).toMatchObject({ status: 'timeout', decision: `{"by":"${first}"}` });
    expect(await redis.zscore(k.deadlines, corrId)).toBe(score);
  });

  it('RACE: 20 concurrent finishes over two connections on a claimed workflow: exactly one wins, its decision stored', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const corrId = uniqueId('finrace');
    await repoA.start(startInput(corrId, { timeoutMs: 0 }));
    const claimed = await claimDue(repoA, corrId);

    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? repoA : repoB).finish(claimed, i % 3 === 0 ? 'failed' : 'timeout', `{"by":${i}}`, 10_000)),
    );

    const winners = results.flatMap((ok, i) => (ok ? [i] : []));
    expect(winners).toHaveLength(1);
    const [i] = winners;
    expect(await redis.hmget(repoA.keys.forWorkflow(corrId).wf, 'status', 'decision')).toEqual([i % 3 === 0 ? 'failed' : 'timeout', `{"by":${i}}`]);
  });
});

describe('markPublished (mark-published-3.lua)', () => {
  it('the first call returns started/finished, marks published, leaves the due index, sets the retention TTL; the second returns null', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('pub');
    const started = await repo.start(startInput(corrId));
    const added = await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(5_000));
    if (added.kind !== 'added') throw new Error(added.kind);
    expect(await repo.record(added.workflow, 'completed', '{"action":"trade"}', 10_000)).toEqual({ kind: 'recorded' });
    const k = repo.keys.forWorkflow(corrId);
    const finished = Number(await redis.hget(k.wf, 'finished'));

    const { value: marked, before, after } = await timed(() => repo.markPublished(added.workflow, 3_600_000));

    expect(marked).toEqual({ startedMs: started.workflow.startedMs, finishedMs: finished });
    const stored = await redis.hgetall(k.wf);
    expect(stored.published).toBe('1');
    expect(stored.status).toBe('completed');
    expect(stored.decision).toBe('{"action":"trade"}');
    expectWithin(Number(stored.published_at), before, after);
    expect(await redis.zscore(k.deadlines, corrId)).toBeNull();
    for (const key of [k.wf, k.sig]) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(3_600_000 - 500 - (Date.now() - before));
      expect(ttl).toBeLessThanOrEqual(3_600_000);
    }
    expect((await repo.inspect(corrId)).workflow?.published).toBe(true);

    expect(await repo.markPublished(added.workflow, 10)).toBeNull();
    expect(await redis.hgetall(k.wf)).toEqual(stored);
    expect(await redis.pttl(k.wf)).toBeGreaterThan(3_000_000);
  });

  it('on an open, an evaluating (sweeper-claimed) or an unknown workflow it returns null and changes nothing', async () => {
    const repo = isolatedRepository(redis, 4);
    const open = uniqueId('pub-open');
    const evaluating = uniqueId('pub-eval');
    const openStart = await repo.start(startInput(open));
    await repo.start(startInput(evaluating, { timeoutMs: 0 }));
    const claimed = await claimDue(repo, evaluating);

    for (const snapshot of [openStart.workflow, claimed]) {
      const k = repo.keys.forWorkflow(snapshot.corrId);
      const wfBefore = await redis.hgetall(k.wf);
      const scoreBefore = await redis.zscore(k.deadlines, snapshot.corrId);
      expect(await repo.markPublished(snapshot, 60_000)).toBeNull();
      expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
      expect(await redis.zscore(k.deadlines, snapshot.corrId)).toBe(scoreBefore);
      expect(await redis.pttl(k.wf)).toBe(-1);
    }
    const missing = uniqueId('pub-missing');
    const elsewhere = await isolatedRepository(redis, 4).start(startInput(missing));
    expect(await repo.markPublished(elsewhere.workflow, 60_000)).toBeNull();
    expect(await redis.exists(repo.keys.forWorkflow(missing).wf)).toBe(0);
  });

  it('refuses a snapshot of another start time: a stale publisher cannot mark a newer workflow of the same corr_id', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('pub-reused');
    const k = repo.keys.forWorkflow(corrId);
    const old = await repo.start(startInput(corrId));
    expect(await repo.record(old.workflow, 'completed', '{"by":"old"}', 10_000)).toEqual({ kind: 'recorded' });
    // The old workflow's keys are gone (its publisher stalled past the retention); the corr_id is triggered again and decided.
    await redis.del(k.wf, k.sig);
    await redis.zrem(k.deadlines, corrId);
    await sleep(5);
    const fresh = await repo.start(startInput(corrId));
    expect(fresh.workflow.startedMs).not.toBe(old.workflow.startedMs);
    expect(await repo.record(fresh.workflow, 'completed', '{"by":"fresh"}', 10_000)).toEqual({ kind: 'recorded' });
    const wfBefore = await redis.hgetall(k.wf);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    expect(await repo.markPublished(old.workflow, 60_000)).toBeNull();
    expect(await repo.markPublished({ ...fresh.workflow, startedMs: fresh.workflow.startedMs - 1 }, 60_000)).toBeNull();

    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(wfBefore.published).toBeUndefined();
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
    expect(await redis.pttl(k.wf)).toBe(-1);
    // The fresh workflow's own publisher marks it.
    const finished = Number(wfBefore.finished);
    expect(await repo.markPublished(fresh.workflow, 60_000)).toEqual({ startedMs: fresh.workflow.startedMs, finishedMs: finished });
    expect(await redis.hget(k.wf, 'published')).toBe('1');
    expect(await redis.zscore(k.deadlines, corrId)).toBeNull();
  });

  it('RACE: concurrent markPublished over two connections: exactly one gets the times', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const corrId = uniqueId('pubrace');
    const started = await repoA.start(startInput(corrId));
    expect(await repoA.record(started.workflow, 'completed', '{"action":"trade"}', 10_000)).toEqual({ kind: 'recorded' });

    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? repoA : repoB).markPublished(started.workflow, 60_000)));

    expect(results.filter((r) => r !== null)).toHaveLength(1);
  });
});
