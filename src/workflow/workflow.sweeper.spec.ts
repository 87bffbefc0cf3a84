import { jest } from '@jest/globals';
import type { NatsConfig, WorkflowConfig } from '../config/configuration.js';
import type { NatsConnectionService } from '../nats/nats-connection.service.js';
import type { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import type { SweepJob, WorkflowRepository } from './workflow.repository.js';
import type { WorkflowService } from './workflow.service.js';

// As in workflow.service.spec.ts: the metrics class would pull in the Prometheus module.
jest.unstable_mockModule('../metrics/orchestrator.metrics.js', () => ({ OrchestratorMetrics: class {} }));
jest.unstable_mockModule('../audit/audit.metrics.js', () => ({ AuditMetrics: class {}, auditMetricProviders: [] }));
const { WorkflowSweeper } = await import('./workflow.sweeper.js');

/*
 * The sweeper's bound on claimed work with a scripted repository: a sweep claims no more than the room
 * left under maxJobs (and at most half of maxJobs), split over the shards; while batches are full the next
 * sweep goes out ahead, sized to the room beside the jobs just claimed; when there is no room, the loop
 * waits until half the jobs have ended.
 */

function setUp(
  sweepBatch: number,
  shards: number,
  due: (limit: number) => { count: number; full: boolean; frozenMs?: number } = (limit) => ({ count: limit, full: true }),
) {
  const limits: number[] = [];
  const finishers: (() => void)[] = [];
  const repository = {
    keys: { shards },
    // Every shard has plenty due: the sweep returns `limit` jobs per shard.
    sweep: jest.fn(async (limit: number) => {
      limits.push(limit);
      const { count, full, frozenMs = 0 } = due(limit);
      // Timeouts frozen by this sweep (frozenMs = the sweep's clock), unless the case says otherwise.
      const workflow = { frozenMs } as SweepJob['workflow'];
      const jobs: SweepJob[] = Array.from({ length: count * shards }, () => ({ kind: 'timeout', workflow, sweptMs: 0 }));
      return { jobs, broken: [], errors: [], remaining: 1_000_000, full, redisNowMs: Date.now() };
    }),
    reapEarly: jest.fn(async () => ({ buffers: 0, signals: 0 })),
  };
  const workflows = {
    setActiveCount: () => undefined,
    runSweepJob: () => new Promise<void>((resolve) => finishers.push(resolve)),
  };
  const metrics = new Proxy({}, { get: () => () => undefined });
  const config = { sweepBatch, sweepIntervalMs: 1000, claimLeaseMs: 1500, cleanupIntervalMs: 60_000 } as unknown as WorkflowConfig;
  const nats = { manager: { consumers: { info: async () => ({ num_pending: 0, num_ack_pending: 0 }) } } };
  const natsSettings = { streams: { signals: 'S' }, consumers: { trigger: 't' }, subjects: { trigger: 'x' } };
  const sweeper = new WorkflowSweeper(
    repository as unknown as WorkflowRepository,
    workflows as unknown as WorkflowService,
    metrics as OrchestratorMetrics,
    nats as unknown as NatsConnectionService,
    config,
    natsSettings as unknown as NatsConfig,
  );
  const step = () => (sweeper as unknown as { step(): Promise<boolean | number> }).step();
  /** Ends the `n` oldest running jobs. */
  const finish = async (n: number) => {
    for (const f of finishers.splice(0, n)) f();
    await new Promise((r) => setImmediate(r));
  };
  return { sweeper, step, finish, limits, running: () => finishers.length };
}

describe('WorkflowSweeper: claimed work is bounded by the room to run it', () => {
  it('claims at most 4 x SWEEP_BATCH, half per sweep, split over the shards; when full it waits for half, then claims the freed room', async () => {
    const t = setUp(10, 4); // maxJobs 40, at most 20 per sweep
    await t.step();
    // 5 per shard, and the next 5 per shard sent ahead beside those 20.
    expect(t.limits).toEqual([5, 5]);
    await t.step();
    expect(t.limits).toEqual([5, 5]);
    await t.finish(0);
    expect(t.running()).toBe(40);

    let swept = false;
    const next = t.step().then(() => (swept = true));
    await t.finish(19); // 21 still running: more than half
    expect(swept).toBe(false);
    await t.finish(1); // 20: half
    await next;
    expect(t.limits).toEqual([5, 5, 5]); // room 20 over 4 shards; none left beside them to send ahead
    await t.finish(0);
    expect(t.running()).toBe(40);
  });

  it('with more shards than 4 x SWEEP_BATCH, keeps room for one per shard and never claims beyond it', async () => {
    const t = setUp(1, 16); // maxJobs max(4, 32) = 32
    await t.step();
    // A full batch with room left beside its 16 jobs: the next sweep went out ahead.
    expect(t.limits).toEqual([1, 1]);
    await t.finish(0);
    expect(t.running()).toBe(16);
    // The next step takes the reply of the sweep sent ahead; no room is left beside its jobs: none ahead.
    await t.step();
    expect(t.limits).toEqual([1, 1]);
    await t.finish(0);
    expect(t.running()).toBe(32);
    const next = t.step();
    await t.finish(16);
    await next;
    expect(t.running()).toBeLessThanOrEqual(32);
  });

  it('sends the next sweep ahead only while batches are full, and runs its jobs on shutdown', async () => {
    const t = setUp(10, 2); // maxJobs 40: a full sweep of 10 per shard leaves room for 10 per shard ahead
    await t.step();
    expect(t.limits).toEqual([10, 10]);
    await t.finish(0);
    expect(t.running()).toBe(20);
    // The jobs claimed by the sweep sent ahead are not left to their lease: they run before shutdown ends.
    const destroyed = t.sweeper.onModuleDestroy();
    await t.finish(0);
    await t.finish(0);
    expect(t.running()).toBe(40);
    expect(t.limits).toEqual([10, 10]);
    await t.finish(40);
    await destroyed;

    const quiet = setUp(10, 2, () => ({ count: 3, full: false }));
    await quiet.step();
    expect(quiet.limits).toEqual([10]);
  });

  it('on shutdown, a loop waiting for room stops without claiming more', async () => {
    const t = setUp(10, 4);
    await t.step();
    await t.step();
    await t.finish(0);
    expect(t.running()).toBe(40);
    const waiting = t.step();
    const destroyed = t.sweeper.onModuleDestroy();
    await waiting;
    expect(t.limits).toEqual([5, 5]);
    await t.finish(40);
    await destroyed;
  });
});

describe('WorkflowSweeper: how soon the next sweep comes', () => {
  it('at once when a shard had a full batch; after a quarter interval when it found due work; after the interval when idle', async () => {
    expect(await setUp(10, 4).step()).toBe(true);
    // sweepIntervalMs 1000 in setUp.
    expect(await setUp(10, 4, () => ({ count: 3, full: false })).step()).toBe(250);
    expect(await setUp(10, 4, () => ({ count: 0, full: false })).step()).toBe(false);
    // Only work taken over after a lease (frozen before this sweep, e.g. while NATS is away): the interval.
    expect(await setUp(10, 4, () => ({ count: 3, full: false, frozenMs: -5_000 })).step()).toBe(false);
  });
});
