import type { Redis } from 'ioredis';
import { uniqueId, waitFor } from '../support/env.js';
import { isolatedRepository, useScriptedPair } from '../support/redis.js';
import type { StoredWorkflow, SweepJob, WorkflowRepository } from '../../src/workflow/workflow.repository.js';
import {
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
  totalDeadlines,
} from './repository-fixtures.js';

/** `WorkflowRepository` against a real Redis: sweep-1.lua, rest-2.lua and reap-early-1.lua. */
let redis: Redis;
let redis2: Redis;
useScriptedPair((a, b) => ([redis, redis2] = [a, b]));

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
  it('times out an open workflow past its deadline (frozen with why timeout, full snapshot); one with a far deadline is not touched', async () => {
    const repo = isolatedRepository(redis, 4);
    const due = uniqueId('due');
    const far = uniqueId('far');
    const started = await repo.start(startInput(due, { timeoutMs: 30 }));
    const added = snapshotOf(await repo.addSignal(due, 'momentum', signalJson('momentum', 0.6), signalOptions(5_000)));
    await repo.start(startInput(far, { timeoutMs: 600_000 }));
    const kFar = repo.keys.forWorkflow(far);
    const farBefore = await redis.hgetall(kFar.wf);
    const farScore = await redis.zscore(kFar.deadlines, far);
    await waitUntilDue(repo, [due]);

    const { value: result, before, after } = await timed(() => repo.sweep(100, 20_000));

    expect(result.jobs).toHaveLength(1);
    const job = result.jobs[0];
    expect(job.kind).toBe('timeout');
    expect(job.workflow).toEqual({
      ...started.workflow,
      status: 'evaluating',
      version: 1,
      why: 'timeout',
      frozenMs: job.workflow.frozenMs,
      signals: { momentum: signalJson('momentum', 0.6) },
    });
    // Frozen at its shard's step (redisNowMs is the last shard's clock: the same or a little later).
    const frozenAt = job.workflow.frozenMs ?? NaN;
    expectWithin(frozenAt, before, after);
    expect(frozenAt).toBeLessThanOrEqual(result.redisNowMs);
    const k = repo.keys.forWorkflow(due);
    expect(await redis.hmget(k.wf, 'status', 'why', 'frozen', 'by')).toEqual(['evaluating', 'timeout', String(frozenAt), null]);
    expect(Number(await redis.zscore(k.deadlines, due))).toBe(frozenAt + 20_000);
    expect(await redis.hgetall(kFar.wf)).toEqual(farBefore);
    expect(await redis.zscore(kFar.deadlines, far)).toBe(farScore);
    expect(result.remaining).toBe(2);
    expect(result.full).toBe(false);
    expect(result.broken).toEqual([]);
    expect(result.errors).toEqual([]);
    expectWithin(result.redisNowMs, before, after);

    // Leased: a second sweep right away does not return it again, nor can a signal's handler freeze it.
    const again = await repo.sweep(100, 20_000);
    expect(again.jobs).toEqual([]);
    expect(again.remaining).toBe(2);
    expect(await repo.freeze(added, 'decide', 10_000)).toEqual({ kind: 'closed', status: 'evaluating' });
    expect(await redis.hmget(k.wf, 'status', 'why', 'decision')).toEqual(['evaluating', 'timeout', null]);
    expect(await repo.finalize(job.workflow, 'timeout', '{"action":"timeout"}', 60_000)).not.toBeNull();
    expect(await redis.zscore(k.deadlines, due)).toBeNull();
  });

  it('a timeout freeze whose lease expired comes back as timeout (same snapshot); the slow first claimant still finalises it, the second gets null', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('retimeout');
    await repo.start(startInput(corrId, { timeoutMs: 30 }));
    await waitUntilDue(repo, [corrId]);
    const first = await repo.sweep(100, 50);
    expect(first.jobs.map((j) => [j.kind, j.workflow.corrId])).toEqual([['timeout', corrId]]);

    const job = await waitFor('the expired timeout claim to come back', async () => jobFor((await repo.sweep(100, 60_000)).jobs, corrId));

    expect(job.kind).toBe('timeout');
    expect(job.workflow).toEqual(first.jobs[0].workflow);
    const k = repo.keys.forWorkflow(corrId);
    expect(await redis.hget(k.wf, 'status')).toBe('evaluating');
    // Not frozen again: the first freeze's time stays (the age of the decision counts from it).
    expect(await redis.hget(k.wf, 'frozen')).toBe(String(first.jobs[0].workflow.frozenMs));
    expect(await repo.finalize(first.jobs[0].workflow, 'timeout', '{"by":1}', 60_000)).not.toBeNull();
    expect(await repo.finalize(job.workflow, 'timeout', '{"by":2}', 60_000)).toBeNull();
    expect(await redis.hmget(k.wf, 'status', 'decision')).toEqual(['timeout', '{"by":1}']);
  });

  it('a decision an older version recorded and did not publish, due: a publish job (decision unchanged, not frozen); finalize marks it published', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('publish');
    const started = await repo.start(startInput(corrId, { timeoutMs: 300_000 }));
    await recordLegacy(redis, repo, corrId, 'completed', '{"action":"trade","x":1}', Date.now() + 50);
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);
    await waitUntilDue(repo, [corrId]);

    const { value: result, before, after } = await timed(() => repo.sweep(100, 30_000));

    const job = jobFor(result.jobs, corrId);
    expect(job?.kind).toBe('publish');
    expect(job?.workflow).toMatchObject({ status: 'completed', decisionJson: '{"action":"trade","x":1}', published: false, why: null });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expectWithin(Number(await redis.zscore(k.deadlines, corrId)), before + 30_000, after + 30_000);
    expect((await repo.sweep(100, 30_000)).jobs).toEqual([]);

    expect(await repo.finalize(job?.workflow ?? started.workflow, 'completed', '{"action":"trade","x":1}', 60_000)).not.toBeNull();
    expect(await redis.hget(k.wf, 'published')).toBe('1');
    expect(await repo.countActive()).toBe(0);
  });

  it('removes due entries whose workflow is gone or already published; an open one due before its deadline is a check job (not claimed)', async () => {
    const repo = isolatedRepository(redis, 1);
    const gone = uniqueId('gone');
    const published = uniqueId('published');
    const early = uniqueId('notyet');
    await repo.start(startInput(gone, { timeoutMs: 30 }));
    await repo.addSignal(gone, 'risk', signalJson('risk', 0.5), signalOptions(5_000));
    const publishedStart = await repo.start(startInput(published));
    await decided(repo, publishedStart.workflow, '{}');
    const notYet = await repo.start(startInput(early, { timeoutMs: 600_000 }));
    const deadlines = repo.keys.deadlines(0);
    await redis.del(repo.keys.forWorkflow(gone).wf);
    // Stale or early entries (an operator's hand, or a crash between writes).
    await redis.zadd(deadlines, 1, published, 1, early);
    await waitUntilDue(repo, [gone]);

    const { value: result, before, after } = await timed(() => repo.sweep(100, 10_000));

    expect(result.jobs).toEqual([{ kind: 'check', workflow: notYet.workflow, sweptMs: result.redisNowMs }]);
    expect(await redis.zscore(deadlines, gone)).toBeNull();
    expect(await redis.zscore(deadlines, published)).toBeNull();
    expectWithin(Number(await redis.zscore(deadlines, early)), before + 10_000, after + 10_000);
    expect(await redis.hget(repo.keys.forWorkflow(early).wf, 'status')).toBe('in_progress');
    expect(result.remaining).toBe(1);
    expect(await redis.zcard(deadlines)).toBe(1);
  });

  it('`remaining` is the total ZCARD over shards after the step (= countActive)', async () => {
    const repo = isolatedRepository(redis, 4);
    const ids = Array.from({ length: 12 }, (_, i) => uniqueId(`rem${i}`));
    const started = await Promise.all(ids.map((id, i) => repo.start(startInput(id, { timeoutMs: i < 5 ? 20 : 600_000 }))));
    // Two decided and finalised: out of the index.
    for (const s of started.slice(10)) await decided(repo, s.workflow, '{}');
    await waitUntilDue(repo, ids.slice(0, 5));

    const result = await repo.sweep(100, 10_000);

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

    const first = await repo.sweep(limit, 60_000);
    expect(first.jobs).toHaveLength(8);
    expect(first.full).toBe(false);

    // Five due in shard 2: the first step takes `limit` of them and reports full; the next takes the rest.
    const crowded = corrIdsInShard(repo, 2, 5);
    await Promise.all(crowded.map((id) => repo.start(startInput(id, { timeoutMs: 20 }))));
    await waitUntilDue(repo, crowded);

    const second = await repo.sweep(limit, 60_000);
    expect(second.jobs).toHaveLength(limit);
    expect(second.full).toBe(true);
    const third = await repo.sweep(limit, 60_000);
    expect(third.jobs).toHaveLength(2);
    expect(third.full).toBe(false);
    expect([...second.jobs, ...third.jobs].map((j) => j.workflow.corrId).sort()).toEqual([...crowded].sort());
    expect((await repo.sweep(limit, 60_000)).jobs).toEqual([]);
  });

  it('`full` counts the due entries read, not only the jobs: a batch of stale entries still says "more due"', async () => {
    const repo = isolatedRepository(redis, 1);
    const limit = 3;
    const real = [uniqueId('after-stale-1'), uniqueId('after-stale-2')];
    await Promise.all(real.map((id) => repo.start(startInput(id, { timeoutMs: 20 }))));
    // Entries without a workflow (deleted keys), due before the real ones.
    await redis.zadd(repo.keys.deadlines(0), 1, 'stale-1', 2, 'stale-2', 3, 'stale-3');
    await waitUntilDue(repo, real);

    const first = await repo.sweep(limit, 60_000);
    expect(first.jobs).toEqual([]);
    expect(first.full).toBe(true);
    expect(first.remaining).toBe(2);

    const second = await repo.sweep(limit, 60_000);
    expect(second.jobs.map((j) => j.workflow.corrId).sort()).toEqual([...real].sort());
    expect(second.full).toBe(false);
  });

  it('RACE: two concurrent sweepers (two connections) over 200 due workflows: each workflow returned exactly once', async () => {
    const [repoA, repoB] = repositoriesOnOnePrefix([redis, redis2], 4);
    const ids = Array.from({ length: 200 }, (_, i) => `${uniqueId('swrace')}-${i}`);
    await Promise.all(ids.map((id) => repoA.start(startInput(id, { timeoutMs: 20 }))));
    await waitUntilDue(repoA, ids);

    async function drain(repo: WorkflowRepository): Promise<SweepJob[]> {
      const all: SweepJob[] = [];
      for (;;) {
        const { jobs } = await repo.sweep(7, 60_000);
        if (jobs.length === 0) return all;
        all.push(...jobs);
      }
    }
    // Three sweepers: two on one connection, one on another, each looping until nothing is due.
    const results = await Promise.all([drain(repoA), drain(repoB), drain(repoA)]);

    const returned: string[] = [];
    for (const jobs of results) {
      for (const job of jobs) {
        returned.push(job.workflow.corrId);
        expect(job.kind).toBe('timeout');
        expect(job.workflow.status).toBe('evaluating');
      }
    }
    expect(returned).toHaveLength(200);
    expect(new Set(returned).size).toBe(200);
    expect([...returned].sort()).toEqual([...ids].sort());
    const statuses = await Promise.all(ids.map((id) => redis.hget(repoA.keys.forWorkflow(id).wf, 'status')));
    expect(new Set(statuses)).toEqual(new Set(['evaluating']));
  });
});

