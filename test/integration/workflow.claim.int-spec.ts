import type { Redis } from 'ioredis';
import { uniqueId, waitFor } from '../support/env.js';
import { isolatedRepository, scriptedRedis } from '../support/redis.js';
import { expectWithin, repositoriesOnOnePrefix, signalJson, startInput, timed } from './repository-fixtures.js';

/** `WorkflowRepository` against a real Redis: claim-3.lua, finish-2.lua, mark-published-3.lua, and their races. */
let redis: Redis;
let redis2: Redis;

beforeAll(() => {
  redis = scriptedRedis();
  redis2 = scriptedRedis();
});

afterAll(async () => {
  await Promise.all([redis.quit(), redis2.quit()]);
});

describe('claim (claim-3.lua)', () => {
  it('with the caller\'s current snapshot, returns that snapshot (small reply); with an outdated one, the current state', async () => {
    const repo = isolatedRepository(redis, 4);
    const current = uniqueId('claim-cur');
    await repo.start(startInput(current));
    const added = await repo.addSignal(current, 'momentum', signalJson('momentum', 0.7), 5_000);
    if (added.kind !== 'added') throw new Error(added.kind);
    const claimed = await repo.claim(current, 'tok', 10_000, added.workflow);
    expect(claimed).toEqual({ ...added.workflow, status: 'evaluating', claimKind: 'evaluate' });

    const outdated = uniqueId('claim-old');
    await repo.start(startInput(outdated));
    const first = await repo.addSignal(outdated, 'momentum', signalJson('momentum', 0.7), 5_000);
    if (first.kind !== 'added') throw new Error(first.kind);
    await repo.addSignal(outdated, 'risk', signalJson('risk', 0.8), 5_000);
    const fresh = await repo.claim(outdated, 'tok', 10_000, first.workflow);
    expect(fresh).toMatchObject({ status: 'evaluating', version: 2, signals: { momentum: signalJson('momentum', 0.7), risk: signalJson('risk', 0.8) } });
  });

  it('the first claim wins: evaluating, claim token stored, due entry moved to now + lease; a second claim gets null', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('claim');
    const started = await repo.start(startInput(corrId, { timeoutMs: 120_000 }));
    await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.7), 5_000);
    const k = repo.keys.forWorkflow(corrId);

    const { value: claimed, before, after } = await timed(() => repo.claim(corrId, 'token-A', 7_000));

    expect(claimed).not.toBeNull();
    expect(claimed).toMatchObject({
      corrId,
      status: 'evaluating',
      claimKind: 'evaluate',
      startedMs: started.workflow.startedMs,
      deadlineMs: started.workflow.deadlineMs,
      version: 1,
      signals: { momentum: signalJson('momentum', 0.7) },
    });
    expect(await redis.hmget(k.wf, 'status', 'claim', 'claim_kind', 'deadline')).toEqual([
      'evaluating',
      'token-A',
      'evaluate',
      String(started.workflow.deadlineMs),
    ]);
    const score = Number(await redis.zscore(k.deadlines, corrId));
    expectWithin(score, before + 7_000, after + 7_000);
    expect(score).toBeLessThan(started.workflow.deadlineMs - 60_000);

    const wfBefore = await redis.hgetall(k.wf);
    expect(await repo.claim(corrId, 'token-B', 60_000)).toBeNull();
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(score);
  });

  it('claiming an unknown or a finished workflow gets null and creates nothing', async () => {
    const repo = isolatedRepository(redis, 4);
    const missing = uniqueId('nowf');
    expect(await repo.claim(missing, 'tok', 10_000)).toBeNull();
    const k = repo.keys.forWorkflow(missing);
    expect(await redis.exists(k.wf, k.sig, k.deadlines)).toBe(0);

    const done = uniqueId('done');
    await repo.start(startInput(done));
    await repo.claim(done, 'tok', 10_000);
    expect(await repo.finish(done, 'tok', 'completed', '{"action":"trade"}', 10_000)).toBe(true);
    expect(await repo.claim(done, 'tok2', 10_000)).toBeNull();
    expect(await redis.hget(repo.keys.forWorkflow(done).wf, 'status')).toBe('completed');
  });

  it('RACE: 20 concurrent claims with their own tokens on one workflow: exactly one wins', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('race');
    await repo.start(startInput(corrId));
    const tokens = Array.from({ length: 20 }, (_, i) => `tok-${i}`);

    const results = await Promise.all(tokens.map((t) => repo.claim(corrId, t, 10_000)));

    const winners = tokens.filter((_, i) => results[i] !== null);
    expect(winners).toHaveLength(1);
    expect(await redis.hget(repo.keys.forWorkflow(corrId).wf, 'claim')).toBe(winners[0]);
  });

  it('RACE: concurrent claims over two connections, on 10 workflows: exactly one winner each', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const ids = Array.from({ length: 10 }, (_, i) => uniqueId(`race2-${i}`));
    await Promise.all(ids.map((id) => repoA.start(startInput(id))));

    const attempts = ids.flatMap((id) =>
      Array.from({ length: 20 }, (_, i) => {
        const token = `${id}/${i}`;
        const repo = i % 2 === 0 ? repoA : repoB;
        return repo.claim(id, token, 10_000).then((won) => ({ id, token, won: won !== null }));
      }),
    );
    const results = await Promise.all(attempts);

    for (const id of ids) {
      const winners = results.filter((r) => r.id === id && r.won);
      expect(winners).toHaveLength(1);
      expect(await redis.hget(repoA.keys.forWorkflow(id).wf, 'claim')).toBe(winners[0].token);
    }
  });
});

