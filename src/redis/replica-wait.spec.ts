import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { TransientError } from '../common/errors.js';
import { keySlot, withRedirects, type RedisClient } from './redis-client.js';
import { describeShortfall, ReplicaWait } from './replica-wait.js';

type FakeNode = Redis & { calls: unknown[][]; failNext?: Error };

/** A node connection that answers WAIT/WAITAOF with `reply` and records every call. */
function fakeNode(port: number, reply: unknown = 1): FakeNode {
  const node = {
    options: { host: '10.0.0.1', port },
    calls: [] as unknown[][],
    failNext: undefined as Error | undefined,
    call(...args: unknown[]) {
      node.calls.push(args);
      const failure = node.failNext;
      node.failNext = undefined;
      return failure ? Promise.reject(failure) : Promise.resolve(reply);
    },
  };
  return node as unknown as FakeNode;
}

/** A command that fails with each of `failures` in turn, then answers 'ok'; counts its runs. */
function flaky(failures: Error[], always = false): { run: () => Promise<string>; runs: number } {
  const f = {
    runs: 0,
    run: () => {
      const failure = always ? failures[0] : failures[f.runs];
      f.runs++;
      return failure ? Promise.reject(failure) : Promise.resolve('ok');
    },
  };
  return f;
}

/** A cluster whose slots 0..8191 are served by `a` and the rest by `b`. */
function fakeCluster(a: Redis, b: Redis): Cluster {
  const slots = Array.from({ length: 16384 }, (_, slot) => [slot < 8192 ? `10.0.0.1:${a.options.port}` : `10.0.0.1:${b.options.port}`]);
  return { isCluster: true, slots, nodes: (role: string) => (role === 'master' ? [a, b] : []) } as unknown as Cluster;
}

const options = { replicas: 1, timeoutMs: 300, aof: false };

describe('ReplicaWait', () => {
  it('covers the writes of one event-loop turn with one WAIT on the connection, sent after them', async () => {
    const redis = fakeNode(6379);
    const wait = new ReplicaWait(redis, options);
    const done = Promise.all(['{ma:0}:wf:a', '{ma:1}:wf:b', '{ma:2}:deadlines'].map((key) => wait.after(key)));
    expect(redis.calls).toEqual([]); // not before the turn ends
    await done;
    expect(redis.calls).toEqual([['WAIT', 1, 300]]);
    expect(wait.sent).toBe(1);
  });

  it('sends one WAIT per turn: writes answered in a later turn get their own', async () => {
    const redis = fakeNode(6379);
    const wait = new ReplicaWait(redis, options);
    const first = wait.after('{ma:0}:wf:a');
    await nextTurn();
    const second = wait.after('{ma:0}:wf:b');
    await Promise.all([first, second]);
    expect(redis.calls).toHaveLength(2);
  });

  it('rejects every write of the batch with a TransientError when fewer replicas confirm', async () => {
    const redis = fakeNode(6379, 0);
    const wait = new ReplicaWait(redis, { ...options, replicas: 2 });
    const results = await Promise.allSettled([wait.after('{ma:0}:wf:a'), wait.after('{ma:3}:wf:b')]);
    expect(redis.calls).toHaveLength(1);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as TransientError;
      expect(reason).toBeInstanceOf(TransientError);
      expect(reason.retryable).toBe(true);
      expect(reason.message).toContain('0 of 2 replicas acknowledged it');
    }
  });

  it('turns a failed WAIT (connection lost) into a TransientError', async () => {
    const redis = fakeNode(6379);
    redis.failNext = new Error('Connection is closed.');
    const wait = new ReplicaWait(redis, options);
    await expect(wait.after('{ma:0}:wf:a')).rejects.toThrow(TransientError);
  });

  it('on a cluster, sends one WAIT to each primary that took writes this turn, and none to the others', async () => {
    const a = fakeNode(7000);
    const b = fakeNode(7001);
    const idle = fakeNode(7002);
    const wait = new ReplicaWait(fakeCluster(a, b), options);
    const keys = Array.from({ length: 16 }, (_, i) => `{ma:${i}}:deadlines`);
    await Promise.all(keys.map((key) => wait.after(key)));
    const onA = keys.filter((k) => keySlot(k) < 8192).length;
    expect(onA).toBeGreaterThan(0);
    expect(onA).toBeLessThan(keys.length);
    expect(a.calls).toHaveLength(1);
    expect(b.calls).toHaveLength(1);
    expect(idle.calls).toEqual([]);
  });

  it('a shortfall on one primary fails only the writes that went to it', async () => {
    const a = fakeNode(7000, 1);
    const b = fakeNode(7001, 0);
    const wait = new ReplicaWait(fakeCluster(a, b), options);
    const keyA = ['{ma:0}:wf:x', '{ma:1}:wf:x', '{ma:2}:wf:x', '{ma:3}:wf:x'].find((k) => keySlot(k) < 8192)!;
    const keyB = ['{ma:0}:wf:x', '{ma:1}:wf:x', '{ma:2}:wf:x', '{ma:3}:wf:x'].find((k) => keySlot(k) >= 8192)!;
    const [onA, onB] = await Promise.allSettled([wait.after(keyA), wait.after(keyB)]);
    expect(onA.status).toBe('fulfilled');
    expect(onB.status).toBe('rejected');
    expect(((onB as PromiseRejectedResult).reason as Error).message).toContain('10.0.0.1:7001');
  });

  it('fails the writes answered on a socket the connection no longer has (a reconnect before the WAIT)', async () => {
    const redis = fakeNode(6379);
    const wait = new ReplicaWait(redis, options);
    (redis as unknown as { stream: object }).stream = { id: 'old socket' };
    const before = wait.after('{ma:0}:wf:a');
    (redis as unknown as { stream: object }).stream = { id: 'new socket' };
    const after = wait.after('{ma:0}:wf:b');
    const [old, fresh] = await Promise.allSettled([before, after]);
    expect(redis.calls).toHaveLength(1);
    expect(old.status).toBe('rejected');
    expect(((old as PromiseRejectedResult).reason as Error).message).toContain('re-established before the WAIT');
    expect(fresh.status).toBe('fulfilled');
  });

  it('uses WAITAOF 1 <n> <timeout> when asked, and reads its two counts', async () => {
    const redis = fakeNode(6379, [1, 1]);
    await new ReplicaWait(redis, { ...options, aof: true }).after('{ma:0}:wf:a');
    expect(redis.calls).toEqual([['WAITAOF', 1, 1, 300]]);
    expect(describeShortfall([1, 0], 1, true)).toBe('0 of 1 replicas fsynced it');
    expect(describeShortfall([0, 1], 1, true)).toBe('the local AOF fsync did not complete');
    expect(describeShortfall([1, 2], 2, true)).toBeNull();
    expect(describeShortfall(3, 2, false)).toBeNull();
  });

  it('check() asks every primary (the probe that holds messages until the replicas caught up)', async () => {
    const a = fakeNode(7000);
    const b = fakeNode(7001, 0);
    const wait = new ReplicaWait(fakeCluster(a, b), options);
    await expect(wait.check(100)).rejects.toThrow('within 100 ms');
    expect(a.calls).toEqual([['WAIT', 1, 100]]);
    expect(b.calls).toEqual([['WAIT', 1, 100]]);
  });
});

