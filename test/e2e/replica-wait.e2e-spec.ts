import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { ReplicatedRedis } from '../support/servers.js';
import { agentSubject, decisionsFor, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * META_AGENT_REDIS_WAIT_REPLICAS=1 end to end, on a private primary and replica: with the replica stopped
 * (SIGSTOP) the primary still answers PING, but no write is confirmed; the messages are held (no delivery
 * used up: MAX_DELIVERIES=2 with 100 ms retries would dead-letter them at once otherwise), readiness says
 * Redis is down, and once the replica is back the workflow decides, once.
 */
const infra = useInfra();
let redis: ReplicatedRedis;
let app: AppProcess;

beforeAll(async () => {
  redis = await ReplicatedRedis.start('replica-wait-e2e-');
  app = AppProcess.spawn(
    {
      META_AGENT_REDIS_URL: `redis://127.0.0.1:${redis.primaryPort}`,
      META_AGENT_REDIS_WAIT_REPLICAS: '1',
      META_AGENT_REDIS_WAIT_TIMEOUT_MS: '200',
      META_AGENT_MAX_DELIVERIES: '2',
    },
    await freePort(),
  );
  await app.waitReady();
}, 60000);

afterAll(async () => {
  await app?.stop('SIGKILL');
  await redis?.dispose();
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
  await redis.whileReplicaStopped(async () => {
    await publishWorkflow(id);
    await waitFor('messages held: Redis reported unreachable', async () => app.logs('redis unreachable: holding messages until it answers').length > 0);
    expect((await app.get('/health/ready')).status).toBe(503);
    // Long enough for two 100 ms retries many times over, had the deliveries been used up.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await infra.bus.count('DEADLETTER')).toBe(0);
    expect(await decisionsFor(infra.bus, id)).toEqual([]);
  });
  expect(await waitForDecision(infra.bus, id, 20000)).toMatchObject({ corr_id: id, status: 'completed' });
  await waitFor('ready again', async () => (await app.get('/health/ready')).status === 200);
  expect(await infra.bus.count('DEADLETTER')).toBe(0);
  expect(await decisionsFor(infra.bus, id)).toHaveLength(1);
});
