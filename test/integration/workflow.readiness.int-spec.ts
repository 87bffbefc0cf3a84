import type { Redis } from 'ioredis';
import { uniqueId } from '../support/env.js';
import { isolatedRepository, scriptedRedis } from '../support/redis.js';
import { encodeReadiness, isReady, type ReadinessRule } from '../../src/workflow/readiness.js';
import type { AddSignalResult } from '../../src/workflow/workflow.repository.js';
import { expectWithin, signalJson, signalOptions, snapshotOf, startInput, timed, totalDeadlines } from './repository-fixtures.js';

/**
 * Readiness rules judged in Redis (`is_ready` in src/redis/lua/includes/common.lua), by add-signals-2.lua for
 * each stored signal and by start-workflows-2.lua for the early signals it applies: the signal that makes a
 * workflow ready freezes it (status evaluating, why decide, due at now + lease) and alone gets the snapshot;
 * the Lua judgement agrees with `isReady` (src/workflow/readiness.ts), which strategies' canDecide use.
 */
let redis: Redis;

beforeAll(() => {
  redis = scriptedRedis();
});

afterAll(async () => {
  await redis.quit();
});

/**
 * One signal of a case: `new` a new revision (next sequence, new bytes), `dup` the same sequence again,
 * `old` a lower sequence than the agent's stored one (superseded), `same` the same bytes under a higher
 * sequence (an agent's retry: a duplicate).
 */
type Step = [agent: string, how: 'new' | 'dup' | 'old' | 'same'];
interface Case {
  name: string;
  rule: ReadinessRule;
  steps: Step[];
  /** Index of the step that makes it ready (-1: ready at the start, on the trigger alone; null: never). */
  readyAt: number | null;
}

const CASES: Case[] = [
  {
    name: 'all: both listed agents',
    rule: { all: ['a', 'b'] },
    steps: [
      ['a', 'new'],
      ['a', 'dup'],
      ['a', 'new'],
      ['b', 'new'],
    ],
    readyAt: 3,
  },
  {
    name: 'all: agents not listed do not count',
    rule: { all: ['a', 'b'] },
    steps: [
      ['a', 'new'],
      ['x', 'new'],
      ['y', 'new'],
    ],
    readyAt: null,
  },
  {
    name: 'atLeast 2 of any agent: revisions and duplicates of one agent count once',
    rule: { atLeast: 2 },
    steps: [
      ['a', 'new'],
      ['a', 'new'],
      ['a', 'same'],
      ['a', 'old'],
      ['x', 'new'],
    ],
    readyAt: 4,
  },
  {
    name: 'atLeast 2 among a,b,c: agents outside never count',
    rule: { atLeast: 2, among: ['a', 'b', 'c'] },
    steps: [
      ['a', 'new'],
      ['x', 'new'],
      ['y', 'new'],
      ['z', 'new'],
    ],
    readyAt: null,
  },
  {
    name: 'atLeast 2 among a,b,c: a superseded revision does not count twice',
    rule: { atLeast: 2, among: ['a', 'b', 'c'] },
    steps: [
      ['x', 'new'],
      ['a', 'new'],
      ['a', 'new'],
      ['a', 'old'],
      ['a', 'dup'],
      ['c', 'new'],
    ],
    readyAt: 5,
  },
  {
    name: 'all risk + atLeast 2 among a,b: the count alone is not enough',
    rule: { all: ['risk'], atLeast: 2, among: ['a', 'b'] },
    steps: [
      ['a', 'new'],
      ['b', 'new'],
      ['risk', 'new'],
    ],
    readyAt: 2,
  },
  {
    name: 'all risk + atLeast 1 among a: all alone is not enough',
    rule: { all: ['risk'], atLeast: 1, among: ['a'] },
    steps: [
      ['risk', 'new'],
      ['b', 'new'],
      ['a', 'new'],
    ],
    readyAt: 2,
  },
  {
    name: 'among listed twice counts each agent once',
    rule: { atLeast: 2, among: ['a', 'a', 'b'] },
    steps: [
      ['a', 'new'],
      ['a', 'new'],
      ['b', 'new'],
    ],
    readyAt: 2,
  },
  {
    name: 'atLeast 3 of any agent',
    rule: { atLeast: 3 },
    steps: [
      ['a', 'new'],
      ['a', 'same'],
      ['b', 'new'],
      ['b', 'old'],
      ['c', 'new'],
    ],
    readyAt: 4,
  },
  { name: 'atLeast 1 among an empty list: any agent', rule: { atLeast: 1, among: [] }, steps: [['x', 'new']], readyAt: 0 },
  {
    name: 'all a, atLeast 0 among b: the among list does not matter',
    rule: { all: ['a'], atLeast: 0, among: ['b'] },
    steps: [
      ['c', 'new'],
      ['a', 'new'],
    ],
    readyAt: 1,
  },
  { name: 'no condition: ready on the trigger alone', rule: {}, steps: [['a', 'new']], readyAt: -1 },
];

