import type { Redis } from 'ioredis';
import { uniqueId, waitFor } from '../support/env.js';
import { isolatedRepository, scriptedRedis, useScriptedPair } from '../support/redis.js';
import type { AddSignalResult, FreezeResult, StoredWorkflow, WorkflowRepository } from '../../src/workflow/workflow.repository.js';
import {
  claimDue,
  corrIdsInShard,
  decided,
  expectWithin,
  frozen,
  recordLegacy,
  repositoriesOnOnePrefix,
  signalJson,
  signalOptions,
  sleep,
  snapshotOf,
  startInput,
  timed,
} from './repository-fixtures.js';

/**
 * `WorkflowRepository` against a real Redis: freeze-3.lua (a workflow that can decide, by canDecide on a
 * version, or an operator's cancel or forced decision whatever arrived), finalize-2.lua (a frozen workflow's
 * decision published: final, out of the due index, kept for the retention period; batched per shard), and
 * their races. The freeze by a readiness rule is in workflow.readiness.int-spec.ts, by the sweeper in
 * workflow.sweep.int-spec.ts.
 */
let redis: Redis;
let redis2: Redis;
useScriptedPair((a, b) => ([redis, redis2] = [a, b]));

/** The fields a freeze writes, as stored (and nothing of a decision). */
async function frozenFields(repo: WorkflowRepository, corrId: string): Promise<(string | null)[]> {
  return redis.hmget(repo.keys.forWorkflow(corrId).wf, 'status', 'why', 'by', 'decision', 'finished', 'published');
}

