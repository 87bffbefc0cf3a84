import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { ephemeralRedisArgs, killAll, redisServerBin, ServerProcess } from '../support/servers.js';
import { agentSubject, momentum, risk, trigger, TRIGGER_SUBJECT } from '../support/signals.js';

/*
 * TLS with client certificates (mutual TLS) to a real nats-server and a real redis-server, with a CA
 * and certificates made by openssl for this test.
 */
let dir: string;
const servers: ServerProcess[] = [];
let nc: NatsConnection;
let natsPort: number;
let redisPort: number;
const file = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A key and a certificate signed by the test CA. */
function issue(name: string, cn: string): void {
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  writeFileSync(file(`${name}.ext`), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tls-e2e-'));
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=meta-agent-test-ca');
  issue('server', '127.0.0.1');
  issue('client', 'orchestrator');
  natsPort = await freePort();
  redisPort = await freePort();
  const tlsArgs = ['--tls', '--tlscert', file('server.pem'), '--tlskey', file('server.key'), '--tlscacert', file('ca.pem'), '--tlsverify'];
  servers.push(ServerProcess.start('nats-server', ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', file('nats'), ...tlsArgs]));
  servers.push(
    ServerProcess.start(redisServerBin(), [
      '--port',
      '0',
      '--tls-port',
      String(redisPort),
      ...ephemeralRedisArgs(dir),
      '--tls-cert-file',
      file('server.pem'),
      '--tls-key-file',
      file('server.key'),
      '--tls-ca-cert-file',
      file('ca.pem'),
      '--tls-auth-clients',
      'yes',
    ]),
  );
  const tls = { caFile: file('ca.pem'), certFile: file('client.pem'), keyFile: file('client.key') };
  nc = await waitFor('nats over TLS', () => connect({ servers: `tls://127.0.0.1:${natsPort}`, tls }));
});

afterAll(async () => {
  await nc?.close();
  await killAll(servers);
  rmSync(dir, { recursive: true, force: true });
});

it('runs a workflow over mutual TLS to NATS and Redis', async () => {
  const app = await AppProcess.start({
    META_AGENT_NATS_URL: `tls://127.0.0.1:${natsPort}`,
    META_AGENT_NATS_TLS_CA_FILE: file('ca.pem'),
    META_AGENT_NATS_TLS_CERT_FILE: file('client.pem'),
    META_AGENT_NATS_TLS_KEY_FILE: file('client.key'),
    META_AGENT_REDIS_URL: `rediss://127.0.0.1:${redisPort}`,
    META_AGENT_REDIS_TLS_CA_FILE: file('ca.pem'),
    META_AGENT_REDIS_TLS_CERT_FILE: file('client.pem'),
    META_AGENT_REDIS_TLS_KEY_FILE: file('client.key'),
  });
  try {
    const js = jetstream(nc);
    const id = uniqueId('tls');
    await js.publish(TRIGGER_SUBJECT, JSON.stringify(trigger(id)));
    await js.publish(agentSubject('momentum'), JSON.stringify(momentum(id)));
    await js.publish(agentSubject('risk'), JSON.stringify(risk(id)));
    await waitFor('the decision', async () => (await app.get(`/workflows/${id}`)).body?.decision_published === true);
    expect((await app.get('/health')).body).toMatchObject({ nats_connected: true, redis_connected: true });
  } finally {
    expect(await app.stop()).toBe(0);
  }
});

it('without a client certificate the servers refuse it, and start-up says so', async () => {
  const app = AppProcess.spawn(
    {
      META_AGENT_NATS_URL: `tls://127.0.0.1:${natsPort}`,
      META_AGENT_NATS_TLS_CA_FILE: file('ca.pem'),
      META_AGENT_REDIS_URL: `rediss://127.0.0.1:${redisPort}`,
      META_AGENT_REDIS_TLS_CA_FILE: file('ca.pem'),
      META_AGENT_REDIS_COMMAND_TIMEOUT_MS: '1000',
    },
    await freePort(),
  );
  expect(await app.exited()).toBe(1);
  expect(app.logs('start-up failed: cannot connect to')).toHaveLength(1);
});
