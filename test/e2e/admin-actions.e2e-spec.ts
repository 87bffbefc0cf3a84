import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminHeaders, AppProcess } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import {
  HEDGE_WORKFLOWS_FILE,
  agentSubject,
  decisionsFor,
  expectOneDecision,
  momentum,
  risk,
  trigger,
  TRIGGER_SUBJECT,
  waitForDecision,
} from '../support/signals.js';

/*
 * Issue 12, part 3: the admin API on the built service and real servers. GET /workflows (open and finished,
 * filters, pages), POST cancel / decide / extend, each behind the bearer token, logged and counted by token
 * name; 409 for a finished workflow, 404 for an unknown one; the OpenAPI document; and two replicas
 * cancelling and deciding the same workflows at once: one decision each.
 */
const OPS = 'ops-7c1d9e2f4a6b8c0d';
const AUDIT = 'audit-2b4d6f8a0c1e3a5b';
const TOKENS = `ops:${OPS},audit:${AUDIT}`;

const infra = useInfra();
let dir: string;
let app: AppProcess;
const others: AppProcess[] = [];

interface Reply {
  status: number;
  body: any;
  text: string;
}

async function call(target: AppProcess, method: 'GET' | 'POST', path: string, options: { token?: string | null; body?: unknown } = {}): Promise<Reply> {
  const token = options.token === undefined ? OPS : options.token;
  const headers: Record<string, string> = token ? adminHeaders(token) : {};
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(target.url(path), { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

const post = (target: AppProcess, path: string, body?: unknown, token?: string | null) => call(target, 'POST', path, { body, token });

async function startService(env: Record<string, string> = {}): Promise<AppProcess> {
  return AppProcess.start({
    META_AGENT_ADMIN_TOKEN: TOKENS,
    META_AGENT_WORKFLOWS_FILE: join(dir, 'workflows.yaml'),
    META_AGENT_SWEEP_INTERVAL_MS: '100',
    ...env,
  });
}

/** Opens workflows (no signals) and waits until each is stored. */
async function open(ids: string[], extra: Record<string, unknown> = {}): Promise<void> {
  for (const id of ids) await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 300, ...extra }));
  for (const id of ids) await waitFor(`workflow ${id}`, async () => (await app.get(`/workflows/${id}`, OPS)).status === 200);
}

/** Opens workflows and completes them with both agents' signals; waits until their decisions are published. */
async function decided(ids: string[]): Promise<void> {
  await open(ids);
  for (const id of ids) {
    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await infra.bus.publish(agentSubject('risk'), risk(id));
  }
  for (const id of ids) await waitFor(`decision of ${id}`, async () => (await app.get(`/workflows/${id}`, OPS)).body?.decision_published === true);
}