const expectedKind = { new: 'added', dup: 'duplicate', old: 'superseded', same: 'duplicate' } as const;

describe('readiness rules in Lua agree with isReady (add-signals-2.lua, start-workflows-2.lua)', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('signal by signal: %s', async (_name, c) => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rdy');
    const k = repo.keys.forWorkflow(corrId);
    const rule = encodeReadiness(c.rule);
    const started = await repo.start(startInput(corrId, { timeoutMs: 300_000, readyRule: rule }));
    if (started.kind !== 'started') throw new Error(started.kind);
    expect(await redis.hget(k.wf, 'rdy')).toBe(rule);
    // The TypeScript judgement on the trigger alone, and the Lua one, and the case's.
    expect(isReady(c.rule, [])).toBe(c.readyAt === -1);
    expect(started.next).toBe(c.readyAt === -1 ? 'decide' : 'wait');

    let sequence = 1_000;
    const stored = new Map<string, { seq: number; json: string }>();
    let frozenSeen = c.readyAt === -1;
    for (const [i, [agent, how]] of c.steps.entries()) {
      const last = stored.get(agent);
      let seq = ++sequence;
      let json = signalJson(agent, 0.5, `r${seq}`);
      if (how === 'dup' && last) ({ seq, json } = last);
      if (how === 'old' && last) seq = last.seq - 1;
      if (how === 'same' && last) json = last.json;
      const before = Date.now();
      const result: AddSignalResult = await repo.addSignal(corrId, agent, json, signalOptions(5_000, { sequence: seq, leaseMs: 7_000 }));
      const after = Date.now();
      if (frozenSeen) {
        expect(result).toEqual({ kind: 'late', status: 'evaluating' });
        continue;
      }
      if (how === 'new' || how === 'same') stored.set(agent, { seq, json });
      const answered = [...stored.keys()];
      const ready = isReady(c.rule, answered);
      expect(ready).toBe(i === c.readyAt);
      if (ready) {
        // The signal that makes it ready froze it, and alone got the snapshot.
        const snapshot = snapshotOf(result, 'ready');
        expect(snapshot).toMatchObject({ status: 'evaluating', why: 'decide', hasRule: true, frozenBy: null });
        expect(Object.keys(snapshot.signals).sort()).toEqual(answered.sort());
        expect((await repo.inspect(corrId)).workflow).toEqual(snapshot);
        expectWithin(snapshot.frozenMs ?? NaN, before, after);
        expect(Number(await redis.zscore(k.deadlines, corrId))).toBe((snapshot.frozenMs ?? NaN) + 7_000);
        frozenSeen = true;
      } else {
        // Not ready: a short reply (no snapshot), the workflow open, and no check entry (due at its deadline).
        expect(result).toEqual({ kind: expectedKind[how], workflow: null, nowMs: expect.any(Number) });
        expect(await redis.hget(k.wf, 'status')).toBe('waiting_for_agents');
        expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(started.workflow.deadlineMs);
      }
    }
    expect(await redis.hget(k.wf, 'status')).toBe(c.readyAt === null ? 'waiting_for_agents' : 'evaluating');
    // No version with a rule: nobody compares versions (the rule is judged where the signals are stored).
    expect(await redis.hget(k.wf, 'ver')).toBeNull();
    // What Redis holds: the latest stored revision of each agent.
    expect(await redis.hgetall(k.sig)).toEqual(Object.fromEntries([...stored].map(([agent, s]) => [agent, s.json])));
    expect(await totalDeadlines(redis, repo)).toBe(1);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('all signals early, applied at the start: %s', async (_name, c) => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rdy-early');
    const k = repo.keys.forWorkflow(corrId);
    let sequence = 2_000;
    const agents = new Set<string>();
    for (const [agent, how] of c.steps) {
      if (how !== 'new') continue;
      expect(await repo.addSignal(corrId, agent, signalJson(agent, 0.5, `e${++sequence}`), signalOptions(10_000, { sequence }))).toEqual({ kind: 'buffered' });
      agents.add(agent);
    }
    const ready = isReady(c.rule, agents);
    expect(ready).toBe(c.readyAt !== null);

    const {
      value: started,
      before,
      after,
    } = await timed(() => repo.start(startInput(corrId, { timeoutMs: 300_000, readyRule: encodeReadiness(c.rule), leaseMs: 8_000 })));

    if (started.kind !== 'started') throw new Error(started.kind);
    expect(started.earlyCount).toBe(agents.size);
    expect(await redis.exists(k.early)).toBe(0);
    expect(Object.keys(await redis.hgetall(k.sig)).sort()).toEqual([...agents].sort());
    if (ready) {
      expect(started.next).toBe('decide');
      // No version with a rule (`ver` is not stored: nobody compares versions).
      expect(started.workflow).toMatchObject({ status: 'evaluating', why: 'decide', hasRule: true, version: 0 });
      expect(started.workflow).toEqual((await repo.inspect(corrId)).workflow);
      expectWithin(started.workflow.frozenMs ?? NaN, before, after);
      expect(started.workflow.frozenMs).toBe(started.workflow.startedMs); // one script, one clock
      expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(started.workflow.startedMs + 8_000);
    } else {
      expect(started.next).toBe('wait');
      expect(await redis.hget(k.wf, 'status')).toBe('waiting_for_agents');
      expect(await redis.hmget(k.wf, 'why', 'ver')).toEqual([null, null]);
      // No check entry with a rule: Redis judged it, nothing to look at before the deadline.
      expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(started.workflow.deadlineMs);
    }
  });
});

