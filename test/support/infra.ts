import { AppProcess } from './app.js';
import { Redis } from 'ioredis';
import { parseSettings } from '../../src/config/env.schema.js';
import { WorkflowKeys } from '../../src/workflow/workflow.keys.js';
import { REDIS_URL, waitFor } from './env.js';
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
    // What an earlier file that failed half-way left running must not consume this file's messages.
    await AppProcess.killLeftovers();
    infra.bus = await openBus();
    infra.redis = new Redis(REDIS_URL);
    if (!options.each) await resetInfra(infra);
  });
  if (options.each) beforeEach(() => resetInfra(infra));
  // With `each`, no service process outlives its test (such files share none between tests). A file's own
  // afterAll, which may stop its services and check their exit codes, runs after this module's: leftovers of
  // a file are killed when the next one starts.
  if (options.each) afterEach(() => AppProcess.killLeftovers());
  afterAll(async () => {
    await infra.bus.close();
    infra.redis.disconnect();
  });
  return infra;
}

/**
 * Waits until the service (default settings: key prefix and shards) has nothing left to do: its consumers
 * idle (every input handled, see Bus.waitForIdle) and no workflow in the due indexes (every workflow
 * finalised with its decision published; nothing for a sweeper to time out, decide again or publish). After
 * that no decision can come any more, whatever a test counts.
 */
export async function waitForQuiet({ bus, redis }: Infra, timeoutMs = 60_000): Promise<void> {
  await bus.waitForIdle('SIGNALS', timeoutMs);
  const { prefix, shards } = parseSettings({}).redis;
  const keys = new WorkflowKeys(prefix, shards);
  await waitFor(
    'every workflow finalised (due indexes empty)',
    async () => {
      for (let shard = 0; shard < shards; shard++) if ((await redis.zcard(keys.deadlines(shard))) > 0) return false;
      return true;
    },
    timeoutMs,
  );
}