describe('finish (finish-2.lua)', () => {
  const decision = '{"corr_id":"x", "status":"completed","decision":{"action":"trade","note":"é ü ☃ \\"q\\""},"n":1.50}';

  it('with a wrong token it is refused and nothing changes', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('fin-wrong');
    await repo.start(startInput(corrId));
    await repo.claim(corrId, 'right', 10_000);
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    expect(await repo.finish(corrId, 'wrong', 'completed', decision, 60_000)).toBe(false);

    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
  });

  it('an unclaimed (open) or unknown workflow cannot be finished', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('fin-open');
    await repo.start(startInput(corrId));
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);

    expect(await repo.finish(corrId, '', 'completed', decision, 60_000)).toBe(false);
    expect(await repo.finish(corrId, 'any', 'completed', decision, 60_000)).toBe(false);
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);

    const missing = uniqueId('fin-missing');
    expect(await repo.finish(missing, 'any', 'completed', decision, 60_000)).toBe(false);
    expect(await redis.exists(repo.keys.forWorkflow(missing).wf)).toBe(0);
  });

  it('with the right token: final status, decision byte-for-byte, not published, due at now + lease; twice: the second is refused', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('fin');
    await repo.start(startInput(corrId, { timeoutMs: 300_000 }));
    await repo.claim(corrId, 'tok', 10_000);
    const k = repo.keys.forWorkflow(corrId);

    const { value: ok, before, after } = await timed(() => repo.finish(corrId, 'tok', 'completed', decision, 9_000));

    expect(ok).toBe(true);
    const stored = await redis.hgetall(k.wf);
    expect(stored.status).toBe('completed');
    expect(stored.decision).toBe(decision);
    expect(Buffer.compare(Buffer.from(stored.decision, 'utf8'), Buffer.from(decision, 'utf8'))).toBe(0);
    expect(stored.published).toBeUndefined(); // absent until mark-published
    expect(stored.claim).toBeUndefined();
    expectWithin(Number(stored.finished), before, after);
    const score = Number(await redis.zscore(k.deadlines, corrId));
    expectWithin(score, before + 9_000, after + 9_000);

    const inspected = (await repo.inspect(corrId)).workflow;
    expect(inspected).toMatchObject({ status: 'completed', decisionJson: decision, published: false, finishedMs: Number(stored.finished) });

    expect(await repo.finish(corrId, 'tok', 'failed', '{"other":true}', 60_000)).toBe(false);
    expect(await redis.hgetall(k.wf)).toEqual(stored);
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(score);
  });

  it.each(['timeout', 'failed'] as const)('records the final status %s', async (status) => {
    const repo = isolatedRepository(redis, 2);
    const corrId = uniqueId(`fin-${status}`);
    await repo.start(startInput(corrId));
    await repo.claim(corrId, 'tok', 10_000);
    expect(await repo.finish(corrId, 'tok', status, `{"status":"${status}"}`, 10_000)).toBe(true);
    expect(await redis.hmget(repo.keys.forWorkflow(corrId).wf, 'status', 'decision')).toEqual([status, `{"status":"${status}"}`]);
  });

  it('RACE: the sweeper re-claims an expired lease (token B); then the original claimer (A) cannot finish, B can', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('reclaim');
    await repo.start(startInput(corrId, { timeoutMs: 300_000 }));
    expect(await repo.claim(corrId, 'token-A', 50)).not.toBeNull();
    const k = repo.keys.forWorkflow(corrId);

    const job = await waitFor('the sweeper to re-claim the expired lease', async () => {
      const { jobs } = await repo.sweep(10, 60_000, 'token-B');
      return jobs.find((j) => j.workflow.corrId === corrId);
    });

    expect(job.kind).toBe('evaluate');
    expect(job.workflow).toMatchObject({ status: 'evaluating', claimKind: 'evaluate' });
    expect(await redis.hmget(k.wf, 'status', 'claim')).toEqual(['evaluating', 'token-B']);

    expect(await repo.finish(corrId, 'token-A', 'completed', '{"by":"A"}', 60_000)).toBe(false);
    expect(await redis.hget(k.wf, 'decision')).toBeNull();
    expect(await repo.finish(corrId, 'token-B', 'completed', '{"by":"B"}', 60_000)).toBe(true);
    expect(await redis.hmget(k.wf, 'status', 'decision')).toEqual(['completed', '{"by":"B"}']);
    expect(await repo.finish(corrId, 'token-A', 'completed', '{"by":"A"}', 60_000)).toBe(false);
    expect(await redis.hget(k.wf, 'decision')).toBe('{"by":"B"}');
  });

  it('RACE: many finishes with different tokens after a re-claim: only the current holder wins', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const corrId = uniqueId('finrace');
    await repoA.start(startInput(corrId));
    await repoA.claim(corrId, 'holder', 10_000);
    const tokens = ['holder', ...Array.from({ length: 19 }, (_, i) => `stale-${i}`)];

    const results = await Promise.all(
      tokens.map((t, i) => (i % 2 === 0 ? repoA : repoB).finish(corrId, t, 'completed', `{"by":"${t}"}`, 10_000)),
    );

    expect(results.filter(Boolean)).toHaveLength(1);
    expect(results[0]).toBe(true);
    expect(await redis.hget(repoA.keys.forWorkflow(corrId).wf, 'decision')).toBe('{"by":"holder"}');
  });
});

