import { jest } from '@jest/globals';
import type { AppConfig, NatsConfig } from '../config/configuration.js';
import type { NatsConnectionService } from '../nats/nats-connection.service.js';
import type { StoredWorkflow } from '../workflow/workflow.repository.js';
import { toContext, toDecisionMessage } from '../workflow/workflow-context.js';
import { asyncApiSchemas, auditEventKinds, readAsyncApi } from '../../test/support/asyncapi.js';
import { storedWorkflow } from '../../test/support/stored-workflow.js';
import { AUDIT_DECIDED, AUDIT_EVENTS, auditEventsOf } from './audit.events.js';
import type { AuditMetrics } from './audit.metrics.js';

// The real metrics class pulls in the Prometheus module (CommonJS requiring ESM Nest): a stand-in is passed.
jest.unstable_mockModule('./audit.metrics.js', () => ({ AuditMetrics: class {}, auditMetricProviders: [] }));
const { AuditTrail } = await import('./audit.trail.js');

/*
 * The audit events as docs/asyncapi.yaml describes them (channel `audit.{corr_token}.{event}`, schema
 * `AuditEvent`): one schema per kind the code knows, and what AuditTrail writes for every kind — including
 * those only a fault produces on a running service (takeover, superseded revisions) — fits its schema and
 * names no member the document does not. test/e2e/audit.e2e-spec.ts checks the same of the events a running
 * service stores.
 */

const { document } = readAsyncApi();
const schema = asyncApiSchemas(document);
const auditEvent = schema('AuditEvent');
const auditDecided = schema('AuditDecided');
const { kinds, members } = auditEventKinds(document);

/** Every message each method of the trail writes, as published (its subject and its text). */
async function everyMessage(): Promise<{ subject: string; data: string }[]> {
  const published: { subject: string; data: string }[] = [];
  const connection = { publish: (subject: string, data: string) => void published.push({ subject, data }) };
  const trail = new AuditTrail(
    {
      isConnected: () => true,
      connection,
      acknowledgedPublisher: () => ({ publish: async (subject: string, data: string) => connection.publish(subject, data) }),
    } as unknown as NatsConnectionService,
    { stored: () => undefined, lost: () => undefined } as unknown as AuditMetrics,
    { audit: { enabled: true, subjectPrefix: 'audit', bufferSize: 1000 } } as unknown as NatsConfig,
    { name: 'unit' } as AppConfig,
  );
  const corrId = 'sim-1.fx-0001';
  const trigger = JSON.stringify({ corr_id: corrId, instrument: 'EURUSD', side: 'buy', strength: 0.7, timeout_seconds: 60 });
  const signal = (agent: string, confidence: number) =>
    JSON.stringify({ corr_id: corrId, agent_name: agent, confidence, timestamp: '2026-12-07T10:00:00.000Z', analysis: { risk_level: 'low' } });
  const open: StoredWorkflow = {
    ...storedWorkflow([], { corrId, workflowId: `vote:${corrId}`, triggerJson: trigger, startedMs: 1_796_650_362_038 }),
    signals: { a: signal('a', 0.5) },
  };
  open.deadlineMs = open.startedMs + open.timeoutMs;
  const frozenAt = open.startedMs + 700;
  const frozen = (why: 'decide' | 'timeout' | 'cancel' | 'fail', by: string | null = null): StoredWorkflow => ({
    ...open,
    status: 'evaluating',
    signals: { a: signal('a', 0.5), b: signal('b', 0.8) },
    frozenMs: frozenAt,
    why,
    frozenBy: by,
  });
  const input = { sequence: 42, storedAtMs: open.startedMs + 100 };
  const ctx = toContext(frozen('decide'));
  const decision = JSON.stringify(toDecisionMessage(ctx, 'unit', 'completed', { action: 'no_trade', reason: 'insufficient_confidence' }, frozenAt));

  trail.triggerAccepted(open, input, 1, '2|a,b|');
  trail.triggerAccepted(open, input, 0, null);
  trail.triggerDeclined(corrId, 'vote', trigger, input);
  trail.triggerDuplicate(open, input);
  trail.signalStale(corrId, 'a', signal('a', 0.4), input);
  for (const result of [
    { kind: 'ready', workflow: frozen('decide'), nowMs: frozenAt },
    { kind: 'added', workflow: open, nowMs: frozenAt - 1 },
    { kind: 'added', workflow: null, nowMs: frozenAt - 1 },
    { kind: 'duplicate', workflow: null, nowMs: frozenAt - 1 },
    { kind: 'superseded', workflow: open, nowMs: frozenAt - 1 },
    { kind: 'late', status: 'completed' },
    { kind: 'buffered' },
    { kind: 'buffer-superseded' },
    { kind: 'orphaned' },
  ] as const) {
    trail.signalResult(corrId, 'b', signal('b', 0.8), input, result);
  }
  trail.frozen(frozen('decide'), ctx, 'frozen');
  trail.frozen(frozen('fail', 'Error: boom'), ctx, 'frozen');
  trail.frozen(frozen('timeout'), ctx, 'timeout', 0);
  trail.frozen(frozen('cancel', 'ops'), ctx, 'takeover', 1_600);
  trail.decisionPublished(frozen('decide'), decision, 'completed', false, { startedMs: open.startedMs, finishedMs: frozenAt + 12 });
  trail.decisionPublished(frozen('decide'), decision, 'completed', true, null);
  trail.adminAction(corrId, { action: 'cancel', outcome: 'ok', token: 'ops', workflow: { workflowId: open.workflowId, startedMs: open.startedMs } }, frozenAt);
  trail.adminAction(corrId, {
    action: 'extend',
    outcome: 'clamped',
    token: 'ops',
    workflow: { workflowId: open.workflowId },
    details: { requested_seconds: 99_999, previous_deadline_ms: open.deadlineMs, deadline_ms: open.startedMs + 3_600_000, clamped: true },
  });
  trail.adminAction(corrId, { action: 'decide', outcome: 'conflict', token: 'ops', details: { status: 'completed' } });
  trail.adminAction(corrId, { action: 'extend', outcome: 'not_found', token: 'ops', details: { status: null } });
  await trail.flushed();
  return published;
}

