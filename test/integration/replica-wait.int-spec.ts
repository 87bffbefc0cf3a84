import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { TransientError } from '../../src/common/errors.js';
import { parseSettings } from '../../src/config/env.schema.js';
import { defineScripts } from '../../src/redis/redis-scripts.js';
import { WorkflowRepository } from '../../src/workflow/workflow.repository.js';
import { freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { ephemeralRedisArgs, redisAnswers, redisServerBin, ServerProcess } from '../support/servers.js';
import { corrIdsInShard, signalJson, signalOptions, startInput } from './repository-fixtures.js';

/*
 * Replication before acknowledgement (META_AGENT_REDIS_WAIT_REPLICAS) against a real primary and replica
 * (`redis-server --replicaof`): writes return once the replica has them, one WAIT covering the writes of a
 * turn; with the replica stopped (SIGSTOP) a write is reported as not replicated (TransientError), the
 * probe fails until the replica caught up, and the write, run again, is found.
 */
let dir: string;
let primaryPort: number;
let replicaPort: number;
let primary: ServerProcess;
let replica: ServerProcess;
let client: Redis;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'replica-wait-'));
  primaryPort = await freePort();
  replicaPort = await freePort();
  primary = ServerProcess.start(redisServerBin(), [
    '--port',
    String(primaryPort),
    ...ephemeralRedisArgs(dir, ['--dbfilename', 'p.rdb', '--repl-diskless-sync-delay', '0']),
  ]);
  await waitFor('primary up', () => redisAnswers(primaryPort));
  replica = ServerProcess.start(redisServerBin(), [
    '--port',
    String(replicaPort),
    ...ephemeralRedisArgs(dir, ['--dbfilename', 'r.rdb', '--replicaof', '127.0.0.1', String(primaryPort)]),
  ]);
  client = new Redis(primaryPort, '127.0.0.1', { maxRetriesPerRequest: 1, enableAutoPipelining: true });
  defineScripts(client);
  await waitFor('replica in sync', async () => /^slave0:.*state=online/m.test(await client.info('replication')));
});

afterAll(async () => {
  client?.disconnect();
  replica?.child.kill('SIGCONT');
  await replica?.kill();
  await primary?.kill();
  rmSync(dir, { recursive: true, force: true });
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
  const onReplica = new Redis(replicaPort, '127.0.0.1', { maxRetriesPerRequest: 1 });
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
  replica.child.kill('SIGSTOP');
  try {
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
  } finally {
    replica.child.kill('SIGCONT');
  }
  await waitFor('the probe answers again', () =>
    repo.ping().then(
      () => true,
      () => false,
    ),
  );
  expect((await repo.addSignal(id, 'momentum', signalJson('momentum', 0.7), options)).kind).toBe('duplicate');
});
