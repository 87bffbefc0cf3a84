import type { Redis } from 'ioredis';
import { uniqueId } from '../support/env.js';
import { isolatedRepository, scriptedRedis } from '../support/redis.js';
import {
  EARLY_TTL_MS,
  claimDue,
  decided,
  expectWithin,
  frozen,
  hashTag,
  keysOf,
  signalJson,
  signalOptions,
  snapshotOf,
  startInput,
  timed,
  totalDeadlines,
} from './repository-fixtures.js';

/**
 * `WorkflowRepository` against a real Redis: start-workflows-2.lua, add-signals-2.lua (and the early-signal
 * buffer), inspect, countActive, key layout. Readiness rules judged in Lua have their own spec
 * (workflow.readiness.int-spec.ts), freeze/finalize theirs (workflow.freeze.int-spec.ts), sweep/reap theirs.
 */
let redis: Redis;

beforeAll(() => {
  redis = scriptedRedis();
});

afterAll(async () => {
  await redis.quit();
});

describe('start (start-workflows-2.lua)', () => {
  it('the workflow it returns without early signals (built from the input) is exactly what Redis stored', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('start-same');
    const result = await repo.start(startInput(corrId, { metadata: { instrument: 'SPY', n: 1 } }));
    expect(result.kind === 'started' && result.earlyCount).toBe(0);
    expect((await repo.inspect(corrId)).workflow).toEqual(result.workflow);
  });

  it('creates the workflow in_progress with deadline = started + timeout, indexed in its shard', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('start');
    const input = startInput(corrId, { timeoutMs: 45_000 });
    const { value: result, before, after } = await timed(() => repo.start(input));

    expect(result.kind).toBe('started');
    if (result.kind !== 'started') throw new Error('unreachable');
    expect(result.earlyCount).toBe(0);
    // No rule: the caller asks canDecide (on the trigger alone).
    expect(result.next).toBe('ask');
    const wf = result.workflow;
    expectWithin(wf.startedMs, before, after);
    expect(wf).toEqual({
      corrId,
      workflowId: `trading:${corrId}`,
      workflowType: 'trading',
      status: 'in_progress',
      startedMs: wf.startedMs,
      deadlineMs: wf.startedMs + 45_000,
      timeoutMs: 45_000,
      requiredAgents: ['momentum', 'risk'],
      metadata: input.metadata,
      triggerJson: input.triggerJson,
      version: 0,
      hasRule: false,
      frozenMs: null,
      why: null,
      frozenBy: null,
      decisionJson: null,
      published: false,
      finishedMs: null,
      signals: {},
    });

    const k = repo.keys.forWorkflow(corrId);
    const stored = await redis.hgetall(k.wf);
    expect(stored).toEqual({
      type: 'trading',
      status: 'in_progress',
      started: String(wf.startedMs),
      deadline: String(wf.startedMs + 45_000),
      agents: JSON.stringify(input.requiredAgents),
      meta: JSON.stringify(input.metadata),
      trigger: input.triggerJson,
      ver: '0',
    });
    expect(await redis.exists(k.sig)).toBe(0);
    expect(await redis.pttl(k.wf)).toBe(-1);
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(wf.startedMs + 45_000);
    // Only in its own shard's index.
    for (let shard = 0; shard < repo.keys.shards; shard++) {
      if (shard === k.shard) continue;
      expect(await redis.zscore(repo.keys.deadlines(shard), corrId)).toBeNull();
    }
    expect(await totalDeadlines(redis, repo)).toBe(1);
  });

  it('a second start for the same corr_id is a duplicate that returns the stored workflow and changes nothing', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('dup');
    const first = await repo.start(startInput(corrId, { timeoutMs: 60_000 }));
    expect(first.kind).toBe('started');
    await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.7), signalOptions(5000));

    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);
    const sigBefore = await redis.hgetall(k.sig);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    const second = await repo.start(
      startInput(corrId, {
        workflowType: 'other_type',
        timeoutMs: 1_000,
        requiredAgents: ['x'],
        metadata: { changed: true },
        triggerJson: '{"second":true}',
      }),
    );
    expect(second.kind).toBe('duplicate');
    // The stored workflow, as it is now (with its signal), not the second call's values.
    expect(second.workflow).toEqual((await repo.inspect(corrId)).workflow);
    expect(second.workflow.timeoutMs).toBe(60_000);
    expect(second.workflow.metadata).toEqual({ source: 'int-test', nested: { n: 1 } });
    expect(second.workflow.workflowId).toBe(`trading:${corrId}`); // the first trigger's type, not the second's
    expect(second.workflow.signals).toEqual({ momentum: signalJson('momentum', 0.7) });

    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.hgetall(k.sig)).toEqual(sigBefore);
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
    expect(await totalDeadlines(redis, repo)).toBe(1);
  });

  it('a start for a finished workflow is a duplicate too, with the final status and decision', async () => {
    const repo = isolatedRepository(redis, 2);
    const corrId = uniqueId('dupfin');
    const started = await repo.start(startInput(corrId));
    await decided(repo, started.workflow, '{"action":"trade"}');

    const again = await repo.start(startInput(corrId));
    expect(again.kind).toBe('duplicate');
    expect(again.workflow.status).toBe('completed');
    expect(again.workflow.decisionJson).toBe('{"action":"trade"}');
    expect(again.workflow.published).toBe(true);
    expect(again.workflow.why).toBe('decide'); // how it was decided stays readable
    // Not re-indexed: a published workflow stays out of the due index.
    expect(await redis.zscore(repo.keys.forWorkflow(corrId).deadlines, corrId)).toBeNull();
  });
});

