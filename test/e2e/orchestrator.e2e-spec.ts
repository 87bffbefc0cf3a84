import { Redis } from 'ioredis';
import { AppProcess } from '../support/app.js';
import { REDIS_URL, uniqueId, waitFor } from '../support/env.js';
import { openBus, type Bus } from '../support/nats.js';
import {
  agentSubject,
  decisionsFor,
  expectOneDecision,
  momentum,
  risk,
  trigger,
  TRIGGER_SUBJECT,
  waitForDecision,
  type DecisionMessage,
} from '../support/signals.js';
import { DeadLetterHeaders } from '../../src/transport/jetstream/dead-letter.publisher.js';

/*
 * The built service as one real process against real nats-server and redis-server: the behaviours of
 * SPEC "Wire format", "Streams and consumers", "Workflows" and "HTTP", seen from outside.
 */
let bus: Bus;
let redis: Redis;
let app: AppProcess;

/** The decision, and proof that no second one follows (expectOneDecision: finalised, inputs all handled). */
function expectExactlyOne(corrId: string): Promise<DecisionMessage> {
  return expectOneDecision(bus, app, corrId);
}

beforeAll(async () => {
  bus = await openBus();
  await bus.deleteStreams('SIGNALS', 'DECISIONS', 'DEADLETTER');
  redis = new Redis(REDIS_URL);
  await redis.flushall();
  app = await AppProcess.start({ META_AGENT_MIN_CONFIDENCE_THRESHOLD: '0.6', META_AGENT_SWEEP_INTERVAL_MS: '100' });
});

afterAll(async () => {
  expect(await app.stop()).toBe(0);
  await bus.close();
  redis.disconnect();
});

