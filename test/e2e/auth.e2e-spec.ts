import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { killAll, PROBE_OPTIONS, ServerProcess } from '../support/servers.js';
import { agentSubject, momentum, risk, trigger, TRIGGER_SUBJECT } from '../support/signals.js';

/*
 * Production credentials: a nats-server that requires user/password and a redis-server that requires a
 * password, both real. Credentials come from variables, files or URLs, and never show in logs or /health.
 */
const NATS_USER = 'orchestrator';
const NATS_PASS = 'n4ts-s3cret-pw';
const REDIS_PASS = 'r3dis-s3cret-pw';

let dir: string;
let natsPort: number;
let redisPort: number;
const servers: ServerProcess[] = [];
let nc: NatsConnection;

function start(cmd: string, args: string[]): void {
  servers.push(ServerProcess.start(cmd, args));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'auth-e2e-'));
  natsPort = await freePort();
  redisPort = await freePort();
  start('nats-server', ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', join(dir, 'nats'), '--user', NATS_USER, '--pass', NATS_PASS]);
  start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--requirepass', REDIS_PASS]);
  nc = await waitFor('nats with auth', () => connect({ servers: `nats://127.0.0.1:${natsPort}`, user: NATS_USER, pass: NATS_PASS }));
  await waitFor('redis with auth', async () => {
    const r = new Redis(redisPort, '127.0.0.1', { ...PROBE_OPTIONS, password: REDIS_PASS });
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } finally {
      r.disconnect();
    }
  });
});

afterAll(async () => {
  await nc?.close();
  await killAll(servers);
  rmSync(dir, { recursive: true, force: true });
});

async function runOneWorkflow(app: AppProcess): Promise<void> {
  const js = jetstream(nc);
  const id = uniqueId('auth');
  await js.publish(TRIGGER_SUBJECT, JSON.stringify(trigger(id)));
  await js.publish(agentSubject('momentum'), JSON.stringify(momentum(id)));
  await js.publish(agentSubject('risk'), JSON.stringify(risk(id)));
  await waitFor('the decision', async () => (await app.get(`/workflows/${id}`)).body?.decision_published === true);
}

function expectNoSecrets(app: AppProcess, extra = ''): void {
  const everything = app.lines.join('\n') + extra;
  expect(everything).not.toContain(NATS_PASS);
  expect(everything).not.toContain(REDIS_PASS);
}

it('connects with credentials from variables and from a file, and works', async () => {
  const passwordFile = join(dir, 'redis-password');
  writeFileSync(passwordFile, `${REDIS_PASS}\n`);
  const app = await AppProcess.start({
    META_AGENT_NATS_URL: `nats://127.0.0.1:${natsPort}`,
    META_AGENT_NATS_USER: NATS_USER,
    META_AGENT_NATS_PASSWORD: NATS_PASS,
    META_AGENT_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    META_AGENT_REDIS_PASSWORD_FILE: passwordFile,
  });
  try {
    await runOneWorkflow(app);
    const health = await app.get('/health');
    expect(health.body).toMatchObject({ status: 'healthy', nats_connected: true, redis_connected: true });
    expectNoSecrets(app, health.text + (await app.get('/health/ready')).text + (await app.get('/metrics')).text);
  } finally {
    expect(await app.stop()).toBe(0);
  }
});

it('connects with credentials in the URLs, and logs them redacted', async () => {
  const app = await AppProcess.start({
    META_AGENT_NATS_URL: `nats://${NATS_USER}:${NATS_PASS}@127.0.0.1:${natsPort}`,
    META_AGENT_REDIS_URL: `redis://:${REDIS_PASS}@127.0.0.1:${redisPort}`,
  });
  try {
    await runOneWorkflow(app);
    expect(app.logs(`nats://${NATS_USER}:***@127.0.0.1:${natsPort}`).length).toBeGreaterThan(0);
    expectNoSecrets(app);
  } finally {
    await app.stop();
  }
});

it('a wrong password fails start-up clearly, without echoing any secret', async () => {
  const natsApp = AppProcess.spawn(
    {
      META_AGENT_NATS_URL: `nats://127.0.0.1:${natsPort}`,
      META_AGENT_NATS_USER: NATS_USER,
      META_AGENT_NATS_PASSWORD: 'wrong-' + NATS_PASS,
      META_AGENT_REDIS_URL: `redis://:${REDIS_PASS}@127.0.0.1:${redisPort}`,
    },
    await freePort(),
  );
  expect(await natsApp.exited()).toBe(1);
  expect(natsApp.logs('cannot connect to NATS JetStream')).toHaveLength(1);
  expect(natsApp.lines.join('\n')).not.toContain('wrong-' + NATS_PASS);
  expectNoSecrets(natsApp);

  const redisApp = AppProcess.spawn(
    {
      META_AGENT_NATS_URL: `nats://${NATS_USER}:${NATS_PASS}@127.0.0.1:${natsPort}`,
      META_AGENT_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      META_AGENT_REDIS_PASSWORD: 'wrong-' + REDIS_PASS,
      META_AGENT_REDIS_COMMAND_TIMEOUT_MS: '1000',
    },
    await freePort(),
  );
  expect(await redisApp.exited()).toBe(1);
  expect(redisApp.logs('cannot connect to Redis')).toHaveLength(1);
  expect(redisApp.lines.join('\n')).not.toContain('wrong-' + REDIS_PASS);
});

it('provisions its streams through the authenticated connection', async () => {
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const s of jsm.streams.list()) names.push(s.config.name);
  expect(names.sort()).toEqual(['AUDIT', 'DEADLETTER', 'DECISIONS', 'SIGNALS']);
});