describe('early signals (add-signals-2.lua before start-workflows-2.lua)', () => {
  it('a signal before the trigger is buffered with its sequence, due at JetStream time + grace, with the safety-net TTL', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('early');
    const k = repo.keys.forWorkflow(corrId);
    const sig = signalJson('momentum', 0.9);
    // JetStream stored it a while ago (a backlog): the grace counts from then, not from Redis's clock.
    const storedAtMs = Date.now() - 3_000;

    const result = await repo.addSignal(corrId, 'momentum', sig, signalOptions(5_000, { sequence: 41, storedAtMs }));

    expect(result).toEqual({ kind: 'buffered' });
    expect(await redis.hgetall(k.early)).toEqual({ momentum: sig, 'q:momentum': '41' });
    expect(Number(await redis.zscore(k.earlyDue, corrId))).toBe(storedAtMs + 5_000);
    const ttl = await redis.pttl(k.early);
    expect(ttl).toBeGreaterThan(EARLY_TTL_MS - 5_000);
    expect(ttl).toBeLessThanOrEqual(EARLY_TTL_MS);
    expect(await redis.exists(k.wf, k.sig)).toBe(0);
    expect(await totalDeadlines(redis, repo)).toBe(0);
  });

  it('inspect lists only the buffered signals (agent -> JSON), not their sequences', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('early-insp');
    const sig = signalJson('momentum', 0.9);
    expect(await repo.addSignal(corrId, 'momentum', sig, signalOptions(5_000))).toEqual({ kind: 'buffered' });

    expect(await repo.inspect(corrId)).toEqual({ workflow: null, early: { momentum: sig } });
  });

  it('the early-due score is the latest JetStream time + grace: an older revision redelivered later does not move it back (ZADD GT)', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('early-gt');
    const k = repo.keys.forWorkflow(corrId);
    const t0 = Date.now() - 10_000;

    expect(await repo.addSignal(corrId, 'risk', signalJson('risk', 0.1), signalOptions(5_000, { sequence: 5, storedAtMs: t0 }))).toEqual({ kind: 'buffered' });
    expect(Number(await redis.zscore(k.earlyDue, corrId))).toBe(t0 + 5_000);
    expect(await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.2), signalOptions(5_000, { sequence: 9, storedAtMs: t0 + 4_000 }))).toEqual({
      kind: 'buffered',
    });
    expect(Number(await redis.zscore(k.earlyDue, corrId))).toBe(t0 + 9_000);
    // Another agent's signal with an earlier JetStream time (stored before, processed after): the due time stays.
    expect(await repo.addSignal(corrId, 'news', signalJson('news', 0.3), signalOptions(5_000, { sequence: 7, storedAtMs: t0 + 2_000 }))).toEqual({
      kind: 'buffered',
    });
    expect(Number(await redis.zscore(k.earlyDue, corrId))).toBe(t0 + 9_000);
    expect(await redis.hgetall(k.early)).toEqual({
      risk: signalJson('risk', 0.1),
      'q:risk': '5',
      momentum: signalJson('momentum', 0.2),
      'q:momentum': '9',
      news: signalJson('news', 0.3),
      'q:news': '7',
    });
  });

  it('with grace 0 the signal is orphaned and nothing is stored', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('orph');
    const k = repo.keys.forWorkflow(corrId);

    expect(await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.9), signalOptions(0))).toEqual({ kind: 'orphaned' });

    expect(await redis.exists(k.wf, k.sig, k.early)).toBe(0);
    expect(await redis.zscore(k.earlyDue, corrId)).toBeNull();
    expect(await keysOf(redis, repo)).toEqual([]);
  });

  it('start applies the buffered signals (latest per agent) and their sequences, deletes the buffer and its early-due entry', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('apply');
    const other = uniqueId('apply-other');
    const k = repo.keys.forWorkflow(corrId);
    const momentumOld = signalJson('momentum', 0.1, 'old');
    const momentumNew = signalJson('momentum', 0.8, 'new');
    const risk = signalJson('risk', 0.6);

    expect(await repo.addSignal(corrId, 'momentum', momentumOld, signalOptions(10_000, { sequence: 100 }))).toEqual({ kind: 'buffered' });
    expect(await repo.addSignal(corrId, 'risk', risk, signalOptions(10_000, { sequence: 101 }))).toEqual({ kind: 'buffered' });
    expect(await repo.addSignal(corrId, 'momentum', momentumNew, signalOptions(10_000, { sequence: 102 }))).toEqual({ kind: 'buffered' });
    expect(await repo.addSignal(other, 'risk', risk, signalOptions(10_000, { sequence: 103 }))).toEqual({ kind: 'buffered' });
    expect(await redis.hgetall(k.early)).toEqual({ momentum: momentumNew, 'q:momentum': '102', risk, 'q:risk': '101' });

    const { value: result, before, after } = await timed(() => repo.start(startInput(corrId)));

    expect(result.kind).toBe('started');
    if (result.kind !== 'started') throw new Error('unreachable');
    expect(result.earlyCount).toBe(2);
    expect(result.workflow.status).toBe('waiting_for_agents');
    expect(result.workflow.signals).toEqual({ momentum: momentumNew, risk });
    expect(result.workflow.version).toBe(2);

    expect(await redis.hgetall(k.sig)).toEqual({ momentum: momentumNew, risk });
    expect(await redis.hmget(k.wf, 'status', 'ver', 'q:momentum', 'q:risk')).toEqual(['waiting_for_agents', '2', '102', '101']);
    expect(await redis.exists(k.early)).toBe(0);
    expect(await redis.zscore(k.earlyDue, corrId)).toBeNull();
    expect(await repo.inspect(corrId)).toEqual({ workflow: result.workflow, early: {} });
    // Due at min(deadline, now + check): the default check delay equals the timeout, so the deadline.
    expectWithin(Number(await redis.zscore(k.deadlines, corrId)), before + 60_000, after + 60_000);
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(result.workflow.deadlineMs);
    // Another corr_id's buffer is untouched.
    const ko = repo.keys.forWorkflow(other);
    expect(await redis.hgetall(ko.early)).toEqual({ risk, 'q:risk': '103' });
    expect(await redis.zscore(ko.earlyDue, other)).not.toBeNull();
  });

  it('a start with early signals is due at now + checkMs (before its deadline); without early signals, at its deadline', async () => {
    const repo = isolatedRepository(redis, 4);
    const withEarly = uniqueId('start-check');
    const without = uniqueId('start-nocheck');
    expect(await repo.addSignal(withEarly, 'risk', signalJson('risk', 0.6), signalOptions(10_000))).toEqual({ kind: 'buffered' });

    const { value: a, before, after } = await timed(() => repo.start(startInput(withEarly, { timeoutMs: 300_000, checkMs: 2_000 })));
    const b = await repo.start(startInput(without, { timeoutMs: 300_000, checkMs: 2_000 }));

    expect(a.kind === 'started' && a.earlyCount).toBe(1);
    const scoreA = Number(await redis.zscore(repo.keys.forWorkflow(withEarly).deadlines, withEarly));
    expectWithin(scoreA, before + 2_000, after + 2_000);
    expect(scoreA).toBe(a.workflow.startedMs + 2_000); // one script, one clock
    expect(a.workflow.deadlineMs).toBe(a.workflow.startedMs + 300_000);
    expect(b.kind === 'started' && b.earlyCount).toBe(0);
    expect(Number(await redis.zscore(repo.keys.forWorkflow(without).deadlines, without))).toBe(b.workflow.deadlineMs);
  });

  it('a check delay past the deadline is capped at the deadline', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('start-cap');
    await repo.addSignal(corrId, 'risk', signalJson('risk', 0.6), signalOptions(10_000));
    const started = await repo.start(startInput(corrId, { timeoutMs: 5_000, checkMs: 600_000 }));
    expect(Number(await redis.zscore(repo.keys.forWorkflow(corrId).deadlines, corrId))).toBe(started.workflow.deadlineMs);
  });
});