describe('start with a readiness rule (start-workflows-2.lua)', () => {
  it('without early signals the workflow it returns (built from the input) is exactly what Redis stored, rule included', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rdy-start');
    const result = await repo.start(startInput(corrId, { readyRule: '2|risk|', timeoutMs: 45_000, checkMs: 1_000 }));
    if (result.kind !== 'started') throw new Error(result.kind);
    expect(result.next).toBe('wait');
    expect(result.workflow.hasRule).toBe(true);
    expect((await repo.inspect(corrId)).workflow).toEqual(result.workflow);
    expect(await redis.hget(repo.keys.forWorkflow(corrId).wf, 'rdy')).toBe('2|risk|');
    expect(Number(await redis.zscore(repo.keys.forWorkflow(corrId).deadlines, corrId))).toBe(result.workflow.startedMs + 45_000);
  });

  it('early signals that do not meet the rule: open, due at the deadline (not now + checkMs), as no rule would have it', async () => {
    const repo = isolatedRepository(redis, 4);
    const withRule = uniqueId('rdy-nocheck');
    const without = uniqueId('nordy-check');
    for (const id of [withRule, without]) await repo.addSignal(id, 'risk', signalJson('risk', 0.6), signalOptions(10_000));

    const a = await repo.start(startInput(withRule, { timeoutMs: 300_000, checkMs: 2_000, readyRule: '1||momentum' }));
    const b = await repo.start(startInput(without, { timeoutMs: 300_000, checkMs: 2_000 }));

    if (a.kind !== 'started' || b.kind !== 'started') throw new Error(`${a.kind} ${b.kind}`);
    expect([a.next, a.earlyCount]).toEqual(['wait', 1]);
    expect([b.next, b.earlyCount]).toEqual(['ask', 1]);
    expect(Number(await redis.zscore(repo.keys.forWorkflow(withRule).deadlines, withRule))).toBe(a.workflow.deadlineMs);
    expect(Number(await redis.zscore(repo.keys.forWorkflow(without).deadlines, without))).toBe(b.workflow.startedMs + 2_000);
    // The rule instead of a version (nobody compares versions where Redis judges readiness).
    expect(await redis.hmget(repo.keys.forWorkflow(withRule).wf, 'status', 'ver', 'rdy')).toEqual(['waiting_for_agents', null, '1||momentum']);
    expect(await redis.hget(repo.keys.forWorkflow(without).wf, 'ver')).toBe('1');
    expect(b.workflow.hasRule).toBe(false);
  });

  it('a duplicate start of a workflow frozen by its rule returns the frozen snapshot and changes nothing', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rdy-dup');
    await repo.addSignal(corrId, 'risk', signalJson('risk', 0.6), signalOptions(10_000));
    const first = await repo.start(startInput(corrId, { readyRule: '0|risk|' }));
    if (first.kind !== 'started') throw new Error(first.kind);
    expect(first.next).toBe('decide');
    const k = repo.keys.forWorkflow(corrId);
    const wfBefore = await redis.hgetall(k.wf);
    const scoreBefore = await redis.zscore(k.deadlines, corrId);

    const again = await repo.start(startInput(corrId, { readyRule: null }));

    expect(again).toEqual({ kind: 'duplicate', workflow: first.workflow });
    expect(await redis.hgetall(k.wf)).toEqual(wfBefore);
    expect(await redis.zscore(k.deadlines, corrId)).toBe(scoreBefore);
  });
});