describe('a workflow, end to end', () => {
  it('trigger + momentum + risk -> one trade decision in the template format', async () => {
    const id = uniqueId('fx');
    await bus.publish(TRIGGER_SUBJECT, trigger(id));
    await bus.publish(agentSubject('momentum'), momentum(id));
    await bus.publish(agentSubject('risk'), risk(id));

    const d = await expectExactlyOne(id);
    expect(d).toMatchObject({
      corr_id: id,
      workflow_id: `trading:${id}`,
      orchestrator: 'trading_decision_meta_agent',
      workflow_type: 'trading',
      status: 'completed',
      metadata: { instrument: 'EURUSD', trigger_price: 1.0845, trigger_side: 'buy' },
    });
    expect(d.decision).toMatchObject({ action: 'trade', direction: 'bullish', reason: 'high_conviction_momentum', confidence: 0.8 });
    expect(d.decision.position_size).toBeCloseTo(36000, 6);
    expect(d.source_signals.map((s) => s.agent).sort()).toEqual(['momentum', 'risk']);
    expect(d.orchestrated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

    const [msg] = (await bus.read('DECISIONS')).filter((m) => m.string().includes(`"corr_id":"${id}"`));
    // The workflow instance: its id and start time (a later workflow of the same corr_id gets another).
    expect(msg.headers?.get('Nats-Msg-Id')).toMatch(new RegExp(`^trading:${id}@\\d{13}$`));

    const state = await app.get(`/workflows/${id}`);
    expect(state.status).toBe(200);
    expect(state.body).toMatchObject({ status: 'completed', decision_published: true, received_agents: expect.arrayContaining(['momentum', 'risk']) });
  });

  it('risk blocked (data.analysis.risk_level) -> no_trade risk_blocked', async () => {
    const id = uniqueId('blocked');
    await bus.publish(TRIGGER_SUBJECT, trigger(id));
    await bus.publish(agentSubject('risk'), risk(id, { analysis: { risk_level: 'blocked' } }));
    await bus.publish(agentSubject('momentum'), momentum(id));
    const d = await expectExactlyOne(id);
    expect(d.decision).toMatchObject({ action: 'no_trade', reason: 'risk_blocked', confidence: 1 });
  });

  it('applies min_confidence_threshold: a trade below it becomes no_trade', async () => {
    const id = uniqueId('weakconf');
    await bus.publish(TRIGGER_SUBJECT, trigger(id));
    await bus.publish(agentSubject('momentum'), momentum(id, { confidence: 0.85 }));
    await bus.publish(agentSubject('risk'), risk(id, { confidence: 0.55 }));
    const d = await expectExactlyOne(id);
    expect(d.decision).toMatchObject({ action: 'no_trade', reason: 'insufficient_confidence', confidence: 0.55 });
    expect(d.decision.position_size).toBeUndefined();
  });

  it('times out with partial and missing signals', async () => {
    const id = uniqueId('timeout');
    // The momentum signal first (kept for the trigger): it is in the workflow from its start, whatever the
    // load, rather than racing the 1 s deadline.
    await bus.publish(agentSubject('momentum'), momentum(id));
    await waitFor('the buffered signal', async () => (await app.get(`/workflows/${id}`)).body?.buffered_signals?.length === 1);
    const started = Date.now();
    await bus.publish(TRIGGER_SUBJECT, trigger(id, { instrument: 'SPY', timeout_seconds: 1 }));
    const d = await expectExactlyOne(id);
    expect(d.status).toBe('timeout');
    expect(d.decision).toEqual({
      action: 'timeout',
      reason: 'workflow_timeout',
      partial_signals: ['momentum'],
      missing_signals: ['risk', 'correlation', 'macro'],
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    // It fired within about one sweep interval (100 ms here) of its deadline: every timeout so far
    // falls in the histogram's 0.25 s bucket. (Recorded once the workflow is finalised: expectExactlyOne waited for that.)
    const count = await waitFor('the timeout in the lateness histogram', async () => {
      const n = await app.metric('meta_agent_timeout_lateness_seconds_count');
      return n >= 1 && n;
    });
    expect(await app.metric('meta_agent_timeout_lateness_seconds_bucket', { le: '0.25' })).toBe(count);
    const state = (await app.get(`/workflows/${id}`)).body;
    expect(Date.parse(state.deadline_at) - Date.parse(state.started_at)).toBe(1000);
  });

  it("caps a trigger's timeout_seconds at META_AGENT_MAX_TIMEOUT_SECONDS", async () => {
    const id = uniqueId('cap');
    await bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 999999 }));
    const state = await waitFor('the workflow', async () => (await app.get(`/workflows/${id}`)).body?.timeout_seconds);
    expect(state).toBe(3600);
  });

  it('logs JSON lines with corr_id and workflow_id', async () => {
    const id = uniqueId('logs');
    await bus.publish(TRIGGER_SUBJECT, trigger(id));
    await bus.publish(agentSubject('momentum'), momentum(id));
    await bus.publish(agentSubject('risk'), risk(id));
    await waitForDecision(bus, id);
    const lines = await waitFor('the log lines', async () => {
      const found = app.logs(id).map((l) => JSON.parse(l) as Record<string, unknown>);
      return found.some((l) => l.msg === 'decision published') ? found : undefined;
    });
    for (const line of lines) {
      expect(line).toMatchObject({ corr_id: id, time: expect.stringMatching(/Z$/), level: expect.any(String), msg: expect.any(String) });
    }
    expect(lines.find((l) => l.msg === 'workflow started')).toMatchObject({ workflow_id: `trading:${id}`, logger: 'WorkflowService' });
    expect(lines.find((l) => l.msg === 'decision published')).toMatchObject({ workflow_id: `trading:${id}`, status: 'completed', action: 'trade' });
  });

  it('times out with no signal at all', async () => {
    const id = uniqueId('silent');
    await bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 0.5 }));
    const d = await expectExactlyOne(id);
    expect(d.decision).toMatchObject({ action: 'timeout', partial_signals: [], missing_signals: ['momentum', 'risk'] });
    expect(d.source_signals).toEqual([]);
  });

  it('keeps signals that arrive before their trigger and applies them when it comes', async () => {
    const id = uniqueId('early');
    await bus.publish(agentSubject('momentum'), momentum(id));
    await bus.publish(agentSubject('risk'), risk(id));
    await waitFor('buffered signals', async () => (await app.get(`/workflows/${id}`)).body?.buffered_signals?.length === 2);
    await bus.publish(TRIGGER_SUBJECT, trigger(id));
    const d = await expectExactlyOne(id);
    expect(d.status).toBe('completed');
    expect(d.decision.action).toBe('trade');
  });

  it('crypto waits for sentiment, and a strong aligned sentiment boosts confidence', async () => {
    const id = uniqueId('crypto');
    await bus.publish(TRIGGER_SUBJECT, trigger(id, { instrument: 'CRYPTO:BTCUSD' }));
    await bus.publish(agentSubject('momentum'), momentum(id));
    await bus.publish(agentSubject('risk'), risk(id));
    // Both handled (the consumers idle) and stored, and the workflow still waits: no decision was made on them.
    await bus.waitForIdle();
    expect((await app.get(`/workflows/${id}`)).body).toMatchObject({
      status: 'waiting_for_agents',
      received_agents: expect.arrayContaining(['momentum', 'risk']),
    });
    expect(await decisionsFor(bus, id)).toHaveLength(0);
    await bus.publish(agentSubject('sentiment'), {
      corr_id: id,
      agent_name: 'sentiment',
      confidence: 0.7,
      timestamp: new Date().toISOString(),
      sentiment_score: 0.9,
    });
    const d = await expectExactlyOne(id);
    expect(d.decision.confidence).toBeCloseTo(0.96, 10);
    expect(d.decision.metadata.sentiment_boost).toBe(true);
  });

  it('a repeated trigger and repeated signals give one decision, counted as duplicates', async () => {
    const id = uniqueId('dup');
    const count = (kind: string) => app.metric('meta_agent_duplicates_total', { kind });
    const before = { total: await app.metric('meta_agent_duplicates_total'), trigger: await count('trigger'), signal: await count('signal') };
    const lateBefore = await app.metric('meta_agent_late_signals_total', { reason: 'finished' });
    const t = trigger(id, { instrument: 'SPY' });
    const m = momentum(id);
    await bus.publish(TRIGGER_SUBJECT, t);
    await bus.publish(TRIGGER_SUBJECT, t);
    // A repeated signal is a duplicate of what the open workflow holds. Sent before the workflow exists, the two
    // copies would both go to the early buffer (the second as the agent's later revision), and sent beside the
    // risk signal the second copy could come after the decision (late): each step waits for the one before.
    await waitFor('the workflow', async () => (await app.get(`/workflows/${id}`)).status === 200);
    await bus.publish(agentSubject('momentum'), m);
    await bus.publish(agentSubject('momentum'), m);
    await waitFor('the repeated momentum counted', async () => (await count('signal')) >= before.signal + 1);
    await bus.publish(agentSubject('risk'), risk(id));
    await bus.publish(agentSubject('risk'), risk(id));
    await bus.publish(TRIGGER_SUBJECT, t);
    await expectExactlyOne(id);
    // All handled (expectExactlyOne waited for the consumers to be idle): the third trigger, published after the
    // decision's signals, too. Duplicates: the second and third trigger and the second momentum. The second
    // risk is a new revision, late once the workflow is frozen, not a duplicate.
    expect(await count('trigger')).toBe(before.trigger + 2);
    expect(await count('signal')).toBe(before.signal + 1);
    expect(await app.metric('meta_agent_duplicates_total')).toBeGreaterThanOrEqual(before.total + 3);
    expect(await app.metric('meta_agent_late_signals_total', { reason: 'finished' })).toBe(lateBefore + 1);
  });

  it('a signal for a finished workflow is late: acked, counted, changes nothing', async () => {
    const id = uniqueId('late');
    await bus.publish(TRIGGER_SUBJECT, trigger(id));
    await bus.publish(agentSubject('momentum'), momentum(id));
    await bus.publish(agentSubject('risk'), risk(id));
    const before = await expectExactlyOne(id);
    const lateBefore = await app.metric('meta_agent_late_signals_total');
    await bus.publish(agentSubject('sentiment'), {
      corr_id: id,
      agent_name: 'sentiment',
      confidence: 0.9,
      timestamp: new Date().toISOString(),
      sentiment_score: -1,
    });
    await waitFor('the late counter', async () => (await app.metric('meta_agent_late_signals_total')) > lateBefore);
    expect((await app.get(`/workflows/${id}`)).body.received_agents.sort()).toEqual(['momentum', 'risk']);
    expect(await decisionsFor(bus, id)).toEqual([before]);
  });

  it('declines a weak trigger and one without a side: no workflow, counted', async () => {
    const weak = uniqueId('weak');
    const sideless = uniqueId('noside');
    const declinedBefore = await app.metric('meta_agent_declined_triggers_total');
    await bus.publish(TRIGGER_SUBJECT, trigger(weak, { strength: 0.29 }));
    await bus.publish(TRIGGER_SUBJECT, { corr_id: sideless, instrument: 'EURUSD', strength: 0.9 });
    await waitFor('two declined triggers', async () => (await app.metric('meta_agent_declined_triggers_total')) >= declinedBefore + 2);
    expect((await app.get(`/workflows/${weak}`)).status).toBe(404);
    expect((await app.get(`/workflows/${sideless}`)).status).toBe(404);
  });
});

