import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { ephemeralRedisArgs, redisAnswers, redisServerBin, ServerProcess } from '../support/servers.js';
import { agentSubject, decisionsFor, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * META_AGENT_REDIS_WAIT_REPLICAS=1 end to end, on a private primary and replica: with the replica stopped
 * (SIGSTOP) the primary still answers PING, but no write is confirmed; the messages are held (no delivery
 * used up: MAX_DELIVERIES=2 with 100 ms retries would dead-letter them at once otherwise), readiness says
 * Redis is down, and once the replica is back the workflow decides, once.
 */
const infra = useInfra();
let dir: string;
let primary: ServerProcess;
let replica: ServerProcess;
let app: AppProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'replica-wait-e2e-'));
  const primaryPort = await freePort();
  let replicaPort = await freePort();
  while (replicaPort === primaryPort) replicaPort = await freePort();
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
  const probe = new Redis(primaryPort, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    await waitFor('replica in sync', async () => /^slave0:.*state=online/m.test(await probe.info('replication')));
  } finally {
    probe.disconnect();
  }
  app = AppProcess.spawn(
    {
      META_AGENT_REDIS_URL: `redis://127.0.0.1:${primaryPort}`,
      META_AGENT_REDIS_WAIT_REPLICAS: '1',
      META_AGENT_REDIS_WAIT_TIMEOUT_MS: '200',
      META_AGENT_MAX_DELIVERIES: '2',
    },
    await freePort(),
  );
  await app.waitReady();
}, 60000);

afterAll(async () => {
  replica?.child.kill('SIGCONT');
  await app?.stop('SIGKILL');
  await replica?.kill();
  await primary?.kill();
  rmSync(dir, { recursive: true, force: true });
});

async function publishWorkflow(id: string): Promise<void> {
  await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
  await infra.bus.publish(agentSubject('momentum'), momentum(id));
  await infra.bus.publish(agentSubject('risk'), risk(id));
}

it('logs the replicas it found, and decides with the wait on', async () => {
  expect(app.logs('Redis topology: standalone with 1 connected replicas')).toHaveLength(1);
  const id = uniqueId('rw');
  await publishWorkflow(id);
  expect(await waitForDecision(infra.bus, id)).toMatchObject({ corr_id: id, status: 'completed' });
});

it('holds the messages while the replica does not confirm (PING still answers), and decides once it does', async () => {
  const id = uniqueId('rw-held');
  replica.child.kill('SIGSTOP');
  try {
    await publishWorkflow(id);
    await waitFor('messages held: Redis reported unreachable', async () => app.logs('redis unreachable: holding messages until it answers').length > 0);
    expect((await app.get('/health/ready')).status).toBe(503);
    // Long enough for two 100 ms retries many times over, had the deliveries been used up.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await infra.bus.count('DEADLETTER')).toBe(0);
    expect(await decisionsFor(infra.bus, id)).toEqual([]);
  } finally {
    replica.child.kill('SIGCONT');
  }
  expect(await waitForDecision(infra.bus, id, 20000)).toMatchObject({ corr_id: id, status: 'completed' });
  await waitFor('ready again', async () => (await app.get('/health/ready')).status === 200);
  expect(await infra.bus.count('DEADLETTER')).toBe(0);
  expect(await decisionsFor(infra.bus, id)).toHaveLength(1);
});
