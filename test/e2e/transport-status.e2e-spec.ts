import { jetstreamManager } from '@nats-io/jetstream';
import { AppProcess } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { openBus, type Bus } from '../support/nats.js';
import { PrivateNats } from '../support/servers.js';
import { agentSubject, DEFAULT_CONSUMERS, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * Readiness from the transport's events (src/health/transport.health.ts), with a real nats-server of the file's
 * own that the tests stop and start, and a consumer deleted under a running service.
 */
useInfra({ each: true });
let nats: PrivateNats;

beforeAll(async () => {
  nats = await PrivateNats.create();
  await nats.start();
});

afterAll(async () => {
  await nats?.dispose();
});

/** /health/ready's `transport` entry (under `details`, whether up or down). */
async function transportCheck(app: AppProcess): Promise<{ httpStatus: number; transport: Record<string, unknown> | undefined }> {
  const ready = await app.get('/health/ready');
  return { httpStatus: ready.status, transport: ready.body?.details?.transport };
}

/** One workflow through the service: trigger and both agents' signals in, the decision out. */
async function oneWorkflow(bus: Bus, prefix: string): Promise<void> {
  const id = uniqueId(prefix);
  await bus.publish(TRIGGER_SUBJECT, trigger(id));
  await bus.publish(agentSubject('momentum'), momentum(id));
  await bus.publish(agentSubject('risk'), risk(id));
  expect((await waitForDecision(bus, id)).status).toBe('completed');
}

it('NATS goes away: readiness is down at once, naming the connection; up once NATS is back, and consuming goes on', async () => {
  const app = await AppProcess.start({ META_AGENT_NATS_URL: nats.url });
  let bus: Bus | undefined;
  try {
    expect(await transportCheck(app)).toEqual({ httpStatus: 200, transport: { status: 'up', connection: 'connected' } });
    expect(await app.metric('meta_agent_nats_connected')).toBe(1);

    await nats.stop();
    const down = await waitFor('readiness to go down with the connection', async () => {
      const check = await transportCheck(app);
      return check.httpStatus === 503 && check.transport?.status === 'down' ? check : undefined;
    });
    expect(['disconnected', 'reconnecting']).toContain(down.transport?.connection);
    expect(await app.metric('meta_agent_nats_connected')).toBe(0);
    await app.waitForLogs('nats disconnect');

    await nats.start();
    const up = await waitFor(
      'readiness to come back with the connection',
      async () => {
        const check = await transportCheck(app);
        return check.httpStatus === 200 ? check : undefined;
      },
      30000,
    );
    expect(up.transport).toEqual({ status: 'up', connection: 'connected' });
    expect(await app.metric('meta_agent_nats_connected')).toBe(1);
    await app.waitForLogs('nats reconnect');

    bus = await openBus(nats.url);
    await oneWorkflow(bus, 'reconnected');
  } finally {
    await bus?.close();
    expect(await app.stop()).toBe(0);
  }
});

it('a consumer deleted (provisioning off): readiness down naming it until someone makes it again, then consuming resumes', async () => {
  // A first service provisions the streams and consumers; the one under test only checks that they exist.
  const provisioner = await AppProcess.start({ META_AGENT_NATS_URL: nats.url });
  expect(await provisioner.stop()).toBe(0);
  const app = await AppProcess.start({ META_AGENT_NATS_URL: nats.url, META_AGENT_PROVISION: 'false' });
  const bus = await openBus(nats.url);
  try {
    const jsm = await jetstreamManager(bus.nc);
    const consumer = DEFAULT_CONSUMERS.trigger;
    const { config } = await jsm.consumers.info('SIGNALS', consumer);
    expect(await app.metric('meta_agent_consumer_up', { consumer })).toBe(1);

    await jsm.consumers.delete('SIGNALS', consumer);
    const down = await waitFor('readiness to go down with the consumer', async () => {
      const check = await transportCheck(app);
      return check.httpStatus === 503 ? check : undefined;
    });
    // The reason: "consumer deleted" when a pull was waiting on it (nearly always), else what the look-up found.
    expect(down.transport).toEqual({ status: 'down', connection: 'connected', consumers_gone: { [consumer]: expect.any(String) } });
    expect(await app.metric('meta_agent_consumer_up', { consumer })).toBe(0);
    await app.waitForLogs('consumer gone: waiting for it (META_AGENT_PROVISION is off)');

    await jsm.consumers.add('SIGNALS', config);
    await waitFor('readiness to come back with the consumer', async () => (await app.get('/health/ready')).status === 200, 30000);
    expect(await app.metric('meta_agent_consumer_up', { consumer })).toBe(1);
    await app.waitForLogs('consumer back: consuming again');
    // Said once per episode, however often the service looked for it meanwhile.
    expect(app.logs('consumer gone')).toHaveLength(1);

    await oneWorkflow(bus, 'consumer-back');
  } finally {
    await bus.close();
    expect(await app.stop()).toBe(0);
  }
});
