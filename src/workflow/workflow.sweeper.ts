import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { natsConfig, workflowConfig, type NatsConfig, type WorkflowConfig } from '../config/configuration.js';
import { BackgroundLoop } from '../common/background-loop.js';
import { describeError } from '../common/errors.js';
import { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import { NatsConnectionService } from '../nats/nats-connection.service.js';
import { consumerWatermark } from '../transport/jetstream/progress.js';
import { WorkflowRepository, type SweepJob, type SweepResult } from './workflow.repository.js';
import { WorkflowService } from './workflow.service.js';

/**
 * Times out workflows at their deadline and finishes work a dead replica left (a claim whose lease ran
 * out, a recorded decision never published). A loop that cannot overlap: sweep, then sleep one interval
 * (or not at all while a shard still has a full batch due); the jobs a sweep hands out run on their own,
 * so a slow publish never delays the next deadline. While a sweep finds more due than it could claim (a
 * storm of deadlines), the next sweep is sent as soon as its reply is in, before its jobs start: Redis claims
 * the next batch while this process decides the last, instead of each waiting for the other. Runs on every
 * replica; the sweep script hands
 * each due workflow to one of them. Every WORKFLOW_CLEANUP_INTERVAL it also reaps early-signal buffers
 * whose trigger never came. Errors are counted and logged, never thrown out of the loop.
 */
@Injectable()
export class WorkflowSweeper implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('WorkflowSweeper');
  private readonly loop: BackgroundLoop;
  private nextReap = 0;
  /**
   * Jobs handed out and still running. The loop does not wait for them: a job ends with a decision
   * publish, which can hang for the NATS timeout while NATS is away, and the next deadlines must not wait
   * for it. Each due workflow is handed out once per claim lease, which bounds this set.
   */
  private readonly jobs = new Set<Promise<void>>();
  private readonly maxJobs: number;
  /** Set while the loop waits for the running jobs to drop to half of maxJobs (a storm of due workflows). */
  private wakeWhenRoom: (() => void) | undefined;
  /**
   * The sweep sent ahead (see the class comment), claimed against the room left beside the jobs of the one
   * before; the next step takes its reply instead of sweeping. Its jobs are claimed once sent: on shutdown
   * they still run.
   */
  private ahead: Promise<SweepResult> | undefined;
  private stopping = false;

  constructor(
    private readonly repository: WorkflowRepository,
    private readonly workflows: WorkflowService,
    private readonly metrics: OrchestratorMetrics,
    private readonly nats: NatsConnectionService,
    @Inject(workflowConfig.KEY) private readonly config: WorkflowConfig,
    @Inject(natsConfig.KEY) private readonly natsSettings: NatsConfig,
  ) {
    this.loop = new BackgroundLoop(() => this.step(), config.sweepIntervalMs);
    // At least two per shard, so that a sweep always has room for one per shard (see sweepOnce).
    this.maxJobs = Math.max(config.sweepBatch * 4, repository.keys.shards * 2);
  }

  onApplicationBootstrap(): void {
    this.loop.start();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    this.wakeUp();
    await this.loop.stop();
    const ahead = this.ahead;
    this.ahead = undefined;
    const claimed = await ahead?.catch(() => null);
    if (claimed) this.run(claimed.jobs);
    await Promise.allSettled([...this.jobs]);
  }

  /**
   * One iteration of the loop; @returns true to run again at once (a batch was full), or, when this sweep
   * found due work, a quarter of the interval: while deadlines keep falling due, the next ones are picked up
   * that much sooner (their lateness is mostly the wait for the next sweep), and an idle sweeper still
   * sweeps once an interval.
   */
  private async step(): Promise<boolean | number> {
    let more: boolean | number = false;
    try {
      // Hand out no more while this many jobs run (a storm of due workflows): waiting here is what
      // keeps memory and Redis load bounded, and jobs not started would only be re-claimed after the lease.
      // The wait lasts until half have finished, so that the next sweep claims a batch worth its round trip.
      // (A sweep sent ahead was sized to fit beside the jobs running.)
      if (!this.ahead && this.roomPerShard() === 0) await new Promise<void>((resolve) => (this.wakeWhenRoom = resolve));
      if (this.stopping) return false;
      more = await this.sweepOnce();
    } catch (error) {
      this.metrics.sweeperError();
      this.logger.warn({ msg: 'sweep failed, retrying next interval', error: describeError(error) });
    }
    if (Date.now() >= this.nextReap) {
      this.nextReap = Date.now() + this.config.cleanupIntervalMs;
      await this.reapEarlySignals();
    }
    return more;
  }

  /**
   * One pass over all shards: hands out the due jobs (without waiting for them). @returns true when a shard
   * had more due than one batch, else the pause before the next sweep when it found due work.
   */
  async sweepOnce(): Promise<boolean | number> {
    // Claim no more than there is room to run now: a claimed job that waits behind thousands of others
    // outlives its lease, is claimed again by the next sweep, and its first run is wasted work.
    const sweep = this.ahead ?? this.repository.sweep(Math.max(1, this.roomPerShard()), this.config.claimLeaseMs);
    this.ahead = undefined;
    const { jobs, remaining, full, errors, broken } = await sweep;
    // A shard that fails (a script error on one of its keys) must not stall the others: their jobs run.
    for (const { shard, error } of errors) {
      this.metrics.sweeperError();
      this.logger.warn({ msg: 'sweep of a shard failed, retrying next interval', shard, error: describeError(error) });
    }
    for (const b of broken) {
      this.metrics.sweeperError();
      this.logger.error({ msg: 'due workflow unreadable in Redis, looked at again in a minute', corr_id: b.corrId, error: b.error });
    }
    if (errors.length === 0) this.workflows.setActiveCount(remaining);
    // More is due: the next sweep goes out now, sized to the room beside these jobs, and Redis runs it while
    // they start. They start at the next turn: the client writes a command once the current turn's promise
    // callbacks are done, and these jobs' first steps (the strategy, the decision, the audit) are such callbacks.
    const room = full && !this.stopping ? this.roomPerShard(jobs.length) : 0;
    if (room > 0) {
      this.ahead = this.repository.sweep(room, this.config.claimLeaseMs);
      // Awaited by the next step (or on shutdown), which sees its failure; not an unhandled rejection meanwhile.
      this.ahead.catch(() => undefined);
    }
    this.run(jobs, room > 0 ? new Promise<void>((resolve) => setImmediate(resolve)) : undefined);
    if (full) return true;
    // Deadlines falling due (timeouts frozen by this sweep) or checks; not work taken over after a lease,
    // which comes round again (a NATS outage would otherwise make the sweeper spin faster for nothing).
    const fresh = jobs.some((job) => job.kind === 'check' || (job.kind === 'timeout' && job.workflow.frozenMs === job.sweptMs));
    return fresh ? Math.max(1, Math.floor(this.config.sweepIntervalMs / 4)) : false;
  }

  /**
   * Starts claimed jobs (once `after` resolves, if given) without waiting for them: each ends by itself, and
   * `jobs` holds them from now on.
   */
  private run(jobs: SweepJob[], after?: Promise<void>): void {
    for (const job of jobs) {
      const run: Promise<void> = (after ? after.then(() => this.workflows.runSweepJob(job)) : this.workflows.runSweepJob(job))
        .catch((error: unknown) => {
          this.metrics.sweeperError();
          this.logger.warn({ msg: 'sweep job failed, retried after the lease', corr_id: job.workflow.corrId, kind: job.kind, error: describeError(error) });
        })
        .finally(() => {
          this.jobs.delete(run);
          if (this.jobs.size <= this.maxJobs / 2) this.wakeUp();
        });
      this.jobs.add(run);
    }
  }

  /**
   * Due workflows one sweep may claim per shard: its share of the room left under maxJobs, at most SWEEP_BATCH.
   * `starting`: jobs claimed and about to start, not yet counted as running.
   */
  private roomPerShard(starting = 0): number {
    // At most half of maxJobs per sweep: room for the next one to go out ahead while these run.
    const room = Math.min(Math.max(this.maxJobs - this.jobs.size - starting, 0), Math.floor(this.maxJobs / 2));
    return Math.min(this.config.sweepBatch, Math.floor(room / this.repository.keys.shards));
  }

  private wakeUp(): void {
    const wake = this.wakeWhenRoom;
    this.wakeWhenRoom = undefined;
    wake?.();
  }

  private async reapEarlySignals(): Promise<void> {
    try {
      // Only buffers whose grace ended before the trigger consumer's progress: the early signals of
      // triggers still waiting in the stream (back-pressure, an outage, a backlog) live until they start.
      const { streams, consumers, subjects } = this.natsSettings;
      const watermark = await consumerWatermark(this.nats.manager, streams.signals, consumers.trigger, subjects.trigger);
      const { buffers, signals } = await this.repository.reapEarly(this.config.sweepBatch, watermark);
      this.metrics.orphaned(signals);
      if (buffers > 0) this.logger.warn({ msg: 'early signals orphaned: their trigger never came', buffers, signals });
    } catch (error) {
      this.metrics.sweeperError();
      this.logger.warn({ msg: 'early-signal cleanup failed', error: describeError(error) });
    }
  }
}
