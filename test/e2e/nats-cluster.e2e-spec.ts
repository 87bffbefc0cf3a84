import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { AppProcess, freePort } from '../support/app.js';
import { REDIS_URL, uniqueId, waitFor } from '../support/env.js';
import { openBus, type Bus } from '../support/nats.js';
import { ServerProcess } from '../support/servers.js';
import { agentSubject, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * The service on a three-node NATS cluster (JetStream), given all three URLs, with META_AGENT_STREAM_REPLICAS=3:
 * a SIGNALS stream that exists with one replica is raised to three at start (one log line), the streams it
 * creates have three, and it rides out the loss of the node that leads SIGNALS: workflows decide again once
 * the stream has a new leader.
 */
interface NatsNode {
  name: string;
  port: number;
  server: ServerProcess | undefined;
}
let dir: string;
const nodes: NatsNode[] = [];
let bus: Bus;
let jsm: JetStreamManager;
let app: AppProcess;
let redis: Redis;
/** Whether a start logged raising SIGNALS to three replicas. */
let raised = false;

const url = (n: NatsNode) => `nats://127.0.0.1:${n.port}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nats-cluster-e2e-'));
  const ports: number[] = [];
  while (ports.length < 6) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const routes = [3, 4, 5].map((i) => `nats-route://127.0.0.1:${ports[i]}`).join(', ');
  for (let i = 0; i < 3; i++) {
    const node: NatsNode = { name: `n${i + 1}`, port: ports[i], server: undefined };
    const conf = join(dir, `${node.name}.conf`);
    writeFileSync(
      conf,
      `server_name: ${node.name}\nlisten: 127.0.0.1:${node.port}\njetstream { store_dir: "${join(dir, node.name)}" }\ncluster { name: e2e, listen: 127.0.0.1:${ports[i + 3]}, routes: [${routes}] }\n`,
    );
    node.server = ServerProcess.start('nats-server', ['-c', conf]);
    nodes.push(node);
  }
  bus = await waitFor(
    'the NATS cluster answering JetStream',
    async () => {
      const b = await openBus(url(nodes[0]));
      try {
        jsm = await jetstreamManager(b.nc);
        await jsm.getAccountInfo();
        return b;
      } catch {
        await b.close();
        return undefined;
      }
    },
    30000,
    500,
  );
  // Every node has joined JetStream's meta group once a stream of three replicas can be placed.
  await waitFor(
    'three JetStream peers',
    async () => {
      await jsm.streams.add({ name: 'PEERS', subjects: ['peers.probe'], num_replicas: 3 });
      return jsm.streams.delete('PEERS');
    },
    30000,
    500,
  );
  // A SIGNALS stream as an earlier deployment left it: one replica.
  await waitFor(
    'SIGNALS created with one replica',
    () =>
      jsm.streams.add({ name: 'SIGNALS', subjects: ['signals.>'], num_replicas: 1 }).then(
        () => true,
        () => false,
      ),
    30000,
    500,
  );
  redis = new Redis(REDIS_URL);
  await redis.flushall();
  // JetStream places a stream only on peers it heard from lately; on a loaded machine a peer can miss that,
  // and provisioning fails with "insufficient resources": start-up fails, as it should, and the service is
  // started again (as an orchestrator would restart it), up to three times.
  for (let attempt = 1; ; attempt++) {
    app = AppProcess.spawn({ META_AGENT_NATS_URL: nodes.map(url).join(','), META_AGENT_STREAM_REPLICAS: '3' }, await freePort());
    try {
      await app.waitReady(30000);
      raised ||= app.logs('stream SIGNALS has 1 replica, below META_AGENT_STREAM_REPLICAS (3): raising it to 3').length === 1;
      break;
    } catch (error) {
      raised ||= app.logs('stream SIGNALS has 1 replica, below META_AGENT_STREAM_REPLICAS (3): raising it to 3').length === 1;
      await app.stop('SIGKILL');
      if (attempt >= 3 || app.logs('start-up failed: insufficient resources').length === 0) throw error;
    }
  }
}, 90000);

afterAll(async () => {
  await app?.stop('SIGKILL');
  await bus?.close().catch(() => undefined);
  redis?.disconnect();
  for (const n of nodes) await n.server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

async function decides(): Promise<void> {
  const id = uniqueId('nc');
  // Right after an election a publish may find no leader yet: sent again under its message id (stored once).
  const publish = (subject: string, payload: unknown, msgId: string) =>
    waitFor(`${msgId} stored`, () => bus.publish(subject, payload, { 'Nats-Msg-Id': msgId }).then(() => true), 30000, 500);
  await publish(TRIGGER_SUBJECT, trigger(id), `${id}-t`);
  await publish(agentSubject('momentum'), momentum(id), `${id}-m`);
  await publish(agentSubject('risk'), risk(id), `${id}-r`);
  expect(await waitForDecision(bus, id, 30000)).toMatchObject({ corr_id: id, status: 'completed' });
}

it('raises SIGNALS to three replicas at start (one line) and creates the other streams with three', async () => {
  // The line of the start that succeeded (a failed start before it may have raised it already).
  expect(app.logs('stream SIGNALS has 1 replica, below META_AGENT_STREAM_REPLICAS (3): raising it to 3').length).toBeLessThanOrEqual(1);
  expect(raised).toBe(true);
  for (const name of ['SIGNALS', 'DECISIONS', 'DEADLETTER']) expect((await jsm.streams.info(name)).config.num_replicas).toBe(3);
  await decides();
});

it('rides out the loss of the node leading SIGNALS', async () => {
  const leader = await waitFor(
    'SIGNALS led, every replica current',
    async () => {
      const info = await jsm.streams.info('SIGNALS');
      const replicas = info.cluster?.replicas ?? [];
      return replicas.length === 2 && replicas.every((r) => r.current) ? info.cluster?.leader : undefined;
    },
    30000,
    200,
  );
  const victim = nodes.find((n) => n.name === leader)!;
  // The test's own connection goes through another node.
  await bus.close();
  bus = await openBus(url(nodes.find((n) => n !== victim)!));
  jsm = await jetstreamManager(bus.nc);
  await victim.server?.kill();
  victim.server = undefined;
  await waitFor(
    'SIGNALS led by another node',
    async () => {
      const info = await jsm.streams.info('SIGNALS').catch(() => undefined);
      return info?.cluster?.leader !== undefined && info.cluster.leader !== victim.name;
    },
    30000,
    200,
  );
  await decides();
  expect((await app.get('/health/ready')).status).toBe(200);
});