describe('frozen workflows whose lease ran out (sweep-1.lua)', () => {
  it.each(['decide (canDecide, freeze-3.lua)', 'decide (its rule, add-signals-2.lua)', 'decide (its rule, at the start)', 'cancel', 'force'] as const)(
    'frozen for %s, its decider gone: handed back as a job of that kind, same snapshot, not frozen again, leased again',
    async (how) => {
      // One shard: the sweep's redisNowMs is then the clock of the step that leased it.
      const repo = isolatedRepository(redis, 1);
      const corrId = uniqueId('lease');
      const k = repo.keys.forWorkflow(corrId);
      const rule = how.includes('rule') ? '0|risk|' : null;
      if (how.includes('at the start')) await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(10_000));
      const started = await repo.start(startInput(corrId, { timeoutMs: 300_000, readyRule: rule, leaseMs: 30 }));
      let frozenWf: StoredWorkflow;
      if (how.includes('at the start')) {
        if (started.kind !== 'started' || started.next !== 'decide') throw new Error(JSON.stringify(started));
        frozenWf = started.workflow;
      } else if (how.includes('add-signal')) {
        frozenWf = snapshotOf(await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(5_000, { leaseMs: 30 })), 'ready');
      } else {
        const added = snapshotOf(await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(5_000)));
        const result = how === 'cancel' || how === 'force' ? await repo.freeze({ corrId }, how, 30, 'ops-token') : await repo.freeze(added, 'decide', 30);
        if (result.kind !== 'frozen') throw new Error(result.kind);
        frozenWf = result.workflow;
      }
      const kind = how.split(' ')[0];
      expect(frozenWf).toEqual((await repo.inspect(corrId)).workflow);
      expect(frozenWf.why).toBe(kind);
      const wfBefore = await redis.hgetall(k.wf);
      await waitUntilDue(repo, [corrId]);

      const result = await repo.sweep(100, 20_000);

      expect(result.jobs).toEqual([{ kind, workflow: frozenWf, sweptMs: expect.any(Number) }]);
      expect(frozenWf.frozenBy).toBe(kind === 'cancel' || kind === 'force' ? 'ops-token' : null);
      expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
      expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(result.redisNowMs + 20_000);
      expect((await repo.sweep(100, 20_000)).jobs).toEqual([]);
      expect(await repo.finalize(result.jobs[0].workflow, kind === 'cancel' ? 'cancelled' : 'completed', '{}', 60_000)).not.toBeNull();
      expect(await redis.zscore(k.deadlines, corrId)).toBeNull();
    },
  );

  it('a workflow an older version claimed for its timeout (evaluating, no `why`): a timeout job', async () => {
    const repo = isolatedRepository(redis, 2);
    const corrId = uniqueId('lease-old');
    const k = repo.keys.forWorkflow(corrId);
    await repo.start(startInput(corrId, { timeoutMs: 300_000 }));
    // What sweep-1.lua of the older version left: status evaluating, nothing else, due at its lease.
    await redis.hset(k.wf, 'status', 'evaluating');
    await redis.zadd(k.deadlines, Date.now() - 1, corrId);

    const { jobs } = await repo.sweep(100, 20_000);

    expect(jobs.map((j) => [j.kind, j.workflow.corrId, j.workflow.why, j.workflow.frozenMs])).toEqual([['timeout', corrId, 'timeout', null]]);
    expect(await redis.hmget(k.wf, 'status', 'why')).toEqual(['evaluating', null]);
    expect(await repo.finalize(jobs[0].workflow, 'timeout', '{"action":"timeout"}', 60_000)).not.toBeNull();
    expect(await redis.hmget(k.wf, 'status', 'published')).toEqual(['timeout', '1']);
  });

  it('a workflow with a rule is never a check job: its signals leave it due at its deadline, where it times out', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rule-nocheck');
    const k = repo.keys.forWorkflow(corrId);
    // A deadline 3 s out: the sweep below must come before it (with 400 ms, a loaded machine could get there
    // after the deadline, and the workflow is then rightly timed out).
    const started = await repo.start(startInput(corrId, { timeoutMs: 3_000, readyRule: '0|momentum,risk|' }));
    expect(await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(5_000, { checkMs: 10 }))).toEqual({
      kind: 'added',
      workflow: null,
      nowMs: expect.any(Number),
    });
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(started.workflow.deadlineMs);
    await sleep(50); // past the check delay given
    const before = await repo.sweep(100, 20_000);
    expect(before.redisNowMs).toBeLessThan(started.workflow.deadlineMs); // the sweep came before the deadline
    expect(before.jobs).toEqual([]);

    await waitUntilDue(repo, [corrId]);
    const { jobs } = await repo.sweep(100, 20_000);

    expect(jobs.map((j) => [j.kind, j.workflow.corrId, j.workflow.hasRule])).toEqual([['timeout', corrId, true]]);
    expect(await redis.hmget(k.wf, 'status', 'why')).toEqual(['evaluating', 'timeout']);
  });
});