describe('markPublished (mark-published-3.lua)', () => {
  it('the first call returns started/finished, marks published, leaves the due index, sets the retention TTL; the second returns null', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('pub');
    const started = await repo.start(startInput(corrId));
    await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), 5_000);
    await repo.claim(corrId, 'tok', 10_000);
    await repo.finish(corrId, 'tok', 'completed', '{"action":"trade"}', 10_000);
    const k = repo.keys.forWorkflow(corrId);
    const finished = Number(await redis.hget(k.wf, 'finished'));

    const { value: marked, before, after } = await timed(() => repo.markPublished(corrId, 3_600_000));

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

    expect(await repo.markPublished(corrId, 10)).toBeNull();
    expect(await redis.hgetall(k.wf)).toEqual(stored);
    expect(await redis.pttl(k.wf)).toBeGreaterThan(3_000_000);
  });

  it('on an open, an evaluating or an unknown workflow it returns null and changes nothing', async () => {
    const repo = isolatedRepository(redis, 4);
    const open = uniqueId('pub-open');
    const evaluating = uniqueId('pub-eval');
    await repo.start(startInput(open));
    await repo.start(startInput(evaluating));
    await repo.claim(evaluating, 'tok', 10_000);

    for (const corrId of [open, evaluating]) {
      const k = repo.keys.forWorkflow(corrId);
      const wfBefore = await redis.hgetall(k.wf);
      const scoreBefore = await redis.zscore(k.deadlines, corrId);
      expect(await repo.markPublished(corrId, 60_000)).toBeNull();
      expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
      expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
      expect(await redis.pttl(k.wf)).toBe(-1);
    }
    const missing = uniqueId('pub-missing');
    expect(await repo.markPublished(missing, 60_000)).toBeNull();
    expect(await redis.exists(repo.keys.forWorkflow(missing).wf)).toBe(0);
  });

  it('RACE: concurrent markPublished over two connections: exactly one gets the times', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const corrId = uniqueId('pubrace');
    await repoA.start(startInput(corrId));
    await repoA.claim(corrId, 'tok', 10_000);
    await repoA.finish(corrId, 'tok', 'completed', '{"action":"trade"}', 10_000);

    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? repoA : repoB).markPublished(corrId, 60_000)));

    expect(results.filter((r) => r !== null)).toHaveLength(1);
  });
});
