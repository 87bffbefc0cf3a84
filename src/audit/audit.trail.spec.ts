import { jest } from '@jest/globals';
import type { AppConfig, NatsConfig } from '../config/configuration.js';
import type { NatsConnectionService } from '../nats/nats-connection.service.js';
import type { AuditMetrics } from './audit.metrics.js';
import { storedWorkflow } from '../../test/support/stored-workflow.js';

// The connection is what the trail talks to: a scripted one records what would go to NATS, plain or
// acknowledged (each batch's last event), and `confirm` answers the acknowledgement.
const published: { subject: string; data: string; acked: boolean }[] = [];
let confirm: () => Promise<unknown> = async () => undefined;
const text = (data: string | Uint8Array) => (typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
const connection = {
  publish: (subject: string, data: string | Uint8Array) => void published.push({ subject, data: text(data), acked: false }),
};
const acknowledged = {
  publish: (subject: string, data: string | Uint8Array) => {
    published.push({ subject, data: text(data), acked: true });
    return confirm();
  },
};
// The real metrics class pulls in the Prometheus module (CommonJS requiring ESM Nest): a stand-in is passed.
jest.unstable_mockModule('./audit.metrics.js', () => ({ AuditMetrics: class {}, auditMetricProviders: [] }));
const { AuditTrail } = await import('./audit.trail.js');

/*
 * AuditTrail without NATS: which event each step becomes (also those the e2e suite cannot provoke on a
 * healthy service: superseded revisions, a takeover), that nothing is sent with the trail off, and that a
 * full buffer drops and counts instead of waiting.
 */

function setUp(options: { enabled?: boolean; bufferSize?: number; connected?: boolean } = {}) {
  published.length = 0;
  const lost: string[] = [];
  let stored = 0;
  const metrics = { stored: (n = 1) => (stored += n), lost: (reason: string, n = 1) => lost.push(...Array<string>(n).fill(reason)) };
  const nats = { isConnected: () => options.connected ?? true, connection, acknowledgedPublisher: () => acknowledged };
  const config = { audit: { enabled: options.enabled ?? true, subjectPrefix: 'audit', bufferSize: options.bufferSize ?? 100 } };
  const trail = new AuditTrail(
    nats as unknown as NatsConnectionService,
    metrics as unknown as AuditMetrics,
    config as unknown as NatsConfig,
    { name: 'unit' } as AppConfig,
  );
  const events = (): Record<string, any>[] => published.map((p) => ({ subject: p.subject, ...(JSON.parse(p.data) as Record<string, any>) }));
  return { trail, lost, events, stored: () => stored };
}

const input = { sequence: 42, storedAtMs: 1_700_000_000_000 };
const signal = JSON.stringify({ corr_id: 'c.1', agent_name: 'risk', confidence: 0.7 });

afterEach(() => {
  confirm = async () => undefined;
  jest.useRealTimers();
});

describe('AuditTrail', () => {
  it('maps what storing a signal came to onto its event, with the input, the Redis time and the instance where known', async () => {
    const t = setUp();
    const wf = storedWorkflow(['risk'], { corrId: 'c.1' });
    t.trail.signalResult('c.1', 'risk', signal, input, { kind: 'superseded', workflow: wf, nowMs: 5_000 });
    t.trail.signalResult('c.1', 'risk', signal, input, { kind: 'added', workflow: null, nowMs: 5_001 });
    t.trail.signalResult('c.1', 'risk', signal, input, { kind: 'buffer-superseded' });
    t.trail.signalResult('c.1', 'risk', signal, input, { kind: 'late', status: 'completed' });
    await t.trail.flushed();
    const [superseded, stored, early, late] = t.events();
    expect(superseded).toMatchObject({
      subject: 'audit.c~1.signal_superseded',
      event: 'signal_superseded',
      corr_id: 'c.1',
      instance: `${wf.workflowId}@${wf.startedMs}`,
      redis_ms: 5_000,
      order: [5_000, 1, 42],
      input: { seq: 42, received_ms: input.storedAtMs },
      agent: 'risk',
      signal: JSON.parse(signal),
    });
    expect(superseded.replica).toMatch(/^unit@.+:\d+$/);
    expect(stored).toMatchObject({ event: 'signal_stored', instance: null, redis_ms: 5_001 });
    // An early signal sorts by JetStream's time (it has no Redis time): before the trigger that takes it in.
    expect(early).toMatchObject({ event: 'signal_early_superseded', redis_ms: null, order: [input.storedAtMs, 1, 42] });
    expect(late).toMatchObject({ event: 'signal_late', status: 'completed' });
    expect(t.stored()).toBe(4);
  });

  it('a takeover carries the frozen snapshot and sorts by the freeze', async () => {
    const t = setUp();
    const wf = { ...storedWorkflow(['risk'], { corrId: 'c2' }), status: 'evaluating' as const, frozenMs: 9_000, why: 'cancel' as const, frozenBy: 'ops' };
    const ctx = { corrId: 'c2', receivedSignals: {}, trigger: {}, requiredAgents: ['risk'] } as never;
    t.trail.frozen(wf, ctx, 'takeover', 60_000);
    await t.trail.flushed();
    const [e] = t.events();
    expect(e).toMatchObject({ event: 'takeover', why: 'cancel', by: 'ops', frozen_ms: 9_000, age_ms: 60_000, redis_ms: null, order: [9_000, 4, 0] });
    expect(e.snapshot).toEqual({ trigger: JSON.parse(wf.triggerJson), signals: { risk: JSON.parse(wf.signals.risk) } });
    expect(e.context).toEqual({ corrId: 'c2', requiredAgents: ['risk'] });
  });

  it('with the trail off, sends nothing', async () => {
    const t = setUp({ enabled: false });
    t.trail.signalStale('c3', 'risk', signal, input);
    t.trail.triggerDeclined('c3', 'trading', '{}', input);
    await new Promise((r) => setImmediate(r));
    expect(published).toEqual([]);
  });

  it('sends one batch at a time: until JetStream acknowledges its last event (a slow NATS) events wait, past the bound they are dropped and counted', async () => {
    const t = setUp({ bufferSize: 3 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    confirm = () => gate;
    for (let i = 0; i < 5; i++) t.trail.signalStale('c4', 'risk', signal, input);
    expect(t.lost).toEqual(['buffer_full', 'buffer_full']);
    await new Promise((r) => setImmediate(r));
    expect(published.map((p) => p.acked)).toEqual([false, false, true]);
    // Three written, their acknowledgement outstanding: the buffer is still full.
    t.trail.signalStale('c4', 'risk', signal, input);
    expect(t.lost).toHaveLength(3);
    release();
    await t.trail.flushed();
    expect(t.stored()).toBe(3);
    // Room again: the next one goes.
    t.trail.signalStale('c4', 'risk', signal, input);
    await t.trail.flushed();
    expect(published).toHaveLength(4);
    expect(t.lost).toEqual(['buffer_full', 'buffer_full', 'buffer_full']);
  });

  it('sends a batch again, whole and before later events, when its last event is not acknowledged (no leader while the stream elects one)', async () => {
    const t = setUp();
    let tries = 0;
    confirm = async () => {
      if (++tries === 1) throw new Error('timeout: no acknowledgement within 2000 ms');
    };
    t.trail.signalStale('c6', 'risk', signal, input);
    t.trail.triggerDeclined('c6', 'trading', '{}', input);
    await new Promise((r) => setImmediate(r));
    // Emitted during the pause before the next try: it goes after the batch sent again.
    t.trail.signalStale('c6', 'momentum', signal, input);
    await t.trail.flushed();
    const sent = t.events().map((e) => `${e.event}${e.agent ? `:${e.agent}` : ''}`);
    expect(sent).toEqual(['signal_stale:risk', 'trigger_declined', 'signal_stale:risk', 'trigger_declined', 'signal_stale:momentum']);
    // The copies are byte for byte the first sends: readers keep one (firstCopies).
    expect(published[2].data).toBe(published[0].data);
    expect(published.map((p) => p.acked)).toEqual([false, true, false, false, true]);
    expect(t.stored()).toBe(3);
    expect(t.lost).toEqual([]);
  });

  it('gives an event up, counted, after 20 unacknowledged batches: a lasting refusal does not hold the trail', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    const t = setUp();
    confirm = async () => {
      throw new Error('no responders');
    };
    t.trail.signalStale('c7', 'risk', signal, input);
    t.trail.signalStale('c7', 'risk', signal, input);
    const done = t.trail.flushed();
    for (let i = 0; i < 25 && t.lost.length === 0; i++) await jest.advanceTimersByTimeAsync(250);
    await done;
    expect(published).toHaveLength(40);
    expect(t.lost).toEqual(['publish_failed', 'publish_failed']);
    expect(t.stored()).toBe(0);
  });

  describe('the events of a decision, held for it', () => {
    const frozenWf = (corrId: string) => ({
      ...storedWorkflow(['risk'], { corrId }),
      status: 'evaluating' as const,
      frozenMs: 9_000,
      why: 'decide' as const,
      frozenBy: null,
    });
    const ctx = { corrId: 'c8', receivedSignals: {}, trigger: {}, requiredAgents: ['risk'] } as never;
    const decision = '{"status":"completed"}';

    it('go as one message on <corr_id>.decided: the signal that made it ready, the freeze, then decision_published', async () => {
      const t = setUp();
      const wf = frozenWf('c8.x');
      t.trail.signalResult('c8.x', 'risk', signal, input, { kind: 'ready', workflow: wf, nowMs: 9_000 });
      t.trail.frozen(wf, ctx, 'frozen');
      // Another workflow's event meanwhile goes as it is.
      t.trail.signalStale('other', 'risk', signal, input);
      await new Promise((r) => setImmediate(r));
      expect(published.map((p) => p.subject)).toEqual(['audit.other.signal_stale']);
      t.trail.decisionPublished(wf, decision, 'completed', false, { startedMs: wf.startedMs, finishedMs: 9_010 });
      await t.trail.flushed();
      expect(published.map((p) => p.subject)).toEqual(['audit.other.signal_stale', 'audit.c8~x.decided']);
      const events = JSON.parse(published[1].data) as Record<string, unknown>[];
      expect(events.map((e) => e.event)).toEqual(['signal_stored', 'frozen', 'decision_published']);
      expect(events[0]).toMatchObject({ made_ready: true, order: [9_000, 1, 42] });
      expect(events[2]).toMatchObject({ decision: { status: 'completed' }, finalized: true, redis_ms: 9_010 });
      expect(t.stored()).toBe(4);
    });

    it('go alone, on their own subjects, when the decision is not published (release), or after 5 s whatever happened', async () => {
      jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
      const t = setUp();
      const wf = frozenWf('c9');
      t.trail.signalResult('c9', 'risk', signal, input, { kind: 'ready', workflow: wf, nowMs: 9_000 });
      t.trail.frozen(wf, ctx, 'frozen');
      t.trail.release(wf);
      await new Promise((r) => setImmediate(r));
      expect(published.map((p) => p.subject)).toEqual(['audit.c9.signal_stored', 'audit.c9.frozen']);
      // Nothing held any more: the decision, published later after all, goes alone.
      t.trail.decisionPublished(wf, decision, 'completed', false, null);
      await t.trail.flushed();
      expect(published.map((p) => p.subject)).toEqual(['audit.c9.signal_stored', 'audit.c9.frozen', 'audit.c9.decision_published']);

      const late = frozenWf('c10');
      t.trail.frozen(late, ctx, 'timeout', 0);
      await jest.advanceTimersByTimeAsync(4_900);
      expect(published).toHaveLength(3);
      await jest.advanceTimersByTimeAsync(200);
      expect(published.map((p) => p.subject)[3]).toBe('audit.c10.timeout');
    });

    it('count within the buffer bound; a decision_published the bound drops lets what was held go alone', async () => {
      const t = setUp({ bufferSize: 2 });
      const wf = frozenWf('c11');
      t.trail.signalResult('c11', 'risk', signal, input, { kind: 'ready', workflow: wf, nowMs: 9_000 });
      t.trail.frozen(wf, ctx, 'frozen');
      t.trail.signalStale('c12', 'risk', signal, input);
      expect(t.lost).toEqual(['buffer_full']);
      t.trail.decisionPublished(wf, decision, 'completed', false, null);
      expect(t.lost).toEqual(['buffer_full', 'buffer_full']);
      await t.trail.flushed();
      expect(published.map((p) => p.subject)).toEqual(['audit.c11.signal_stored', 'audit.c11.frozen']);
      expect(t.stored()).toBe(2);
    });
  });

  it('keeps events while NATS is away (up to the buffer) rather than sending them into a dead connection', async () => {
    const t = setUp({ connected: false });
    t.trail.signalStale('c5', 'risk', signal, input);
    await new Promise((r) => setImmediate(r));
    expect(published).toEqual([]);
    expect(t.lost).toEqual([]);
  });
});