describe('check jobs (sweep-1.lua) and rest (rest-2.lua)', () => {
  /** An open workflow with one stored signal whose check entry (now + checkMs) is due by now. */
  async function checkDue(repo: WorkflowRepository, prefix: string, timeoutMs = 300_000): Promise<StoredWorkflow> {
    const corrId = uniqueId(prefix);
    await repo.start(startInput(corrId, { timeoutMs }));
    const { value: added, before, after } = await timed(() => repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(5_000, { checkMs: 30 })));
    const k = repo.keys.forWorkflow(corrId);
    expectWithin(Number(await redis.zscore(k.deadlines, corrId)), before + 30, after + 30);
    await waitUntilDue(repo, [corrId]);
    return snapshotOf(added);
  }

  it('a stored signal with no decision within checkMs comes back as a check job: status unchanged, leased; rest puts it back to the deadline', async () => {
    const repo = isolatedRepository(redis, 4);
    const added = await checkDue(repo, 'check');
    const { corrId } = added;
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);

    const { value: result, before, after } = await timed(() => repo.sweep(100, 20_000));

    expect(result.jobs).toEqual([{ kind: 'check', workflow: added, sweptMs: expect.any(Number) }]);
    expect(added.status).toBe('waiting_for_agents');
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore); // not claimed: a check changes nothing
    expectWithin(Number(await redis.zscore(k.deadlines, corrId)), before + 20_000, after + 20_000);
    expect((await repo.sweep(100, 20_000)).jobs).toEqual([]);

    expect(await repo.rest(result.jobs[0].workflow)).toBe(true);

    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(added.deadlineMs);
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect((await repo.sweep(100, 20_000)).jobs).toEqual([]);
  });

  it('a check job for a workflow that can decide: freeze on its snapshot succeeds (due at now + lease), and rest is refused then', async () => {
    const repo = isolatedRepository(redis, 4);
    const added = await checkDue(repo, 'check-rec');
    const k = repo.keys.forWorkflow(added.corrId);
    const { jobs } = await repo.sweep(100, 20_000);
    expect(jobs.map((j) => j.kind)).toEqual(['check']);
    const frozenWf = await frozen(repo, jobs[0].workflow, 9_000);
    expect(await redis.hmget(k.wf, 'status', 'why')).toEqual(['evaluating', 'decide']);
    const score = Number(await redis.zscore(k.deadlines, added.corrId));
    expect(score).toBe((frozenWf.frozenMs ?? NaN) + 9_000);
    // Not resting a frozen workflow.
    expect(await repo.rest(jobs[0].workflow)).toBe(false);
    expect(Number(await redis.zscore(k.deadlines, added.corrId))).toBe(score);
  });

  it("rest after another signal changed the version is refused: the new signal's check entry stays", async () => {
    const repo = isolatedRepository(redis, 4);
    const added = await checkDue(repo, 'check-ver');
    const { corrId } = added;
    const k = repo.keys.forWorkflow(corrId);
    const { jobs } = await repo.sweep(100, 20_000);
    expect(jobs.map((j) => [j.kind, j.workflow.version])).toEqual([['check', 1]]);
    const {
      value: later,
      before,
      after,
    } = await timed(() => repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.5), signalOptions(5_000, { checkMs: 7_000 })));
    const laterSnapshot = snapshotOf(later);
    const score = Number(await redis.zscore(k.deadlines, corrId));
    expectWithin(score, before + 7_000, after + 7_000);
    const wfBefore = await redis.hgetall(k.wf);

    expect(await repo.rest(jobs[0].workflow)).toBe(false);

    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(score);
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    // The current snapshot may rest.
    expect(await repo.rest(laterSnapshot)).toBe(true);
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(added.deadlineMs);
  });

  it('rest is refused on a workflow claimed for its timeout, on another start time and on an unknown one', async () => {
    const repo = isolatedRepository(redis, 4);
    // Claimed: the check entry was due past the deadline, so the sweep times it out instead.
    const claimedCorr = uniqueId('rest-claimed');
    await repo.start(startInput(claimedCorr, { timeoutMs: 20 }));
    const added = { workflow: snapshotOf(await repo.addSignal(claimedCorr, 'risk', signalJson('risk', 0.5), signalOptions(5_000, { checkMs: 10 }))) };
    await waitUntilDue(repo, [claimedCorr]);
    await waitFor('the deadline to pass', async () => Date.now() > added.workflow.deadlineMs + 5);
    const { jobs } = await repo.sweep(100, 20_000);
    expect(jobs.map((j) => [j.kind, j.workflow.corrId])).toEqual([['timeout', claimedCorr]]);
    const kc = repo.keys.forWorkflow(claimedCorr);
    const claimedScore = await redis.zscore(kc.deadlines, claimedCorr);
    expect(await repo.rest(added.workflow)).toBe(false);
    expect(await repo.rest(jobs[0].workflow)).toBe(false);
    expect(await redis.zscore(kc.deadlines, claimedCorr)).toBe(claimedScore);
    expect(await redis.hget(kc.wf, 'status')).toBe('evaluating');

    // Another start time (same corr_id, same version).
    const open = await checkDue(repo, 'rest-started');
    const ko = repo.keys.forWorkflow(open.corrId);
    const openScore = await redis.zscore(ko.deadlines, open.corrId);
    expect(await repo.rest({ ...open, startedMs: open.startedMs - 1 })).toBe(false);
    expect(await redis.zscore(ko.deadlines, open.corrId)).toBe(openScore);

    // Unknown: nothing created.
    const missing = uniqueId('rest-missing');
    const elsewhere = await isolatedRepository(redis, 4).start(startInput(missing));
    expect(await repo.rest(elsewhere.workflow)).toBe(false);
    const km = repo.keys.forWorkflow(missing);
    expect(await redis.exists(km.wf)).toBe(0);
    expect(await redis.zscore(km.deadlines, missing)).toBeNull();
  });
});

