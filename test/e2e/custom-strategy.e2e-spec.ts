import { Redis } from 'ioredis';
import { AppProcess } from '../support/app.js';
import { REDIS_URL, uniqueId, waitFor } from '../support/env.js';
import { openBus, type Bus } from '../support/nats.js';
import { agentSubject, expectOneDecision, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * The extension point, as a user would use it (test/fixtures/extended-app.mjs): provider classes with
 * the decorator, listed in a module around AppModule, and the service serves new workflow types.
 * Also: a strategy that throws ends its workflow as `failed` with one error decision.
 */
let app: AppProcess;
let bus: Bus;

beforeAll(async () => {
  bus = await openBus();
  await bus.deleteStreams('SIGNALS', 'DECISIONS', 'DEADLETTER');
  const redis = new Redis(REDIS_URL);
  await redis.flushall();
  redis.disconnect();
  app = await AppProcess.start({ META_AGENT_SWEEP_INTERVAL_MS: '100' }, 'test/fixtures/extended-app.mjs');
});

afterAll(async () => {
  expect(await app.stop()).toBe(0);
  await bus.close();
});

it('registers the added providers beside the built-in one', async () => {
  const [line] = await app.waitForLogs('decision strategies registered');
  expect(JSON.parse(line).types.sort()).toEqual(['explode', 'flaky-start', 'fragile', 'instant', 'quorum', 'slow-timeout', 'trading']);
});

it('a registered provider serves its workflow type', async () => {
  const id = uniqueId('quorum');
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'quorum' }));
  await bus.publish(agentSubject('risk'), risk(id));
  await bus.publish(agentSubject('momentum'), momentum(id));
  const d = await waitForDecision(bus, id);
  expect(d).toMatchObject({ workflow_type: 'quorum', workflow_id: `quorum:${id}`, status: 'completed', metadata: { kind: 'quorum' } });
  expect(d.decision).toEqual({ action: 'agree', voters: ['momentum', 'risk'] });
});

it('a strategy that needs no agent decides on the trigger alone, at once', async () => {
  const id = uniqueId('instant');
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'instant', instrument: 'SPY' }));
  const d = await waitForDecision(bus, id);
  expect(d).toMatchObject({ status: 'completed', decision: { action: 'acknowledge', instrument: 'SPY' }, source_signals: [] });
  // Long before its 60 s timeout, by the service's own clock (decided at the freeze, counted from the start;
  // not by how long this test took to see it).
  const { started_at } = (await app.get(`/workflows/${id}`)).body as { started_at: string };
  expect(Date.parse(d.orchestrated_at) - Date.parse(started_at)).toBeLessThan(5000);
});

it("a provider's onTimeout builds its timeout decision", async () => {
  const id = uniqueId('quorum-to');
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'quorum', timeout_seconds: 0.5 }));
  const d = await waitForDecision(bus, id);
  expect(d).toMatchObject({ status: 'timeout', decision: { action: 'abstain' } });
});

it('a strategy that throws ends the workflow as failed, with one error decision', async () => {
  const id = uniqueId('explode');
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'explode' }));
  await bus.publish(agentSubject('momentum'), momentum(id));
  const d = await waitForDecision(bus, id);
  expect(d.status).toBe('failed');
  expect(d.decision).toEqual({ action: 'error', reason: 'strategy_error', error: 'Error: model weights not found' });
  // One, and finalised (counted when finalised, after the publish).
  await expectOneDecision(bus, app, id);
  await waitFor('the failed workflow counted', async () => (await app.metric('meta_agent_workflows_completed_total', { status: 'failed' })) >= 1);
  expect(await app.metric('meta_agent_workflows_completed_total', { status: 'failed' })).toBe(1);
});

it('a canDecide that throws ends the workflow as failed too', async () => {
  const id = uniqueId('fragile');
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'fragile' }));
  await bus.publish(agentSubject('momentum'), momentum(id));
  const d = await waitForDecision(bus, id);
  expect(d).toMatchObject({ status: 'failed', decision: { action: 'error', reason: 'strategy_error', error: 'TypeError: cannot read the signals' } });
});

it('the trading strategy still serves the default type', async () => {
  const id = uniqueId('fx');
  await bus.publish(TRIGGER_SUBJECT, trigger(id));
  await bus.publish(agentSubject('momentum'), momentum(id));
  await bus.publish(agentSubject('risk'), risk(id));
  expect((await waitForDecision(bus, id)).decision.action).toBe('trade');
});