describe('freeze (freeze-3.lua)', () => {
  it('on the current version it freezes: evaluating, why decide, frozen now, due at now + lease, nothing decided; a second freeze finds it closed', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('frz');
    const started = await repo.start(startInput(corrId, { timeoutMs: 300_000 }));
    const added = snapshotOf(await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.7), signalOptions(5_000)));
    expect(added.version).toBe(1);
    const k = repo.keys.forWorkflow(corrId);
    const openFields = await redis.hgetall(k.wf);

    const { value: result, before, after } = await timed(() => repo.freeze(added, 'decide', 9_000));

    if (result.kind !== 'frozen') throw new Error(result.kind);
    const stored = await redis.hgetall(k.wf);
    expectWithin(Number(stored.frozen), before, after);
    // Only status, why and frozen change.
    expect(stored).toEqual({ ...openFields, status: 'evaluating', why: 'decide', frozen: stored.frozen });
    expect(result.workflow).toEqual({ ...added, status: 'evaluating', why: 'decide', frozenMs: Number(stored.frozen), frozenBy: null });
    // The snapshot it returns (the caller's, not sent back) is what Redis holds.
    expect((await repo.inspect(corrId)).workflow).toEqual(result.workflow);
    expect(await redis.hgetall(k.sig)).toEqual({ momentum: signalJson('momentum', 0.7) });
    const score = Number(await redis.zscore(k.deadlines, corrId));
    expect(score).toBe(Number(stored.frozen) + 9_000);
    expect(score).toBeLessThan(started.workflow.deadlineMs - 60_000);
    expect(await redis.pttl(k.wf)).toBe(-1);

    // The same version again (a redelivered signal's handler, another replica), or an operator: closed, nothing changes.
    expect(await repo.freeze(added, 'decide', 60_000)).toEqual({ kind: 'closed', status: 'evaluating' });
    expect(await repo.freeze({ corrId }, 'cancel', 60_000, 'ops')).toEqual({ kind: 'closed', status: 'evaluating' });
    expect(await redis.hgetall(k.wf)).toEqual(stored);
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(score);
  });

  it('freezes version 0 (in_progress, no signal yet: a strategy deciding on the trigger alone)', async () => {
    const repo = isolatedRepository(redis, 2);
    const corrId = uniqueId('frz-v0');
    const started = await repo.start(startInput(corrId));
    expect(started.workflow).toMatchObject({ status: 'in_progress', version: 0 });

    const result = await repo.freeze(started.workflow, 'decide', 10_000);

    expect(result.kind).toBe('frozen');
    expect(await redis.hmget(repo.keys.forWorkflow(corrId).wf, 'status', 'why', 'ver')).toEqual(['evaluating', 'decide', '0']);
  });

  it('with an outdated version it returns the current snapshot and changes nothing; freezing on that snapshot then succeeds', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('frz-old');
    await repo.start(startInput(corrId));
    const first = snapshotOf(await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.7), signalOptions(5_000)));
    await repo.addSignal(corrId, 'risk', signalJson('risk', 0.8), signalOptions(5_000));
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);
    const sigBefore = await redis.hgetall(k.sig);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    const result = await repo.freeze(first, 'decide', 10_000);

    if (result.kind !== 'outdated') throw new Error(result.kind);
    expect(result.workflow).toEqual((await repo.inspect(corrId)).workflow);
    expect(result.workflow).toMatchObject({
      status: 'waiting_for_agents',
      version: 2,
      why: null,
      frozenMs: null,
      signals: { momentum: signalJson('momentum', 0.7), risk: signalJson('risk', 0.8) },
    });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.hgetall(k.sig)).toEqual(sigBefore);
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);

    // A version that does not match (here: ahead of the stored one) is outdated too, not frozen.
    expect(await repo.freeze({ ...result.workflow, version: 3 }, 'decide', 10_000)).toEqual({ kind: 'outdated', workflow: result.workflow });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);

    expect((await repo.freeze(result.workflow, 'decide', 10_000)).kind).toBe('frozen');
    expect(await redis.hmget(k.wf, 'status', 'why', 'ver')).toEqual(['evaluating', 'decide', '2']);
  });

  it('on a newer workflow of the same corr_id (the one asked about expired after its retention): closed, nothing changed', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('frz-reused');
    await repo.start(startInput(corrId));
    const stale = snapshotOf(await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.7), signalOptions(5_000)));
    // The first workflow ends and its keys expire; a new trigger opens another one with the same corr_id,
    // and it reaches the same version.
    const k = repo.keys.forWorkflow(corrId);
    await redis.del(k.wf, k.sig);
    await redis.zrem(k.deadlines, corrId);
    await sleep(5);
    await repo.start(startInput(corrId));
    const fresh = snapshotOf(await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.9), signalOptions(5_000)));
    expect(fresh.version).toBe(stale.version);
    expect(fresh.startedMs).not.toBe(stale.startedMs);
    const wfBefore = await redis.hgetall(k.wf);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    expect(await repo.freeze(stale, 'decide', 10_000)).toEqual({ kind: 'closed', status: 'waiting_for_agents' });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
    expect((await repo.freeze(fresh, 'decide', 10_000)).kind).toBe('frozen');
  });

  it('on an unknown, a frozen (sweeper, canDecide, rule), a finalised, a legacy-recorded or a published workflow: closed with its status, nothing created or changed', async () => {
    const repo = isolatedRepository(redis, 4);

    // Unknown here: a real snapshot, from another prefix.
    const missing = uniqueId('frz-missing');
    const elsewhere = await isolatedRepository(redis, 4).start(startInput(missing));
    expect(await repo.freeze(elsewhere.workflow, 'decide', 10_000)).toEqual({ kind: 'closed', status: '' });
    expect(await repo.freeze({ corrId: missing }, 'force', 10_000, 'ops')).toEqual({ kind: 'closed', status: '' });
    const km = repo.keys.forWorkflow(missing);
    expect(await redis.exists(km.wf, km.sig, km.deadlines)).toBe(0);

    // Frozen by the sweeper for its timeout; the snapshot is the one a signal's handler asked canDecide on.
    const bySweeper = uniqueId('frz-sweep');
    await repo.start(startInput(bySweeper, { timeoutMs: 0 }));
    const seen = snapshotOf(await repo.addSignal(bySweeper, 'risk', signalJson('risk', 0.5), signalOptions(5_000)));
    const claimed = await claimDue(repo, bySweeper);

    const byCanDecide = uniqueId('frz-decide');
    const byCanDecideStart = await repo.start(startInput(byCanDecide));
    await frozen(repo, byCanDecideStart.workflow);

    const byRule = uniqueId('frz-rule');
    const byRuleStart = await repo.start(startInput(byRule, { readyRule: '1||' }));
    snapshotOf(await repo.addSignal(byRule, 'risk', signalJson('risk', 0.5), signalOptions(5_000)), 'ready');

    // Timed out by the sweeper (frozen, then finalised).
    const timedOut = uniqueId('frz-timeout');
    const timedOutStart = await repo.start(startInput(timedOut, { timeoutMs: 0 }));
    expect(await repo.finalize(await claimDue(repo, timedOut), 'timeout', '{"action":"timeout"}', 60_000)).not.toBeNull();

    // Recorded by an older version and not published.
    const legacy = uniqueId('frz-legacy');
    const legacyStart = await repo.start(startInput(legacy));
    await recordLegacy(redis, repo, legacy, 'completed', '{"action":"trade"}');

    const published = uniqueId('frz-pub');
    const publishedStart = await repo.start(startInput(published));
    await decided(repo, publishedStart.workflow, '{"action":"no_trade"}');

    const cases = [
      { corrId: bySweeper, snapshot: seen, status: 'evaluating' },
      { corrId: byCanDecide, snapshot: byCanDecideStart.workflow, status: 'evaluating' },
      { corrId: byRule, snapshot: byRuleStart.workflow, status: 'evaluating' },
      { corrId: timedOut, snapshot: timedOutStart.workflow, status: 'timeout' },
      { corrId: legacy, snapshot: legacyStart.workflow, status: 'completed' },
      { corrId: published, snapshot: publishedStart.workflow, status: 'completed' },
    ];
    for (const c of cases) {
      const k = repo.keys.forWorkflow(c.corrId);
      const wfBefore = await redis.hgetall(k.wf);
      const sigBefore = await redis.hgetall(k.sig);
      const scoreBefore = await redis.zscore(k.deadlines, c.corrId);
      const current = (await repo.inspect(c.corrId)).workflow;
      if (!current) throw new Error(`${c.corrId} missing`);

      // The snapshot its handler saw, a fresh one, and an operator's (no version) are refused.
      expect(await repo.freeze(c.snapshot, 'decide', 60_000)).toEqual({ kind: 'closed', status: c.status });
      expect(await repo.freeze(current, 'decide', 60_000)).toEqual({ kind: 'closed', status: c.status });
      expect(await repo.freeze({ corrId: c.corrId }, 'cancel', 60_000, 'ops')).toEqual({ kind: 'closed', status: c.status });

      expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
      expect(await redis.hgetall(k.sig)).toEqual(sigBefore);
      expect(await redis.zscore(k.deadlines, c.corrId)).toBe(scoreBefore);
    }

    // The sweeper's freeze was not disturbed: its claimant still finalises.
    expect(await repo.finalize(claimed, 'timeout', '{"action":"timeout"}', 60_000)).not.toBeNull();
  });

  it.each(['cancel', 'force'] as const)(
    "without a version (an operator's %s): freezes whatever arrived, returns the snapshot, keeps `by`; a start time is not asked for",
    async (why) => {
      const repo = isolatedRepository(redis, 4);
      const corrId = uniqueId(`frz-${why}`);
      const k = repo.keys.forWorkflow(corrId);
      await repo.start(startInput(corrId, { timeoutMs: 300_000, readyRule: '0|momentum,risk|' }));
      // Two signals: the operator never saw any version.
      expect((await repo.addSignal(corrId, 'risk', signalJson('risk', 0.3), signalOptions(5_000))).kind).toBe('added');
      expect((await repo.addSignal(corrId, 'news', signalJson('news', 0.3), signalOptions(5_000))).kind).toBe('added');

      const { value: result, before, after } = await timed(() => repo.freeze({ corrId }, why, 12_000, 'alice-token'));

      if (result.kind !== 'frozen') throw new Error(result.kind);
      // A workflow with a rule has no version (`ver`): the signals say what arrived.
      expect(result.workflow).toMatchObject({ corrId, status: 'evaluating', why, frozenBy: 'alice-token', version: 0, hasRule: true });
      expect(result.workflow.signals).toEqual({ risk: signalJson('risk', 0.3), news: signalJson('news', 0.3) });
      expect(result.workflow).toEqual((await repo.inspect(corrId)).workflow);
      expectWithin(result.workflow.frozenMs ?? NaN, before, after);
      expect(await frozenFields(repo, corrId)).toEqual(['evaluating', why, 'alice-token', null, null, null]);
      expect(Number(await redis.zscore(k.deadlines, corrId))).toBe((result.workflow.frozenMs ?? NaN) + 12_000);

      // Frozen: the signal that would have made it ready by its rule is late.
      expect(await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.3), signalOptions(5_000))).toEqual({ kind: 'late', status: 'evaluating' });
    },
  );

  it('without a version and without `by`: no `by` field stored', async () => {
    const repo = isolatedRepository(redis, 2);
    const corrId = uniqueId('frz-noby');
    await repo.start(startInput(corrId));

    const result = await repo.freeze({ corrId }, 'force', 10_000);

    if (result.kind !== 'frozen') throw new Error(result.kind);
    expect(result.workflow.frozenBy).toBeNull();
    expect(await frozenFields(repo, corrId)).toEqual(['evaluating', 'force', null, null, null, null]);
  });

  it('RACE: 20 concurrent freezes of the same version, with different reasons: exactly one freezes, its reason stored', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('race');
    await repo.start(startInput(corrId));
    const added = snapshotOf(await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.7), signalOptions(5_000)));
    const attempts = Array.from({ length: 20 }, (_, i) => (i % 3 === 0 ? { why: 'cancel' as const, by: `op-${i}` } : { why: 'decide' as const, by: '' }));

    const results = await Promise.all(
      attempts.map((a) => (a.why === 'cancel' ? repo.freeze({ corrId }, 'cancel', 10_000, a.by) : repo.freeze(added, 'decide', 10_000))),
    );

    const winners = attempts.filter((_, i) => results[i].kind === 'frozen');
    expect(winners).toHaveLength(1);
    expect(await frozenFields(repo, corrId)).toEqual(['evaluating', winners[0].why, winners[0].by || null, null, null, null]);
    for (const r of results) if (r.kind !== 'frozen') expect(r).toEqual({ kind: 'closed', status: 'evaluating' });
  });

  it('RACE: concurrent freezes over two connections, on 10 workflows: exactly one winner each', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const ids = Array.from({ length: 10 }, (_, i) => uniqueId(`race2-${i}`));
    const snapshots = await Promise.all(ids.map(async (id) => (await repoA.start(startInput(id))).workflow));

    const attempts = snapshots.flatMap((snapshot) =>
      Array.from({ length: 20 }, (_, i) => {
        const by = `r${i}`;
        const repo = i % 2 === 0 ? repoA : repoB;
        return repo.freeze({ corrId: snapshot.corrId }, 'force', 10_000, by).then((r) => ({ id: snapshot.corrId, by, won: r.kind === 'frozen' }));
      }),
    );
    const results = await Promise.all(attempts);

    for (const id of ids) {
      const winners = results.filter((r) => r.id === id && r.won);
      expect(winners).toHaveLength(1);
      expect(await redis.hmget(repoA.keys.forWorkflow(id).wf, 'status', 'by')).toEqual(['evaluating', winners[0].by]);
    }
  });

  it('RACE: freeze vs a concurrent addSignal: either it freezes and the signal is late, or the signal is stored and the freeze is outdated; never both', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const momentum = signalJson('momentum', 0.7);
    const risk = signalJson('risk', 0.8);

    /** A workflow with one signal (version 1): the snapshot a handler asked canDecide on. */
    async function opened(): Promise<{ corrId: string; snapshot: StoredWorkflow }> {
      const corrId = uniqueId('frz-vs-sig');
      await repoA.start(startInput(corrId));
      return { corrId, snapshot: snapshotOf(await repoA.addSignal(corrId, 'momentum', momentum, signalOptions(5_000))) };
    }

    /** Checks the pair of results against what Redis holds; returns which one won. */
    async function check(corrId: string, freeze: FreezeResult, signal: AddSignalResult): Promise<'freeze' | 'signal'> {
      const k = repoA.keys.forWorkflow(corrId);
      const stored = await redis.hgetall(k.wf);
      const sig = await redis.hgetall(k.sig);
      if (freeze.kind === 'frozen') {
        expect(signal).toEqual({ kind: 'late', status: 'evaluating' });
        expect(stored).toMatchObject({ status: 'evaluating', why: 'decide', ver: '1' });
        expect(freeze.workflow.signals).toEqual({ momentum });
        expect(sig).toEqual({ momentum });
        return 'freeze';
      }
      expect(freeze.kind).toBe('outdated');
      if (freeze.kind !== 'outdated') throw new Error('unreachable');
      expect(freeze.workflow).toEqual(snapshotOf(signal));
      expect(freeze.workflow).toMatchObject({ status: 'waiting_for_agents', version: 2, signals: { momentum, risk } });
      expect(stored.status).toBe('waiting_for_agents');
      expect(stored.why).toBeUndefined();
      expect(stored.ver).toBe('2');
      expect(sig).toEqual({ momentum, risk });
      return 'signal';
    }

    // On one connection Redis runs them in the order sent: each outcome once, for certain (scripts loaded by `opened`, and by a
    // first freeze, so that no NOSCRIPT retry reorders them).
    const warm = await opened();
    await frozen(repoA, warm.snapshot);
    const ordered1 = await opened();
    const [frz1, sig1] = await Promise.all([
      repoA.freeze(ordered1.snapshot, 'decide', 10_000),
      repoA.addSignal(ordered1.corrId, 'risk', risk, signalOptions(5_000)),
    ]);
    expect(await check(ordered1.corrId, frz1, sig1)).toBe('freeze');
    const ordered2 = await opened();
    // Signals are sent at the end of the event-loop turn (one call per shard, with the others of the turn): the
    // freeze is sent after that turn.
    const sig2p = repoA.addSignal(ordered2.corrId, 'risk', risk, signalOptions(5_000));
    await new Promise((resolve) => setImmediate(resolve));
    const [sig2, frz2] = await Promise.all([sig2p, repoA.freeze(ordered2.snapshot, 'decide', 10_000)]);
    expect(await check(ordered2.corrId, frz2, sig2)).toBe('signal');

    // Over two connections, sent in alternating order: whichever wins, exactly one of the two is stored.
    const workflows = await Promise.all(Array.from({ length: 40 }, () => opened()));
    const pairs = await Promise.all(
      workflows.map(async ({ corrId, snapshot }, i) => {
        if (i % 2 === 0) {
          const [freeze, signal] = await Promise.all([repoA.freeze(snapshot, 'decide', 10_000), repoB.addSignal(corrId, 'risk', risk, signalOptions(5_000))]);
          return { corrId, freeze, signal };
        }
        const [signal, freeze] = await Promise.all([repoB.addSignal(corrId, 'risk', risk, signalOptions(5_000)), repoA.freeze(snapshot, 'decide', 10_000)]);
        return { corrId, freeze, signal };
      }),
    );
    for (const p of pairs) await check(p.corrId, p.freeze, p.signal);
  });

  it('RACE: freeze after canDecide vs the sweeper at the deadline, over two connections: exactly one freezes each workflow, by its reason', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const starts = await Promise.all(Array.from({ length: 30 }, () => repoA.start(startInput(uniqueId('frz-vs-sweep'), { timeoutMs: 0 }))));
    await sleep(5); // past every deadline (timeout 0: due at once, by Redis's clock)

    const [freezes, sweep] = await Promise.all([Promise.all(starts.map((s) => repoA.freeze(s.workflow, 'decide', 60_000))), repoB.sweep(100, 60_000)]);

    expect(sweep.errors).toEqual([]);
    for (const [i, s] of starts.entries()) {
      const id = s.workflow.corrId;
      const job = sweep.jobs.find((j) => j.workflow.corrId === id);
      const why = await redis.hget(repoA.keys.forWorkflow(id).wf, 'why');
      if (freezes[i].kind === 'frozen') {
        expect(job).toBeUndefined();
        expect(why).toBe('decide');
      } else {
        expect(freezes[i]).toEqual({ kind: 'closed', status: 'evaluating' });
        expect(job?.kind).toBe('timeout');
        expect(why).toBe('timeout');
      }
    }
  });
});

