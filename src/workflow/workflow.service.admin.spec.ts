import { jest } from '@jest/globals';
import type { AppConfig, WorkflowConfig } from '../config/configuration.js';
import type { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import type { FlowControl } from '../transport/jetstream/flow-control.js';
import type { Admission } from './admission.js';
import type { DecisionPublisher } from './decision.publisher.js';
import type { StrategyRegistry } from './strategies/strategy.registry.js';
import type { ExtendResult, RecordResult, StoredWorkflow, WorkflowRepository } from './workflow.repository.js';
import type { WorkflowContext } from './workflow.types.js';

// As in workflow.service.spec.ts: the real metrics class cannot be loaded by jest's VM modules.
jest.unstable_mockModule('../metrics/orchestrator.metrics.js', () => ({ OrchestratorMetrics: class {} }));
const { WorkflowService } = await import('./workflow.service.js');

/*
 * WorkflowService's admin actions (issue 12, part 3) with a scripted repository: what endNow and extend make
 * of each state the store reports. The exactly-once part is Redis's (test/integration, test/e2e).
 */

const signal = (agent: string) => JSON.stringify({ corr_id: 'c1', agent_name: agent, confidence: 0.7, timestamp: '2026-11-26T10:00:00Z' });

function snapshot(version: number, agents: string[], status: StoredWorkflow['status'] = 'waiting_for_agents'): StoredWorkflow {
  return {
    corrId: 'c1',
    workflowId: 'vote:c1',
    workflowType: 'vote',
    status,
    startedMs: 1_000,
    deadlineMs: 61_000,
    timeoutMs: 60_000,
    requiredAgents: ['a', 'b'],
    metadata: { desk: 'fx' },
    triggerJson: JSON.stringify({ corr_id: 'c1' }),
    version,
    decisionJson: null,
    published: false,
    finishedMs: null,
    signals: Object.fromEntries(agents.map((a) => [a, signal(a)])),
  };
}

function setUp(options: { inspections: (StoredWorkflow | null)[]; records?: RecordResult[]; extend?: ExtendResult; throws?: boolean }) {
  const seen: WorkflowContext[] = [];
  const strategy = {
    canDecide: () => false,
    evaluate: (ctx: WorkflowContext) => {
      seen.push(ctx);
      if (options.throws) throw new Error('no risk signal');
      return { action: 'trade', agents: Object.keys(ctx.receivedSignals).sort() };
    },
  };
  const inspections = [...options.inspections];
  const records = [...(options.records ?? [])];
  const recorded: { version: number; status: string; json: string }[] = [];
  const repository = {
    inspect: jest.fn(async () => ({ workflow: inspections.length > 1 ? inspections.shift() : inspections[0], early: {} })),
    record: jest.fn(async (wf: StoredWorkflow, status: string, json: string) => {
      recorded.push({ version: wf.version, status, json });
      const next = records.shift();
      if (!next) throw new Error('no more scripted record results');
      return next;
    }),
    markPublished: jest.fn(async () => ({ startedMs: 1_000, finishedMs: 2_000 })),
    extend: jest.fn(async () => options.extend),
  };
  const publisher = { publish: jest.fn(async () => ({ duplicate: false })), wasPublished: jest.fn(async () => false), duplicateWindowMs: 120_000 };
  const service = new WorkflowService(
    repository as unknown as WorkflowRepository,
    { get: () => strategy } as unknown as StrategyRegistry,
    publisher as unknown as DecisionPublisher,
    new Proxy({}, { get: () => () => undefined }) as OrchestratorMetrics,
    { finished: () => undefined } as unknown as Admission,
    { registerProbe: () => undefined } as unknown as FlowControl,
    { requiredAgents: [], optionalAgents: [], claimLeaseMs: 1500, retentionSeconds: 60, maxTimeoutSeconds: 120 } as unknown as WorkflowConfig,
    { name: 'test-orchestrator' } as AppConfig,
  );
  return { service, repository, publisher, recorded, seen };
}

describe('WorkflowService.endNow', () => {
  it('cancel: records status cancelled with who asked, publishes those bytes, reports the published state', async () => {
    const published = { ...snapshot(1, ['a'], 'cancelled'), published: true };
    const t = setUp({ inspections: [snapshot(1, ['a']), published], records: [{ kind: 'recorded' }] });
    const result = await t.service.endNow('c1', 'cancel', 'ops');
    expect(t.recorded).toEqual([{ version: 1, status: 'cancelled', json: expect.any(String) }]);
    const message = JSON.parse(t.recorded[0].json);
    expect(message).toMatchObject({
      corr_id: 'c1',
      workflow_id: 'vote:c1',
      status: 'cancelled',
      decision: { action: 'cancelled', reason: 'cancelled_by_operator' },
      metadata: { desk: 'fx', cancelled_by: 'ops' },
      source_signals: [{ agent: 'a' }],
    });
    expect(t.publisher.publish).toHaveBeenCalledWith(t.recorded[0].json, 'vote:c1@1000');
    expect(t.seen).toEqual([]);
    expect(result).toMatchObject({ kind: 'done', published: true, decision: message });
  });

  it('force: the strategy evaluates (and sees forced, by whom); a signal in between means evaluating the new snapshot', async () => {
    const t = setUp({
      inspections: [snapshot(1, ['a']), snapshot(2, ['a', 'b'], 'completed')],
      records: [{ kind: 'outdated', workflow: snapshot(2, ['a', 'b']) }, { kind: 'recorded' }],
    });
    const result = await t.service.endNow('c1', 'force', 'audit');
    expect(t.recorded.map((r) => [r.version, r.status])).toEqual([
      [1, 'completed'],
      [2, 'completed'],
    ]);
    expect(t.seen.map((ctx) => Object.keys(ctx.receivedSignals).sort())).toEqual([['a'], ['a', 'b']]);
    expect(t.seen[0].metadata).toEqual({ desk: 'fx', forced: true, forced_by: 'audit' });
    expect(JSON.parse(t.recorded[1].json)).toMatchObject({
      status: 'completed',
      decision: { action: 'trade', agents: ['a', 'b'] },
      metadata: { forced: true },
    });
    expect(result.kind).toBe('done');
  });

  it('force on a strategy that throws: a failed decision, still marked forced', async () => {
    const t = setUp({ inspections: [snapshot(1, ['a'])], records: [{ kind: 'recorded' }], throws: true });
    await t.service.endNow('c1', 'force', 'ops');
    expect(JSON.parse(t.recorded[0].json)).toMatchObject({
      status: 'failed',
      decision: { action: 'error', reason: 'strategy_error' },
      metadata: { forced: true, forced_by: 'ops' },
    });
  });

  it('refuses without recording: missing, being decided (evaluating), finished', async () => {
    for (const [workflow, expected] of [
      [null, { kind: 'missing' }],
      [snapshot(1, ['a'], 'evaluating'), { kind: 'evaluating', workflowId: 'vote:c1' }],
      [snapshot(1, ['a'], 'timeout'), { kind: 'finished', status: 'timeout', workflowId: 'vote:c1' }],
      [snapshot(1, ['a'], 'cancelled'), { kind: 'finished', status: 'cancelled', workflowId: 'vote:c1' }],
    ] as const) {
      const t = setUp({ inspections: [workflow] });
      expect(await t.service.endNow('c1', 'cancel', 'ops')).toEqual(expected);
      expect(t.recorded).toEqual([]);
    }
  });

  it('lost the race (closed when recording): reports what the winner left, publishes nothing', async () => {
    const t = setUp({ inspections: [snapshot(1, ['a']), snapshot(1, ['a'], 'cancelled')], records: [{ kind: 'closed', status: 'cancelled' }] });
    expect(await t.service.endNow('c1', 'force', 'ops')).toEqual({ kind: 'finished', status: 'cancelled', workflowId: 'vote:c1' });
    expect(t.publisher.publish).not.toHaveBeenCalled();
  });

  it('gives up (busy) on a workflow that changes under every attempt', async () => {
    const outdated = Array.from({ length: 10 }, (_, i): RecordResult => ({ kind: 'outdated', workflow: snapshot(i + 2, ['a']) }));
    const t = setUp({ inspections: [snapshot(1, ['a'])], records: outdated });
    expect(await t.service.endNow('c1', 'cancel', 'ops')).toEqual({ kind: 'busy' });
    expect(t.recorded).toHaveLength(10);
    expect(t.publisher.publish).not.toHaveBeenCalled();
  });
});

describe('WorkflowService.extend', () => {
  const extended = (previousDeadlineMs: number, deadlineMs: number): ExtendResult => ({
    kind: 'extended',
    workflowId: 'vote:c1',
    previousDeadlineMs,
    deadlineMs,
    maxDeadlineMs: 121_000,
  });

  it('passes ms and the maximum timeout; says whether the extension was clamped', async () => {
    const t = setUp({ inspections: [null], extend: extended(61_000, 91_000) });
    expect(await t.service.extend('c1', 30)).toEqual({ ...extended(61_000, 91_000), clamped: false });
    expect(t.repository.extend).toHaveBeenCalledWith('c1', 30_000, 120_000);
    const c = setUp({ inspections: [null], extend: extended(61_000, 121_000) });
    expect(await c.service.extend('c1', 100)).toMatchObject({ deadlineMs: 121_000, clamped: true });
  });

  it('maps what is not open: missing, evaluating, finished', async () => {
    for (const [status, expected] of [
      ['', { kind: 'missing' }],
      ['evaluating', { kind: 'evaluating' }],
      ['completed', { kind: 'finished', status: 'completed' }],
    ] as const) {
      const t = setUp({ inspections: [null], extend: { kind: 'closed', status } });
      expect(await t.service.extend('c1', 5)).toEqual(expected);
    }
  });
});
