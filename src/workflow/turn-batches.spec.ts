import type { ScriptArgs, ScriptReply } from '../redis/script-replies.js';
import { TurnBatches } from './turn-batches.js';

/** A `send` that records its calls and answers through `answer` (default: each call's first argument back). */
function recorder(answer: (shard: number, head: ScriptArgs, args: ScriptArgs) => Promise<ScriptReply[]> = echo) {
  const calls: { shard: number; head: ScriptArgs; args: ScriptArgs }[] = [];
  const send = (shard: number, head: ScriptArgs, args: ScriptArgs) => {
    calls.push({ shard, head, args: [...args] });
    return answer(shard, head, args);
  };
  return { calls, send };
}

/** One item per call of two arguments: `[ok, <first argument>]`. */
async function echo(_shard: number, _head: ScriptArgs, args: ScriptArgs): Promise<ScriptReply[]> {
  const items: ScriptReply[] = [];
  for (let i = 0; i < args.length; i += 2) items.push([1, args[i]]);
  return items;
}

const value = (item: ScriptReply) => String(item[1]);

describe('TurnBatches', () => {
  it('sends the calls of one turn as one script call per shard, and gives each caller its own item', async () => {
    const { calls, send } = recorder();
    const batches = new TurnBatches<string>('test.lua', 256, send);
    const results = Promise.all([
      batches.add(3, ['h'], ['a', 'x'], value),
      batches.add(5, ['h'], ['b', 'x'], value),
      batches.add(3, ['h'], ['c', 'x'], value),
      batches.add(3, ['h'], ['d', 'x'], value),
    ]);
    expect(calls).toEqual([]); // not before the turn ends
    expect(await results).toEqual(['a', 'b', 'c', 'd']);
    expect(calls).toEqual([
      { shard: 3, head: ['h'], args: ['a', 'x', 'c', 'x', 'd', 'x'] },
      { shard: 5, head: ['h'], args: ['b', 'x'] },
    ]);
  });

  it('starts a new call for calls of a later turn', async () => {
    const { calls, send } = recorder();
    const batches = new TurnBatches<string>('test.lua', 256, send);
    expect(await batches.add(1, [], ['a', 'x'], value)).toBe('a');
    expect(await batches.add(1, [], ['b', 'x'], value)).toBe('b');
    expect(calls.map((c) => c.args)).toEqual([
      ['a', 'x'],
      ['b', 'x'],
    ]);
  });

  it('puts calls with other shared arguments, or past the maximum, in another call', async () => {
    const { calls, send } = recorder();
    const batches = new TurnBatches<string>('test.lua', 2, send);
    const results = await Promise.all([
      batches.add(0, [10], ['a', 'x'], value),
      batches.add(0, [10], ['b', 'x'], value),
      batches.add(0, [10], ['c', 'x'], value),
      batches.add(0, [20], ['d', 'x'], value),
    ]);
    expect(results).toEqual(['a', 'b', 'c', 'd']);
    expect(calls).toEqual([
      { shard: 0, head: [10], args: ['a', 'x', 'b', 'x'] },
      { shard: 0, head: [10], args: ['c', 'x'] },
      { shard: 0, head: [20], args: ['d', 'x'] },
    ]);
  });

  it('fails one caller whose item says so, and no other of its batch', async () => {
    const { send } = recorder(async () => [
      [1, 'a'],
      [-1, 'WRONGTYPE Operation against a key holding the wrong kind of value'],
      [1, 'c'],
    ]);
    const batches = new TurnBatches<string>('test.lua', 256, send);
    const parse = (item: ScriptReply) => {
      if (item[0] === -1) throw new Error(String(item[1]));
      return value(item);
    };
    const results = await Promise.allSettled([batches.add(0, [], ['a'], parse), batches.add(0, [], ['b'], parse), batches.add(0, [], ['c'], parse)]);
    expect(results).toEqual([
      { status: 'fulfilled', value: 'a' },
      { status: 'rejected', reason: new Error('WRONGTYPE Operation against a key holding the wrong kind of value') },
      { status: 'fulfilled', value: 'c' },
    ]);
  });

  it('fails the callers of a shard whose call fails, and those only', async () => {
    const down = new Error('Connection is closed.');
    const { send } = recorder(async (shard, head, args) => {
      if (shard === 2) throw down;
      return echo(shard, head, args);
    });
    const batches = new TurnBatches<string>('test.lua', 256, send);
    const results = await Promise.allSettled([
      batches.add(1, [], ['a', 'x'], value),
      batches.add(2, [], ['b', 'x'], value),
      batches.add(2, [], ['c', 'x'], value),
      batches.add(7, [], ['d', 'x'], value),
    ]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : r.reason))).toEqual(['a', down, down, 'd']);
  });

  it('fails the callers of a call that throws before it is sent', async () => {
    const batches = new TurnBatches<string>('test.lua', 256, (shard, head, args) => {
      if (shard === 0) throw new Error('no script');
      return echo(shard, head, args);
    });
    const results = await Promise.allSettled([batches.add(0, [], ['a', 'x'], value), batches.add(1, [], ['b', 'x'], value)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
  });

  it('fails the callers a short reply leaves without an item', async () => {
    const batches = new TurnBatches<string>('test.lua', 256, async () => [[1, 'a']]);
    const results = await Promise.allSettled([batches.add(0, [], ['a'], value), batches.add(0, [], ['b'], value)]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 'a' });
    expect(results[1]).toEqual({ status: 'rejected', reason: new Error('test.lua answered 1 items for 2 calls') });
  });
});
