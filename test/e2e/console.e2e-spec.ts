import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { AppProcess } from '../support/app.js';
import { launchChromium, outputDir, screenshot } from '../support/browser.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { HEDGE_WORKFLOWS_FILE, agentSubject, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * Issue 18, part 4: the operator console in a real browser (headless Chromium driven by playwright-core) against
 * the built service and real NATS and Redis. Off when the admin API is; the page loads nothing from another
 * origin and carries its CSP; it asks for the token and refuses a wrong one; with the right one it lists the
 * workflows real triggers and signals made, filters and pages them, shows one workflow's timeline from its
 * history, takes admin actions that the API then shows, and shows decisions live as they are published.
 * Screenshots go to test-output/console/. One browser and one page for the file: the tests are its steps, in order.
 */
const OPS = 'ops-3c5e7a9b1d2f4a6c8e0b';
const WRONG = 'not-the-token-1234567890';

const infra = useInfra();
let dir: string;
let app: AppProcess;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const requests: Request[] = [];
/** What the page logged as an error or warning, and its uncaught errors. */
const pageProblems: string[] = [];
const shots = outputDir('console');

/** Admin API reads of the test itself (not through the page). */
async function api(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(app.url(path), { headers: { authorization: `Bearer ${OPS}` } });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

/** Workflows the tests make: decided (trigger + both signals), and open ones (trigger only, a long timeout). */
const decided = Array.from({ length: 6 }, (_, i) => uniqueId(`cd${i}`));
const openTrading = [uniqueId('co1'), uniqueId('co2')];
const openHedge = uniqueId('ch');

async function openWorkflow(id: string, extra: Record<string, unknown> = {}): Promise<void> {
  await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 300, ...extra }));
  await waitFor(`workflow ${id}`, async () => (await api(`/workflows/${id}`)).status === 200);
}

/** Opened first (the trigger stored, so that no signal comes early), then both signals. */
async function decide(id: string): Promise<void> {
  await openWorkflow(id);
  await infra.bus.publish(agentSubject('momentum'), momentum(id));
  await infra.bus.publish(agentSubject('risk'), risk(id));
}

async function published(id: string): Promise<void> {
  await waitFor(`the decision of ${id} published`, async () => (await api(`/workflows/${id}`)).body?.decision_published === true);
}

/**
 * Waits until the workflows table shows exactly these corr_ids (any order): no row beyond their count, and a
 * row for each. The page replaces the table's rows at once, so both together are one rendering of one page.
 */
async function waitForRows(ids: string[]): Promise<void> {
  const rows = page.locator('#workflows tbody tr');
  await rows.nth(ids.length).waitFor({ state: 'detached' });
  for (const id of ids) await page.locator(`#workflows tbody tr[data-corr-id="${id}"]`).waitFor();
}

async function showList(filters: { status?: string; type?: string; limit?: string }): Promise<void> {
  await page.selectOption('#filter-status', filters.status ?? '');
  await page.fill('#filter-type', filters.type ?? '');
  await page.selectOption('#filter-limit', filters.limit ?? '25');
  await page.click('#filters button[type=submit]');
}

/** The `data-event` of each row of the timeline, in the page's order. */
async function timelineEvents(): Promise<string[]> {
  const rows = page.locator('#timeline tr[data-event]');
  const out: string[] = [];
  for (let i = 0; i < (await rows.count()); i++) out.push((await rows.nth(i).getAttribute('data-event')) ?? '');
  return out;
}

describe('console off (no META_AGENT_ADMIN_TOKEN)', () => {
  it('/console, its files and the live endpoint answer 404', async () => {
    const off = await AppProcess.start({ META_AGENT_ADMIN_TOKEN: '' });
    try {
      for (const path of ['/console', '/console/console.js', '/console/console.css', '/workflows/decisions/live']) {
        expect([path, (await off.get(path, null)).status]).toEqual([path, 404]);
      }
    } finally {
      expect(await off.stop()).toBe(0);
    }
  });
});