describe('bad input', () => {
  const cases: [string, string, unknown, string][] = [
    ['not JSON', TRIGGER_SUBJECT, '{"corr_id": "x",', 'invalid_json'],
    ['a JSON array', TRIGGER_SUBJECT, '[1,2,3]', 'not_an_object'],
    ['a corr_id with spaces', TRIGGER_SUBJECT, { corr_id: 'has space', side: 'buy', strength: 0.9 }, 'validation_failed'],
    ['a corr_id with a glob', agentSubject('risk'), { corr_id: 'a*b', agent_name: 'risk', confidence: 0.5 }, 'validation_failed'],
    ['a corr_id of 129 characters', TRIGGER_SUBJECT, { corr_id: 'x'.repeat(129), side: 'buy', strength: 0.9 }, 'validation_failed'],
    ['a wrong type', TRIGGER_SUBJECT, { corr_id: 'ok-1', side: 'buy', strength: 'high' }, 'validation_failed'],
    ['a negative price', TRIGGER_SUBJECT, { corr_id: 'ok-2', side: 'buy', strength: 0.9, price: -1 }, 'validation_failed'],
    ['a confidence above 1', agentSubject('risk'), { corr_id: 'ok-3', agent_name: 'risk', confidence: 1.5 }, 'validation_failed'],
    ['an unknown workflow type', TRIGGER_SUBJECT, { corr_id: 'ok-4', side: 'buy', strength: 0.9, workflow_type: 'nope' }, 'unknown_workflow_type'],
    ['an unknown agent', agentSubject('astrology'), { corr_id: 'ok-5', agent_name: 'astrology', confidence: 0.5 }, 'unknown_agent'],
    ['an agent speaking for another', agentSubject('risk'), { corr_id: 'ok-8', agent_name: 'momentum', confidence: 0.9 }, 'agent_mismatch'],
    ['a __proto__ key', TRIGGER_SUBJECT, '{"corr_id":"ok-6","side":"buy","strength":0.9,"__proto__":{"x":1}}', 'forbidden_key'],
    ['an oversized payload', TRIGGER_SUBJECT, { corr_id: 'ok-7', side: 'buy', strength: 0.9, pad: 'x'.repeat(300 * 1024) }, 'payload_too_large'],
  ];

  it('goes to the dead-letter stream with its subject, headers, payload and reason; the service goes on', async () => {
    const before = await bus.count('DEADLETTER');
    for (const [, subject, payload] of cases) await bus.publish(subject, payload, { 'X-Test': 'kept' });
    const letters = (await bus.waitFor('DEADLETTER', before + cases.length)).slice(before);
    // A dead letter is in the stream before its message is counted and terminated: wait for all to be settled.
    await bus.waitForIdle();
    expect(letters).toHaveLength(cases.length);
    for (const [what, subject, payload, code] of cases) {
      const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
      const letter = letters.find((l) => l.string() === body);
      expect({ what, found: letter !== undefined }).toEqual({ what, found: true });
      expect({ what, code: letter!.headers?.get(DeadLetterHeaders.Code) }).toEqual({ what, code });
      expect(letter!.headers?.get(DeadLetterHeaders.OriginalSubject)).toBe(subject);
      expect(letter!.headers?.get(DeadLetterHeaders.DeliveryCount)).toBe('1');
      expect(letter!.headers?.get(DeadLetterHeaders.Reason)).toMatch(new RegExp(`^${code}: .+`));
      expect(letter!.headers?.get('X-Test')).toBe('kept');
    }
    for (const id of ['ok-1', 'ok-2', 'ok-3', 'ok-4', 'ok-5', 'ok-6', 'ok-7', 'ok-8']) expect((await app.get(`/workflows/${id}`)).status).toBe(404);
    expect(await app.metric('meta_agent_dead_letters_total')).toBeGreaterThanOrEqual(cases.length);

    // ...and the service is still working.
    const id = uniqueId('after-bad');
    await bus.publish(TRIGGER_SUBJECT, trigger(id));
    await bus.publish(agentSubject('momentum'), momentum(id));
    await bus.publish(agentSubject('risk'), risk(id));
    expect((await waitForDecision(bus, id)).status).toBe('completed');
  });
});

