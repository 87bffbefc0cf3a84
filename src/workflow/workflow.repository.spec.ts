import { jest } from '@jest/globals';
import { parseSettings } from '../config/env.schema.js';
import type { RedisClient } from '../redis/redis-client.js';
import { ADD_SIGNAL, START, type ScriptArgs, type ScriptReply } from '../redis/script-replies.js';
import { ScriptItemError } from './turn-batches.js';
import { WorkflowRepository, type AddSignalOptions, type StartInput } from './workflow.repository.js';

/*
 * The batching of triggers and signals (one script call per shard and event-loop turn) with a scripted
 * client: what each call carries, each message's own result, and how failures stay with their message or
 * shard. The scripts themselves: test/integration (workflow.repository.int-spec.ts and others).
 */

const OPTIONS: AddSignalOptions = { graceMs: 5_000, sequence: 0, storedAtMs: 1_000, checkMs: 1_500, earlyTtlMs: 70_000, leaseMs: 1_500 };
/** A snapshot as common.lua's append_snapshot sends it: each hash's fields and values joined with NUL. */
const snapshot = [
  ['type', 'trading', 'status', 'evaluating', 'started', '100', 'deadline', '60100', 'frozen', '200', 'why', 'decide', 'rdy', '2|a,b|'].join('\0'),
  ['a', '{}', 'b', '{}'].join('\0'),
];

function setUp(script: Record<string, (...keysAndArgs: ScriptArgs) => Promise<ScriptReply>>) {
  const calls: { command: string; keysAndArgs: ScriptArgs }[] = [];
  const client: Record<string, unknown> = {};
  for (const [command, answer] of Object.entries(script)) {
    client[command] = jest.fn((...keysAndArgs: ScriptArgs) => {
      calls.push({ command, keysAndArgs });
      return answer(...keysAndArgs);
    });
  }
  const config = { ...parseSettings({}).redis, prefix: 'ma', shards: 16 };
  const repo = new WorkflowRepository(client as unknown as RedisClient, config);
  return { repo, calls };
}

/** corr_ids, `count` of them in shard `shard`. */
function inShard(repo: WorkflowRepository, shard: number, count: number, tag = 's'): string[] {
  const ids: string[] = [];
  for (let i = 0; ids.length < count; i++) if (repo.keys.shardOf(`${tag}${i}`) === shard) ids.push(`${tag}${i}`);
  return ids;
}

/** Signal items answered per corr_id, in the order the call lists them (5 arguments each, after 7). */
function bySignal(answer: (corrId: string) => ScriptReply) {
  return async (...keysAndArgs: ScriptArgs): Promise<ScriptReply[]> => {
    const items: ScriptReply[] = [];
    for (let i = 7; i < keysAndArgs.length; i += 5) items.push(answer(String(keysAndArgs[i])));
    return items;
  };
}