describe('broken entries and failing shards (sweep-1.lua, repository.sweep)', () => {
  it('a due entry whose workflow key has the wrong type is returned as broken (re-scored to now + 60 s); the other entries of its shard and the other shards go on', async () => {
    const repo = isolatedRepository(redis, 2);
    const [broken, sameShard] = corrIdsInShard(repo, 0, 2);
    const [otherShard] = corrIdsInShard(repo, 1, 1);
    await repo.start(startInput(sameShard, { timeoutMs: 20 }));
    await repo.start(startInput(otherShard, { timeoutMs: 20 }));
    const kb = repo.keys.forWorkflow(broken);
    await redis.set(kb.wf, 'not a hash');
    await redis.zadd(kb.deadlines, 1, broken); // due first in its shard
    await waitUntilDue(repo, [sameShard, otherShard]);

    const { value: result, before, after } = await timed(() => repo.sweep(100, 20_000));

    expect(result.errors).toEqual([]);
    expect(result.broken).toHaveLength(1);
    expect(result.broken[0].corrId).toBe(broken);
    expect(result.broken[0].error).toMatch(/WRONGTYPE/);
    expectWithin(Number(await redis.zscore(kb.deadlines, broken)), before + 60_000, after + 60_000);
    expect(await redis.get(kb.wf)).toBe('not a hash');
    expect(result.jobs.map((j) => [j.kind, j.workflow.corrId]).sort()).toEqual(
      [
        ['timeout', sameShard],
        ['timeout', otherShard],
      ].sort(),
    );
    expect(result.remaining).toBe(3);
    // Not returned again before its minute.
    const again = await repo.sweep(100, 20_000);
    expect(again.broken).toEqual([]);
    expect(again.jobs).toEqual([]);
  });

  it('a workflow whose signals key has the wrong type is broken too (re-scored to now + 60 s), and the other jobs are returned', async () => {
    const repo = isolatedRepository(redis, 1);
    const bad = uniqueId('bad-sig');
    const good = uniqueId('good');
    await repo.start(startInput(bad, { timeoutMs: 300_000 }));
    await repo.start(startInput(good, { timeoutMs: 20 }));
    const k = repo.keys.forWorkflow(bad);
    await redis.set(k.sig, 'not a hash');
    await redis.zadd(k.deadlines, 1, bad);
    await waitUntilDue(repo, [good]);

    const { value: result, before, after } = await timed(() => repo.sweep(100, 20_000));

    expect(result.errors).toEqual([]);
    expect(result.broken.map((b) => b.corrId)).toEqual([bad]);
    expect(result.broken[0].error).toMatch(/WRONGTYPE/);
    expectWithin(Number(await redis.zscore(k.deadlines, bad)), before + 60_000, after + 60_000);
    expect(result.jobs.map((j) => [j.kind, j.workflow.corrId])).toEqual([['timeout', good]]);
    // A check (open, before its deadline) changes nothing before the snapshot is read.
    expect(await redis.hget(k.wf, 'status')).toBe('in_progress');
  });

  it('a shard whose script fails is reported in errors; the jobs of the other shards are still returned (and claimed)', async () => {
    const repo = isolatedRepository(redis, 3);
    const [inZero] = corrIdsInShard(repo, 0, 1);
    const [inTwo] = corrIdsInShard(repo, 2, 1);
    await repo.start(startInput(inZero, { timeoutMs: 20 }));
    await repo.start(startInput(inTwo, { timeoutMs: 20 }));
    // Shard 1's due index is not a zset: its sweep script errors.
    await redis.set(repo.keys.deadlines(1), 'not a zset');
    await waitUntilDue(repo, [inZero, inTwo]);

    const result = await repo.sweep(100, 20_000);

    expect(result.errors.map((e) => e.shard)).toEqual([1]);
    expect(result.errors[0].error.message).toMatch(/WRONGTYPE/);
    expect(result.jobs.map((j) => [j.kind, j.workflow.corrId]).sort()).toEqual(
      [
        ['timeout', inZero],
        ['timeout', inTwo],
      ].sort(),
    );
    expect(result.broken).toEqual([]);
    expect(result.remaining).toBe(2);
    for (const id of [inZero, inTwo]) expect(await redis.hget(repo.keys.forWorkflow(id).wf, 'status')).toBe('evaluating');
  });
});