describe('finalize (finalize-2.lua)', () => {
  const decision = '{"corr_id":"x", "status":"completed","decision":{"action":"trade","note":"é ü ☃ \\"q\\""},"n":1.50}';

  it('a frozen workflow: final status, decision byte-for-byte, finished now, published, out of the due index, retention TTL on its keys; a second finalize returns null and changes nothing', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('fin');
    const started = await repo.start(startInput(corrId));
    const added = snapshotOf(await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(5_000)));
    const frozenWf = await frozen(repo, added);
    const k = repo.keys.forWorkflow(corrId);
    const frozenFieldsBefore = await redis.hgetall(k.wf);

    const { value: result, before, after } = await timed(() => repo.finalize(frozenWf, 'completed', decision, 3_600_000));

    const stored = await redis.hgetall(k.wf);
    expect(result).toEqual({ startedMs: started.workflow.startedMs, finishedMs: Number(stored.finished) });
    expectWithin(Number(stored.finished), before, after);
    expect(stored).toEqual({ ...frozenFieldsBefore, status: 'completed', decision, finished: stored.finished, published: '1' });
    expect(Buffer.compare(Buffer.from(stored.decision, 'utf8'), Buffer.from(decision, 'utf8'))).toBe(0);
    expect(await redis.zscore(k.deadlines, corrId)).toBeNull();
    for (const key of [k.wf, k.sig]) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(3_600_000 - 500 - (Date.now() - before));
      expect(ttl).toBeLessThanOrEqual(3_600_000);
    }
    expect(await repo.countActive()).toBe(0);
    // Why it was frozen stays readable after the end (how it was decided).
    expect((await repo.inspect(corrId)).workflow).toMatchObject({ status: 'completed', published: true, decisionJson: decision, why: 'decide' });

    // A second claimant (the sweeper after the lease), or the same caller again: null, nothing changes.
    expect(await repo.finalize(frozenWf, 'failed', '{"other":true}', 10)).toBeNull();
    expect(await redis.hgetall(k.wf)).toEqual(stored);
    expect(await redis.pttl(k.wf)).toBeGreaterThan(3_000_000);
    expect(await redis.zscore(k.deadlines, corrId)).toBeNull();
  });

  it.each(['failed', 'timeout', 'cancelled'] as const)('stores the final status %s', async (status) => {
    const repo = isolatedRepository(redis, 2);
    const corrId = uniqueId(`fin-${status}`);
    await repo.start(startInput(corrId));
    const frozenWf = await frozen(repo, (await repo.inspect(corrId)).workflow!);
    expect(await repo.finalize(frozenWf, status, `{"status":"${status}"}`, 60_000)).not.toBeNull();
    expect(await redis.hmget(repo.keys.forWorkflow(corrId).wf, 'status', 'decision', 'published')).toEqual([status, `{"status":"${status}"}`, '1']);
  });

  it('an open (never frozen) or an unknown workflow is not finalised: null, nothing changed or created, no TTL', async () => {
    const repo = isolatedRepository(redis, 4);
    const open = uniqueId('fin-open');
    const openStart = await repo.start(startInput(open));
    const k = repo.keys.forWorkflow(open);
    const wfBefore = await redis.hgetall(k.wf);
    const scoreBefore = await redis.zscore(k.deadlines, open);

    expect(await repo.finalize(openStart.workflow, 'completed', decision, 60_000)).toBeNull();

    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.zscore(k.deadlines, open)).toBe(scoreBefore);
    expect(await redis.pttl(k.wf)).toBe(-1);

    const missing = uniqueId('fin-missing');
    const elsewhere = await isolatedRepository(redis, 4).start(startInput(missing));
    expect(await repo.finalize(elsewhere.workflow, 'timeout', decision, 60_000)).toBeNull();
    const km = repo.keys.forWorkflow(missing);
    expect(await redis.exists(km.wf, km.sig)).toBe(0);
    expect(await redis.zscore(km.deadlines, missing)).toBeNull();
  });

  it('a snapshot of another start time (a stale claimant of the expired workflow of the same corr_id) does nothing; its own snapshot finalises it', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('fin-reused');
    const k = repo.keys.forWorkflow(corrId);
    const old = await frozen(repo, (await repo.start(startInput(corrId))).workflow);
    // The old workflow's keys are gone (its decider stalled past the retention); the corr_id is triggered again and frozen.
    await redis.del(k.wf, k.sig);
    await redis.zrem(k.deadlines, corrId);
    await sleep(5);
    const fresh = await frozen(repo, (await repo.start(startInput(corrId))).workflow);
    expect(fresh.startedMs).not.toBe(old.startedMs);
    const wfBefore = await redis.hgetall(k.wf);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    expect(await repo.finalize(old, 'completed', '{"by":"old"}', 60_000)).toBeNull();
    expect(await repo.finalize({ ...fresh, startedMs: fresh.startedMs - 1 }, 'completed', '{"by":"minus1"}', 60_000)).toBeNull();

    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(wfBefore.published).toBeUndefined();
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
    expect(await redis.pttl(k.wf)).toBe(-1);
    expect(await repo.finalize(fresh, 'completed', '{"by":"fresh"}', 60_000)).not.toBeNull();
    expect(await redis.hmget(k.wf, 'status', 'decision', 'published')).toEqual(['completed', '{"by":"fresh"}', '1']);
    expect(await redis.zscore(k.deadlines, corrId)).toBeNull();
  });

  it('a workflow an older version recorded and did not publish (final status, decision, no `published`): marked published, its decision kept', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('fin-legacy');
    const started = await repo.start(startInput(corrId));
    await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(5_000));
    const finished = await recordLegacy(redis, repo, corrId, 'timeout', '{"action":"timeout","legacy":1}');
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);
    const legacy = (await repo.inspect(corrId)).workflow!;
    expect(legacy).toMatchObject({ status: 'timeout', published: false, decisionJson: '{"action":"timeout","legacy":1}', finishedMs: finished });

    // The sweeper's publish job finalises it with the recorded message (here another one: it must not replace it).
    const result = await repo.finalize(legacy, 'completed', '{"action":"other"}', 60_000);

    expect(result).toEqual({ startedMs: started.workflow.startedMs, finishedMs: finished });
    expect(await redis.hgetall(k.wf)).toEqual({ ...wfBefore, published: '1' });
    expect(await redis.zscore(k.deadlines, corrId)).toBeNull();
    for (const key of [k.wf, k.sig]) expect(await redis.pttl(key)).toBeGreaterThan(50_000);
    expect(await repo.finalize(legacy, 'timeout', '{"action":"timeout","legacy":1}', 60_000)).toBeNull();
  });

  it.each([
    ['the first claimant (lease expired) finalises first', 'A'],
    ['the second claimant finalises first', 'B'],
  ] as const)('RACE: the sweeper hands an expired timeout freeze to a second claimant; %s: it wins, the other gets null', async (_how, first) => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId(`reclaim-${first}`);
    await repo.start(startInput(corrId, { timeoutMs: 0 }));
    const claimA = await claimDue(repo, corrId, 50);
    const k = repo.keys.forWorkflow(corrId);

    const job = await waitFor('the sweeper to hand out the expired lease', async () => {
      const { jobs } = await repo.sweep(10, 60_000);
      return jobs.find((j) => j.workflow.corrId === corrId);
    });
    expect(job.kind).toBe('timeout');
    expect(job.workflow).toEqual(claimA); // the same frozen snapshot for every claimant
    const claimB = job.workflow;
    expect(await redis.hget(k.wf, 'status')).toBe('evaluating');

    const [winner, loser] = first === 'A' ? [claimA, claimB] : [claimB, claimA];
    expect(await repo.finalize(winner, 'timeout', `{"by":"${first}"}`, 60_000)).not.toBeNull();
    const stored = await redis.hgetall(k.wf);
    expect(stored).toMatchObject({ status: 'timeout', decision: `{"by":"${first}"}`, published: '1' });
    expect(await redis.zscore(k.deadlines, corrId)).toBeNull();

    expect(await repo.finalize(loser, 'failed', '{"by":"second"}', 60_000)).toBeNull();
    expect(await redis.hgetall(k.wf)).toEqual(stored);
    expect(await redis.zscore(k.deadlines, corrId)).toBeNull();
  });

  it('RACE: 20 concurrent finalizes over two connections on a frozen workflow: exactly one gets the times, its decision stored', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const corrId = uniqueId('finrace');
    await repoA.start(startInput(corrId, { timeoutMs: 0 }));
    const claimed = await claimDue(repoA, corrId);

    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? repoA : repoB).finalize(claimed, i % 3 === 0 ? 'failed' : 'timeout', `{"by":${i}}`, 60_000)),
    );

    const winners = results.flatMap((r, i) => (r ? [i] : []));
    expect(winners).toHaveLength(1);
    const [i] = winners;
    expect(await redis.hmget(repoA.keys.forWorkflow(corrId).wf, 'status', 'decision')).toEqual([i % 3 === 0 ? 'failed' : 'timeout', `{"by":${i}}`]);
  });

  it('a workflow whose key Redis refuses to read (wrong type) answers null alone: the others of its batch are finalised', async () => {
    const repo = isolatedRepository(redis, 1);
    const [brokenId, fineId] = [uniqueId('fin-broken'), uniqueId('fin-fine')];
    const broken = await frozen(repo, (await repo.start(startInput(brokenId))).workflow);
    const fine = await frozen(repo, (await repo.start(startInput(fineId))).workflow);
    await redis.del(repo.keys.forWorkflow(brokenId).wf);
    await redis.set(repo.keys.forWorkflow(brokenId).wf, 'not a hash');

    const [a, b] = await Promise.all([repo.finalize(broken, 'completed', '{}', 60_000), repo.finalize(fine, 'completed', '{}', 60_000)]);
    expect(a).toBeNull();
    expect(b).toEqual({ startedMs: fine.startedMs, finishedMs: expect.any(Number) });
    expect(await redis.hget(repo.keys.forWorkflow(fineId).wf, 'published')).toBe('1');
    // The broken one stays due: the sweeper reports it (sweep-1.lua, 'broken').
    expect(await redis.zscore(repo.keys.deadlines(0), brokenId)).not.toBeNull();
  });
});

