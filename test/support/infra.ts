import { Redis } from 'ioredis';
import { REDIS_URL } from './env.js';
import { openBus, type Bus } from './nats.js';

export interface Infra {
  bus: Bus;
  redis: Redis;
}

/** Empty streams and an empty Redis: the service provisions what it needs when it starts. */
export async function resetInfra({ bus, redis }: Infra): Promise<void> {
  await bus.deleteStreams('SIGNALS', 'DECISIONS', 'DEADLETTER', 'AUDIT');
  await redis.flushall();
}

/**
 * Registers the hooks of an e2e file: a NATS bus and a Redis client for the file, reset to a clean
 * slate before the file (or before each test with `each: true`), closed after it.
 */
export function useInfra(options: { each?: boolean } = {}): Infra {
  const infra = {} as Infra;
  beforeAll(async () => {
    infra.bus = await openBus();
    infra.redis = new Redis(REDIS_URL);
    if (!options.each) await resetInfra(infra);
  });
  if (options.each) beforeEach(() => resetInfra(infra));
  afterAll(async () => {
    await infra.bus.close();
    infra.redis.disconnect();
  });
  return infra;
}
