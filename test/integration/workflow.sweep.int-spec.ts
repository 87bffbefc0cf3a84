import type { Redis } from 'ioredis';
import { uniqueId, waitFor } from '../support/env.js';
import { isolatedRepository, scriptedRedis } from '../support/redis.js';
import type { SweepJob, WorkflowRepository } from '../../src/workflow/workflow.repository.js';
import {
  corrIdsInShard,
  expectWithin,
  repositoriesOnOnePrefix,
  signalJson,
  startInput,
  timed,
  totalDeadlines,
} from './repository-fixtures.js';

/** `WorkflowRepository` against a real Redis: sweep-1.lua and reap-early-1.lua. */
let redis: Redis;
let redis2: Redis;

beforeAll(() => {
  redis = scriptedRedis();
  redis2 = scriptedRedis();
});

afterAll(async () => {
  await Promise.all([redis.quit(), redis2.quit()]);
});

/** Waits until `corrId`'s due entry is in the past (Redis clock = this host's clock). */
async function waitUntilDue(repo: WorkflowRepository, corrIds: string[]): Promise<void> {
  await waitFor('due entries to be in the past', async () => {
    for (const id of corrIds) {
      const k = repo.keys.forWorkflow(id);
      const score = await redis.zscore(k.deadlines, id);
      if (score === null || Number(score) >= Date.now() - 5) return false;
    }
    return true;
  });
}

function jobFor(jobs: SweepJob[], corrId: string): SweepJob | undefined {
  return jobs.find((j) => j.workflow.corrId === corrId);
}