describe('reapEarly (reap-early-1.lua)', () => {
  it('deletes a buffer whose due time is below the watermark and counts its signals (not their sequences); a later one is not touched', async () => {
    const repo = isolatedRepository(redis, 4);
    const stale = uniqueId('stale');
    const fresh = uniqueId('fresh');
    const t0 = Date.now();
    await repo.addSignal(stale, 'momentum', signalJson('momentum', 0.5), signalOptions(50, { storedAtMs: t0 - 10_000 }));
    await repo.addSignal(stale, 'risk', signalJson('risk', 0.5), signalOptions(50, { storedAtMs: t0 - 10_000 }));
    await repo.addSignal(fresh, 'risk', signalJson('risk', 0.7), signalOptions(600_000, { sequence: 77, storedAtMs: t0 }));
    const ks = repo.keys.forWorkflow(stale);
    const kf = repo.keys.forWorkflow(fresh);
    const freshScore = await redis.zscore(kf.earlyDue, fresh);
    expect(Number(freshScore)).toBe(t0 + 600_000);

    expect(await repo.reapEarly(100, t0)).toEqual({ buffers: 1, signals: 2 });

    expect(await redis.exists(ks.early)).toBe(0);
    expect(await redis.zscore(ks.earlyDue, stale)).toBeNull();
    expect(await redis.hgetall(kf.early)).toEqual({ risk: signalJson('risk', 0.7), 'q:risk': '77' });
    expect(await redis.zscore(kf.earlyDue, fresh)).toBe(freshScore);
    expect(await repo.reapEarly(100, t0)).toEqual({ buffers: 0, signals: 0 });

    // The trigger coming afterwards finds nothing to apply.
    const started = await repo.start(startInput(stale));
    expect(started.kind === 'started' && started.earlyCount).toBe(0);
    expect(started.workflow.status).toBe('in_progress');
    expect(started.workflow.signals).toEqual({});
  });

  it('the watermark decides, not Redis time: a buffer long past its due time lives while the watermark is below it; reaped at watermark = due', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('watermark');
    const k = repo.keys.forWorkflow(corrId);
    const storedAtMs = Date.now() - 60_000; // due 50 s ago by any clock
    await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(10_000, { storedAtMs }));
    await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.5), signalOptions(10_000, { storedAtMs }));
    const due = storedAtMs + 10_000;
    expect(Number(await redis.zscore(k.earlyDue, corrId))).toBe(due);

    // The trigger consumer has processed only up to before the due time (a backlog): nothing reaped.
    expect(await repo.reapEarly(100, due - 1)).toEqual({ buffers: 0, signals: 0 });
    expect(await repo.reapEarly(100, 0)).toEqual({ buffers: 0, signals: 0 });
    expect(Object.keys(await redis.hgetall(k.early)).sort()).toEqual(['momentum', 'q:momentum', 'q:risk', 'risk']);
    expect(Number(await redis.zscore(k.earlyDue, corrId))).toBe(due);

    expect(await repo.reapEarly(100, due)).toEqual({ buffers: 1, signals: 2 });
    expect(await redis.exists(k.early)).toBe(0);
    expect(await redis.zscore(k.earlyDue, corrId)).toBeNull();
  });

  it('takes at most `limit` buffers per shard per call', async () => {
    const repo = isolatedRepository(redis, 2);
    const ids = corrIdsInShard(repo, 1, 3);
    const t0 = Date.now() - 1_000;
    for (const id of ids) await repo.addSignal(id, 'risk', signalJson('risk', 0.5), signalOptions(20, { storedAtMs: t0 }));

    expect(await repo.reapEarly(2, Date.now())).toEqual({ buffers: 2, signals: 2 });
    expect(await redis.zcard(repo.keys.earlyDue(1))).toBe(1);
    expect(await repo.reapEarly(2, Date.now())).toEqual({ buffers: 1, signals: 1 });
    expect(await redis.exists(...ids.map((id) => repo.keys.forWorkflow(id).early))).toBe(0);
  });
});