describe('revisions: the highest stream sequence wins (add-signals-2.lua, start-workflows-2.lua)', () => {
  it('in the workflow, seq 10 then seq 5: the older revision is superseded, the snapshot still has seq 10', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rev-desc');
    await repo.start(startInput(corrId));
    const rev10 = signalJson('risk', 0.2, 'low');
    const rev5 = signalJson('risk', 0.9, 'high');
    const k = repo.keys.forWorkflow(corrId);

    const added = await repo.addSignal(corrId, 'risk', rev10, signalOptions(5_000, { sequence: 10 }));
    expect(added.kind).toBe('added');
    const wfBefore = await redis.hgetall(k.wf);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);
    expect(wfBefore['q:risk']).toBe('10');

    const older = await repo.addSignal(corrId, 'risk', rev5, signalOptions(5_000, { sequence: 5 }));

    expect(older.kind).toBe('superseded');
    if (older.kind !== 'superseded' || !older.workflow) throw new Error('unreachable: no snapshot');
    expect(older.workflow.signals).toEqual({ risk: rev10 });
    expect(older.workflow.version).toBe(1);
    expect(older.workflow).toEqual((await repo.inspect(corrId)).workflow);
    expect(await redis.hgetall(k.sig)).toEqual({ risk: rev10 });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
  });

  it('in the workflow, seq 5 then seq 10: both added, seq 10 wins', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rev-asc');
    await repo.start(startInput(corrId));
    const rev5 = signalJson('risk', 0.9, 'high');
    const rev10 = signalJson('risk', 0.2, 'low');

    const first = await repo.addSignal(corrId, 'risk', rev5, signalOptions(5_000, { sequence: 5 }));
    const second = await repo.addSignal(corrId, 'risk', rev10, signalOptions(5_000, { sequence: 10 }));

    expect(first.kind).toBe('added');
    expect(second.kind).toBe('added');
    if (second.kind !== 'added' || !second.workflow) throw new Error('unreachable: no snapshot');
    expect(second.workflow.signals).toEqual({ risk: rev10 });
    expect(second.workflow.version).toBe(2);
    const k = repo.keys.forWorkflow(corrId);
    expect(await redis.hgetall(k.sig)).toEqual({ risk: rev10 });
    expect(await redis.hmget(k.wf, 'ver', 'q:risk')).toEqual(['2', '10']);
  });

  it('sequences are per agent: a lower sequence of another agent is added', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rev-agents');
    await repo.start(startInput(corrId));
    expect((await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(5_000, { sequence: 50 }))).kind).toBe('added');
    const other = await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.5), signalOptions(5_000, { sequence: 7 }));
    expect(other.kind).toBe('added');
    if (other.kind !== 'added' || !other.workflow) throw new Error('unreachable: no snapshot');
    expect(other.workflow.signals).toEqual({ risk: signalJson('risk', 0.5), momentum: signalJson('momentum', 0.5) });
    expect(await redis.hmget(repo.keys.forWorkflow(corrId).wf, 'q:risk', 'q:momentum')).toEqual(['50', '7']);
  });

  it('in the early buffer: a lower or equal sequence is buffer-superseded and the buffer keeps the later revision', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rev-early');
    const k = repo.keys.forWorkflow(corrId);
    const rev10 = signalJson('risk', 0.2, 'ten');
    const t0 = Date.now();

    expect(await repo.addSignal(corrId, 'risk', rev10, signalOptions(5_000, { sequence: 10, storedAtMs: t0 }))).toEqual({ kind: 'buffered' });
    const dueBefore = await redis.zscore(k.earlyDue, corrId);
    const ttlBefore = await redis.pttl(k.early);

    // The older revision and the same one again change nothing, whatever time and lifetime they carry.
    expect(
      await repo.addSignal(corrId, 'risk', signalJson('risk', 0.9, 'five'), signalOptions(5_000, { sequence: 5, storedAtMs: t0 + 1_000, earlyTtlMs: 1_000 })),
    ).toEqual({
      kind: 'buffer-superseded',
    });
    expect(await repo.addSignal(corrId, 'risk', rev10, signalOptions(5_000, { sequence: 10, storedAtMs: t0 + 2_000, earlyTtlMs: 1_000 }))).toEqual({
      kind: 'buffer-superseded',
    });

    expect(await redis.hgetall(k.early)).toEqual({ risk: rev10, 'q:risk': '10' });
    expect(await redis.zscore(k.earlyDue, corrId)).toBe(dueBefore);
    expect(await redis.pttl(k.early)).toBeGreaterThan(ttlBefore - 5_000); // not shortened to the 1 s given
  });

  it('in the early buffer: the same text published again (higher sequence) is a duplicate: only its sequence moves, the grace is not extended', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('same-early');
    const k = repo.keys.forWorkflow(corrId);
    const sig = signalJson('risk', 0.2, 'once');
    const t0 = Date.now();

    expect(await repo.addSignal(corrId, 'risk', sig, signalOptions(5_000, { sequence: 10, storedAtMs: t0 }))).toEqual({ kind: 'buffered' });
    const dueBefore = await redis.zscore(k.earlyDue, corrId);

    // The agent's retry: the same bytes, stored again by JetStream 3 s later.
    expect(await repo.addSignal(corrId, 'risk', sig, signalOptions(5_000, { sequence: 12, storedAtMs: t0 + 3_000 }))).toEqual({
      kind: 'buffer-superseded',
    });
    expect(await redis.hgetall(k.early)).toEqual({ risk: sig, 'q:risk': '12' });
    expect(await redis.zscore(k.earlyDue, corrId)).toBe(dueBefore);
    // ... so the first copy, redelivered, is refused; a changed revision is buffered and extends the grace.
    expect(await repo.addSignal(corrId, 'risk', sig, signalOptions(5_000, { sequence: 10, storedAtMs: t0 }))).toEqual({ kind: 'buffer-superseded' });
    const changed = signalJson('risk', 0.3, 'twice');
    expect(await repo.addSignal(corrId, 'risk', changed, signalOptions(5_000, { sequence: 13, storedAtMs: t0 + 4_000 }))).toEqual({ kind: 'buffered' });
    expect(Number(await redis.zscore(k.earlyDue, corrId))).toBe(t0 + 9_000);
  });

  it('across the start: buffer seq 10, seq 5 early is buffer-superseded; after the start seq 5 again is superseded, seq 11 is added', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rev-start');
    const k = repo.keys.forWorkflow(corrId);
    const rev5 = signalJson('risk', 0.9, 'five');
    const rev10 = signalJson('risk', 0.5, 'ten');
    const rev11 = signalJson('risk', 0.1, 'eleven');

    expect(await repo.addSignal(corrId, 'risk', rev10, signalOptions(10_000, { sequence: 10 }))).toEqual({ kind: 'buffered' });
    expect(await repo.addSignal(corrId, 'risk', rev5, signalOptions(10_000, { sequence: 5 }))).toEqual({ kind: 'buffer-superseded' });

    const started = await repo.start(startInput(corrId));
    expect(started.kind === 'started' && started.earlyCount).toBe(1);
    expect(started.workflow.signals).toEqual({ risk: rev10 });
    expect(started.workflow.version).toBe(1);
    expect(await redis.hget(k.wf, 'q:risk')).toBe('10');

    const again = await repo.addSignal(corrId, 'risk', rev5, signalOptions(10_000, { sequence: 5 }));
    expect(again.kind).toBe('superseded');
    if (again.kind !== 'superseded' || !again.workflow) throw new Error('unreachable: no snapshot');
    expect(again.workflow.signals).toEqual({ risk: rev10 });
    expect(again.workflow.version).toBe(1);
    // The moved revision itself, redelivered: a duplicate.
    expect((await repo.addSignal(corrId, 'risk', rev10, signalOptions(10_000, { sequence: 10 }))).kind).toBe('duplicate');

    const newer = await repo.addSignal(corrId, 'risk', rev11, signalOptions(10_000, { sequence: 11 }));
    expect(newer.kind).toBe('added');
    if (newer.kind !== 'added' || !newer.workflow) throw new Error('unreachable: no snapshot');
    expect(newer.workflow.signals).toEqual({ risk: rev11 });
    expect(newer.workflow.version).toBe(2);
    expect(await redis.hgetall(k.sig)).toEqual({ risk: rev11 });
    expect(await redis.hmget(k.wf, 'ver', 'q:risk')).toEqual(['2', '11']);
  });
});

