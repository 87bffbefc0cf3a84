import { jest } from '@jest/globals';
import type { AppConfig, NatsConfig } from '../config/configuration.js';
import type { NatsConnectionService } from '../nats/nats-connection.service.js';
import type { AuditMetrics } from './audit.metrics.js';
import { storedWorkflow } from '../../test/support/stored-workflow.js';

// The connection is what the trail talks to: a scripted one records what would go to NATS.
const published: { subject: string; data: string }[] = [];
let flush: () => Promise<void> = async () => undefined;
const connection = {
  publish: (subject: string, data: string) => void published.push({ subject, data }),
  flush: () => flush(),
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
  const nats = { isConnected: () => options.connected ?? true, connection };
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
  flush = async () => undefined;
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

  it('sends one batch at a time: while the server has not read it (a slow NATS) events wait, past the bound they are dropped and counted', async () => {
    const t = setUp({ bufferSize: 3 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    flush = () => gate;
    for (let i = 0; i < 5; i++) t.trail.signalStale('c4', 'risk', signal, input);
    expect(t.lost).toEqual(['buffer_full', 'buffer_full']);
    await new Promise((r) => setImmediate(r));
    expect(published).toHaveLength(3);
    // Three written, their flush outstanding: the buffer is still full.
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

  it('counts a batch whose flush fails (the connection closed under it) as lost', async () => {
    const t = setUp();
    flush = async () => {
      throw new Error('connection closed');
    };
    t.trail.signalStale('c6', 'risk', signal, input);
    t.trail.signalStale('c6', 'risk', signal, input);
    await t.trail.flushed();
    expect(t.lost).toEqual(['publish_failed', 'publish_failed']);
    expect(t.stored()).toBe(0);
  });

  it('keeps events while NATS is away (up to the buffer) rather than sending them into a dead connection', async () => {
    const t = setUp({ connected: false });
    t.trail.signalStale('c5', 'risk', signal, input);
    await new Promise((r) => setImmediate(r));
    expect(published).toEqual([]);
    expect(t.lost).toEqual([]);
  });
});