describe('WorkflowRepository.addSignal: one add-signals-2 call per shard and turn', () => {
  it('stores the signals of one turn in one call per shard, and gives each message its own result', async () => {
    const { repo, calls } = setUp({
      addSignals: bySignal((corrId) => {
        if (corrId.startsWith('ready')) return [ADD_SIGNAL.ready, 300, ...snapshot];
        if (corrId.startsWith('dup')) return [ADD_SIGNAL.duplicate, 300];
        if (corrId.startsWith('late')) return [ADD_SIGNAL.late, 'completed'];
        return [ADD_SIGNAL.buffered];
      }),
    });
    // Two messages in shard 3, two in shard 9, sent interleaved.
    const a = inShard(repo, 3, 1, 'ready-')[0];
    const b = inShard(repo, 3, 1, 'dup-')[0];
    const c = inShard(repo, 9, 1, 'late-')[0];
    const d = inShard(repo, 9, 1, 'early-')[0];
    const results = await Promise.all([
      repo.addSignal(a, 'a', '{"x":1}', { ...OPTIONS, sequence: 11 }),
      repo.addSignal(c, 'b', '{"x":2}', { ...OPTIONS, sequence: 12 }),
      repo.addSignal(b, 'a', '{"x":3}', { ...OPTIONS, sequence: 13 }),
      repo.addSignal(d, 'a', '{"x":4}', { ...OPTIONS, sequence: 14, storedAtMs: 2_000 }),
    ]);
    expect(results.map((r) => r.kind)).toEqual(['ready', 'late', 'duplicate', 'buffered']);
    expect(results[0]).toMatchObject({
      kind: 'ready',
      nowMs: 300,
      workflow: { corrId: a, status: 'evaluating', why: 'decide', hasRule: true, signals: { a: '{}', b: '{}' } },
    });
    expect(results[1]).toEqual({ kind: 'late', status: 'completed' });
    expect(results[2]).toEqual({ kind: 'duplicate', workflow: null, nowMs: 300 });
    expect(calls).toEqual([
      {
        command: 'addSignals',
        keysAndArgs: [
          '{ma:3}:deadlines',
          '{ma:3}:early-due',
          '{ma:3}:',
          5_000,
          1_500,
          70_000,
          1_500,
          a,
          'a',
          '{"x":1}',
          11,
          1_000,
          b,
          'a',
          '{"x":3}',
          13,
          1_000,
        ],
      },
      {
        command: 'addSignals',
        keysAndArgs: [
          '{ma:9}:deadlines',
          '{ma:9}:early-due',
          '{ma:9}:',
          5_000,
          1_500,
          70_000,
          1_500,
          c,
          'b',
          '{"x":2}',
          12,
          1_000,
          d,
          'a',
          '{"x":4}',
          14,
          2_000,
        ],
      },
    ]);
  });

  it('fails a message whose step Redis refused, and no other message of its call', async () => {
    const { repo } = setUp({
      addSignals: bySignal((corrId) =>
        corrId.startsWith('bad') ? [ADD_SIGNAL.failed, 'WRONGTYPE Operation against a key holding the wrong kind of value'] : [ADD_SIGNAL.added, 300],
      ),
    });
    const [good1, good2] = inShard(repo, 5, 2, 'good-');
    const bad = inShard(repo, 5, 1, 'bad-')[0];
    const results = await Promise.allSettled([good1, bad, good2].map((id) => repo.addSignal(id, 'a', '{}', OPTIONS)));
    expect(results[0]).toEqual({ status: 'fulfilled', value: { kind: 'added', workflow: null, nowMs: 300 } });
    expect(results[2]).toEqual({ status: 'fulfilled', value: { kind: 'added', workflow: null, nowMs: 300 } });
    expect(results[1].status).toBe('rejected');
    const reason = (results[1] as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(ScriptItemError);
    expect(reason.message).toBe('add-signals-2.lua: WRONGTYPE Operation against a key holding the wrong kind of value');
  });

  it('fails the messages of a shard whose call fails, and those of no other shard', async () => {
    const down = new Error('Connection is closed.');
    const { repo } = setUp({
      addSignals: async (...keysAndArgs) => {
        if (keysAndArgs[0] === '{ma:2}:deadlines') throw down;
        return bySignal(() => [ADD_SIGNAL.added, 300])(...keysAndArgs);
      },
    });
    const [x1, x2] = inShard(repo, 2, 2);
    const [y] = inShard(repo, 4, 1);
    const results = await Promise.allSettled([x1, y, x2].map((id) => repo.addSignal(id, 'a', '{}', OPTIONS)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toBe(down);
  });

  it('puts signals with other options in another call', async () => {
    const { repo, calls } = setUp({ addSignals: bySignal(() => [ADD_SIGNAL.orphaned]) });
    const [x1, x2] = inShard(repo, 1, 2);
    const results = await Promise.all([repo.addSignal(x1, 'a', '{}', OPTIONS), repo.addSignal(x2, 'a', '{}', { ...OPTIONS, graceMs: 0 })]);
    expect(results).toEqual([{ kind: 'orphaned' }, { kind: 'orphaned' }]);
    expect(calls.map((c) => c.keysAndArgs[3])).toEqual([5_000, 0]);
  });
});

describe('WorkflowRepository.start: one start-workflows-2 call per shard and turn', () => {
  const input = (corrId: string, over: Partial<StartInput> = {}): StartInput => ({
    corrId,
    workflowType: 'trading',
    timeoutMs: 60_000,
    requiredAgents: ['a', 'b'],
    metadata: { m: 1 },
    triggerJson: `{"corr_id":"${corrId}"}`,
    checkMs: 1_500,
    readyRule: '2|a,b|',
    leaseMs: 1_500,
    ...over,
  });

  it('starts the triggers of one turn in one call per shard, each with its own result', async () => {
    const { repo, calls } = setUp({
      startWorkflows: async (...keysAndArgs) => {
        const items: ScriptReply[] = [];
        for (let i = 5; i < keysAndArgs.length; i += 7) {
          const corrId = String(keysAndArgs[i]);
          if (corrId.startsWith('dup')) items.push([START.duplicate, 'completed', ...snapshot]);
          else if (corrId.startsWith('bad')) items.push([START.failed, 'WRONGTYPE Operation against a key holding the wrong kind of value']);
          else if (corrId.startsWith('ready')) items.push([START.ready, 400, 2, ...snapshot]);
          else items.push([START.started, 400, 0]);
        }
        return items;
      },
    });
    const fresh = inShard(repo, 6, 1, 'new-')[0];
    const dup = inShard(repo, 6, 1, 'dup-')[0];
    const bad = inShard(repo, 6, 1, 'bad-')[0];
    const ready = inShard(repo, 11, 1, 'ready-')[0];
    const results = await Promise.allSettled([repo.start(input(fresh)), repo.start(input(dup)), repo.start(input(bad)), repo.start(input(ready))]);
    expect(results[0]).toMatchObject({
      status: 'fulfilled',
      value: { kind: 'started', earlyCount: 0, next: 'wait', workflow: { corrId: fresh, startedMs: 400, deadlineMs: 60_400 } },
    });
    expect(results[1]).toMatchObject({ status: 'fulfilled', value: { kind: 'duplicate', workflow: { corrId: dup, status: 'evaluating' } } });
    expect(results[2]).toMatchObject({ status: 'rejected', reason: expect.any(ScriptItemError) });
    expect(results[3]).toMatchObject({
      status: 'fulfilled',
      value: { kind: 'started', earlyCount: 2, next: 'decide', workflow: { corrId: ready, frozenMs: 200 } },
    });
    expect(calls.map((c) => c.keysAndArgs.slice(0, 5))).toEqual([
      ['{ma:6}:deadlines', '{ma:6}:early-due', '{ma:6}:', 1_500, 1_500],
      ['{ma:11}:deadlines', '{ma:11}:early-due', '{ma:11}:', 1_500, 1_500],
    ]);
    expect(calls[0].keysAndArgs.slice(5, 12)).toEqual([fresh, 'trading', 60_000, '["a","b"]', '{"m":1}', `{"corr_id":"${fresh}"}`, '2|a,b|']);
  });
});

describe('WorkflowRepository: snapshots as the scripts send them', () => {
  it('reads a sweep job whole, and reports one whose snapshot is unreadable as broken, alone', async () => {
    const { repo } = setUp({
      sweep: async (...keysAndArgs) => {
        if (keysAndArgs[0] !== '{ma:0}:deadlines') return [0, 0, 5_000];
        return [2, 2, 5_000, ['good', 'timeout', ...snapshot], ['bad', 'timeout', ['type', 'trading', 'status'].join('\0'), '']];
      },
    });
    const swept = await repo.sweep(10, 1_500);
    expect(swept.jobs).toHaveLength(1);
    expect(swept.jobs[0]).toMatchObject({
      kind: 'timeout',
      sweptMs: 5_000,
      workflow: { corrId: 'good', workflowId: 'trading:good', status: 'evaluating', startedMs: 100, deadlineMs: 60_100, signals: { a: '{}', b: '{}' } },
    });
    expect(swept.broken).toEqual([{ corrId: 'bad', error: expect.stringContaining('holds a NUL') }]);
  });

  it('reads an empty signals hash as no signals', async () => {
    const { repo } = setUp({ freeze: async () => [1, 300, snapshot[0], ''] });
    const frozen = await repo.freeze({ corrId: 'c' }, 'cancel', 1_500, 'ops');
    expect(frozen).toMatchObject({ kind: 'frozen', workflow: { corrId: 'c', signals: {} } });
  });

  it("stores a strategy's error without the NUL a snapshot separates its fields with", async () => {
    const read = await setUp({ freeze: async () => [1, 300, ...snapshot] }).repo.freeze({ corrId: 'c' }, 'cancel', 1_500);
    if (read.kind !== 'frozen') throw new Error(`not frozen: ${read.kind}`);
    const { repo, calls } = setUp({ freeze: async () => [1, 300] });
    const frozen = await repo.freeze(read.workflow, 'fail', 1_500, 'Error: a\0b');
    expect(calls[0].keysAndArgs[8]).toBe('Error: a\uFFFDb');
    expect(frozen).toMatchObject({ kind: 'frozen', workflow: { frozenBy: 'Error: a\uFFFDb', why: 'fail' } });
  });
});
