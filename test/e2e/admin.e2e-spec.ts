import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSettings } from '../../src/config/env.schema.js';
import { WorkflowKeys } from '../../src/workflow/workflow.keys.js';
import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { agentSubject, momentum, risk, trigger, TRIGGER_SUBJECT } from '../support/signals.js';

/*
 * SPEC "HTTP": GET /workflows/:corr_id holds trading data and is served only with the admin bearer token
 * (META_AGENT_ADMIN_TOKEN, from the variable or a file; several named tokens); without one configured it
 * is off. /health and /metrics stay open.
 */
const OPS = 'ops-0f3c9d2a7b1e4c5d';
const AUDIT = 'audit-8e2b6a4f0c9d1e3f';
const infra = useInfra();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'admin-e2e-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function oneDecidedWorkflow(app: AppProcess, token: string): Promise<string> {
  const id = uniqueId('admin');
  await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
  await infra.bus.publish(agentSubject('momentum'), momentum(id));
  await infra.bus.publish(agentSubject('risk'), risk(id));
  await waitFor('the decision', async () => (await app.get(`/workflows/${id}`, token)).body?.decision_published === true);
  return id;
}

it('named tokens from a file: each one is served, and logged by name; anything else is 401', async () => {
  const file = join(dir, 'admin-tokens');
  writeFileSync(file, `ops:${OPS}\naudit:${AUDIT}\n`);
  const app = await AppProcess.start({ META_AGENT_ADMIN_TOKEN: '', META_AGENT_ADMIN_TOKEN_FILE: file });
  try {
    const id = await oneDecidedWorkflow(app, OPS);
    for (const token of [OPS, AUDIT]) {
      const res = await app.get(`/workflows/${id}`, token);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ corr_id: id, decision_published: true });
    }
    // 401 before anything else, even for a bad or unknown corr_id: nothing is told without the token.
    for (const path of [`/workflows/${id}`, '/workflows/bad%20id', `/workflows/${uniqueId('none')}`]) {
      for (const token of [null, 'wrong-token-0123456789', `${OPS}x`, 'ops']) {
        const res = await app.get(path, token);
        expect({ path, token, status: res.status }).toEqual({ path, token, status: 401 });
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
        expect(res.text).not.toContain('decision');
      }
    }
    const basic = await fetch(app.url(`/workflows/${id}`), { headers: { authorization: `Basic ${Buffer.from(`ops:${OPS}`).toString('base64')}` } });
    expect(basic.status).toBe(401);
    // The open routes need nothing.
    for (const path of ['/health', '/health/live', '/health/ready', '/metrics'])
      expect({ path, status: (await app.get(path, null)).status }).toEqual({ path, status: 200 });

    // Logged by token name (the lines come through a pipe, maybe after the replies: waited for).
    const served = (name: string) => app.logs('"msg":"admin request"').some((l) => l.includes(`"token":"${name}"`));
    await waitFor('the admin requests logged by name', async () => served('ops') && served('audit') && app.logs('"msg":"admin request refused"').length > 0);
  } finally {
    expect(await app.stop()).toBe(0);
  }
  // Everything it printed, to its exit: never a token.
  const everything = app.lines.join('\n');
  expect(everything).not.toContain(OPS);
  expect(everything).not.toContain(AUDIT);
});

it('without a token configured, GET /workflows is off (404, token or not); health and metrics answer', async () => {
  const app = await AppProcess.start({ META_AGENT_ADMIN_TOKEN: '' });
  try {
    const id = uniqueId('off');
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 60 }));
    await waitFor('the workflow to count as active', async () => (await app.metric('meta_agent_active_workflows')) >= 1);
    for (const token of [null, OPS]) {
      const res = await app.get(`/workflows/${id}`, token);
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('trigger');
    }
    // The admin API (list, cancel, decide, extend) is off too, and changes nothing.
    for (const [method, path] of [
      ['GET', '/workflows?status=open'],
      ['POST', `/workflows/${id}/cancel`],
      ['POST', `/workflows/${id}/decide`],
      ['POST', `/workflows/${id}/extend`],
    ]) {
      for (const token of [null, OPS]) {
        const headers: Record<string, string> = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
        const res = await fetch(app.url(path), { method, headers, body: method === 'POST' ? '{"seconds":5}' : undefined });
        expect({ method, path, token, status: res.status }).toEqual({ method, path, token, status: 404 });
        // The answer of a route that does not exist: nothing about the workflow.
        expect(((await res.json()) as { message: string }).message).toMatch(/^Cannot (GET|POST) \/workflows/);
      }
    }
    const { prefix, shards } = parseSettings({}).redis;
    expect(await infra.redis.hget(new WorkflowKeys(prefix, shards).forWorkflow(id).wf, 'status')).toBe('in_progress');
    expect((await app.get('/health/ready', null)).status).toBe(200);
    await app.waitForLogs('admin endpoints are off');
    expect(app.logs('admin endpoints are off')).toHaveLength(1);
  } finally {
    await app.stop();
  }
});

it('a token too short to be safe stops start-up with one line naming the variable, not the token', async () => {
  const app = AppProcess.spawn({ META_AGENT_ADMIN_TOKEN: 'ops:letmein' }, await freePort());
  expect(await app.exited()).toBe(1);
  expect(app.lines.filter((l) => l.includes('META_AGENT_ADMIN_TOKEN'))).toHaveLength(1);
  expect(app.lines.join('\n')).not.toContain('letmein');
});