describe('signals on a workflow with a rule (add-signals-2.lua)', () => {
  it('a signal that does not make it ready stores it (and its sequence; no version) but sets no check entry and sends no snapshot', async () => {
    const repo = isolatedRepository(redis, 4);
    const corrId = uniqueId('rdy-short');
    const k = repo.keys.forWorkflow(corrId);
    const started = await repo.start(startInput(corrId, { timeoutMs: 300_000, readyRule: '0|momentum,risk|' }));

    const result = await repo.addSignal(corrId, 'risk', signalJson('risk', 0.4), signalOptions(5_000, { sequence: 5, checkMs: 10 }));

    expect(result).toEqual({ kind: 'added', workflow: null, nowMs: expect.any(Number) });
    expect(await redis.hmget(k.wf, 'status', 'ver', 'q:risk', 'why', 'frozen')).toEqual(['waiting_for_agents', null, '5', null, null]);
    expect(await redis.hgetall(k.sig)).toEqual({ risk: signalJson('risk', 0.4) });
    expect(Number(await redis.zscore(k.deadlines, corrId))).toBe(started.workflow.deadlineMs);
  });

  it('RACE: every required agent answers at once, over one connection: exactly one signal gets ready (and the snapshot with all of them)', async () => {
    const repo = isolatedRepository(redis, 4);
    const agents = Array.from({ length: 12 }, (_, i) => `agent-${i}`);
    const ids = Array.from({ length: 10 }, () => uniqueId('rdy-race'));
    await Promise.all(ids.map((id) => repo.start(startInput(id, { readyRule: encodeReadiness({ atLeast: 8 }), requiredAgents: agents }))));
    // Scripts loaded first, so that no NOSCRIPT retry (EVALSHA, then EVAL) reorders the calls.
    await repo.addSignal(uniqueId('warm'), 'risk', signalJson('risk', 0.5), signalOptions(5_000));

    const results = await Promise.all(
      ids.map((id) => Promise.all(agents.map((agent) => repo.addSignal(id, agent, signalJson(agent, 0.5), signalOptions(5_000))))),
    );

    for (const [n, id] of ids.entries()) {
      const kinds = results[n].map((r) => r.kind);
      expect(kinds.filter((kind) => kind === 'ready')).toHaveLength(1);
      // Sent in order on one connection: the 8th is the ready one, the rest are late.
      expect(kinds).toEqual([...Array(7).fill('added'), 'ready', ...Array(4).fill('late')]);
      const ready = snapshotOf(results[n][7], 'ready');
      expect(Object.keys(ready.signals)).toHaveLength(8);
      expect(await redis.hgetall(repo.keys.forWorkflow(id).sig)).toEqual(ready.signals);
      expect((await repo.inspect(id)).workflow).toEqual(ready);
    }
  });
});
