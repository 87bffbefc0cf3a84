import type { ScriptArgs, ScriptReply } from '../redis/script-replies.js';

/**
 * Calls of one batched script (start-workflows-2, add-signals-2, finalize-2) gathered over one event-loop
 * turn and sent as one script call per shard at its end (setImmediate): the messages a pull handed over
 * together are stored together, each caller with its own result.
 *
 * A call carries the arguments shared by the batch (`head`: settings such as the lease; calls with other
 * values go in another batch) and its own (`args`); `send` runs the script for one shard and answers one
 * reply item per call, in order. Every caller is settled, whatever happens:
 *  - its item is parsed by the caller's own `parse` (a throw rejects that caller alone, e.g. a step Redis
 *    refused for that message only);
 *  - a call that fails as a whole (Redis away, a redirect that outlived its retries, a replication wait
 *    that fell short) rejects the callers of that batch, and no other: the other shards' batches are
 *    separate calls;
 *  - a reply with fewer items than calls rejects the callers left without one.
 */
export class TurnBatches<T> {
  private pending = new Map<number, Batch<T>[]>();
  private scheduled = false;

  constructor(
    /** For messages: the script's file name. */
    private readonly script: string,
    /** At most this many calls in one script call: a script blocks Redis while it runs. */
    private readonly max: number,
    private readonly send: (shard: number, head: ScriptArgs, args: ScriptArgs) => Promise<ScriptReply[]>,
  ) {}

  add<R extends T>(shard: number, head: ScriptArgs, args: ScriptArgs, parse: (item: ScriptReply) => R): Promise<R> {
    let batches = this.pending.get(shard);
    if (!batches) this.pending.set(shard, (batches = []));
    let batch = batches.at(-1);
    if (!batch || batch.waiters.length >= this.max || !sameHead(batch.head, head)) batches.push((batch = { head, args: [], waiters: [] }));
    for (const arg of args) batch.args.push(arg);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    const waiters = batch.waiters;
    return new Promise<R>((resolve, reject) => waiters.push({ resolve: resolve as (value: T) => void, reject, parse }));
  }

  private flush(): void {
    this.scheduled = false;
    const pending = this.pending;
    this.pending = new Map();
    for (const [shard, batches] of pending) {
      for (const batch of batches) {
        const fail = (error: unknown) => batch.waiters.forEach((w) => w.reject(error));
        let reply: Promise<ScriptReply[]>;
        try {
          reply = this.send(shard, batch.head, batch.args);
        } catch (error) {
          fail(error);
          continue;
        }
        reply.then((items) => this.settle(batch, items), fail);
      }
    }
  }

  private settle(batch: Batch<T>, items: ScriptReply[]): void {
    batch.waiters.forEach((waiter, i) => {
      const item = items[i];
      if (!Array.isArray(item)) {
        waiter.reject(new Error(`${this.script} answered ${items.length} items for ${batch.waiters.length} calls`));
        return;
      }
      let result: T;
      try {
        result = waiter.parse(item);
      } catch (error) {
        waiter.reject(error);
        return;
      }
      waiter.resolve(result);
    });
  }
}

interface Batch<T> {
  head: ScriptArgs;
  args: ScriptArgs;
  waiters: { resolve: (value: T) => void; reject: (error: unknown) => void; parse: (item: ScriptReply) => T }[];
}

function sameHead(a: ScriptArgs, b: ScriptArgs): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A step Redis refused for one message of a batched call (the item `{ -1, error }`): that message fails alone. */
export class ScriptItemError extends Error {
  constructor(script: string, message: string) {
    super(`${script}: ${message}`);
    this.name = 'ScriptItemError';
  }
}