describe('the check entry (add-signals-2.lua, sweep-1.lua, rest-2.lua)', () => {
  it('a stored signal moves the due entry to now + checkMs (never past the deadline); a refused one does not', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('check-entry');
    const k = repo.keys.forWorkflow(corrId);
    const started = await repo.start(startInput(corrId, { timeoutMs: 300_000 }));
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(started.workflow.deadlineMs);

    const {
      value: added,
      before,
      after,
    } = await timed(() => repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(5_000, { sequence: 3, checkMs: 4_000 })));
    expect(added.kind).toBe('added');
    const score = Number(await redis.zscore(k.deadlines, corrId));
    expectWithin(score, before + 4_000, after + 4_000);

    // A duplicate or a superseded revision leaves the entry where it is.
    expect((await repo.addSignal(corrId, 'risk', signalJson('risk', 0.5), signalOptions(5_000, { sequence: 3, checkMs: 100 }))).kind).toBe('duplicate');
    expect((await repo.addSignal(corrId, 'risk', signalJson('risk', 0.4), signalOptions(5_000, { sequence: 2, checkMs: 100 }))).kind).toBe('superseded');
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(score);

    // A check delay past the deadline: the deadline.
    expect((await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.5), signalOptions(5_000, { checkMs: 900_000 }))).kind).toBe('added');
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(started.workflow.deadlineMs);
  });
});

