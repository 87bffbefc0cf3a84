import { Redis } from 'ioredis';
import { TransientError } from '../../src/common/errors.js';
import { parseSettings } from '../../src/config/env.schema.js';
import { defineScripts } from '../../src/redis/redis-scripts.js';
import { WorkflowRepository } from '../../src/workflow/workflow.repository.js';
import { uniqueId } from '../support/env.js';
import { ReplicatedRedis } from '../support/servers.js';
import { corrIdsInShard, probeAnswersAgain, signalJson, signalOptions, startInput } from './repository-fixtures.js';

/*
 * Replication before acknowledgement (META_AGENT_REDIS_WAIT_REPLICAS) against a real primary and replica
 * (`redis-server --replicaof`): writes return once the replica has them, one WAIT covering the writes of a
 * turn; with the replica stopped (SIGSTOP) a write is reported as not replicated (TransientError), the
 * probe fails until the replica caught up, and the write, run again, is found.
 */
let redis: ReplicatedRedis;
let client: Redis;

beforeAll(async () => {
  redis = await ReplicatedRedis.start('replica-wait-');
  client = new Redis(redis.primaryPort, '127.0.0.1', { maxRetriesPerRequest: 1, enableAutoPipelining: true });
  defineScripts(client);
});

afterAll(async () => {
  client?.disconnect();
  await redis?.dispose();
});

function repository(waitReplicas: number): WorkflowRepository {
  const prefix = uniqueId('rw')
    .replace(/[^A-Za-z0-9_.-]/g, '')
    .slice(0, 32);
  return new WorkflowRepository(client, { ...parseSettings({}).redis, prefix, shards: 4, waitReplicas, waitTimeoutMs: 300 });
}

it('returns once the replica holds the write: the writes answered in one turn share one WAIT', async () => {
  const repo = repository(1);
  const ids = Array.from({ length: 40 }, (_, i) => `${uniqueId('w')}-${i}`);
  const before = repo.replicaWait!.sent;
  const started = await Promise.all(ids.map((id) => repo.start(startInput(id))));
  expect(started.every((s) => s.kind === 'started')).toBe(true);
  // 40 starts, auto-pipelined: their replies come back together and one WAIT covers them (two if the
  // replies were split over two reads).
  const waits = repo.replicaWait!.sent - before;
  expect(waits).toBeGreaterThanOrEqual(1);
  expect(waits).toBeLessThanOrEqual(2);
  // Every one of them is on the replica already.
  const onReplica = new Redis(redis.replicaPort, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    const found = await Promise.all(ids.map((id) => onReplica.exists(repo.keys.forWorkflow(id).wf)));
    expect(found.every((n) => n === 1)).toBe(true);
  } finally {
    onReplica.disconnect();
  }
  // The sweep's claims (one call per shard) wait too, and reads never do.
  const sent = repo.replicaWait!.sent;
  await repo.sweep(10, 10_000);
  expect(repo.replicaWait!.sent).toBeGreaterThan(sent);
  const afterSweep = repo.replicaWait!.sent;
  await repo.countActive();
  await repo.listIndex('deadlines', { after: null, wanted: 10, budget: 10, statuses: [] });
  await repo.inspect(ids[0]);
  expect(repo.replicaWait!.sent).toBe(afterSweep);
});

it('a write the stopped replica does not confirm is a TransientError; the probe fails until the replica caught up; the write run again is found', async () => {
  const repo = repository(1);
  const [id] = corrIdsInShard(repo, 1, 1);
  await repo.start(startInput(id));
  const options = signalOptions();
  await redis.whileReplicaStopped(async () => {
    const error = await repo.addSignal(id, 'momentum', signalJson('momentum', 0.7), options).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/within 300 ms: 0 of 1 replicas acknowledged it/);
    // Redis answers PING all along; the probe that decides whether messages are held does not.
    expect(await client.ping()).toBe('PONG');
    await expect(repo.ping()).rejects.toThrow(TransientError);
    // Without a wait nothing changes: the same write path answers at once.
    const [other] = corrIdsInShard(repo, 2, 1);
    expect((await repository(0).start(startInput(other))).kind).toBe('started');
  });
  await probeAnswersAgain(repo);
  expect((await repo.addSignal(id, 'momentum', signalJson('momentum', 0.7), options)).kind).toBe('duplicate');
});
