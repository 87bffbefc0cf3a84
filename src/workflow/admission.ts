import { Inject, Injectable, Logger } from '@nestjs/common';
import { TransientError } from '../common/errors.js';
import { workflowConfig, type WorkflowConfig } from '../config/configuration.js';
import { FlowControl } from '../transport/jetstream/flow-control.js';
import { TRIGGER_PATTERN } from '../transport/jetstream/patterns.js';

const REASON = 'backpressure';
/** Back-pressure is reported over once it has stayed off this long (one line per episode, not per trigger). */
const QUIET_MS = 1000;

/**
 * Back-pressure (SPEC): above MAX_CONCURRENT_WORKFLOWS active workflows, new triggers wait. A trigger
 * already pulled waits here for room (its message held, which uses up no delivery), and the trigger
 * consumer stops pulling until there is room again: what waits in the stream is neither lost nor
 * redelivered. Room comes back the moment a workflow of this replica ends (not at the next count), so the
 * rate at which a backlog drains does not collapse because of the limit.
 *
 * The count is an estimate: the number of unfinished workflows of all replicas read from Redis by the
 * sweeper (every sweep), plus the admissions and minus the decisions of this replica since. Several
 * replicas may each admit up to the room they see between two counts (docs/OPERATIONS.md, "Back-pressure").
 */
@Injectable()
export class Admission {
  private readonly logger = new Logger('Admission');
  private estimate = 0;
  /** Admitted, and the start script not yet answered: not in Redis's count yet. */
  private starting = 0;
  private readonly waiters: (() => void)[] = [];
  private episode: { since: number; waited: number; offSince?: number } | undefined;
  private quietTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly flow: FlowControl,
    @Inject(workflowConfig.KEY) private readonly config: WorkflowConfig,
  ) {}

  get active(): number {
    return this.estimate;
  }

  /** The count of unfinished workflows in Redis (all replicas), read by the sweeper. */
  setCount(count: number): void {
    this.estimate = count + this.starting;
    this.changed();
  }

  /** Waits for room for one more workflow; `hold` keeps the trigger's message from being redelivered meanwhile. */
  async enter(hold: <T>(work: Promise<T>) => Promise<T>): Promise<void> {
    if (this.estimate >= this.config.maxConcurrentWorkflows) {
      this.begin();
      await hold(this.waitForRoom());
      if (this.episode) this.episode.waited++;
    }
    this.estimate++;
    this.starting++;
    this.changed();
  }

  /** The admitted trigger started its workflow (now counted in Redis). */
  started(): void {
    this.starting--;
  }

  /** The admitted trigger opened no workflow (a duplicate, or its start failed). */
  abandoned(): void {
    this.starting--;
    this.estimate--;
    this.changed();
  }

  /** A workflow of this replica ended (its decision was marked published). */
  finished(): void {
    this.estimate--;
    this.changed();
  }

  /** Waits for room; rejects when the transport closes (the trigger goes back to the stream for another replica). */
  private async waitForRoom(): Promise<void> {
    while (this.estimate >= this.config.maxConcurrentWorkflows) {
      if (this.flow.isStopped) throw new TransientError('shutting down: the waiting trigger goes back to the stream');
      let remove = () => {};
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        remove = this.flow.onStop(resolve);
      });
      remove();
    }
  }

  private changed(): void {
    const full = this.estimate >= this.config.maxConcurrentWorkflows;
    if (full) {
      this.flow.pause(TRIGGER_PATTERN, REASON, true);
      return;
    }
    this.flow.resume(TRIGGER_PATTERN, REASON, true);
    // Wake as many waiters as there is room; each re-checks (and takes its place) in enter().
    let room = this.config.maxConcurrentWorkflows - this.estimate;
    while (room-- > 0 && this.waiters.length > 0) this.waiters.shift()!();
    if (this.episode && this.waiters.length === 0) {
      this.episode.offSince ??= Date.now();
      this.quietTimer ??= setTimeout(() => this.end(), QUIET_MS);
      this.quietTimer.unref();
    }
  }

  private begin(): void {
    if (this.episode) {
      this.episode.offSince = undefined;
      return;
    }
    this.episode = { since: Date.now(), waited: 0 };
    this.logger.warn({ msg: 'back-pressure: new triggers wait', active: this.estimate, limit: this.config.maxConcurrentWorkflows });
  }

  private end(): void {
    this.quietTimer = undefined;
    const e = this.episode;
    if (!e) return;
    if (e.offSince === undefined || this.waiters.length > 0 || Date.now() - e.offSince < QUIET_MS) {
      if (e.offSince !== undefined || this.waiters.length > 0) {
        this.quietTimer = setTimeout(() => this.end(), QUIET_MS);
        this.quietTimer.unref();
      }
      return;
    }
    this.episode = undefined;
    this.logger.log({ msg: 'back-pressure over', lasted_ms: e.offSince - e.since, triggers_waited: e.waited });
  }
}