describe('addSignal (add-signals-2.lua)', () => {
  it('adds a signal: status waiting_for_agents, version 1, and returns the snapshot with it', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('add');
    await repo.start(startInput(corrId));
    const sig = signalJson('momentum', 0.75);

    const result = await repo.addSignal(corrId, 'momentum', sig, signalOptions(5_000));

    expect(result.kind).toBe('added');
    if (result.kind !== 'added' || !result.workflow) throw new Error('unreachable: no snapshot');
    expect(result.workflow.signals).toEqual({ momentum: sig });
    expect(result.workflow.status).toBe('waiting_for_agents');
    expect(result.workflow.version).toBe(1);
    expect(result.workflow.corrId).toBe(corrId);
    const k = repo.keys.forWorkflow(corrId);
    expect(await redis.hgetall(k.sig)).toEqual({ momentum: sig });
    expect(await redis.hmget(k.wf, 'status', 'ver')).toEqual(['waiting_for_agents', '1']);
    expect(await redis.exists(k.early)).toBe(0);
    expect(result.workflow).toEqual((await repo.inspect(corrId)).workflow);
  });

  it('the latest signal of an agent replaces the earlier one; other agents are kept', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('replace');
    await repo.start(startInput(corrId));
    const first = signalJson('momentum', 0.2, 'first');
    const second = signalJson('momentum', 0.9, 'second');
    const risk = signalJson('risk', 0.5);

    await repo.addSignal(corrId, 'momentum', first, signalOptions(5_000));
    await repo.addSignal(corrId, 'risk', risk, signalOptions(5_000));
    const result = await repo.addSignal(corrId, 'momentum', second, signalOptions(5_000));

    expect(result.kind).toBe('added');
    if (result.kind !== 'added' || !result.workflow) throw new Error('unreachable: no snapshot');
    expect(result.workflow.signals).toEqual({ momentum: second, risk });
    expect(result.workflow.version).toBe(3);
    const k = repo.keys.forWorkflow(corrId);
    expect(await redis.hgetall(k.sig)).toEqual({ momentum: second, risk });
    expect(await redis.hget(k.wf, 'ver')).toBe('3');
  });

  it('the same sequence again is a duplicate (even with other bytes): version, state and due entry unchanged', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('sigdup');
    await repo.start(startInput(corrId));
    const sig = signalJson('risk', 0.4);
    const added = await repo.addSignal(corrId, 'risk', sig, signalOptions(5_000, { sequence: 20 }));
    expect(added.kind).toBe('added');
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    const again = await repo.addSignal(corrId, 'risk', sig, signalOptions(5_000, { sequence: 20, checkMs: 10 }));
    const otherBytes = await repo.addSignal(corrId, 'risk', signalJson('risk', 0.9), signalOptions(5_000, { sequence: 20, checkMs: 10 }));

    for (const r of [again, otherBytes]) {
      expect(r.kind).toBe('duplicate');
      if (r.kind !== 'duplicate' || !r.workflow) throw new Error('unreachable: no snapshot');
      expect(r.workflow.version).toBe(1);
      expect(r.workflow.signals).toEqual({ risk: sig });
    }
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.hgetall(k.sig)).toEqual({ risk: sig });
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
  });

  it('the same text published again (higher sequence) is a duplicate: nothing to evaluate anew, only its sequence moves', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('sigsame');
    await repo.start(startInput(corrId));
    const sig = signalJson('risk', 0.4);
    expect((await repo.addSignal(corrId, 'risk', sig, signalOptions(5_000, { sequence: 30 }))).kind).toBe('added');

    const same = await repo.addSignal(corrId, 'risk', sig, signalOptions(5_000, { sequence: 31 }));

    expect(same.kind).toBe('duplicate');
    if (same.kind !== 'duplicate' || !same.workflow) throw new Error('unreachable: no snapshot');
    expect(same.workflow.version).toBe(1);
    expect(same.workflow.signals).toEqual({ risk: sig });
    expect(await redis.hmget(repo.keys.forWorkflow(corrId).wf, 'ver', 'q:risk')).toEqual(['1', '31']);
    // ... so an older revision delivered after it is still refused.
    expect((await repo.addSignal(corrId, 'risk', signalJson('risk', 0.9), signalOptions(5_000, { sequence: 30 }))).kind).toBe('superseded');
  });

  it.each([
    ['evaluating', 'frozen by the sweeper for its timeout'],
    ['evaluating', 'frozen by freeze-3.lua after canDecide'],
    ['evaluating', 'frozen by an operator (cancel, no version)'],
    ['evaluating', 'frozen by the signal that made it ready by its rule'],
    ['timeout', 'timed out and finalised'],
    ['completed', 'decided and finalised'],
  ] as const)('on a workflow %s (%s): the signal is late and changes nothing', async (status, how) => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('late');
    const byRule = how.includes('rule');
    await repo.start(startInput(corrId, { timeoutMs: how.includes('sweeper') || status === 'timeout' ? 0 : 60_000, readyRule: byRule ? '1||risk' : null }));
    const risk = signalJson('risk', 0.5);
    const added = await repo.addSignal(corrId, 'risk', risk, signalOptions(5_000));
    if (byRule) {
      expect(snapshotOf(added, 'ready').status).toBe('evaluating');
    } else if (how.includes('canDecide')) {
      await frozen(repo, snapshotOf(added));
    } else if (how.includes('operator')) {
      expect((await repo.freeze({ corrId }, 'cancel', 10_000, 'ops')).kind).toBe('frozen');
    } else if (status === 'completed') {
      await decided(repo, snapshotOf(added), '{"action":"no_trade"}');
    } else {
      const claimed = await claimDue(repo, corrId);
      if (status === 'timeout') expect(await repo.finalize(claimed, 'timeout', '{"action":"timeout"}', 60_000)).not.toBeNull();
    }
    expect(await redis.hget(repo.keys.forWorkflow(corrId).wf, 'status')).toBe(status);
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    const result = await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.9), signalOptions(5_000));

    expect(result).toEqual({ kind: 'late', status });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.hgetall(k.sig)).toEqual({ risk });
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
    expect(await redis.exists(k.early)).toBe(0);
    expect(await redis.zscore(k.earlyDue, corrId)).toBeNull();
  });

  it('on a finalised workflow the signal is late too (status kept for the retention period), nothing created', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('latepub');
    await repo.start(startInput(corrId, { timeoutMs: 0 }));
    const claimed = await claimDue(repo, corrId);
    expect(await repo.finalize(claimed, 'timeout', '{"action":"timeout"}', 60_000)).not.toBeNull();
    expect(await redis.hget(repo.keys.forWorkflow(corrId).wf, 'published')).toBe('1');

    expect(await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.9), signalOptions(5_000))).toEqual({ kind: 'late', status: 'timeout' });
    expect(await redis.exists(repo.keys.forWorkflow(corrId).sig)).toBe(0);
  });
});