/** Every event the trail writes, with the subject of its message (a `decided` message's events each). */
async function everyEvent(): Promise<{ subject: string; event: Record<string, unknown> }[]> {
  return (await everyMessage()).flatMap((m) => auditEventsOf(m.data).map((event) => ({ subject: m.subject, event })));
}

describe('audit events in docs/asyncapi.yaml', () => {
  it('has one schema per kind of audit event, and none for a kind the code does not know', () => {
    expect([...kinds.keys()].sort()).toEqual([...AUDIT_EVENTS].sort());
    // The channel's `event` parameter lists the same kinds.
    const parameters = (document as unknown as { components: { parameters: Record<string, { enum?: string[] }> } }).components.parameters;
    expect([...(parameters.event.enum ?? [])].sort()).toEqual([...AUDIT_EVENTS].sort());
  });

  it('fits what the trail writes for every kind, and names every member it writes', async () => {
    const events = await everyEvent();
    expect(new Set(events.map((e) => e.event.event))).toEqual(new Set(AUDIT_EVENTS));
    for (const { subject, event } of events) {
      const kind = String(event.event);
      expect({ kind, errors: auditEvent(event) ? [] : auditEvent.errors }).toEqual({ kind, errors: [] });
      expect({ kind, undocumented: Object.keys(event).filter((k) => !members(kind).has(k)) }).toEqual({ kind, undocumented: [] });
      expect(subject).toMatch(new RegExp(`^audit\\.sim-1~fx-0001\\.(${kind}|${AUDIT_DECIDED})$`));
    }
  });

  it('fits the messages that hold the events of a decision together (AuditDecided)', async () => {
    const decided = (await everyMessage()).filter((m) => m.subject === `audit.sim-1~fx-0001.${AUDIT_DECIDED}`);
    // The ready signal, the freeze (several: the method is called once per origin above) and the decision.
    expect(decided).toHaveLength(1);
    const events = JSON.parse(decided[0].data) as Record<string, unknown>[];
    expect({ errors: auditDecided(events) ? [] : auditDecided.errors }).toEqual({ errors: [] });
    expect(events.map((e) => e.event)).toEqual(['signal_stored', 'frozen', 'frozen', 'timeout', 'takeover', 'decision_published']);
    expect(auditDecided([])).toBe(false);
    expect(auditDecided([{ ...events[0], corr_id: undefined }, events[events.length - 1]])).toBe(false);
  });

  it('refuses an event without corr_id, of an unknown kind, or without what its kind requires', async () => {
    const events = await everyEvent();
    const of = (kind: string) => events.find((e) => e.event.event === kind)!.event;
    const without = (event: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(event).filter(([k]) => k !== key));
    const accepted = of('trigger_accepted');
    const published = of('decision_published');
    expect(auditEvent(accepted)).toBe(true);
    for (const [what, broken] of [
      ['no corr_id', without(accepted, 'corr_id')],
      ['an unknown kind', { ...accepted, event: 'trigger_exploded' }],
      ['no event', without(accepted, 'event')],
      ['a started workflow without its instance', { ...accepted, instance: null }],
      ['an instance that is not <workflow_id>@<ms>', { ...accepted, instance: 'vote:sim-1.fx-0001' }],
      ['no order', without(accepted, 'order')],
      ['an order of two members', { ...accepted, order: [1, 0] }],
      ['a later version', { ...accepted, v: 2 }],
      ['no embedded trigger', without(accepted, 'trigger')],
      ['a decision published without the decision', without(published, 'decision')],
      ['a decision that breaks the decision schema', { ...published, decision: { ...(published.decision as object), status: 'pending' } }],
      ['a timeout without age_ms', without(of('timeout'), 'age_ms')],
      ['a signal event without its signal', without(of('signal_stored'), 'signal')],
      ['an early signal that claims an instance', { ...of('signal_early'), instance: accepted.instance }],
      ['an admin action by nobody', without(of('admin_action'), 'token')],
    ] as const) {
      expect({ what, valid: auditEvent(broken) }).toEqual({ what, valid: false });
    }
  });
});