describe('script cache loss (a Redis restart: SCRIPT FLUSH)', () => {
  it('every script still runs, on the client and in the sweep/reap pipelines (EVALSHA falls back to EVAL)', async () => {
    const repo = isolatedRepository(redis, 2);
    const corrId = uniqueId('flush');
    const started = await repo.start(startInput(corrId, { timeoutMs: 20 }));
    await repo.addSignal(uniqueId('flush-early'), 'risk', signalJson('risk', 0.5), signalOptions(20));
    await waitUntilDue(repo, [corrId]);

    await redis.script('FLUSH');

    expect((await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.5), signalOptions(5_000))).kind).toBe('added');
    await redis.script('FLUSH');
    // The start's snapshot is outdated by that signal: refused, with the current one.
    const outdated = await repo.freeze(started.workflow, 'decide', 1_000);
    if (outdated.kind !== 'outdated') throw new Error(outdated.kind);
    expect(outdated.workflow.version).toBe(1);
    await redis.script('FLUSH');
    // Back to its deadline (passed already).
    expect(await repo.rest(outdated.workflow)).toBe(true);
    await redis.script('FLUSH');
    const { jobs } = await repo.sweep(10, 60_000);
    expect(jobs.map((j) => [j.kind, j.workflow.corrId])).toEqual([['timeout', corrId]]);
    await redis.script('FLUSH');
    expect(await repo.reapEarly(10, Date.now() + 1_000)).toEqual({ buffers: 1, signals: 1 });
    await redis.script('FLUSH');
    expect(await repo.finalize(jobs[0].workflow, 'timeout', '{}', 60_000)).not.toBeNull();
    expect(await redis.hmget(repo.keys.forWorkflow(corrId).wf, 'status', 'published')).toEqual(['timeout', '1']);
    await redis.script('FLUSH');
    expect((await repo.start(startInput(corrId))).kind).toBe('duplicate');
    await redis.script('FLUSH');
    expect(await repo.freeze({ corrId }, 'cancel', 1_000)).toEqual({ kind: 'closed', status: 'timeout' });
    await redis.script('FLUSH');
    // A readiness rule's freeze, too.
    const ruled = uniqueId('flush-rule');
    await repo.start(startInput(ruled, { readyRule: '1||' }));
    await redis.script('FLUSH');
    expect((await repo.addSignal(ruled, 'risk', signalJson('risk', 0.5), signalOptions(5_000))).kind).toBe('ready');
  });
});
