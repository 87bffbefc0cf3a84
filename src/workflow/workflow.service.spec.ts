import { jest } from '@jest/globals';
import type { AppConfig, WorkflowConfig } from '../config/configuration.js';
import type { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import type { FlowControl } from '../transport/jetstream/flow-control.js';
import type { Admission } from './admission.js';
import type { DecisionPublisher } from './decision.publisher.js';
import type { StrategyRegistry } from './strategies/strategy.registry.js';
import type { RecordResult, StoredWorkflow, WorkflowRepository } from './workflow.repository.js';
import type { WorkflowContext } from './workflow.types.js';

// The real metrics class pulls in the Prometheus module (CommonJS requiring ESM Nest, which jest's VM
// modules cannot load); a no-op stands in, as for every other dependency here.
jest.unstable_mockModule('../metrics/orchestrator.metrics.js', () => ({ OrchestratorMetrics: class {} }));
const { WorkflowService } = await import('./workflow.service.js');

/*
 * The decision step of WorkflowService with a scripted repository: a decision is recorded on the version
 * it was evaluated on, an outdated snapshot is evaluated again, a closed workflow is left alone, and a
 * workflow that keeps changing is left to its later signals. (Redis itself: test/integration.)
 */

const signal = (agent: string, confidence: number) => JSON.stringify({ corr_id: 'c1', agent_name: agent, confidence, timestamp: '2026-11-26T10:00:00Z' });

function snapshot(version: number, agents: string[]): StoredWorkflow {
  return {
    corrId: 'c1',
    workflowId: 'vote:c1',
    workflowType: 'vote',
    status: 'waiting_for_agents',
    startedMs: 1_000,
    deadlineMs: 61_000,
    timeoutMs: 60_000,
    requiredAgents: ['a', 'b'],
    metadata: {},
    triggerJson: JSON.stringify({ corr_id: 'c1' }),
    version,
    decisionJson: null,
    published: false,
    finishedMs: null,
    signals: Object.fromEntries(agents.map((a, i) => [a, signal(a, 0.5 + i / 10)])),
  };
}

function setUp(records: RecordResult[]) {
  const evaluated: number[] = [];
  const strategy = {
    canDecide: (ctx: WorkflowContext) => Object.keys(ctx.receivedSignals).length >= 2,
    evaluate: (ctx: WorkflowContext) => {
      evaluated.push(Object.keys(ctx.receivedSignals).length);
      return { action: 'vote', agents: Object.keys(ctx.receivedSignals).sort() };
    },
  };
  const recorded: { version: number; status: string; json: string }[] = [];
  const repository = {
    addSignal: jest.fn(async () => ({ kind: 'added', workflow: snapshot(2, ['a', 'b']) })),
    record: jest.fn(async (wf: StoredWorkflow, status: string, json: string) => {
      recorded.push({ version: wf.version, status, json });
      const next = records.shift();
      if (!next) throw new Error('no more scripted record results');
      return next;
    }),
    markPublished: jest.fn(async () => ({ startedMs: 1_000, finishedMs: 2_000 })),
    rest: jest.fn(async () => true),
    finish: jest.fn(async () => true),
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
  const service = new WorkflowService(
    repository as unknown as WorkflowRepository,
    { get: () => strategy } as unknown as StrategyRegistry,
    publisher as unknown as DecisionPublisher,
    metrics as OrchestratorMetrics,
    {
      enter: async () => undefined,
      started: () => undefined,
      abandoned: () => undefined,
      finished: () => undefined,
      setCount: () => undefined,
    } as unknown as Admission,
    { registerProbe: () => undefined } as unknown as FlowControl,
    config as unknown as WorkflowConfig,
    { name: 'test-orchestrator' } as AppConfig,
  );
  const meta = { sequence: 7, storedAtMs: Date.now(), receivedAt: 0, hold: <T>(work: Promise<T>) => work };
  const handle = () => service.handleSignal({ corr_id: 'c1', agent_name: 'b', confidence: 0.6 }, signal('b', 0.6), meta);
  return { handle, service, repository, publisher, recorded, evaluated };
}

describe('WorkflowService: deciding on a signal', () => {
  it('records the decision on the version it evaluated, then publishes exactly those bytes', async () => {
    const t = setUp([{ kind: 'recorded' }]);
    await t.handle();
    expect(t.recorded).toHaveLength(1);
    expect(t.recorded[0]).toMatchObject({ version: 2, status: 'completed' });
    expect(JSON.parse(t.recorded[0].json)).toMatchObject({
      corr_id: 'c1',
      workflow_id: 'vote:c1',
      status: 'completed',
      decision: { action: 'vote', agents: ['a', 'b'] },
    });
    // The message id names the workflow instance: its id and start time.
    expect(t.publisher.publish).toHaveBeenCalledWith(t.recorded[0].json, 'vote:c1@1000');
    expect(t.repository.markPublished).toHaveBeenCalledTimes(1);
  });

  it('evaluates again on the current snapshot when a signal came in between, and publishes only the decision recorded', async () => {
    const t = setUp([{ kind: 'outdated', workflow: snapshot(3, ['a', 'b', 'c']) }, { kind: 'recorded' }]);
    await t.handle();
    expect(t.recorded.map((r) => r.version)).toEqual([2, 3]);
    expect(t.evaluated).toEqual([2, 3]);
    expect(t.publisher.publish).toHaveBeenCalledTimes(1);
    expect(JSON.parse((t.publisher.publish.mock.calls[0] as unknown[])[0] as string).decision.agents).toEqual(['a', 'b', 'c']);
  });

  it('publishes nothing when the workflow was closed meanwhile (timed out, or decided by another replica)', async () => {
    const t = setUp([{ kind: 'closed', status: 'evaluating' }]);
    await t.handle();
    expect(t.recorded).toHaveLength(1);
    expect(t.publisher.publish).not.toHaveBeenCalled();
    expect(t.repository.markPublished).not.toHaveBeenCalled();
  });

  it('gives up after 5 outdated snapshots in a row (the handler of the latest signal decides), publishing nothing', async () => {
    const outdated = (v: number): RecordResult => ({ kind: 'outdated', workflow: snapshot(v, ['a', 'b']) });
    const t = setUp([outdated(3), outdated(4), outdated(5), outdated(6), outdated(7), { kind: 'recorded' }]);
    await t.handle();
    expect(t.recorded.map((r) => r.version)).toEqual([2, 3, 4, 5, 6]);
    expect(t.publisher.publish).not.toHaveBeenCalled();
  });

  it('does not evaluate or record while the strategy cannot decide', async () => {
    const t = setUp([]);
    t.repository.addSignal.mockImplementation(async () => ({ kind: 'added', workflow: snapshot(1, ['a']) }));
    await t.handle();
    expect(t.evaluated).toEqual([]);
    expect(t.repository.record).not.toHaveBeenCalled();
  });
});

describe('WorkflowService: sweeper jobs', () => {
  it("a 'check' job decides a ready workflow its handler left (the signal's handler died or lost its reply)", async () => {
    const t = setUp([{ kind: 'recorded' }]);
    await t.service.runSweepJob({ kind: 'check', workflow: snapshot(2, ['a', 'b']) }, Date.now());
    expect(t.recorded.map((r) => r.version)).toEqual([2]);
    expect(t.publisher.publish).toHaveBeenCalledTimes(1);
    expect(t.repository.rest).not.toHaveBeenCalled();
  });

  it("a 'check' job on a workflow that cannot decide yet puts it back to its deadline (rest), on the version checked", async () => {
    const t = setUp([]);
    await t.service.runSweepJob({ kind: 'check', workflow: snapshot(1, ['a']) }, Date.now());
    expect(t.repository.record).not.toHaveBeenCalled();
    expect(t.repository.rest).toHaveBeenCalledTimes(1);
    expect((t.repository.rest.mock.calls[0] as unknown as [StoredWorkflow])[0].version).toBe(1);
  });

  it('a re-publish within the duplicate window relies on the message id; past it the stream is searched first', async () => {
    const finished = {
      ...snapshot(2, ['a', 'b']),
      status: 'completed' as const,
      finishedMs: 5_000,
      decisionJson: JSON.stringify({ status: 'completed', decision: { action: 'vote' } }),
    };
    const young = setUp([]);
    await young.service.runSweepJob({ kind: 'publish', workflow: finished }, 5_000 + 10_000);
    expect(young.publisher.wasPublished).not.toHaveBeenCalled();
    expect(young.publisher.publish).toHaveBeenCalledWith(finished.decisionJson, 'vote:c1@1000');

    const old = setUp([]);
    old.publisher.wasPublished.mockImplementation(async () => true);
    await old.service.runSweepJob({ kind: 'publish', workflow: finished }, 5_000 + 100_000);
    expect(old.publisher.wasPublished).toHaveBeenCalledWith('vote:c1@1000', 5_000 - 30_000);
    expect(old.publisher.publish).not.toHaveBeenCalled();
    expect(old.repository.markPublished).toHaveBeenCalledTimes(1);

    const lost = setUp([]);
    await lost.service.runSweepJob({ kind: 'publish', workflow: finished }, 5_000 + 100_000);
    expect(lost.publisher.wasPublished).toHaveBeenCalledTimes(1);
    expect(lost.publisher.publish).toHaveBeenCalledTimes(1);
  });

  it('a timeout finished first by another claimant publishes nothing', async () => {
    const t = setUp([]);
    t.repository.finish.mockImplementation(async () => false);
    await t.service.runSweepJob({ kind: 'timeout', workflow: { ...snapshot(1, ['a']), status: 'evaluating' } }, Date.now());
    expect(t.repository.finish).toHaveBeenCalledTimes(1);
    expect(t.publisher.publish).not.toHaveBeenCalled();
  });
});
