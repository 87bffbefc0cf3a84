import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { agentSubject, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/* Settings that bound the work: back-pressure, early-signal grace, staleness. */
const infra = useInfra({ each: true });

it('above MAX_CONCURRENT_WORKFLOWS a trigger waits (held, not naked or dropped) and starts when there is room', async () => {
  const app = await AppProcess.start({ META_AGENT_MAX_CONCURRENT_WORKFLOWS: '2', META_AGENT_SWEEP_INTERVAL_MS: '50' });
  try {
    const [a, b, c] = [uniqueId('bp-a'), uniqueId('bp-b'), uniqueId('bp-c')];
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(a, { timeout_seconds: 60 }));
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(b, { timeout_seconds: 60 }));
    await waitFor('two active workflows', async () => (await app.metric('meta_agent_active_workflows')) === 2);
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(c, { timeout_seconds: 60 }));
    await waitFor('the third trigger to be held back', async () => app.logs('back-pressure: new triggers wait').length === 1);
    expect((await app.get(`/workflows/${c}`)).status).toBe(404);

    // Finish one: the held trigger gets its turn.
    await infra.bus.publish(agentSubject('momentum'), momentum(a));
    await infra.bus.publish(agentSubject('risk'), risk(a));
    await waitForDecision(infra.bus, a);
    await waitFor('the held trigger to start', async () => (await app.get(`/workflows/${c}`)).status === 200, 20000);
    expect(await infra.bus.count('DEADLETTER')).toBe(0);
    expect(await app.metric('meta_agent_messages_settled_total', { action: 'nak' })).toBe(0);
  } finally {
    expect(await app.stop()).toBe(0);
  }
});

it('a signal whose trigger never comes is dropped after the grace period and counted as orphaned', async () => {
  const app = await AppProcess.start({ META_AGENT_EARLY_SIGNAL_GRACE_SECONDS: '1', META_AGENT_WORKFLOW_CLEANUP_INTERVAL: '1' });
  try {
    const id = uniqueId('orphan');
    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await infra.bus.publish(agentSubject('risk'), risk(id));
    await waitFor('two buffered signals', async () => (await app.get(`/workflows/${id}`)).body?.buffered_signals?.length === 2);
    await waitFor('the orphan counter', async () => (await app.metric('meta_agent_orphaned_signals_total')) === 2, 30000);
    expect((await app.get(`/workflows/${id}`)).body.buffered_signals).toEqual([]);

    // The trigger arriving after the grace period starts a workflow without them.
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 0.5 }));
    expect((await waitForDecision(infra.bus, id)).decision).toMatchObject({ action: 'timeout', partial_signals: [] });
  } finally {
    await app.stop();
  }
});

it('a signal older than AGENT_TIMEOUT_SECONDS is stale: counted, not used', async () => {
  const app = await AppProcess.start({ META_AGENT_AGENT_TIMEOUT_SECONDS: '5' });
  try {
    const id = uniqueId('stale');
    // The signals first, handled before the trigger comes (no race with its 1 s timeout): the fresh one is
    // kept for the trigger, the stale one is counted and not kept.
    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await infra.bus.publish(agentSubject('risk'), risk(id, { timestamp: new Date(Date.now() - 60_000).toISOString() }));
    await infra.bus.waitForIdle();
    expect(await app.metric('meta_agent_late_signals_total', { reason: 'stale' })).toBe(1);
    expect((await app.get(`/workflows/${id}`)).body.buffered_signals).toEqual(['momentum']);
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 1 }));
    const d = await waitForDecision(infra.bus, id);
    expect(d.decision).toMatchObject({ action: 'timeout', partial_signals: ['momentum'], missing_signals: ['risk'] });
    expect(await app.metric('meta_agent_late_signals_total', { reason: 'stale' })).toBe(1);
  } finally {
    await app.stop();
  }
});

it('reads .env from its working directory; the environment wins over it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dotenv-'));
  writeFileSync(join(dir, '.env'), 'META_AGENT_NAME=from_dotenv\nMETA_AGENT_MAX_TIMEOUT_SECONDS=77\nMETA_AGENT_DEFAULT_TIMEOUT_SECONDS=5\n');
  const app = AppProcess.spawn({ META_AGENT_MAX_TIMEOUT_SECONDS: '66' }, await freePort(), 'dist/main.js', dir);
  try {
    await app.waitReady();
    expect((await app.get('/health')).body.agent_name).toBe('from_dotenv');
    const id = uniqueId('dotenv');
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 1000 }));
    expect(await waitFor('the workflow', async () => (await app.get(`/workflows/${id}`)).body?.timeout_seconds)).toBe(66);
  } finally {
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('with provisioning off, uses streams and consumers that exist', async () => {
  const first = await AppProcess.start();
  await first.stop();
  const app = await AppProcess.start({ META_AGENT_PROVISION: 'false' });
  try {
    const id = uniqueId('noprov');
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await infra.bus.publish(agentSubject('risk'), risk(id));
    expect((await waitForDecision(infra.bus, id)).status).toBe('completed');
  } finally {
    expect(await app.stop()).toBe(0);
  }
});