describe('sweep (sweep-1.lua)', () => {
  it('times out an open workflow past its deadline (claimed, full snapshot); one with a far deadline is not touched', async () => {
    const repo = isolatedRepository(redis, 4);
    const due = uniqueId('due');
    const far = uniqueId('far');
    const started = await repo.start(startInput(due, { timeoutMs: 30 }));
    const added = await repo.addSignal(due, 'momentum', signalJson('momentum', 0.6), 5_000);
    if (added.kind !== 'added') throw new Error(added.kind);
    await repo.start(startInput(far, { timeoutMs: 600_000 }));
    const kFar = repo.keys.forWorkflow(far);
    const farBefore = await redis.hgetall(kFar.wf);
    const farScore = await redis.zscore(kFar.deadlines, far);
    await waitUntilDue(repo, [due]);

    const { value: result, before, after } = await timed(() => repo.sweep(100, 20_000, 'sweep-T'));

    expect(result.jobs).toHaveLength(1);
    const job = result.jobs[0];
    expect(job.kind).toBe('timeout');
    expect(job.workflow).toEqual({
      ...started.workflow,
      status: 'evaluating',
      version: 1,
      signals: { momentum: signalJson('momentum', 0.6) },
    });
    const k = repo.keys.forWorkflow(due);
    expect(await redis.hmget(k.wf, 'status', 'claim')).toEqual(['evaluating', 'sweep-T']);
    expectWithin(Number(await redis.zscore(k.deadlines, due)), before + 20_000, after + 20_000);
    expect(await redis.hgetall(kFar.wf)).toEqual(farBefore);
    expect(await redis.zscore(kFar.deadlines, far)).toBe(farScore);
    expect(result.remaining).toBe(2);
    expect(result.full).toBe(false);

    // Leased: a second sweep right away does not return it again, nor can a signal's handler record a decision on it.
    const again = await repo.sweep(100, 20_000, 'sweep-U');
    expect(again.jobs).toEqual([]);
    expect(again.remaining).toBe(2);
    expect(await redis.hget(k.wf, 'claim')).toBe('sweep-T');
    expect(await repo.record(added.workflow, 'completed', '{"action":"trade"}', 10_000)).toEqual({ kind: 'closed', status: 'evaluating' });
    expect(await redis.hmget(k.wf, 'status', 'claim', 'decision')).toEqual(['evaluating', 'sweep-T', null]);
    // The sweeper's token finishes it.
    expect(await repo.finish(due, 'sweep-T', 'timeout', '{"action":"timeout"}', 10_000)).toBe(true);
  });

  it('a timeout claim whose lease expired (claimer died) comes back as timeout, under the new token; the old token cannot finish', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('retimeout');
    await repo.start(startInput(corrId, { timeoutMs: 30 }));
    await waitUntilDue(repo, [corrId]);
    const first = await repo.sweep(100, 50, 'sweep-1');
    expect(first.jobs.map((j) => [j.kind, j.workflow.corrId])).toEqual([['timeout', corrId]]);

    const job = await waitFor('the expired timeout claim to come back', async () => jobFor((await repo.sweep(100, 60_000, 'sweep-2')).jobs, corrId));

    expect(job.kind).toBe('timeout');
    expect(job.workflow.status).toBe('evaluating');
    const k = repo.keys.forWorkflow(corrId);
    expect(await redis.hmget(k.wf, 'status', 'claim')).toEqual(['evaluating', 'sweep-2']);
    expect(await repo.finish(corrId, 'sweep-1', 'timeout', '{"by":1}', 10_000)).toBe(false);
    expect(await redis.hmget(k.wf, 'status', 'claim', 'decision')).toEqual(['evaluating', 'sweep-2', null]);
    expect(await repo.finish(corrId, 'sweep-2', 'timeout', '{"by":2}', 10_000)).toBe(true);
    expect(await redis.hmget(k.wf, 'status', 'decision')).toEqual(['timeout', '{"by":2}']);
  });

  it('a recorded but unpublished workflow whose lease expired is a publish job (decision unchanged, not claimed)', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('publish');
    const started = await repo.start(startInput(corrId, { timeoutMs: 300_000 }));
    expect(await repo.record(started.workflow, 'completed', '{"action":"trade","x":1}', 50)).toEqual({ kind: 'recorded' });
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);
    await waitUntilDue(repo, [corrId]);

    const { value: result, before, after } = await timed(() => repo.sweep(100, 30_000, 'sweep-P'));

    const job = jobFor(result.jobs, corrId);
    expect(job?.kind).toBe('publish');
    expect(job?.workflow).toMatchObject({ status: 'completed', decisionJson: '{"action":"trade","x":1}', published: false });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expectWithin(Number(await redis.zscore(k.deadlines, corrId)), before + 30_000, after + 30_000);
    expect((await repo.sweep(100, 30_000, 'sweep-Q')).jobs).toEqual([]);

    expect(await repo.markPublished(corrId, 60_000)).not.toBeNull();
    expect(await repo.countActive()).toBe(0);
  });

  it('removes due entries whose workflow is gone or already published; re-scores an open one to its deadline', async () => {
    const repo = isolatedRepository(redis, 1);
    const gone = uniqueId('gone');
    const published = uniqueId('published');
    const early = uniqueId('notyet');
    await repo.start(startInput(gone, { timeoutMs: 30 }));
    await repo.addSignal(gone, 'risk', signalJson('risk', 0.5), 5_000);
    const publishedStart = await repo.start(startInput(published));
    expect(await repo.record(publishedStart.workflow, 'completed', '{}', 10_000)).toEqual({ kind: 'recorded' });
    expect(await repo.markPublished(published, 60_000)).not.toBeNull();
    const notYet = await repo.start(startInput(early, { timeoutMs: 600_000 }));
    const deadlines = repo.keys.deadlines(0);
    await redis.del(repo.keys.forWorkflow(gone).wf);
    // Stale or early entries (an operator's hand, or a crash between writes).
    await redis.zadd(deadlines, 1, published, 1, early);
    await waitUntilDue(repo, [gone]);

    const result = await repo.sweep(100, 10_000, 'sweep-S');

    expect(result.jobs).toEqual([]);
    expect(await redis.zscore(deadlines, gone)).toBeNull();
    expect(await redis.zscore(deadlines, published)).toBeNull();
    expect(Number(await redis.zscore(deadlines, early))).toBe(notYet.workflow.deadlineMs);
    expect(await redis.hget(repo.keys.forWorkflow(early).wf, 'status')).toBe('in_progress');
    expect(result.remaining).toBe(1);
    expect(await redis.zcard(deadlines)).toBe(1);
  });

  it('`remaining` is the total ZCARD over shards after the step (= countActive)', async () => {
    const repo = isolatedRepository(redis, 4);
    const ids = Array.from({ length: 12 }, (_, i) => uniqueId(`rem${i}`));
    const started = await Promise.all(ids.map((id, i) => repo.start(startInput(id, { timeoutMs: i < 5 ? 20 : 600_000 }))));
    // Two recorded and published: out of the index.
    for (const s of started.slice(10)) {
      expect(await repo.record(s.workflow, 'completed', '{}', 10_000)).toEqual({ kind: 'recorded' });
      expect(await repo.markPublished(s.workflow.corrId, 60_000)).not.toBeNull();
    }
    await waitUntilDue(repo, ids.slice(0, 5));

    const result = await repo.sweep(100, 10_000, 'sweep-R');

    expect(result.jobs.map((j) => j.workflow.corrId).sort()).toEqual(ids.slice(0, 5).sort());
    expect(result.jobs.every((j) => j.kind === 'timeout')).toBe(true);
    expect(result.remaining).toBe(10);
    expect(result.remaining).toBe(await totalDeadlines(redis, repo));
    expect(result.remaining).toBe(await repo.countActive());
  });

  it('`full` is true when one shard had >= limit due, per shard (not summed over shards)', async () => {
    const repo = isolatedRepository(redis, 4);
    const limit = 3;
    // Two due per shard: 8 due in total, but no shard has a full batch.
    const spread = [0, 1, 2, 3].flatMap((shard) => corrIdsInShard(repo, shard, 2));
    await Promise.all(spread.map((id) => repo.start(startInput(id, { timeoutMs: 20 }))));
    await waitUntilDue(repo, spread);

    const first = await repo.sweep(limit, 60_000, 'sweep-F1');
    expect(first.jobs).toHaveLength(8);
    expect(first.full).toBe(false);

    // Five due in shard 2: the first step takes `limit` of them and reports full; the next takes the rest.
    const crowded = corrIdsInShard(repo, 2, 5);
    await Promise.all(crowded.map((id) => repo.start(startInput(id, { timeoutMs: 20 }))));
    await waitUntilDue(repo, crowded);

    const second = await repo.sweep(limit, 60_000, 'sweep-F2');
    expect(second.jobs).toHaveLength(limit);
    expect(second.full).toBe(true);
    const third = await repo.sweep(limit, 60_000, 'sweep-F3');
    expect(third.jobs).toHaveLength(2);
    expect(third.full).toBe(false);
    expect([...second.jobs, ...third.jobs].map((j) => j.workflow.corrId).sort()).toEqual([...crowded].sort());
    expect((await repo.sweep(limit, 60_000, 'sweep-F4')).jobs).toEqual([]);
  });

  it('`full` counts the due entries read, not only the jobs: a batch of stale entries still says "more due"', async () => {
    const repo = isolatedRepository(redis, 1);
    const limit = 3;
    const real = [uniqueId('after-stale-1'), uniqueId('after-stale-2')];
    await Promise.all(real.map((id) => repo.start(startInput(id, { timeoutMs: 20 }))));
    // Entries without a workflow (deleted keys), due before the real ones.
    await redis.zadd(repo.keys.deadlines(0), 1, 'stale-1', 2, 'stale-2', 3, 'stale-3');
    await waitUntilDue(repo, real);

    const first = await repo.sweep(limit, 60_000, 'sweep-S1');
    expect(first.jobs).toEqual([]);
    expect(first.full).toBe(true);
    expect(first.remaining).toBe(2);

    const second = await repo.sweep(limit, 60_000, 'sweep-S2');
    expect(second.jobs.map((j) => j.workflow.corrId).sort()).toEqual([...real].sort());
    expect(second.full).toBe(false);
  });

  it('RACE: two concurrent sweepers (two connections) over 200 due workflows: each workflow returned exactly once', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const ids = Array.from({ length: 200 }, (_, i) => `${uniqueId('swrace')}-${i}`);
    await Promise.all(ids.map((id) => repoA.start(startInput(id, { timeoutMs: 20 }))));
    await waitUntilDue(repoA, ids);

    async function drain(repo: WorkflowRepository, token: string): Promise<SweepJob[]> {
      const all: SweepJob[] = [];
      for (;;) {
        const { jobs } = await repo.sweep(7, 60_000, token);
        if (jobs.length === 0) return all;
        all.push(...jobs);
      }
    }
    // Three sweepers: two on one connection, one on another, each looping until nothing is due.
    const sweepers = [
      { repo: repoA, token: 'sweeper-A' },
      { repo: repoB, token: 'sweeper-B' },
      { repo: repoA, token: 'sweeper-C' },
    ];
    const results = await Promise.all(sweepers.map((s) => drain(s.repo, s.token)));

    const holderOf = new Map<string, string>();
    const returned: string[] = [];
    results.forEach((jobs, i) => {
      for (const job of jobs) {
        returned.push(job.workflow.corrId);
        holderOf.set(job.workflow.corrId, sweepers[i].token);
        expect(job.kind).toBe('timeout');
        expect(job.workflow.status).toBe('evaluating');
      }
    });
    expect(returned).toHaveLength(200);
    expect(new Set(returned).size).toBe(200);
    expect([...returned].sort()).toEqual([...ids].sort());
    // Each one is held by the sweeper that returned it.
    const holders = await Promise.all(ids.map((id) => redis.hget(repoA.keys.forWorkflow(id).wf, 'claim')));
    ids.forEach((id, i) => expect(holders[i]).toBe(holderOf.get(id)));
  });
});

