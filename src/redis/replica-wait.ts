import type { Redis } from 'ioredis';
import { TransientError } from '../common/errors.js';
import { connectionFor, nodeKeyOf, primaries, type RedisClient } from './redis-client.js';

export interface ReplicaWaitOptions {
  /** Replicas that must confirm (WAIT's numreplicas, WAITAOF's numreplicas). */
  replicas: number;
  timeoutMs: number;
  /** WAITAOF 1 <replicas> <timeout> instead of WAIT <replicas> <timeout>. */
  aof: boolean;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
  /** The socket the connection had when the write was answered: a WAIT on another one does not cover it. */
  socket: unknown;
}

/**
 * Replication before acknowledgement (META_AGENT_REDIS_WAIT_REPLICAS): after a write, `after(key)` resolves
 * once enough replicas (and, with WAITAOF, the AOFs) hold it, and rejects with a `TransientError` if they do
 * not within the timeout.
 *
 * WAIT counts only the writes of the connection it is sent on, up to the moment it is sent, and blocks that
 * connection while it waits. So it goes to the connection that took the write (on a cluster, the primary of
 * the key's slot, the connection ioredis sent the write on), and it is batched: the writes whose replies
 * arrived in one event-loop turn share one WAIT per connection, sent at the end of the turn (setImmediate),
 * after all of them.
 */
export class ReplicaWait {
  private pending = new Map<Redis, Waiter[]>();
  private scheduled = false;
  /** WAITs sent (one per connection per turn with writes): what the batching saves is visible here. */
  sent = 0;

  constructor(
    private readonly client: RedisClient,
    readonly options: ReplicaWaitOptions,
  ) {}

  /** Call once a write to `key` has been answered: resolves when it is replicated as asked. */
  after(key: string): Promise<void> {
    const connection = connectionFor(this.client, key);
    if (!connection) return Promise.reject(new TransientError(`no primary known for the slot of ${key}: cannot wait for its replicas`));
    let waiters = this.pending.get(connection);
    if (!waiters) this.pending.set(connection, (waiters = []));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    const list = waiters;
    const socket = connection.stream;
    return new Promise<void>((resolve, reject) => list.push({ resolve, reject, socket }));
  }

  private flush(): void {
    this.scheduled = false;
    const pending = this.pending;
    this.pending = new Map();
    for (const [connection, waiters] of pending) {
      this.waitOn(connection).then(
        () => {
          // A reconnect between a write's reply and the WAIT sends the WAIT on the new socket, where it
          // counts none of the old one's writes: those are not known to be replicated.
          for (const w of waiters) {
            if (w.socket === connection.stream) w.resolve();
            else
              w.reject(
                new TransientError(`the connection to ${nodeKeyOf(connection)} was re-established before the WAIT: the write is not known to be replicated`),
              );
          }
        },
        (error: unknown) => waiters.forEach((w) => w.reject(error)),
      );
    }
  }

  /** One WAIT (or WAITAOF) on `connection`; rejects with a TransientError on a shortfall or a failure. */
  async waitOn(connection: Redis, timeoutMs = this.options.timeoutMs): Promise<void> {
    const { replicas, aof } = this.options;
    this.sent++;
    let reply: unknown;
    try {
      reply = aof ? await connection.call('WAITAOF', 1, replicas, timeoutMs) : await connection.call('WAIT', replicas, timeoutMs);
    } catch (error) {
      throw new TransientError(`${aof ? 'WAITAOF' : 'WAIT'} on ${nodeKeyOf(connection)} failed: ${(error as Error).message}`, { cause: error });
    }
    const shortfall = describeShortfall(reply, replicas, aof);
    if (shortfall) {
      throw new TransientError(
        `write not confirmed on ${nodeKeyOf(connection)} within ${timeoutMs} ms: ${shortfall} (META_AGENT_REDIS_WAIT_REPLICAS=${replicas})`,
      );
    }
  }

  /**
   * The dependency probe's part (FlowControl, health): every primary's connection confirms its writes
   * so far within `timeoutMs`. While a replica is behind or gone this fails, so messages whose WAIT fell short
   * are held (no delivery used up) until the replicas have caught up.
   */
  async check(timeoutMs: number): Promise<void> {
    await Promise.all(primaries(this.client).map((connection) => this.waitOn(connection, timeoutMs)));
  }
}

/** Null when the reply meets the wait; else what fell short. WAIT answers a count, WAITAOF [local, replicas]. */
export function describeShortfall(reply: unknown, replicas: number, aof: boolean): string | null {
  if (aof) {
    const [local, remote] = Array.isArray(reply) ? reply.map(Number) : [NaN, NaN];
    if (local >= 1 && remote >= replicas) return null;
    if (!(local >= 1)) return 'the local AOF fsync did not complete';
    return `${remote} of ${replicas} replicas fsynced it`;
  }
  const count = Number(reply);
  return count >= replicas ? null : `${count} of ${replicas} replicas acknowledged it`;
}
