import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { WorkflowKeys } from '../../src/workflow/workflow.keys.js';
import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { PrivateRedis, PrivateSentinel } from '../support/servers.js';
import { agentSubject, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * Redis behind a real Sentinel: a private master, Sentinels watching it under a non-default name, and the
 * service pointed at the Sentinels, with META_AGENT_REDIS_URL on a port where nothing listens — so the
 * master can only have been found through Sentinel, by the configured name.
 */
const MASTER_NAME = 'orders';
const SENTINEL_PASS = 's3ntinel-s3cret-pw';

const infra = useInfra({ each: true });
let master: PrivateRedis | undefined;
let masterClient: Redis | undefined;
const sentinels = new Map<string, PrivateSentinel>();
let deadUrl: string;
/** Every service process started here, stopped in afterAll whatever happened (stopping is idempotent). */
const apps: AppProcess[] = [];

beforeAll(async () => {
  master = await PrivateRedis.create();
  await master.start();
  masterClient = new Redis(master.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  deadUrl = `redis://127.0.0.1:${await freePort()}`;
});

afterAll(async () => {
  await Promise.allSettled(apps.map((app) => app.stop('SIGKILL')));
  masterClient?.disconnect();
  await Promise.allSettled([...sentinels.values()].map((s) => s.dispose()));
  await master?.dispose();
});

/** The Sentinel watching the master as MASTER_NAME, without or with a password (started once, on first use). */
async function sentinelFor(password = ''): Promise<PrivateSentinel> {
  if (!sentinels.has(password)) sentinels.set(password, await PrivateSentinel.start(MASTER_NAME, master!.port, password || undefined));
  return sentinels.get(password)!;
}

/** Starts the service through `sentinel`, runs one workflow to its decision, and checks its keys are in the master. */
async function runThroughSentinel(sentinel: PrivateSentinel, env: Record<string, string> = {}): Promise<AppProcess> {
  const app = AppProcess.spawn(
    { META_AGENT_REDIS_URL: deadUrl, META_AGENT_REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`, META_AGENT_REDIS_SENTINEL_MASTER: MASTER_NAME, ...env },
    await freePort(),
  );
  apps.push(app);
  await app.waitReady();
  await app.waitForLogs(`sentinel master ${MASTER_NAME} via 127.0.0.1:${sentinel.port}`);
  expect((await app.get('/health')).body).toMatchObject({ status: 'healthy', redis_connected: true });

  const id = uniqueId('sentinel');
  await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
  await infra.bus.publish(agentSubject('momentum'), momentum(id));
  await infra.bus.publish(agentSubject('risk'), risk(id));
  const decision = await waitForDecision(infra.bus, id);
  expect(decision).toMatchObject({ corr_id: id, status: 'completed' });
  expect(decision.source_signals.map((s) => s.agent).sort()).toEqual(['momentum', 'risk']);

  // The workflow lives in the master the Sentinel named (default prefix and shards).
  const keys = new WorkflowKeys('ma', 16).forWorkflow(id);
  const wf = await waitFor('the workflow marked published in the master', async () => {
    const fields = await masterClient!.hgetall(keys.wf);
    return fields.published === '1' ? fields : undefined;
  });
  expect(wf.status).toBe('completed');
  expect(Object.keys(await masterClient!.hgetall(keys.sig)).sort()).toEqual(['momentum', 'risk']);
  // And nowhere else: the test servers' Redis stayed empty.
  expect(await infra.redis.dbsize()).toBe(0);
  return app;
}

/** The first reply line to one inline command on a fresh connection, without authenticating. */
function askAnonymously(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(port, '127.0.0.1', () => socket.write(`${command}\r\n`));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().split('\r\n')[0]);
    });
    socket.once('error', reject);
  });
}

it('finds its master through Sentinel by the configured name and runs a workflow there', async () => {
  const app = await runThroughSentinel(await sentinelFor());
  expect(await app.stop()).toBe(0);
});

it('authenticates to a Sentinel that requires a password, without logging it', async () => {
  const sentinel = await sentinelFor(SENTINEL_PASS);
  // The Sentinel really requires it.
  expect(await askAnonymously(sentinel.port, `SENTINEL get-master-addr-by-name ${MASTER_NAME}`)).toMatch(/^-NOAUTH/);

  const app = await runThroughSentinel(sentinel, { META_AGENT_REDIS_SENTINEL_PASSWORD: SENTINEL_PASS });
  const exposed = app.lines.join('\n') + (await app.get('/health')).text + (await app.get('/metrics')).text;
  expect(await app.stop()).toBe(0);
  expect(exposed).not.toContain(SENTINEL_PASS);
});

it('a Sentinel that does not give the master stops start-up with a clear message, not a silent hang', async () => {
  const open = await sentinelFor();
  const locked = await sentinelFor(SENTINEL_PASS);
  const cases: { sentinel: PrivateSentinel; env: Record<string, string>; name: string; why: string }[] = [
    // The default name, which the Sentinel does not watch: the configured name is what is asked for.
    { sentinel: open, env: { META_AGENT_REDIS_SENTINEL_MASTER: 'mymaster' }, name: 'mymaster', why: 'No such master with that name' },
    { sentinel: locked, env: { META_AGENT_REDIS_SENTINEL_MASTER: MASTER_NAME }, name: MASTER_NAME, why: 'NOAUTH' },
    {
      sentinel: locked,
      env: { META_AGENT_REDIS_SENTINEL_MASTER: MASTER_NAME, META_AGENT_REDIS_SENTINEL_PASSWORD: 'wrong-' + SENTINEL_PASS },
      name: MASTER_NAME,
      why: 'WRONGPASS',
    },
  ];
  for (const { sentinel, env, name, why } of cases) {
    const app = AppProcess.spawn(
      { META_AGENT_REDIS_URL: deadUrl, META_AGENT_REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`, META_AGENT_REDIS_COMMAND_TIMEOUT_MS: '1000', ...env },
      await freePort(),
    );
    apps.push(app);
    // A hang never ends; 60 s only bounds how long this test waits for the exit on a loaded machine.
    const exit = await Promise.race([app.exited(), sleep(60000, 'still running', { ref: false })]);
    expect({ why, exit }).toEqual({ why, exit: 1 });
    const failure = app.logs(`cannot connect to Redis at sentinel master ${name} via 127.0.0.1:${sentinel.port}`);
    expect(failure).toHaveLength(1);
    expect(failure[0]).toContain(why);
    // It gave up within seconds of starting, by its own log times (the time Node takes to load before its
    // first line, long on a loaded machine, is not the service's).
    expect(app.msToLog('cannot connect to Redis at sentinel master')).toBeLessThan(10000);
    expect(app.lines.join('\n')).not.toContain(SENTINEL_PASS);
  }
});