describe('reapEarly (reap-early-1.lua)', () => {
  it('deletes a buffer past its grace and counts its signals; a fresh buffer is not touched', async () => {
    const repo = isolatedRepository(redis, 4);
    const stale = uniqueId('stale');
    const fresh = uniqueId('fresh');
    await repo.addSignal(stale, 'momentum', signalJson('momentum', 0.5), 50);
    await repo.addSignal(stale, 'risk', signalJson('risk', 0.5), 50);
    await repo.addSignal(fresh, 'risk', signalJson('risk', 0.7), 600_000);
    const ks = repo.keys.forWorkflow(stale);
    const kf = repo.keys.forWorkflow(fresh);
    const freshScore = await redis.zscore(kf.earlyDue, fresh);
    await waitFor('the stale buffer to be due', async () => Number(await redis.zscore(ks.earlyDue, stale)) < Date.now() - 5);

    expect(await repo.reapEarly(100)).toEqual({ buffers: 1, signals: 2 });

    expect(await redis.exists(ks.early)).toBe(0);
    expect(await redis.zscore(ks.earlyDue, stale)).toBeNull();
    expect(await redis.hgetall(kf.early)).toEqual({ risk: signalJson('risk', 0.7) });
    expect(await redis.zscore(kf.earlyDue, fresh)).toBe(freshScore);
    expect(await repo.reapEarly(100)).toEqual({ buffers: 0, signals: 0 });

    // The trigger coming afterwards finds nothing to apply.
    const started = await repo.start(startInput(stale));
    expect(started.kind === 'started' && started.earlyCount).toBe(0);
    expect(started.workflow.status).toBe('in_progress');
    expect(started.workflow.signals).toEqual({});
  });

  it('takes at most `limit` buffers per shard per call', async () => {
    const repo = isolatedRepository(redis, 2);
    const ids = corrIdsInShard(repo, 1, 3);
    for (const id of ids) await repo.addSignal(id, 'risk', signalJson('risk', 0.5), 20);
    await waitFor('the buffers to be due', async () => {
      const scores = await Promise.all(ids.map((id) => redis.zscore(repo.keys.earlyDue(1), id)));
      return scores.every((s) => Number(s) < Date.now() - 5);
    });

    expect(await repo.reapEarly(2)).toEqual({ buffers: 2, signals: 2 });
    expect(await redis.zcard(repo.keys.earlyDue(1))).toBe(1);
    expect(await repo.reapEarly(2)).toEqual({ buffers: 1, signals: 1 });
    expect(await redis.exists(...ids.map((id) => repo.keys.forWorkflow(id).early))).toBe(0);
  });
});