describe('finalize batches (repository.finalize: one script call per shard per event-loop turn)', () => {
  /** A client of its own whose finalize command records, for each script call, its number of workflow arguments (4 per workflow). */
  function countingRepo(shards: number): { repo: WorkflowRepository; client: Redis; calls: number[][] } {
    const client = scriptedRedis();
    const calls: number[][] = [];
    const commands = client as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>;
    const original = commands.finalize.bind(client);
    commands.finalize = (...args: (string | number)[]) => {
      // KEYS[1] the due index, KEYS[2] the recent index, ARGV[1] prefix, ARGV[2] retention, then 4 per workflow.
      calls.push([args.length - 4]);
      return original(...args);
    };
    return { repo: isolatedRepository(client, shards), client, calls };
  }

  it('the calls of one turn over two shards go in one script call per shard, and each caller gets its own answer', async () => {
    const { repo, client, calls } = countingRepo(4);
    try {
      const inOne = corrIdsInShard(repo, 1, 5);
      const inThree = corrIdsInShard(repo, 3, 2);
      const snapshots = new Map<string, StoredWorkflow>();
      for (const id of [...inOne, ...inThree]) snapshots.set(id, (await repo.start(startInput(id))).workflow);
      // Shard 1: three frozen, one open (never frozen), one recorded by an older version; shard 3: one frozen, one finalised already.
      const frozenOne = await Promise.all(inOne.slice(0, 3).map((id) => frozen(repo, snapshots.get(id)!)));
      const legacyFinished = await recordLegacy(redis, repo, inOne[4], 'completed', '{"legacy":true}');
      const frozenThree = await frozen(repo, snapshots.get(inThree[0])!);
      await decided(repo, snapshots.get(inThree[1])!, '{"first":true}');
      calls.length = 0;

      const {
        value: results,
        before,
        after,
      } = await timed(() =>
        Promise.all([
          repo.finalize(frozenOne[0], 'completed', '{"n":0}', 60_000),
          repo.finalize(snapshots.get(inOne[3])!, 'completed', '{"n":3}', 60_000),
          repo.finalize(frozenThree, 'cancelled', '{"n":5}', 60_000),
          repo.finalize(frozenOne[1], 'failed', '{"n":1}', 60_000),
          repo.finalize(snapshots.get(inOne[4])!, 'completed', '{"n":4}', 60_000),
          repo.finalize(frozenOne[2], 'timeout', '{"n":2}', 60_000),
          repo.finalize(snapshots.get(inThree[1])!, 'completed', '{"n":6}', 60_000),
          // The same workflow twice in one batch: the first of the two wins.
          repo.finalize(frozenOne[0], 'failed', '{"n":"again"}', 60_000),
        ]),
      );

      // Two script calls: shard 1 with six workflows, shard 3 with two (in the order the shards were first asked).
      expect(calls).toEqual([[6 * 4], [2 * 4]]);
      const finishedOne = Number(await redis.hget(repo.keys.forWorkflow(inOne[0]).wf, 'finished'));
      expectWithin(finishedOne, before, after);
      const finishedThree = Number(await redis.hget(repo.keys.forWorkflow(inThree[0]).wf, 'finished'));
      const times = (id: string, finishedMs: number) => ({ startedMs: snapshots.get(id)!.startedMs, finishedMs });
      expect(results).toEqual([
        times(inOne[0], finishedOne),
        null,
        times(inThree[0], finishedThree),
        times(inOne[1], finishedOne), // one script, one clock
        times(inOne[4], legacyFinished),
        times(inOne[2], finishedOne),
        null,
        null,
      ]);
      const state = async (id: string) => redis.hmget(repo.keys.forWorkflow(id).wf, 'status', 'decision', 'published');
      expect(await state(inOne[0])).toEqual(['completed', '{"n":0}', '1']);
      expect(await state(inOne[1])).toEqual(['failed', '{"n":1}', '1']);
      expect(await state(inOne[2])).toEqual(['timeout', '{"n":2}', '1']);
      expect(await state(inOne[3])).toEqual(['in_progress', null, null]);
      expect(await state(inOne[4])).toEqual(['completed', '{"legacy":true}', '1']);
      expect(await state(inThree[0])).toEqual(['cancelled', '{"n":5}', '1']);
      expect(await state(inThree[1])).toEqual(['completed', '{"first":true}', '1']);
      // Only the open one is still due.
      expect(await repo.countActive()).toBe(1);
      expect(await redis.zscore(repo.keys.deadlines(1), inOne[3])).not.toBeNull();
    } finally {
      await client.quit();
    }
  });

  it('calls awaited one after another (different turns) go in separate script calls', async () => {
    const { repo, client, calls } = countingRepo(1);
    try {
      const ids = [uniqueId('fin-turn'), uniqueId('fin-turn')];
      const snapshots = await Promise.all(ids.map(async (id) => frozen(repo, (await repo.start(startInput(id))).workflow)));
      calls.length = 0;
      for (const s of snapshots) expect(await repo.finalize(s, 'completed', '{}', 60_000)).not.toBeNull();
      expect(calls).toEqual([[4], [4]]);
    } finally {
      await client.quit();
    }
  });

  it('more than 256 in one turn on one shard: several script calls of at most 256, every caller answered', async () => {
    const { repo, client, calls } = countingRepo(1);
    try {
      const ids = Array.from({ length: 300 }, (_, i) => `${uniqueId('fin-many')}-${i}`);
      const snapshots = await Promise.all(ids.map(async (id) => frozen(repo, (await repo.start(startInput(id))).workflow)));
      calls.length = 0;

      const results = await Promise.all(snapshots.map((s) => repo.finalize(s, 'completed', `{"id":${JSON.stringify(s.corrId)}}`, 60_000)));

      expect(calls).toEqual([[256 * 4], [44 * 4]]);
      expect(results.every((r) => r !== null)).toBe(true);
      expect(results.map((r) => r?.startedMs)).toEqual(snapshots.map((s) => s.startedMs));
      expect(await repo.countActive()).toBe(0);
      const decisions = await Promise.all(ids.map((id) => redis.hget(repo.keys.forWorkflow(id).wf, 'decision')));
      expect(decisions).toEqual(ids.map((id) => `{"id":${JSON.stringify(id)}}`));
    } finally {
      await client.quit();
    }
  });
});
