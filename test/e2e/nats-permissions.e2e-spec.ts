import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { ServerProcess } from '../support/servers.js';
import { momentum, risk, trigger } from '../support/signals.js';

/*
 * The example NATS configuration (deploy/nats/nats-server.conf + accounts.conf), on a real nats-server:
 * one user per agent, allowed to publish only on its own subject; a trigger publisher; the orchestrator's
 * user with what the service needs. SPEC "Workflows": an agent is who its subject says.
 */
const DEPLOY = join(process.cwd(), 'deploy', 'nats');
const USERS = ['orchestrator', 'normalizer', 'momentum', 'risk', 'sentiment', 'correlation', 'macro'];
const password = (user: string) => `pw-${user}-5d1c9e`;

let dir: string;
let port: number;
let server: ServerProcess;
let app: AppProcess;
const conns: NatsConnection[] = [];
let jsm: JetStreamManager;

/** A connection as one of the configuration's users, with its private inbox prefix (agents, normalizer). */
async function as(user: string): Promise<NatsConnection> {
  const nc = await connect({
    servers: `nats://127.0.0.1:${port}`,
    user,
    pass: password(user),
    ...(user === 'orchestrator' ? {} : { inboxPrefix: `_INBOX_${user}` }),
  });
  conns.push(nc);
  return nc;
}

/** Permission errors the server sent a connection, as they come. */
function permissionErrors(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') seen.push(String(s.error));
  })();
  return seen;
}

async function messages(stream: string, subject?: string): Promise<number> {
  const info = await jsm.streams.info(stream, subject ? { subjects_filter: subject } : undefined);
  return subject ? (info.state.subjects?.[subject] ?? 0) : info.state.messages;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nats-permissions-e2e-'));
  port = await freePort();
  // The two files as shipped, but for the JetStream store directory (nats-server refuses -sd on top of
  // store_dir); port and address come from the command line.
  const main = readFileSync(join(DEPLOY, 'nats-server.conf'), 'utf8').replace(/store_dir: .*/, `store_dir: "${join(dir, 'js')}"`);
  expect(main).toContain('include ./accounts.conf');
  writeFileSync(join(dir, 'nats-server.conf'), main);
  copyFileSync(join(DEPLOY, 'accounts.conf'), join(dir, 'accounts.conf'));
  const env = { ...process.env, ...Object.fromEntries(USERS.map((u) => [`NATS_${u.toUpperCase()}_PASSWORD`, password(u)])) };
  server = new ServerProcess(spawn('nats-server', ['-c', join(dir, 'nats-server.conf'), '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore', env }));
  const orchestrator = await waitFor('nats with the example configuration', () => as('orchestrator'));
  // The service provisions the streams and consumers through its own, restricted user.
  app = await AppProcess.start({
    META_AGENT_NATS_URL: `nats://127.0.0.1:${port}`,
    META_AGENT_NATS_USER: 'orchestrator',
    META_AGENT_NATS_PASSWORD: password('orchestrator'),
    META_AGENT_REDIS_PREFIX: uniqueId('np'),
  });
  jsm = await jetstreamManager(orchestrator);
});

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  for (const nc of conns) await nc.close().catch(() => undefined);
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

it('the orchestrator decides normally with the permitted users, and its user needs nothing more', async () => {
  const id = uniqueId('perm-ok');
  await jetstream(await as('normalizer')).publish('signals.normalized', JSON.stringify(trigger(id)));
  await jetstream(await as('momentum')).publish('signals.enriched.momentum', JSON.stringify(momentum(id)));
  await jetstream(await as('risk')).publish('signals.enriched.risk', JSON.stringify(risk(id)));
  const state = await waitFor('the decision', async () => {
    const { body } = await app.get(`/workflows/${id}`);
    return body?.decision_published === true && body;
  });
  expect(state).toMatchObject({ status: 'completed', received_agents: expect.arrayContaining(['momentum', 'risk']) });
  expect(state.decision.decision.action).toBe('trade');
  expect(await messages('DECISIONS')).toBeGreaterThanOrEqual(1);
  // No permission the service needed was refused (the server reports each refusal to the client).
  expect(app.lines.filter((l) => /permission|"nats error"/i.test(l))).toEqual([]);
});

it('agent risk cannot publish on signals.enriched.momentum: refused by the server, nothing stored', async () => {
  const nc = await as('risk');
  const errors = permissionErrors(nc);
  const before = {
    signals: await messages('SIGNALS'),
    momentum: await messages('SIGNALS', 'signals.enriched.momentum'),
    decisions: await messages('DECISIONS'),
  };
  const id = uniqueId('perm-forged');
  const js = jetstream(nc, { timeout: 2000 });
  const refused = await js.publish('signals.enriched.momentum', JSON.stringify(momentum(id))).then(
    () => 'stored',
    (error: Error) => error.message,
  );
  expect(refused).not.toBe('stored');
  // Nor a trigger, nor a decision of its own, not even without a JetStream ack.
  nc.publish('signals.normalized', JSON.stringify(trigger(id)));
  nc.publish('orchestrated.decision', JSON.stringify({ corr_id: id, decision: { action: 'trade' } }));
  await nc.flush();
  await waitFor('the server to report the refusals', async () => errors.filter((e) => /permissions violation/i.test(e)).length >= 3, 5000);
  expect(errors.join('\n')).toMatch(/Permissions Violation for Publish to "?signals\.enriched\.momentum/i);

  expect(await messages('SIGNALS')).toBe(before.signals);
  expect(await messages('SIGNALS', 'signals.enriched.momentum')).toBe(before.momentum);
  expect(await messages('DECISIONS')).toBe(before.decisions);
  expect((await app.get(`/workflows/${id}`)).body).toMatchObject({ buffered_signals: [] });
});

it("agent risk cannot read what the orchestrator pulls (its inbox) nor other agents' signals", async () => {
  const nc = await as('risk');
  const errors = permissionErrors(nc);
  nc.subscribe('_INBOX.>');
  nc.subscribe('signals.enriched.>');
  await nc.flush();
  await waitFor(
    'the server to refuse both subscriptions',
    async () => errors.filter((e) => /permissions violation for subscription/i.test(e)).length >= 2,
    5000,
  );
});

it('a signal for momentum sent by risk on its own subject is dead-lettered as agent_mismatch', async () => {
  const id = uniqueId('perm-mismatch');
  await jetstream(await as('normalizer')).publish('signals.normalized', JSON.stringify(trigger(id)));
  const deadBefore = await messages('DEADLETTER');
  // Stored (risk may publish on its own subject), but it speaks for momentum.
  await jetstream(await as('risk')).publish('signals.enriched.risk', JSON.stringify(momentum(id)));
  await waitFor('the dead letter', async () => (await messages('DEADLETTER')) === deadBefore + 1);
  // Counted once the dead letter's publish is acknowledged to the service: maybe after the stream shows it.
  await waitFor('the dead letter counted', async () => (await app.metric('meta_agent_dead_letters_total', { reason: 'agent_mismatch' })) >= 1);
  expect(await app.metric('meta_agent_dead_letters_total', { reason: 'agent_mismatch' })).toBe(1);
  const state = await waitFor('the workflow', async () => (await app.get(`/workflows/${id}`)).body?.status && (await app.get(`/workflows/${id}`)).body);
  expect(state.received_agents).toEqual([]);
  expect(state.decision).toBeNull();
});