describe('console on', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'console-'));
    writeFileSync(join(dir, 'workflows.yaml'), HEDGE_WORKFLOWS_FILE);
    app = await AppProcess.start({
      META_AGENT_ADMIN_TOKEN: `ops:${OPS}`,
      META_AGENT_WORKFLOWS_FILE: join(dir, 'workflows.yaml'),
      META_AGENT_SWEEP_INTERVAL_MS: '100',
    });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    page = await context.newPage();
    page.on('request', (r) => requests.push(r));
    // Every error or warning the page logs (a CSP or Trusted Types violation, an invalid pattern, ...), except
    // the refused token's 401 and the favicon's 404, which the test causes on purpose or the browser asks for.
    page.on('console', (m) => {
      if ((m.type() === 'error' || m.type() === 'warning') && !/Failed to load resource: .* status of (401|404)/.test(m.text())) {
        pageProblems.push(`${m.type()}: ${m.text()}`);
      }
    });
    page.on('pageerror', (e) => pageProblems.push(`page error: ${e.message}`));
  });

  afterAll(async () => {
    try {
      // The page's live stream is still open: the service ends it and stops cleanly (not by its shutdown timeout).
      const code = app ? await app.stop() : 0;
      if (code !== 0) process.stdout.write(`service exit ${code}; its last lines:\n${app.lines.slice(-40).join('\n')}\n`);
      expect(code).toBe(0);
    } finally {
      await browser?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads from its own origin only, with its CSP and no-store, and asks for the token', async () => {
    const res = await page.goto(app.url('/console'));
    expect(res?.status()).toBe(200);
    const headers = res!.headers();
    expect(headers['content-security-policy']).toContain("default-src 'none'");
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(headers['cache-control']).toBe('no-store');
    expect(headers['x-content-type-options']).toBe('nosniff');
    // The script ran (it fills the status filter) and shows the token form, the console hidden.
    await page.locator('#filter-status option[value="cancelled"]').waitFor({ state: 'attached' });
    await page.locator('#token').waitFor();
    expect(await page.locator('#console').isHidden()).toBe(true);
    await screenshot(page, shots, '01-token-prompt');

    const origin = new URL(app.url('/')).origin;
    expect(requests.map((r) => r.url()).filter((u) => new URL(u).origin !== origin)).toEqual([]);
    expect(requests.map((r) => new URL(r.url()).pathname)).toEqual(expect.arrayContaining(['/console', '/console/console.js', '/console/console.css']));
    expect(pageProblems).toEqual([]);
  });

  it('a wrong token is refused, and not kept', async () => {
    await page.fill('#token', WRONG);
    await page.click('#token-form button[type=submit]');
    await page.locator('#sign-in-error').filter({ hasText: '401' }).waitFor();
    expect(await page.locator('#console').isHidden()).toBe(true);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await screenshot(page, shots, '02-wrong-token');
  });

  it('with the right token: the workflows real triggers and signals made, filtered and paged', async () => {
    for (const id of decided) await decide(id);
    for (const id of openTrading) await openWorkflow(id);
    await openWorkflow(openHedge, { workflow_type: 'hedge' });
    for (const id of decided) await published(id);

    await page.fill('#token', OPS);
    await page.click('#token-form button[type=submit]');
    await page.locator('#console').waitFor();
    await waitForRows([...openTrading, openHedge, ...decided]);
    expect(await page.evaluate(`sessionStorage.getItem('meta-agent-console-token')`)).toBe(OPS);
    const row = page.locator(`#workflows tbody tr[data-corr-id="${decided[0]}"]`);
    expect(await row.getAttribute('data-status')).toBe('completed');
    expect(await row.textContent()).toContain('momentum, risk');

    await showList({ status: 'open' });
    await waitForRows([...openTrading, openHedge]);
    await showList({ type: 'hedge' });
    await waitForRows([openHedge]);
    await showList({ status: 'open', type: 'trading' });
    await waitForRows(openTrading);

    // Pages of 5: the six decided workflows on two pages (as the API pages them: newest first), and back.
    const pageOne = (await api('/workflows?status=finished&limit=5')).body;
    const first: string[] = pageOne.items.map((w: { corr_id: string }) => w.corr_id);
    const second = decided.filter((id) => !first.includes(id));
    expect(second).toHaveLength(1);
    await showList({ status: 'finished', limit: '5' });
    await waitForRows(first);
    await page.locator('#page-info').filter({ hasText: 'page 1, 5 shown' }).waitFor();
    await page.click('#page-next');
    await waitForRows(second);
    await page.locator('#page-info').filter({ hasText: 'page 2, 1 shown' }).waitFor();
    expect(await page.isDisabled('#page-next')).toBe(true);
    await page.click('#page-prev');
    await waitForRows(first);
    await screenshot(page, shots, '03-list-finished-page-1');

    // No request carried the token in its URL; each API call carried it as a header.
    expect(requests.filter((r) => r.url().includes(OPS))).toEqual([]);
    const calls = requests.filter((r) => new URL(r.url()).pathname.startsWith('/workflows'));
    expect(calls.length).toBeGreaterThan(5);
    for (const call of calls) expect((await call.allHeaders()).authorization).toMatch(/^Bearer /);
  });

  it("one workflow's timeline, from its history: trigger, signals as they arrived, the frozen snapshot, the decision", async () => {
    const id = decided[3];
    await page.click(`#workflows tbody tr[data-corr-id="${id}"] button`);
    await page.locator('#detail-corr-id').filter({ hasText: id }).waitFor();
    await page.locator('#timeline tr[data-event="decision_published"]').waitFor();
    expect(await timelineEvents()).toEqual(['trigger_accepted', 'signal_stored', 'signal_stored', 'frozen', 'decision_published']);

    const history = (await api(`/workflows/${id}/history`)).body;
    const events = history.instances[0].events;
    expect(events.map((e: { event: string }) => e.event)).toEqual(await timelineEvents());
    const rows = page.locator('#timeline tr[data-event]');
    for (let i = 0; i < events.length; i++) {
      // Each signal at the time JetStream received it, to the millisecond (UTC), with its agent.
      const when = events[i].input?.received_ms ?? events[i].redis_ms;
      expect(await rows.nth(i).locator('td.time').textContent()).toBe(new Date(when).toISOString().replace('T', ' ').replace('Z', ''));
      if (events[i].event === 'signal_stored') expect(await rows.nth(i).textContent()).toContain(`agent ${events[i].agent}`);
    }
    const snapshot = page.locator('#timeline tr[data-event="frozen"] .snapshot');
    expect(await snapshot.textContent()).toContain('momentum: confidence 0.9');
    expect(await snapshot.textContent()).toContain('risk: confidence 0.8');
    const decision = history.instances[0].decision;
    expect(await page.locator('#timeline .instance p').first().textContent()).toContain(`Decision: completed, action ${decision.decision.action}`);
    // Finished: no action to take.
    expect(await page.isDisabled('#action-cancel')).toBe(true);
    await screenshot(page, shots, '04-timeline');
  });

  it('admin actions from the page take effect (extend, then cancel), and the cancel shows live', async () => {
    await page.locator('#live-state[data-state="live"]').waitFor();
    const id = openTrading[0];
    const before = (await api(`/workflows/${id}`)).body;
    await showList({ status: 'open' });
    await page.click(`#workflows tbody tr[data-corr-id="${id}"] button`);
    await page.locator('#detail-corr-id').filter({ hasText: id }).waitFor();
    await page.locator('#action-extend:enabled').waitFor();

    await page.fill('#extend-seconds', '120');
    await page.click('#action-extend');
    await page
      .locator('#action-result.ok')
      .filter({ hasText: `extend ${id}: 200` })
      .waitFor();
    const extended = (await api(`/workflows/${id}`)).body;
    expect(Date.parse(extended.deadline_at) - Date.parse(before.deadline_at)).toBe(120_000);
    await page.locator('#timeline tr[data-event="admin_action"]').filter({ hasText: 'extend: ok, by ops' }).waitFor();

    page.once('dialog', (dialog) => void dialog.accept());
    await page.click('#action-cancel');
    await page
      .locator('#action-result.ok')
      .filter({ hasText: `cancel ${id}: 200` })
      .waitFor();
    await waitFor(`${id} cancelled`, async () => (await api(`/workflows/${id}`)).body?.status === 'cancelled');
    await page.locator(`#live li[data-corr-id="${id}"][data-status="cancelled"]`).waitFor();
    await page.locator('#timeline tr[data-event="decision_published"]').waitFor();
    expect(await page.isDisabled('#action-cancel')).toBe(true);
    await screenshot(page, shots, '05-actions');
  });

  it('a decision published while the page is open appears live, once', async () => {
    const id = uniqueId('clive');
    await decide(id);
    const decision = await waitForDecision(infra.bus, id);
    const item = page.locator(`#live li[data-corr-id="${id}"]`);
    await item.waitFor();
    expect(await item.getAttribute('data-status')).toBe(decision.status);
    expect(await item.textContent()).toContain(`${decision.workflow_type} ${decision.status} ${decision.decision.action}`);
    expect(await item.count()).toBe(1);
    // From the live list to its timeline.
    await item.locator('button').click();
    await page.locator('#detail-corr-id').filter({ hasText: id }).waitFor();
    await page.locator('#timeline tr[data-event="decision_published"]').waitFor();
    await screenshot(page, shots, '06-live');

    // Any corr_id by hand (the history of one Redis may have forgotten).
    await page.fill('#open-corr-id', decided[0]);
    await page.click('#open-form button[type=submit]');
    await page.locator('#detail-corr-id').filter({ hasText: decided[0] }).waitFor();
    await page.locator('#timeline tr[data-event="decision_published"]').waitFor();
    expect(pageProblems).toEqual([]);
  });

  it('the live endpoint: bearer token, Server-Sent Events, in the OpenAPI document; closed when its client goes', async () => {
    expect((await app.get('/workflows/decisions/live', null)).status).toBe(401);
    expect((await app.get('/workflows/decisions/live', WRONG)).status).toBe(401);
    const doc = await app.get('/openapi.json', null);
    expect(Object.keys(doc.body.paths['/workflows/decisions/live'].get.responses['200'].content)).toEqual(['text/event-stream']);

    // A second page opens a stream, then goes: the service logs that stream closed (its subscription ended).
    const closedBefore = app.logs('live decisions stream closed').length;
    const second = await context.newPage();
    await second.goto(app.url('/console'));
    // A new tab: its own session storage, so the token is asked for again.
    await second.fill('#token', OPS);
    await second.click('#token-form button[type=submit]');
    await second.locator('#live-state[data-state="live"]').waitFor();
    await second.close();
    await app.waitForLogs('live decisions stream closed', closedBefore + 1);
  });
});