describe('keySlot', () => {
  it("is Redis Cluster's slot of the key's hash tag (values measured with CLUSTER KEYSLOT on Redis 7.0)", () => {
    expect(keySlot('{ma:0}:wf:abc')).toBe(4098);
    expect(keySlot('{ma:1}:deadlines')).toBe(35);
    expect(keySlot('{ma:2}')).toBe(12352);
    expect(keySlot('{ma:15}:recent')).toBe(1526);
    expect(keySlot('foo')).toBe(12182);
    // An empty tag does not count: the whole key is hashed.
    expect(keySlot('{}foo')).not.toBe(keySlot('foo'));
  });
});

describe('withRedirects', () => {
  const moved = () => Object.assign(new Error('MOVED 4098 127.0.0.1:7005'), { name: 'ReplyError' });

  it('on a cluster, refreshes the slot map and runs the command again after MOVED', async () => {
    let refreshes = 0;
    const cluster = { isCluster: true, refreshSlotsCache: (done: () => void) => (refreshes++, done()) } as unknown as RedisClient;
    const command = flaky([moved()]);
    await expect(withRedirects(cluster, command.run)).resolves.toBe('ok');
    expect(refreshes).toBe(1);
    expect(command.runs).toBe(2);
  });

  it('gives up after a few redirects, and never retries other errors or on a standalone client', async () => {
    const cluster = { isCluster: true, refreshSlotsCache: (done: () => void) => done() } as unknown as RedisClient;
    const always = flaky([moved()], true);
    await expect(withRedirects(cluster, always.run)).rejects.toThrow('MOVED');
    expect(always.runs).toBe(4);
    const other = flaky([new Error('WRONGTYPE')], true);
    await expect(withRedirects(cluster, other.run)).rejects.toThrow('WRONGTYPE');
    expect(other.runs).toBe(1);
    const standalone = { isCluster: false } as unknown as RedisClient;
    const once = flaky([moved()], true);
    await expect(withRedirects(standalone, once.run)).rejects.toThrow('MOVED');
    expect(once.runs).toBe(1);
  });
});
