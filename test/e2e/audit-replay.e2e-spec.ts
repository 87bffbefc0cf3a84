import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppProcess } from '../support/app.js';
import { NATS_URL, uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { agentSubject, decisionsFor, momentum, parse, risk, trigger, TRIGGER_SUBJECT, waitForDecision, type DecisionMessage } from '../support/signals.js';

/*
 * Issue 18, part 3: `npm run replay` (dist/audit/replay/replay.cli.js) on traffic recorded by the built
 * service: the agent simulator's workflows (timeouts, early signals, repeated and declined triggers) plus
 * revisions and admin actions. With the code and settings unchanged every recorded decision comes out the
 * same; with META_AGENT_MIN_CONFIDENCE_THRESHOLD raised exactly the trades below it are reported, as no_trade.
 * Bad arguments and an unreachable NATS: one line, non-zero exit.
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OPS = 'ops-1a3c5e7b9d1f3a5c';
const infra = useInfra();
let dir: string;
let since: string;
let decisions: DecisionMessage[] = [];
let revised: string;

function run(script: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // In the repository, as the service runs (AppProcess): both read its .env.
    const child = spawn(process.execPath, [join(ROOT, script), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', META_AGENT_NATS_URL: NATS_URL, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const replay = (args: string[], env: Record<string, string> = {}) => run('dist/audit/replay/replay.cli.js', args, env);

async function post(app: AppProcess, path: string, body?: unknown): Promise<number> {
  const res = await fetch(app.url(path), {
    method: 'POST',
    headers: { authorization: `Bearer ${OPS}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await res.text();
  return res.status;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'audit-replay-'));
  since = new Date(Date.now() - 1000).toISOString();
  const app = await AppProcess.start({ META_AGENT_ADMIN_TOKEN: `ops:${OPS}`, META_AGENT_SWEEP_INTERVAL_MS: '100' });
  try {
    const sim = await run('scripts/agent-simulator.mjs', [], {
      SIM_NATS_URL: NATS_URL,
      SIM_WORKFLOWS: '1500',
      SIM_RATE: '300',
      SIM_TIMEOUT_SECONDS: '2',
      SIM_SEED: '18',
    });
    expect(sim.code).toBe(0);

    // Revisions: an agent's second signal replaces its first.
    revised = uniqueId('rv');
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(revised, { timeout_seconds: 300 }));
    await waitFor('the revised workflow', async () => (await app.get(`/workflows/${revised}`, OPS)).status === 200);
    await infra.bus.publish(agentSubject('momentum'), momentum(revised, { confidence: 0.95 }));
    await waitFor('its first revision', async () => (await app.get(`/workflows/${revised}`, OPS)).body?.signals?.momentum?.confidence === 0.95);
    await infra.bus.publish(agentSubject('momentum'), momentum(revised, { confidence: 0.82 }));
    await waitFor('its second revision', async () => (await app.get(`/workflows/${revised}`, OPS)).body?.signals?.momentum?.confidence === 0.82);
    await infra.bus.publish(agentSubject('risk'), risk(revised));
    await waitForDecision(infra.bus, revised);

    // Admin actions: a cancel, a forced decision on one signal, an extension that then times out.
    const [cancelled, forced, extended] = [uniqueId('rc'), uniqueId('rf'), uniqueId('rx')];
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(cancelled, { timeout_seconds: 300 }));
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(forced, { timeout_seconds: 300 }));
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(extended, { timeout_seconds: 1 }));
    await infra.bus.publish(agentSubject('momentum'), momentum(forced));
    await waitFor('the forced workflow holds its signal', async () => (await app.get(`/workflows/${forced}`, OPS)).body?.received_agents?.length === 1);
    await waitFor('the extended workflow', async () => (await app.get(`/workflows/${extended}`, OPS)).status === 200);
    expect(await post(app, `/workflows/${extended}/extend`, { seconds: 2 })).toBe(200);
    expect(await post(app, `/workflows/${cancelled}/cancel`)).toBe(200);
    expect(await post(app, `/workflows/${forced}/decide`)).toBe(200);
    for (const id of [cancelled, forced, extended]) await waitForDecision(infra.bus, id);
    expect((await decisionsFor(infra.bus, extended))[0].status).toBe('timeout');
  } finally {
    // A clean stop: every audit event is acknowledged before the process ends.
    expect(await app.stop()).toBe(0);
  }
  decisions = (await infra.bus.read('DECISIONS')).map(parse);
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('replays every recorded workflow with unchanged code and settings: nothing changes', async () => {
  expect(decisions.length).toBeGreaterThan(1000);
  const out = await replay(['--since', since, '--out', join(dir, 'unchanged.jsonl')]);
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  // Not a byte of any decision message differs (the `other` line would say so).
  expect(out.stdout).toBe(`replayed ${decisions.length} workflows: 0 changed\n`);
  expect(readFileSync(join(dir, 'unchanged.jsonl'), 'utf8')).toBe('');
  const kinds = new Set(decisions.map((d) => d.status));
  expect([...kinds].sort()).toEqual(['cancelled', 'completed', 'timeout']);
});

it('reports exactly the trades a higher MIN_CONFIDENCE_THRESHOLD turns into no_trade', async () => {
  const threshold = 0.85;
  const moved = decisions.filter((d) => d.decision.action === 'trade' && (d.decision.confidence as number) < threshold).map((d) => d.corr_id);
  expect(moved.length).toBeGreaterThan(10);
  expect(moved.length).toBeLessThan(decisions.filter((d) => d.decision.action === 'trade').length);
  const out = await replay(['--since', since, '--out', join(dir, 'threshold.jsonl')], { META_AGENT_MIN_CONFIDENCE_THRESHOLD: String(threshold) });
  expect(out.code).toBe(0);
  const lines = readFileSync(join(dir, 'threshold.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(out.stdout.split('\n')[0]).toBe(`replayed ${decisions.length} workflows: ${moved.length} changed`);
  expect(out.stdout).toContain(`  action: ${moved.length}`);
  expect(lines.map((l) => l.corr_id).sort()).toEqual([...moved].sort());
  for (const l of lines) {
    expect(l.changed).toEqual(expect.arrayContaining(['action']));
    expect(l.recorded.decision.action).toBe('trade');
    expect(l.replayed.decision).toMatchObject({ action: 'no_trade', reason: 'insufficient_confidence' });
    expect(l.workflow_id).toBe(`${l.recorded.workflow_type}:${l.corr_id}`);
  }
});

it('--corr-id replays one workflow; --type filters by workflow type', async () => {
  const one = await replay(['--since', since, '--corr-id', revised]);
  expect(one.stdout.split('\n')[0]).toBe('replayed 1 workflows: 0 changed');
  const none = await replay(['--since', since, '--type', 'no-such-type']);
  expect(none.stdout.split('\n')[0]).toBe('replayed 0 workflows: 0 changed');
});

it('bad arguments and an unreachable NATS: one line, non-zero exit', async () => {
  for (const args of [[], ['--since', 'yesterday'], ['--since', since, '--until', '2000-01-01T00:00:00Z'], ['--since', since, '--bogus']]) {
    const out = await replay(args);
    expect(out.code).toBe(2);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    expect(out.stderr).toMatch(/^replay: /);
  }
  const away = await replay(['--since', since], { META_AGENT_NATS_URL: 'nats://127.0.0.1:48997', META_AGENT_NATS_CONNECT_TIMEOUT_MS: '500' });
  expect(away.code).toBe(2);
  expect(away.stderr.trim()).toMatch(/^replay: cannot connect to NATS at nats:\/\/127\.0\.0\.1:48997/);
});
