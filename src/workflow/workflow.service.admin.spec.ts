import type { AuditTrail } from '../audit/audit.trail.js';
import { jest } from '@jest/globals';
import type { AppConfig, WorkflowConfig } from '../config/configuration.js';
import type { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import type { FlowControl } from '../transport/jetstream/flow-control.js';
import type { Admission } from './admission.js';
import type { DecisionPublisher } from './decision.publisher.js';
import type { StrategyRegistry } from './strategies/strategy.registry.js';
import type { ExtendResult, FreezeResult, StoredWorkflow, WorkflowRepository } from './workflow.repository.js';
import type { WorkflowContext } from './workflow.types.js';
import { storedWorkflow } from '../../test/support/stored-workflow.js';

// As in workflow.service.spec.ts: the real metrics class cannot be loaded by jest's VM modules.
jest.unstable_mockModule('../metrics/orchestrator.metrics.js', () => ({ OrchestratorMetrics: class {} }));
jest.unstable_mockModule('../audit/audit.metrics.js', () => ({ AuditMetrics: class {}, auditMetricProviders: [] }));
const { WorkflowService } = await import('./workflow.service.js');

/*
 * WorkflowService's admin actions (issue 12, part 3) with a scripted repository: what endNow and extend make
 * of each state the store reports. The exactly-once part is Redis's (freeze-3.lua: test/integration, test/e2e).
 */

function snapshot(agents: string[], status: StoredWorkflow['status'] = 'waiting_for_agents'): StoredWorkflow {
  return storedWorkflow(agents, { status, metadata: { desk: 'fx' }, hasRule: true });
}

/** What freeze-3.lua answers an operator's action on an open workflow: frozen, why and who asked stored. */
const frozenBy = (agents: string[], why: 'cancel' | 'force', by: string): FreezeResult => ({
  kind: 'frozen',
  workflow: { ...snapshot(agents, 'evaluating'), frozenMs: 5_000, why, frozenBy: by },
});

function setUp(options: { freeze?: FreezeResult; extend?: ExtendResult; throws?: boolean; publishFails?: boolean }) {
  const seen: WorkflowContext[] = [];
  const strategy = {
    canDecide: () => false,
    evaluate: (ctx: WorkflowContext) => {
      seen.push(ctx);
      if (options.throws) throw new Error('no risk signal');
      return { action: 'trade', agents: Object.keys(ctx.receivedSignals).sort() };
    },
  };
  const finalized: { status: string; json: string }[] = [];
  const repository = {
    freeze: jest.fn(async () => options.freeze),
    finalize: jest.fn(async (_wf: StoredWorkflow, status: string, json: string) => {
      finalized.push({ status, json });
      return { startedMs: 1_000, finishedMs: 6_000 };
    }),
    extend: jest.fn(async () => options.extend),
  };
  const publisher = {
    publish: jest.fn(async () => {
      if (options.publishFails) throw new Error('NATS is disconnected');
      return { duplicate: false };
    }),
    wasPublished: jest.fn(async () => false),
    duplicateWindowMs: 120_000,
  };
  const service = new WorkflowService(
    repository as unknown as WorkflowRepository,
    { get: () => strategy } as unknown as StrategyRegistry,
    publisher as unknown as DecisionPublisher,
    new Proxy({}, { get: () => () => undefined }) as OrchestratorMetrics,
    { finished: () => undefined } as unknown as Admission,
    new Proxy({}, { get: () => () => undefined }) as AuditTrail,
    { registerProbe: () => undefined } as unknown as FlowControl,
    { requiredAgents: [], optionalAgents: [], claimLeaseMs: 1500, retentionSeconds: 60, maxTimeoutSeconds: 120 } as unknown as WorkflowConfig,
    { name: 'test-orchestrator' } as AppConfig,
  );
  return { service, repository, publisher, finalized, seen };
}

describe('WorkflowService.endNow', () => {
  it('cancel: freezes whatever arrived with who asked, publishes status cancelled, finalises with those bytes', async () => {
    const t = setUp({ freeze: frozenBy(['a'], 'cancel', 'ops') });
    const result = await t.service.endNow('c1', 'cancel', 'ops');
    expect(t.repository.freeze).toHaveBeenCalledWith({ corrId: 'c1' }, 'cancel', 1500, 'ops');
    expect(t.finalized).toEqual([{ status: 'cancelled', json: expect.any(String) }]);
    const message = JSON.parse(t.finalized[0].json);
    expect(message).toMatchObject({
      corr_id: 'c1',
      workflow_id: 'vote:c1',
      status: 'cancelled',
      decision: { action: 'cancelled', reason: 'cancelled_by_operator' },
      metadata: { desk: 'fx', cancelled_by: 'ops' },
      source_signals: [{ agent: 'a' }],
    });
    expect(t.publisher.publish).toHaveBeenCalledWith(t.finalized[0].json, 'vote:c1@1000');
    expect(t.seen).toEqual([]);
    expect(result).toMatchObject({ kind: 'done', published: true, decision: message });
  });

  it('force: the strategy evaluates the frozen snapshot (and sees forced, by whom)', async () => {
    const t = setUp({ freeze: frozenBy(['a', 'b'], 'force', 'audit') });
    const result = await t.service.endNow('c1', 'force', 'audit');
    expect(t.seen.map((ctx) => Object.keys(ctx.receivedSignals).sort())).toEqual([['a', 'b']]);
    expect(t.seen[0].metadata).toEqual({ desk: 'fx', forced: true, forced_by: 'audit' });
    expect(JSON.parse(t.finalized[0].json)).toMatchObject({
      status: 'completed',
      decision: { action: 'trade', agents: ['a', 'b'] },
      metadata: { forced: true, forced_by: 'audit' },
    });
    expect(result.kind).toBe('done');
  });

  it('force on a strategy that throws: a failed decision, still marked forced', async () => {
    const t = setUp({ freeze: frozenBy(['a'], 'force', 'ops'), throws: true });
    await t.service.endNow('c1', 'force', 'ops');
    expect(JSON.parse(t.finalized[0].json)).toMatchObject({
      status: 'failed',
      decision: { action: 'error', reason: 'strategy_error' },
      metadata: { forced: true, forced_by: 'ops' },
    });
  });

  it('refuses, publishing nothing, what freeze-3 finds not open: missing, being decided (evaluating), finished', async () => {
    for (const [status, expected] of [
      ['', { kind: 'missing' }],
      ['evaluating', { kind: 'evaluating' }],
      ['timeout', { kind: 'finished', status: 'timeout' }],
      ['cancelled', { kind: 'finished', status: 'cancelled' }],
    ] as const) {
      const t = setUp({ freeze: { kind: 'closed', status } });
      expect(await t.service.endNow('c1', 'cancel', 'ops')).toEqual(expected);
      expect(t.publisher.publish).not.toHaveBeenCalled();
      expect(t.repository.finalize).not.toHaveBeenCalled();
    }
  });

  it('a publish that fails leaves the frozen workflow to the sweeper and says it is not published yet', async () => {
    const t = setUp({ freeze: frozenBy(['a'], 'cancel', 'ops'), publishFails: true });
    expect(await t.service.endNow('c1', 'cancel', 'ops')).toMatchObject({ kind: 'done', published: false });
    expect(t.repository.finalize).not.toHaveBeenCalled();
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
    const t = setUp({ extend: extended(61_000, 91_000) });
    expect(await t.service.extend('c1', 30)).toEqual({ ...extended(61_000, 91_000), clamped: false });
    expect(t.repository.extend).toHaveBeenCalledWith('c1', 30_000, 120_000);
    const c = setUp({ extend: extended(61_000, 121_000) });
    expect(await c.service.extend('c1', 100)).toMatchObject({ deadlineMs: 121_000, clamped: true });
  });

  it('maps what is not open: missing, evaluating, finished', async () => {
    for (const [status, expected] of [
      ['', { kind: 'missing' }],
      ['evaluating', { kind: 'evaluating' }],
      ['completed', { kind: 'finished', status: 'completed' }],
    ] as const) {
      const t = setUp({ extend: { kind: 'closed', status } });
      expect(await t.service.extend('c1', 5)).toEqual(expected);
    }
  });
});