describe('inspect', () => {
  it('returns null and no early signals for an unknown corr_id', async () => {
    const repo = isolatedRepository(redis, 4);
    expect(await repo.inspect(uniqueId('none'))).toEqual({ workflow: null, early: {} });
  });

  it('returns the stored workflow with its signals, as the scripts return it', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('insp');
    await repo.start(startInput(corrId, { timeoutMs: 0 }));
    const added = snapshotOf(await repo.addSignal(corrId, 'risk', signalJson('risk', 0.3), signalOptions(5_000)));
    expect((await repo.inspect(corrId)).workflow).toEqual(added);
    const claimed = await claimDue(repo, corrId);

    const inspection = await repo.inspect(corrId);

    expect(inspection.early).toEqual({});
    expect(inspection.workflow).toEqual(claimed);
    const frozenAt = Number(await redis.hget(repo.keys.forWorkflow(corrId).wf, 'frozen'));
    expect(frozenAt).toBeGreaterThanOrEqual(added.deadlineMs);
    expect(inspection.workflow).toEqual({ ...added, status: 'evaluating', why: 'timeout', frozenMs: frozenAt });
  });

  it('returns what freeze-3.lua returns (outdated snapshot, frozen snapshot); once finalised, the decision, finish time and published', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('insp-rec');
    const started = await repo.start(startInput(corrId));
    const added = snapshotOf(await repo.addSignal(corrId, 'risk', signalJson('risk', 0.3), signalOptions(5_000)));
    const outdated = await repo.freeze(started.workflow, 'decide', 10_000);
    expect(outdated).toEqual({ kind: 'outdated', workflow: (await repo.inspect(corrId)).workflow });
    const frozenWf = await frozen(repo, added);
    expect((await repo.inspect(corrId)).workflow).toEqual(frozenWf);
    expect(await repo.finalize(frozenWf, 'completed', '{"action":"trade"}', 60_000)).not.toBeNull();

    const inspected = (await repo.inspect(corrId)).workflow;

    const finished = Number(await redis.hget(repo.keys.forWorkflow(corrId).wf, 'finished'));
    expect(finished).toBeGreaterThanOrEqual(frozenWf.frozenMs ?? Infinity);
    // The freeze's fields stay (when and why it was frozen).
    expect(inspected).toEqual({ ...frozenWf, status: 'completed', decisionJson: '{"action":"trade"}', published: true, finishedMs: finished });
  });
});

