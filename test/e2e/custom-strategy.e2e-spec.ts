import { Redis } from 'ioredis';
import { AppProcess } from '../support/app.js';
import { REDIS_URL, uniqueId } from '../support/env.js';
import { openBus, type Bus } from '../support/nats.js';
import { agentSubject, decisionsFor, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

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

it('registers the added providers beside the built-in one', () => {
  const line = app.logs('decision strategies registered')[0];
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
  const sent = Date.now();
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'instant', instrument: 'SPY' }));
  const d = await waitForDecision(bus, id);
  expect(d).toMatchObject({ status: 'completed', decision: { action: 'acknowledge', instrument: 'SPY' }, source_signals: [] });
  // Long before its 60 s timeout.
  expect(Date.now() - sent).toBeLessThan(5000);
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
  await new Promise((r) => setTimeout(r, 500));
  expect(await decisionsFor(bus, id)).toHaveLength(1);
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
