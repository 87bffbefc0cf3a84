import { Redis } from 'ioredis';
import { defineScripts } from '../../src/redis/redis-scripts.js';
import { WorkflowRepository } from '../../src/workflow/workflow.repository.js';
import { parseSettings } from '../../src/config/env.schema.js';
import { REDIS_URL, uniqueId } from './env.js';

/** A Redis client with the service's scripts loaded. */
export function scriptedRedis(): Redis {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  defineScripts(redis);
  return redis;
}

/** A repository on its own key prefix, so tests never see each other's keys. */
export function isolatedRepository(redis: Redis, shards = 4): WorkflowRepository {
  const config = {
    ...parseSettings({}).redis,
    prefix: uniqueId('it')
      .replace(/[^A-Za-z0-9_.-]/g, '')
      .slice(0, 32),
    shards,
  };
  return new WorkflowRepository(redis, config);
}

/**
 * Two clients with the service's scripts loaded (two connections, for the integration specs' races),
 * opened before the file's tests and handed to `use`, closed after them.
 */
export function useScriptedPair(use: (redis: Redis, redis2: Redis) => void): void {
  let pair: [Redis, Redis];
  beforeAll(() => {
    pair = [scriptedRedis(), scriptedRedis()];
    use(...pair);
  });
  afterAll(async () => {
    await Promise.all(pair.map((client) => client.quit()));
  });
}