describe('countActive', () => {
  it('counts unfinished and unpublished workflows over all shards (not buffers, not published ones)', async () => {
    const repo = isolatedRepository(redis, 4);
    expect(await repo.countActive()).toBe(0);
    const ids = Array.from({ length: 6 }, (_, i) => uniqueId(`act${i}`));
    const started = await Promise.all(ids.map((id, i) => repo.start(startInput(id, { timeoutMs: i === 2 ? 0 : 60_000 }))));
    // ids[0..1] open, ids[2] frozen by the sweeper, ids[3] frozen after canDecide (not finalised), ids[4..5] finalised.
    await claimDue(repo, ids[2]);
    const frozen3 = await frozen(repo, started[3].workflow);
    await decided(repo, started[4].workflow);
    await decided(repo, started[5].workflow);
    await repo.addSignal(uniqueId('buffer-only'), 'risk', signalJson('risk', 0.5), signalOptions(10_000));

    expect(await repo.countActive()).toBe(4);
    expect(await totalDeadlines(redis, repo)).toBe(4);
    // Spread over several shards (with 6 random ids, all in one shard is possible but unlikely; the count must not depend on it).
    expect(await repo.finalize(frozen3, 'completed', '{"action":"trade"}', 60_000)).not.toBeNull();
    expect(await repo.countActive()).toBe(3);
  });
});

