import type { AuditTrail } from '../audit/audit.trail.js';
import { jest } from '@jest/globals';
import type { AppConfig, WorkflowConfig } from '../config/configuration.js';
import type { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import type { FlowControl } from '../transport/jetstream/flow-control.js';
import type { Admission } from './admission.js';
import type { DecisionPublisher } from './decision.publisher.js';
import type { StrategyRegistry } from './strategies/strategy.registry.js';
import type { FreezeResult, StoredWorkflow, WorkflowRepository } from './workflow.repository.js';
import type { WorkflowContext } from './workflow.types.js';
import { storedWorkflow } from '../../test/support/stored-workflow.js';

// The real metrics class pulls in the Prometheus module (CommonJS requiring ESM Nest, which jest's VM
// modules cannot load); a no-op stands in, as for every other dependency here.
jest.unstable_mockModule('../metrics/orchestrator.metrics.js', () => ({ OrchestratorMetrics: class {} }));
jest.unstable_mockModule('../audit/audit.metrics.js', () => ({ AuditMetrics: class {}, auditMetricProviders: [] }));
const { WorkflowService } = await import('./workflow.service.js');

/*
 * The decision step of WorkflowService with a scripted repository. Without a readiness rule: canDecide is
 * asked, the workflow frozen on the version asked about, an outdated snapshot asked about again, a closed
 * workflow left alone, a workflow that keeps changing left to its later signals. With one (Redis judged
 * it): the signal that made the workflow ready decides it, the others do nothing. Frozen workflows the
 * sweeper hands back are decided again from their snapshot, by why they were frozen. (Redis itself:
 * test/integration.)
 */

const signal = (agent: string, confidence: number) => JSON.stringify({ corr_id: 'c1', agent_name: agent, confidence, timestamp: '2026-11-26T10:00:00Z' });

function snapshot(version: number, agents: string[]): StoredWorkflow {
  return storedWorkflow(agents, { version });
}

function frozen(wf: StoredWorkflow, why: StoredWorkflow['why'] = 'decide', frozenMs = 5_000): StoredWorkflow {
  return { ...wf, status: 'evaluating', why, frozenMs };
}

function setUp(freezes: FreezeResult[], options: { canDecideThrows?: boolean } = {}) {
  const evaluated: number[] = [];
  const strategy = {
    canDecide: (ctx: WorkflowContext) => {
      if (options.canDecideThrows) throw new Error('no such field');
      return Object.keys(ctx.receivedSignals).length >= 2;
    },
    evaluate: (ctx: WorkflowContext) => {
      evaluated.push(Object.keys(ctx.receivedSignals).length);
      return { action: 'vote', agents: Object.keys(ctx.receivedSignals).sort() };
    },
  };
  const asked: number[] = [];
  const finalized: { status: string; json: string }[] = [];
  const repository = {
    addSignal: jest.fn(async (): Promise<unknown> => ({ kind: 'added', workflow: snapshot(2, ['a', 'b']) })),
    freeze: jest.fn(async (wf: StoredWorkflow) => {
      asked.push(wf.version);
      const next = freezes.shift();
      if (!next) throw new Error('no more scripted freeze results');
      return next;
    }),
    finalize: jest.fn(async (_wf: StoredWorkflow, status: string, json: string): Promise<unknown> => {
      finalized.push({ status, json });
      return { startedMs: 1_000, finishedMs: 2_000 };
    }),
    rest: jest.fn(async () => true),
  };
  const publisher = { publish: jest.fn(async () => ({ duplicate: false })), wasPublished: jest.fn(async () => false), duplicateWindowMs: 120_000 };
  const metrics = new Proxy({}, { get: () => () => undefined });
  const config = {
    requiredAgents: ['a', 'b'],
    optionalAgents: [],
    agentTimeoutSeconds: 0,
    earlySignalGraceSeconds: 5,
    claimLeaseMs: 1500,
    retentionSeconds: 60,
  };
  const admission = { enter: async () => undefined, started: () => undefined, abandoned: () => undefined, finished: jest.fn(), setCount: () => undefined };
  const service = new WorkflowService(
    repository as unknown as WorkflowRepository,
    { get: () => strategy } as unknown as StrategyRegistry,
    publisher as unknown as DecisionPublisher,
    metrics as OrchestratorMetrics,
    admission as unknown as Admission,
    new Proxy({}, { get: () => () => undefined }) as AuditTrail,
    { registerProbe: () => undefined } as unknown as FlowControl,
    config as unknown as WorkflowConfig,
    { name: 'test-orchestrator' } as AppConfig,
  );
  const meta = { sequence: 7, storedAtMs: Date.now(), receivedAt: 0, hold: <T>(work: Promise<T>) => work };
  const handle = () => service.handleSignal({ corr_id: 'c1', agent_name: 'b', confidence: 0.6 }, signal('b', 0.6), meta);
  return { handle, service, repository, publisher, admission, asked, finalized, evaluated };
}

const decided = (wf: StoredWorkflow): FreezeResult => ({ kind: 'frozen', workflow: frozen(wf) });

describe('WorkflowService: deciding on a signal, canDecide asked (no readiness rule)', () => {
  it('freezes the version canDecide was asked on, evaluates it, publishes, and finalises with exactly the bytes published', async () => {
    const t = setUp([decided(snapshot(2, ['a', 'b']))]);
    await t.handle();
    expect(t.asked).toEqual([2]);
    expect(t.evaluated).toEqual([2]);
    const json = (t.publisher.publish.mock.calls[0] as unknown[])[0] as string;
    expect(JSON.parse(json)).toMatchObject({ corr_id: 'c1', workflow_id: 'vote:c1', status: 'completed', decision: { action: 'vote', agents: ['a', 'b'] } });
    // The message id names the workflow instance: its id and start time.
    expect(t.publisher.publish).toHaveBeenCalledWith(json, 'vote:c1@1000');
    expect(t.finalized).toEqual([{ status: 'completed', json }]);
  });

  it('asks again on the current snapshot when a signal came in between, and evaluates only the frozen one', async () => {
    const t = setUp([{ kind: 'outdated', workflow: snapshot(3, ['a', 'b', 'c']) }, decided(snapshot(3, ['a', 'b', 'c']))]);
    await t.handle();
    expect(t.asked).toEqual([2, 3]);
    expect(t.evaluated).toEqual([3]);
    expect(t.publisher.publish).toHaveBeenCalledTimes(1);
    expect(JSON.parse((t.publisher.publish.mock.calls[0] as unknown[])[0] as string).decision.agents).toEqual(['a', 'b', 'c']);
  });

  it('evaluates and publishes nothing when the workflow was closed meanwhile (timed out, or frozen by another replica)', async () => {
    const t = setUp([{ kind: 'closed', status: 'evaluating' }]);
    await t.handle();
    expect(t.evaluated).toEqual([]);
    expect(t.publisher.publish).not.toHaveBeenCalled();
    expect(t.repository.finalize).not.toHaveBeenCalled();
  });

  it('gives up after 5 outdated snapshots in a row (the handler of the latest signal decides), evaluating nothing', async () => {
    const outdated = (v: number): FreezeResult => ({ kind: 'outdated', workflow: snapshot(v, ['a', 'b']) });
    const t = setUp([outdated(3), outdated(4), outdated(5), outdated(6), outdated(7), decided(snapshot(8, ['a', 'b']))]);
    await t.handle();
    expect(t.asked).toEqual([2, 3, 4, 5, 6]);
    expect(t.evaluated).toEqual([]);
    expect(t.publisher.publish).not.toHaveBeenCalled();
  });

  it('does not freeze or evaluate while the strategy cannot decide', async () => {
    const t = setUp([]);
    t.repository.addSignal.mockImplementation(async () => ({ kind: 'added', workflow: snapshot(1, ['a']) }));
    await t.handle();
    expect(t.evaluated).toEqual([]);
    expect(t.repository.freeze).not.toHaveBeenCalled();
  });

  it('canDecide throwing: the workflow is frozen to fail, with the error, and fails (a re-run fails it the same way)', async () => {
    const t = setUp([{ kind: 'frozen', workflow: { ...frozen(snapshot(2, ['a', 'b']), 'fail'), frozenBy: 'Error: no such field' } }], {
      canDecideThrows: true,
    });
    await t.handle();
    expect(t.repository.freeze).toHaveBeenCalledWith(expect.objectContaining({ version: 2 }), 'fail', 1500, 'Error: no such field');
    expect(t.evaluated).toEqual([]);
    const message = JSON.parse(t.finalized[0].json);
    expect([t.finalized[0].status, message.decision]).toEqual(['failed', { action: 'error', reason: 'strategy_error', error: 'Error: no such field' }]);

    const rerun = setUp([]);
    await rerun.service.runSweepJob({
      kind: 'fail',
      workflow: { ...frozen(snapshot(2, ['a', 'b']), 'fail'), frozenBy: 'Error: no such field' },
      sweptMs: 9_000,
    });
    expect(rerun.evaluated).toEqual([]);
    expect(rerun.finalized[0].json).toBe(t.finalized[0].json);
  });

  it('published but not finalised (Redis away): reported published, nothing counted, left to the sweeper', async () => {
    const t = setUp([decided(snapshot(2, ['a', 'b']))]);
    t.repository.finalize.mockImplementation(async () => {
      throw new Error('Redis is away');
    });
    await t.handle();
    expect(t.publisher.publish).toHaveBeenCalledTimes(1);
    expect(t.admission.finished).not.toHaveBeenCalled();
  });

  it('a decision not published (NATS away) is not finalised: the frozen workflow is left to the sweeper', async () => {
    const t = setUp([decided(snapshot(2, ['a', 'b']))]);
    t.publisher.publish.mockImplementation(async () => {
      throw new Error('NATS is disconnected');
    });
    await t.handle();
    expect(t.repository.finalize).not.toHaveBeenCalled();
  });
});

describe('WorkflowService: deciding on a signal, readiness judged by Redis', () => {
  it('the signal that made the workflow ready decides it from the frozen snapshot, without asking canDecide or freezing again', async () => {
    const t = setUp([]);
    t.repository.addSignal.mockImplementation(async () => ({ kind: 'ready', workflow: frozen({ ...snapshot(2, ['a', 'b']), hasRule: true }) }));
    await t.handle();
    expect(t.repository.freeze).not.toHaveBeenCalled();
    expect(t.evaluated).toEqual([2]);
    expect(t.publisher.publish).toHaveBeenCalledTimes(1);
    expect(t.finalized).toHaveLength(1);
  });

  it('a signal that did not make it ready (no snapshot back) does nothing more', async () => {
    const t = setUp([]);
    t.repository.addSignal.mockImplementation(async () => ({ kind: 'added', workflow: null }));
    await t.handle();
    expect(t.repository.freeze).not.toHaveBeenCalled();
    expect(t.evaluated).toEqual([]);
    expect(t.publisher.publish).not.toHaveBeenCalled();
  });
});

describe('WorkflowService: sweeper jobs', () => {
  it("a 'check' job decides a ready workflow its handler left (the signal's handler died or lost its reply)", async () => {
    const t = setUp([decided(snapshot(2, ['a', 'b']))]);
    await t.service.runSweepJob({ kind: 'check', workflow: snapshot(2, ['a', 'b']), sweptMs: Date.now() });
    expect(t.asked).toEqual([2]);
    expect(t.publisher.publish).toHaveBeenCalledTimes(1);
    expect(t.repository.rest).not.toHaveBeenCalled();
  });

  it("a 'check' job on a workflow that cannot decide yet puts it back to its deadline (rest), on the version checked", async () => {
    const t = setUp([]);
    await t.service.runSweepJob({ kind: 'check', workflow: snapshot(1, ['a']), sweptMs: Date.now() });
    expect(t.repository.freeze).not.toHaveBeenCalled();
    expect(t.repository.rest).toHaveBeenCalledTimes(1);
    expect((t.repository.rest.mock.calls[0] as unknown as [StoredWorkflow])[0].version).toBe(1);
  });

  it('a frozen workflow whose decider died is decided again by why it was frozen: evaluate, timeout, cancel, force', async () => {
    const wf = snapshot(2, ['a', 'b']);
    const cases = [
      { why: 'decide', status: 'completed', action: 'vote' },
      { why: 'timeout', status: 'timeout', action: 'timeout' },
      { why: 'cancel', status: 'cancelled', action: 'cancelled' },
      { why: 'force', status: 'completed', action: 'vote' },
    ] as const;
    for (const c of cases) {
      const t = setUp([]);
      await t.service.runSweepJob({ kind: c.why, workflow: { ...frozen(wf, c.why), frozenBy: 'ops' }, sweptMs: 6_000 });
      expect(t.repository.freeze).not.toHaveBeenCalled();
      const message = JSON.parse(t.finalized[0].json);
      expect([t.finalized[0].status, message.status, message.decision.action]).toEqual([c.status, c.status, c.action]);
      if (c.why === 'force') expect(message.metadata).toMatchObject({ forced: true, forced_by: 'ops' });
      if (c.why === 'cancel') {
        expect(message.decision).toEqual({ action: 'cancelled', reason: 'cancelled_by_operator' });
        expect(message.metadata).toMatchObject({ cancelled_by: 'ops' });
      }
    }
  });

  it('a decision built again from the same frozen snapshot is the same bytes, orchestrated_at being the freeze time', async () => {
    const wf = frozen(snapshot(2, ['a', 'b']), 'timeout', 5_000);
    const first = setUp([]);
    await first.service.runSweepJob({ kind: 'timeout', workflow: wf, sweptMs: 5_000 });
    const again = setUp([]);
    await again.service.runSweepJob({ kind: 'timeout', workflow: wf, sweptMs: 9_000 });
    expect(again.finalized[0].json).toBe(first.finalized[0].json);
    expect(JSON.parse(first.finalized[0].json).orchestrated_at).toBe(new Date(5_000).toISOString());
  });

  it('a re-run within the duplicate window relies on the message id; past it the stream is searched first', async () => {
    const wf = frozen(snapshot(2, ['a', 'b']), 'decide', 5_000);
    const young = setUp([]);
    await young.service.runSweepJob({ kind: 'decide', workflow: wf, sweptMs: 5_000 + 10_000 });
    expect(young.publisher.wasPublished).not.toHaveBeenCalled();
    expect(young.publisher.publish).toHaveBeenCalledWith(expect.any(String), 'vote:c1@1000');

    const old = setUp([]);
    old.publisher.wasPublished.mockImplementation(async () => true);
    await old.service.runSweepJob({ kind: 'decide', workflow: wf, sweptMs: 5_000 + 100_000 });
    expect(old.publisher.wasPublished).toHaveBeenCalledWith('vote:c1@1000', 5_000 - 30_000);
    expect(old.publisher.publish).not.toHaveBeenCalled();
    expect(old.repository.finalize).toHaveBeenCalledTimes(1);

    const lost = setUp([]);
    await lost.service.runSweepJob({ kind: 'decide', workflow: wf, sweptMs: 5_000 + 100_000 });
    expect(lost.publisher.wasPublished).toHaveBeenCalledTimes(1);
    expect(lost.publisher.publish).toHaveBeenCalledTimes(1);
  });

  it('a decision an older version recorded and left unpublished is published as recorded', async () => {
    const recorded = {
      ...snapshot(2, ['a', 'b']),
      status: 'completed' as const,
      finishedMs: 5_000,
      decisionJson: JSON.stringify({ status: 'completed', decision: { action: 'vote' } }),
    };
    const t = setUp([]);
    await t.service.runSweepJob({ kind: 'publish', workflow: recorded, sweptMs: 5_000 + 10_000 });
    expect(t.publisher.publish).toHaveBeenCalledWith(recorded.decisionJson, 'vote:c1@1000');
    expect(t.finalized).toEqual([{ status: 'completed', json: recorded.decisionJson }]);
  });

  it('a timeout finalised first by another claimant frees no room twice (finalize answers null)', async () => {
    const first = setUp([]);
    await first.service.runSweepJob({ kind: 'timeout', workflow: frozen(snapshot(1, ['a']), 'timeout'), sweptMs: 5_000 });
    expect(first.admission.finished).toHaveBeenCalledTimes(1);
    const second = setUp([]);
    second.repository.finalize.mockImplementation(async () => null);
    await second.service.runSweepJob({ kind: 'timeout', workflow: frozen(snapshot(1, ['a']), 'timeout'), sweptMs: 5_000 });
    expect(second.repository.finalize).toHaveBeenCalledTimes(1);
    expect(second.admission.finished).not.toHaveBeenCalled();
  });
});