describe('HTTP', () => {
  it('/health keeps the template shape; /health/live and /health/ready answer', async () => {
    const health = await app.get('/health');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({
      status: 'healthy',
      agent_name: 'trading_decision_meta_agent',
      active_workflows: expect.any(Number),
      nats_connected: true,
      redis_connected: true,
    });
    expect((await app.get('/health/live')).status).toBe(200);
    const ready = await app.get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.info).toMatchObject({ nats: { status: 'up' }, redis: { status: 'up' }, shutdown: { status: 'up' } });
  });

  it('/metrics has the template six metrics and the service counters', async () => {
    const { text } = await app.get('/metrics');
    for (const name of [
      'meta_agent_workflows_started_total',
      'meta_agent_workflows_completed_total',
      'meta_agent_workflow_duration_seconds',
      'meta_agent_active_workflows',
      'meta_agent_signals_received_total',
      'meta_agent_decisions_published_total',
      'meta_agent_dead_letters_total',
      'meta_agent_duplicates_total',
      'meta_agent_late_signals_total',
      'meta_agent_orphaned_signals_total',
      'meta_agent_signal_to_decision_seconds',
    ]) {
      expect({ name, present: text.includes(`# TYPE ${name} `) }).toEqual({ name, present: true });
    }
    expect(await app.metric('meta_agent_decisions_published_total', { decision_type: 'trade' })).toBeGreaterThanOrEqual(1);
  });

  it('active_workflows counts open workflows from Redis', async () => {
    const id = uniqueId('active');
    await bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 60 }));
    await waitFor('the workflow to count as active', async () => (await app.metric('meta_agent_active_workflows')) >= 1);
    expect((await app.get('/health')).body.active_workflows).toBeGreaterThanOrEqual(1);
  });

  it('/workflows/:corr_id: 400 for a bad id, 404 for an unknown one', async () => {
    expect((await app.get('/workflows/bad%20id')).status).toBe(400);
    expect((await app.get(`/workflows/${uniqueId('none')}`)).status).toBe(404);
  });
});