describe('corr_ids with : . - _ and other punctuation', () => {
  const odd = ['ord:2024.01-02_ABC:7', 'a:b:c', 'x.y-z_1', '--__..::', 'pipe|in|id', 'with/slash'];

  it.each(odd)('%s: full life cycle, every key in one hash tag {prefix:shard}', async (suffix) => {
    const repo = isolatedRepository(redis, 8);
    const corrId = `${uniqueId('odd')}:${suffix}`;
    const k = repo.keys.forWorkflow(corrId);
    const tag = hashTag(k.wf);
    expect(`{${tag}}:`).toBe(repo.keys.shardPrefix(k.shard));
    for (const key of [k.wf, k.sig, k.early, k.deadlines, k.earlyDue, repo.keys.recent(k.shard)]) expect(hashTag(key)).toBe(tag);

    expect(await repo.addSignal(corrId, 'momentum', signalJson('momentum', 0.8), signalOptions(10_000))).toEqual({ kind: 'buffered' });
    const inspection = await repo.inspect(corrId);
    expect(inspection.workflow).toBeNull();
    expect(inspection.early.momentum).toBe(signalJson('momentum', 0.8)); // that nothing else is listed: 'inspect lists only the buffered signals'
    const started = await repo.start(startInput(corrId));
    expect(started.kind).toBe('started');
    if (started.kind !== 'started') throw new Error('unreachable');
    expect(started.earlyCount).toBe(1);
    expect(started.workflow.corrId).toBe(corrId);
    const added = await repo.addSignal(corrId, 'risk', signalJson('risk', 0.6), signalOptions(10_000));
    expect(added.kind).toBe('added');

    // Every key this workflow created is in Redis under its shard's tag, none elsewhere.
    const keys = await keysOf(redis, repo);
    expect(keys.sort()).toEqual([k.deadlines, k.sig, k.wf].sort());
    for (const key of keys) expect(hashTag(key)).toBe(tag);

    // Freezing on the start's snapshot is outdated: the current one comes back, parsed under this corr_id.
    const outdated = await repo.freeze(started.workflow, 'decide', 10_000);
    if (outdated.kind !== 'outdated') throw new Error(outdated.kind);
    expect(outdated.workflow.corrId).toBe(corrId);
    expect(outdated.workflow.workflowId).toBe(`trading:${corrId}`);
    expect(outdated.workflow.signals).toEqual({ momentum: signalJson('momentum', 0.8), risk: signalJson('risk', 0.6) });
    expect(outdated.workflow).toEqual((await repo.inspect(corrId)).workflow);
    const frozenWf = await frozen(repo, outdated.workflow);
    // Without a version (an operator's): refused now, the snapshot parsed under this corr_id all the same.
    expect(await repo.freeze({ corrId }, 'force', 10_000)).toEqual({ kind: 'closed', status: 'evaluating' });
    expect(await repo.finalize(frozenWf, 'completed', '{"action":"trade"}', 60_000)).toEqual({
      startedMs: started.workflow.startedMs,
      finishedMs: expect.any(Number) as number,
    });
    expect(await redis.zscore(k.deadlines, corrId)).toBeNull();
    expect(await redis.hget(k.wf, 'published')).toBe('1');
    // Finished: the shard's recent index (what the admin API lists) holds it.
    expect(await keysOf(redis, repo)).toEqual([repo.keys.recent(k.shard), k.sig, k.wf].sort());
  });
});

describe('batched calls: the triggers and signals of one turn in one call per shard (start-workflows-2.lua, add-signals-2.lua)', () => {
  it('stores two signals of one workflow sent in one turn as two steps, in order: the second makes it ready', async () => {
    const repo = isolatedRepository(redis, 1);
    const corrId = uniqueId('batch-two');
    await repo.start(startInput(corrId, { readyRule: '0|momentum,risk|' }));
    const momentum = signalJson('momentum', 0.7);
    const risk = signalJson('risk', 0.4);
    const sent = [
      repo.addSignal(corrId, 'momentum', momentum, signalOptions(5_000, { sequence: 501 })),
      repo.addSignal(corrId, 'risk', risk, signalOptions(5_000, { sequence: 502 })),
      // The same message again in the same call (a redelivery): changes nothing, the workflow is frozen by then.
      repo.addSignal(corrId, 'risk', risk, signalOptions(5_000, { sequence: 502 })),
    ];
    const [first, second, again] = await Promise.all(sent);
    expect(first).toEqual({ kind: 'added', workflow: null, nowMs: expect.any(Number) });
    expect(second).toMatchObject({ kind: 'ready', workflow: { status: 'evaluating', why: 'decide', signals: { momentum, risk } } });
    expect(again).toEqual({ kind: 'late', status: 'evaluating' });
  });

  it('fails a signal whose keys Redis refuses, and no other signal of its call', async () => {
    const repo = isolatedRepository(redis, 1);
    const [good1, bad, good2] = [uniqueId('batch-good'), uniqueId('batch-bad'), uniqueId('batch-good')];
    for (const id of [good1, good2]) await repo.start(startInput(id));
    await redis.set(repo.keys.forWorkflow(bad).wf, 'not a hash');
    const results = await Promise.allSettled(
      [good1, bad, good2].map((id) => repo.addSignal(id, 'momentum', signalJson('momentum', 0.5), signalOptions(5_000))),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/add-signals-2\.lua: .*WRONGTYPE/);
    for (const id of [good1, good2]) expect(await redis.hget(repo.keys.forWorkflow(id).sig, 'momentum')).toBe(signalJson('momentum', 0.5));
  });

  it('fails a trigger whose keys Redis refuses, and no other trigger of its call', async () => {
    const repo = isolatedRepository(redis, 1);
    const [good, bad] = [uniqueId('batch-start-good'), uniqueId('batch-start-bad')];
    await redis.set(repo.keys.forWorkflow(bad).wf, 'not a hash');
    const [a, b] = await Promise.allSettled([repo.start(startInput(bad)), repo.start(startInput(good))]);
    expect(a.status).toBe('rejected');
    expect(String((a as PromiseRejectedResult).reason)).toMatch(/start-workflows-2\.lua: .*WRONGTYPE/);
    expect(b).toMatchObject({ status: 'fulfilled', value: { kind: 'started' } });
    expect(await redis.hget(repo.keys.forWorkflow(good).wf, 'status')).toBe('in_progress');
  });
});