describe('script cache loss (a Redis restart: SCRIPT FLUSH)', () => {
  it('every script still runs, on the client and in the sweep/reap pipelines (EVALSHA falls back to EVAL)', async () => {
    const repo = isolatedRepository(redis, 2);
    const corrId = uniqueId('flush');
    const started = await repo.start(startInput(corrId, { timeoutMs: 20 }));
    await repo.addSignal(uniqueId('flush-early'), 'risk', signalJson('risk', 0.5), 20);
    await waitUntilDue(repo, [corrId]);

    await redis.script('FLUSH');

    expect((await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.5), 5_000)).kind).toBe('added');
    await redis.script('FLUSH');
    // The start's snapshot is outdated by that signal: refused, with the current one.
    const outdated = await repo.record(started.workflow, 'completed', '{}', 1_000);
    expect(outdated.kind === 'outdated' && outdated.workflow.version).toBe(1);
    await redis.script('FLUSH');
    const { jobs } = await repo.sweep(10, 60_000, 'after-flush');
    expect(jobs.map((j) => [j.kind, j.workflow.corrId])).toEqual([['timeout', corrId]]);
    await redis.script('FLUSH');
    await waitFor('the early buffer to be reaped', async () => (await repo.reapEarly(10)).buffers === 1);
    await redis.script('FLUSH');
    expect(await repo.finish(corrId, 'after-flush', 'timeout', '{}', 10_000)).toBe(true);
    await redis.script('FLUSH');
    expect(await repo.markPublished(corrId, 60_000)).not.toBeNull();
    await redis.script('FLUSH');
    expect((await repo.start(startInput(corrId))).kind).toBe('duplicate');
    await redis.script('FLUSH');
    expect(await repo.record(started.workflow, 'completed', '{}', 1_000)).toEqual({ kind: 'closed', status: 'timeout' });
  });
});
