import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { redisConfig, type RedisConfig } from '../config/configuration.js';
import { REDIS_CLIENT, withRedirects, type RedisClient } from '../redis/redis-client.js';
import type { SuspectLedger } from '../transport/jetstream/isolation.js';
import { JetStreamServer } from '../transport/jetstream/jetstream.server.js';
import { WorkflowKeys } from './workflow.keys.js';

/** A record outlives any redelivery of its message (ack waits and back-off are seconds to minutes); then it expires. */
const RECORD_TTL_MS = 24 * 3600 * 1000;

/**
 * The transport's suspect ledger in Redis (src/transport/jetstream/isolation.ts): per message, a small hash
 * `run` (runs alone started and not ended) and `fail` (failed attempts). Written only for suspects and failed
 * messages, never on the normal path; dropped once the message is settled for good.
 */
@Injectable()
export class RedisSuspectLedger implements SuspectLedger, OnModuleInit {
  private readonly keys: WorkflowKeys;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: RedisClient,
    @Inject(redisConfig.KEY) config: RedisConfig,
    private readonly server: JetStreamServer,
  ) {
    this.keys = new WorkflowKeys(config.prefix, config.shards);
  }

  onModuleInit(): void {
    this.server.useSuspectLedger(this);
  }

  async arm(stream: string, sequence: number): Promise<number> {
    return (await this.increment(stream, sequence, 'run')) - 1;
  }

  async disarm(stream: string, sequence: number): Promise<void> {
    await withRedirects(this.redis, () => this.redis.hincrby(this.keys.suspect(stream, sequence), 'run', -1));
  }

  recordFailure(stream: string, sequence: number): Promise<number> {
    return this.increment(stream, sequence, 'fail');
  }

  async forget(stream: string, sequence: number): Promise<void> {
    await withRedirects(this.redis, () => this.redis.del(this.keys.suspect(stream, sequence)));
  }

  private async increment(stream: string, sequence: number, field: 'run' | 'fail'): Promise<number> {
    const key = this.keys.suspect(stream, sequence);
    const replies = await withRedirects(this.redis, () => this.redis.multi().hincrby(key, field, 1).pexpire(key, RECORD_TTL_MS).exec());
    const [error, value] = replies?.[0] ?? [new Error('transaction discarded'), null];
    if (error) throw error;
    return Number(value);
  }
}