/** Every page of a list query, following next_cursor. */
async function allPages(query: string): Promise<{ pages: any[][]; items: any[] }> {
  const pages: any[][] = [];
  let cursor: string | null = null;
  do {
    const res = await call(app, 'GET', `/workflows?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(res.status).toBe(200);
    pages.push(res.body.items);
    cursor = res.body.next_cursor;
    expect(pages.length).toBeLessThan(50);
  } while (cursor);
  return { pages, items: pages.flat() };
}

/** One decision for `id`, and no second one to come (from a retry or a race): see expectOneDecision. */
function exactlyOneDecision(id: string): Promise<any> {
  return expectOneDecision(infra.bus, app, id, OPS);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'admin-actions-'));
  writeFileSync(join(dir, 'workflows.yaml'), HEDGE_WORKFLOWS_FILE);
  app = await startService();
});

afterAll(async () => {
  for (const other of others) await other.stop();
  expect(await app.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /workflows', () => {
  const openTrading = Array.from({ length: 7 }, (_, i) => uniqueId(`lo${i}`));
  const openHedge = Array.from({ length: 3 }, (_, i) => uniqueId(`lh${i}`));
  const finished = Array.from({ length: 4 }, (_, i) => uniqueId(`lf${i}`));

  beforeAll(async () => {
    await decided(finished);
    await open(openTrading);
    await open(openHedge, { workflow_type: 'hedge' });
    await infra.bus.publish(agentSubject('momentum'), momentum(openTrading[0]));
    const cancelled = await post(app, `/workflows/${openHedge[2]}/cancel`);
    expect(cancelled.status).toBe(200);
    await waitFor('the cancel to be published', async () => (await app.get(`/workflows/${openHedge[2]}`, OPS)).body?.decision_published === true);
    await waitFor('the momentum signal', async () => (await app.get(`/workflows/${openTrading[0]}`, OPS)).body?.received_agents?.length === 1);
  });

  it('open workflows, page by page over more than the limit: each once, with their fields', async () => {
    const { pages, items } = await allPages('status=open&limit=3');
    expect(pages.length).toBeGreaterThanOrEqual(3);
    for (const page of pages) expect(page.length).toBeLessThanOrEqual(3);
    expect(items.map((i) => i.corr_id).sort()).toEqual([...openTrading, ...openHedge.slice(0, 2)].sort());
    const first = items.find((i) => i.corr_id === openTrading[0]);
    expect(first).toEqual({
      corr_id: openTrading[0],
      workflow_id: `trading:${openTrading[0]}`,
      workflow_type: 'trading',
      status: 'waiting_for_agents',
      started_at: expect.any(String),
      deadline_at: expect.any(String),
      finished_at: null,
      decision_published: false,
      received_agents: ['momentum'],
    });
    expect(Date.parse(first.deadline_at) - Date.parse(first.started_at)).toBe(300_000);
  });

  it('finished workflows (published): newest first, with finish time and agents; exact statuses; type filter', async () => {
    const { items } = await allPages('status=finished&limit=2');
    expect(items.map((i) => i.corr_id).sort()).toEqual([...finished, openHedge[2]].sort());
    const ends = items.map((i) => Date.parse(i.finished_at));
    expect(ends).toEqual([...ends].sort((a, b) => b - a));
    const done = items.find((i) => i.corr_id === finished[0]);
    expect(done).toMatchObject({ status: 'completed', decision_published: true, workflow_type: 'trading' });
    expect(done.received_agents.sort()).toEqual(['momentum', 'risk']);

    expect((await allPages('status=cancelled')).items.map((i) => i.corr_id)).toEqual([openHedge[2]]);
    expect((await allPages('status=completed&limit=1')).items.map((i) => i.corr_id).sort()).toEqual([...finished].sort());
    expect((await allPages('status=in_progress&type=hedge')).items.map((i) => i.corr_id).sort()).toEqual(openHedge.slice(0, 2).sort());
    expect((await allPages('type=hedge&limit=1')).items.map((i) => i.corr_id).sort()).toEqual([...openHedge].sort());
    expect((await allPages('status=open&type=hedge')).items).toHaveLength(2);
    expect((await allPages('type=nosuchtype')).items).toEqual([]);
  });

  it('no filter: open, then finished; every workflow once across pages', async () => {
    const { items } = await allPages('limit=4');
    const ids = items.map((i) => i.corr_id);
    expect(ids.sort()).toEqual([...openTrading, ...openHedge, ...finished].sort());
    const firstDone = items.findIndex((i) => i.decision_published);
    expect(items.slice(firstDone).every((i) => i.decision_published)).toBe(true);
    const res = await call(app, 'GET', '/workflows');
    expect(res.body.limit).toBe(50);
    expect(res.body.items).toHaveLength(14);
  });

  it('refuses bad filters and cursors with 400 and a clear message', async () => {
    const page = await call(app, 'GET', '/workflows?status=open&limit=2');
    const cursor = encodeURIComponent(page.body.next_cursor);
    const cases: [string, RegExp][] = [
      ['/workflows?status=done', /status must be one of/],
      ['/workflows?limit=0', /limit must not be less than 1/],
      ['/workflows?limit=501', /limit must not be greater than 500/],
      ['/workflows?limit=many', /limit must be an integer/],
      ['/workflows?type=No%20Such', /type must be/],
      ['/workflows?colour=red', /property colour should not exist/],
      ['/workflows?cursor=garbage!', /cursor is not one this API returned/],
      [`/workflows?status=finished&cursor=${cursor}`, /other filters/],
    ];
    for (const [path, message] of cases) {
      const res = await call(app, 'GET', path);
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
      expect(res.body.message.join(' ')).toMatch(message);
    }
    expect((await call(app, 'GET', `/workflows?status=open&limit=2&cursor=${cursor}`)).status).toBe(200);
  });
});

describe('POST /workflows/:corr_id/cancel', () => {
  it('publishes exactly one cancelled decision, by whom; then 409 for every action; a later signal is late', async () => {
    const id = uniqueId('cancel');
    await open([id]);
    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await waitFor('the momentum signal', async () => (await app.get(`/workflows/${id}`, OPS)).body?.received_agents?.length === 1);

    const res = await post(app, `/workflows/${id}/cancel`, undefined, AUDIT);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ corr_id: id, workflow_id: `trading:${id}`, action: 'cancel', status: 'cancelled', decision_published: true });
    expect(res.body.decision).toMatchObject({ status: 'cancelled', decision: { action: 'cancelled', reason: 'cancelled_by_operator' } });

    const decision = await exactlyOneDecision(id);
    expect(decision).toMatchObject({
      corr_id: id,
      workflow_id: `trading:${id}`,
      workflow_type: 'trading',
      status: 'cancelled',
      decision: { action: 'cancelled', reason: 'cancelled_by_operator' },
      metadata: { cancelled_by: 'audit' },
    });
    expect(decision.source_signals.map((s: { agent: string }) => s.agent)).toEqual(['momentum']);
    expect(decision).toEqual(res.body.decision);

    for (const action of ['cancel', 'decide']) {
      const again = await post(app, `/workflows/${id}/${action}`);
      expect({ action, status: again.status }).toEqual({ action, status: 409 });
      expect(again.body).toMatchObject({ corr_id: id, status: 'cancelled', message: expect.stringMatching(/finished \(cancelled\)/) });
    }
    expect((await post(app, `/workflows/${id}/extend`, { seconds: 10 })).status).toBe(409);

    const late = await app.metric('meta_agent_late_signals_total', { reason: 'finished' });
    await infra.bus.publish(agentSubject('risk'), risk(id));
    await waitFor('the risk signal to count as late', async () => (await app.metric('meta_agent_late_signals_total', { reason: 'finished' })) > late);
    const state = await app.get(`/workflows/${id}`, OPS);
    expect(state.body).toMatchObject({ status: 'cancelled', decision_published: true, received_agents: ['momentum'] });
    expect(await decisionsFor(infra.bus, id)).toHaveLength(1);

    expect(await app.metric('meta_agent_admin_actions_total', { action: 'cancel', outcome: 'ok', token: 'audit' })).toBe(1);
    expect(await app.metric('meta_agent_admin_actions_total', { action: 'cancel', outcome: 'conflict', token: 'ops' })).toBeGreaterThanOrEqual(1);
    expect(await app.metric('meta_agent_workflows_completed_total', { status: 'cancelled' })).toBeGreaterThanOrEqual(1);
    // The log lines come through a pipe, maybe after the replies: wait for the two looked for.
    const logged = await waitFor('the admin action log lines', async () => {
      const lines = app.logs('"msg":"admin action"').map((l) => JSON.parse(l) as Record<string, unknown>);
      const has = (m: Record<string, unknown>) => lines.some((l) => Object.entries(m).every(([k, v]) => l[k] === v));
      return has({ action: 'cancel', corr_id: id, outcome: 'ok' }) && has({ action: 'decide', corr_id: id, outcome: 'conflict' }) ? lines : undefined;
    });
    expect(logged).toContainEqual(
      expect.objectContaining({ action: 'cancel', corr_id: id, workflow_id: `trading:${id}`, outcome: 'ok', token: 'audit', status: 'cancelled' }),
    );
    expect(logged).toContainEqual(expect.objectContaining({ action: 'decide', corr_id: id, outcome: 'conflict', token: 'ops' }));
  });

  it('unknown corr_id: 404 for every action; a malformed one: 400', async () => {
    const none = uniqueId('none');
    for (const [action, body] of [
      ['cancel', undefined],
      ['decide', undefined],
      ['extend', { seconds: 5 }],
    ] as const) {
      const res = await post(app, `/workflows/${none}/${action}`, body);
      expect({ action, status: res.status, body: res.body }).toEqual({
        action,
        status: 404,
        body: { statusCode: 404, message: 'no workflow for this corr_id', corr_id: none },
      });
      const bad = await post(app, `/workflows/bad%20id/${action}`, body);
      expect({ action, status: bad.status }).toEqual({ action, status: 400 });
      expect(bad.body.message.join(' ')).toMatch(/corr_id must be 1 to 128 characters/);
    }
    expect(await app.metric('meta_agent_admin_actions_total', { action: 'extend', outcome: 'not_found', token: 'ops' })).toBe(1);
  });
});

describe('POST /workflows/:corr_id/decide', () => {
  it("runs the strategy's evaluate on what has arrived, once; metadata says forced and by whom; then 409", async () => {
    const id = uniqueId('force');
    await open([id]);
    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await waitFor('the momentum signal', async () => (await app.get(`/workflows/${id}`, OPS)).body?.received_agents?.length === 1);

    const res = await post(app, `/workflows/${id}/decide`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ corr_id: id, action: 'decide', status: 'completed', decision_published: true });
    const decision = await exactlyOneDecision(id);
    expect(decision).toMatchObject({ status: 'completed', metadata: { forced: true, forced_by: 'ops' } });
    // The trading strategy's own decision on the momentum signal alone (no risk block): a trade, not a timeout.
    expect(decision.decision.action).not.toBe('timeout');
    expect(decision.source_signals.map((s: { agent: string }) => s.agent)).toEqual(['momentum']);
    expect(decision).toEqual(res.body.decision);

    const again = await post(app, `/workflows/${id}/decide`);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ status: 'completed' });
    expect(await decisionsFor(infra.bus, id)).toHaveLength(1);
  });
});

describe('unauthorised', () => {
  it('every admin endpoint: 401 without the token or with a wrong one, and nothing changes', async () => {
    const id = uniqueId('unauth');
    await open([id]);
    const before = (await app.get(`/workflows/${id}`, OPS)).body;
    const endpoints: ['GET' | 'POST', string, unknown][] = [
      ['GET', '/workflows', undefined],
      ['GET', '/workflows?status=open', undefined],
      ['POST', `/workflows/${id}/cancel`, undefined],
      ['POST', `/workflows/${id}/decide`, undefined],
      ['POST', `/workflows/${id}/extend`, { seconds: 60 }],
      ['POST', `/workflows/${uniqueId('none')}/cancel`, undefined],
    ];
    for (const [method, path, body] of endpoints) {
      for (const token of [null, 'wrong-token-0123456789', `${OPS}x`, 'ops']) {
        const res = await call(app, method, path, { token, body });
        expect({ method, path, token, status: res.status }).toEqual({ method, path, token, status: 401 });
        expect(res.text).not.toContain(id);
      }
    }
    const after = (await app.get(`/workflows/${id}`, OPS)).body;
    expect(after).toEqual(before);
    expect(await decisionsFor(infra.bus, id)).toHaveLength(0);
  });
});

describe('GET /openapi.json', () => {
  it('serves the OpenAPI document without a token: the admin endpoints, their DTOs and the bearer scheme', async () => {
    const res = await call(app, 'GET', '/openapi.json', { token: null });
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/workflows', '/workflows/{corrId}', '/workflows/{corrId}/cancel', '/workflows/{corrId}/decide', '/workflows/{corrId}/extend']),
    );
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { security?: unknown }>>)) {
      if (!path.startsWith('/workflows')) continue;
      for (const [method, operation] of Object.entries(item))
        expect({ path, method, security: operation.security }).toEqual({ path, method, security: [{ bearer: [] }] });
    }
    const list = doc.paths['/workflows'].get;
    expect(list.security).toEqual([{ bearer: [] }]);
    expect(list.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['cursor', 'limit', 'status', 'type']);
    expect(list.parameters.find((p: { name: string }) => p.name === 'status').schema.enum).toEqual(expect.arrayContaining(['open', 'finished', 'cancelled']));
    expect(Object.keys(list.responses)).toEqual(expect.arrayContaining(['200', '400', '401']));
    const extend = doc.paths['/workflows/{corrId}/extend'].post;
    expect(Object.keys(extend.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '404', '409']));
    expect(doc.components.schemas.ExtendWorkflowDto).toMatchObject({ required: ['seconds'], properties: { seconds: { minimum: 1, maximum: 604800 } } });
    expect(doc.components.schemas.WorkflowPageDto.properties).toHaveProperty('next_cursor');
  });
});

describe('POST /workflows/:corr_id/extend', () => {
  it('the workflow times out later than it would have; the move is bounded by META_AGENT_MAX_TIMEOUT_SECONDS (clamped)', async () => {
    // A replica whose maximum timeout is 14 s answers the extend calls (the first replica may run the workflows).
    // The workflows time out after 8 s unless extended: room for the extend calls on a loaded machine (each
    // must come before the deadline, or it is refused with 409).
    const bounded = await startService({ META_AGENT_MAX_TIMEOUT_SECONDS: '14', META_AGENT_DEFAULT_TIMEOUT_SECONDS: '5' });
    others.push(bounded);
    const plain = uniqueId('ext');
    const checked = uniqueId('extc');
    const clamped = uniqueId('extm');
    await open([plain, checked, clamped], { timeout_seconds: 8 });
    // A stored signal puts a check entry (earlier than the deadline) in the due index: the extension keeps it.
    await infra.bus.publish(agentSubject('momentum'), momentum(checked));

    const replies: Record<string, Reply> = {};
    for (const [id, seconds] of [
      [plain, 3],
      [checked, 3],
      [clamped, 100],
    ] as const) {
      replies[id] = await post(bounded, `/workflows/${id}/extend`, { seconds });
      expect({ id, status: replies[id].status }).toEqual({ id, status: 200 });
    }
    for (const id of [plain, checked]) {
      const r = replies[id].body;
      expect(r).toMatchObject({ corr_id: id, workflow_id: `trading:${id}`, extended_by_seconds: 3, clamped: false });
      expect(Date.parse(r.deadline_at) - Date.parse(r.previous_deadline_at)).toBe(3000);
    }
    const m = replies[clamped].body;
    expect(m).toMatchObject({ clamped: true, extended_by_seconds: 6 });
    const started = Date.parse((await app.get(`/workflows/${clamped}`, OPS)).body.started_at);
    expect(Date.parse(m.deadline_at)).toBe(started + 14_000);
    expect(m.max_deadline_at).toBe(m.deadline_at);
    // Already at the bound: nothing moves, and the reply says so.
    expect((await post(bounded, `/workflows/${clamped}/extend`, { seconds: 1 })).body).toMatchObject({ extended_by_seconds: 0, clamped: true });

    for (const id of [plain, checked, clamped]) {
      const decision = await waitForDecision(infra.bus, id, 30000);
      const state = (await app.get(`/workflows/${id}`, OPS)).body;
      const deadline = Date.parse(id === clamped ? m.deadline_at : replies[id].body.deadline_at);
      expect({ id, status: decision.status }).toEqual({ id, status: 'timeout' });
      expect(state.deadline_at).toBe(new Date(deadline).toISOString());
      // Not at the old deadline (8 s): at the new one, within a sweep and some slack on 2 cores.
      const at = Date.parse(decision.orchestrated_at);
      expect(at).toBeGreaterThanOrEqual(deadline);
      expect(at - deadline).toBeLessThan(2000);
      await exactlyOneDecision(id);
    }
    expect(await bounded.metric('meta_agent_admin_actions_total', { action: 'extend', outcome: 'clamped', token: 'ops' })).toBe(2);

    const bad = await post(bounded, `/workflows/${plain}/extend`, { seconds: 0 });
    expect(bad.status).toBe(400);
    expect((await post(bounded, `/workflows/${plain}/extend`, {})).body.message).toEqual(['seconds must be an integer']);
    // Finished (timed out) now.
    expect((await post(bounded, `/workflows/${plain}/extend`, { seconds: 5 })).body).toMatchObject({ statusCode: 409, status: 'timeout' });
  });
});

describe('races: two replicas cancelling and deciding the same workflows at once', () => {
  it('one decision per workflow; the loser gets 409', async () => {
    const replica = await startService();
    others.push(replica);
    const ids = Array.from({ length: 12 }, (_, i) => uniqueId(`race${i}`));
    await open(ids);
    for (const id of ids.slice(0, 6)) await infra.bus.publish(agentSubject('momentum'), momentum(id));

    const outcomes = await Promise.all(
      ids.map(async (id, i) => {
        // Half: replica 1 cancels while replica 2 decides; half the other way round.
        const [a, b] = i % 2 === 0 ? [app, replica] : [replica, app];
        const [cancel, decide] = await Promise.all([post(a, `/workflows/${id}/cancel`), post(b, `/workflows/${id}/decide`)]);
        return { id, cancel, decide };
      }),
    );
    for (const { id, cancel, decide } of outcomes) {
      expect({ id, statuses: [cancel.status, decide.status].sort() }).toEqual({ id, statuses: [200, 409] });
      const winner = cancel.status === 200 ? cancel : decide;
      const loser = cancel.status === 200 ? decide : cancel;
      // The loser found the workflow finished (or, where deciding freezes it first, being decided).
      expect([winner.body.status, 'evaluating']).toContain(loser.body.status);
      const decisions = await waitFor(`the decision of ${id}`, async () => {
        const found = await decisionsFor(infra.bus, id);
        return found.length > 0 ? found : undefined;
      });
      expect(decisions[0]).toEqual(winner.body.decision);
    }
    // Finalised and every input handled: nothing left that could publish a second decision.
    for (const id of ids) await exactlyOneDecision(id);
  });
});
