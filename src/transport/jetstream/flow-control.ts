import { Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../../common/errors.js';

/** Pauses every consumer, not one route. */
export const ALL_ROUTES = '*';

const PROBE_INTERVAL_MS = 500;
const PROBE_TIMEOUT_MS = 2000;

/**
 * When the transport may pull. A route (a consumer, by its handler pattern) pulls while nothing pauses it:
 *  - back-pressure pauses the trigger route (the workflow layer says when: above MAX_CONCURRENT_WORKFLOWS);
 *  - an unreachable dependency (Redis) pauses every route: after a transient failure the transport asks
 *    `dependenciesUp()`; if a probe fails, pulling stops and the failed messages are held (not naked, so no
 *    delivery is used up) until the probe answers again.
 * Each change of state is logged once, never once per message.
 */
@Injectable()
export class FlowControl {
  private readonly logger = new Logger('FlowControl');
  private readonly reasons = new Map<string, Set<string>>();
  private readonly waiters = new Set<() => void>();
  private readonly probes = new Map<string, () => Promise<unknown>>();
  private readonly probing = new Map<string, Promise<void>>();
  private stopped = false;
  private readonly stopListeners = new Set<() => void>();

  /** `quiet`: the caller logs the episode itself (back-pressure toggles with every workflow at the limit). */
  pause(scope: string, reason: string, quiet = false): void {
    let set = this.reasons.get(scope);
    if (!set) this.reasons.set(scope, (set = new Set()));
    if (set.has(reason)) return;
    set.add(reason);
    if (!quiet) this.logger.warn({ msg: 'pulling paused', consumers: scope === ALL_ROUTES ? 'all' : scope, reason });
  }

  resume(scope: string, reason: string, quiet = false): void {
    const set = this.reasons.get(scope);
    if (!set?.delete(reason)) return;
    if (!quiet) this.logger.log({ msg: 'pulling resumed', consumers: scope === ALL_ROUTES ? 'all' : scope, reason });
    for (const wake of [...this.waiters]) wake();
  }

  isOpen(pattern: string): boolean {
    return !this.reasons.get(pattern)?.size && !this.reasons.get(ALL_ROUTES)?.size;
  }

  /** Resolves when `pattern` may pull (or the transport is stopping). */
  async waitOpen(pattern: string): Promise<void> {
    while (!this.stopped && !this.isOpen(pattern)) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          resolve();
        };
        this.waiters.add(wake);
      });
    }
  }

  /** A dependency whose outage pauses everything: `probe` resolves when it answers. */
  registerProbe(name: string, probe: () => Promise<unknown>): void {
    this.probes.set(name, probe);
  }

  /**
   * After a transient failure: are the dependencies reachable? A failing probe pauses every route and keeps
   * probing until it answers; meanwhile this returns false (the caller holds its message and waits for
   * `waitOpen`). True: the failure was the message's own (it is retried with a delay, as usual).
   */
  async dependenciesUp(): Promise<boolean> {
    let up = true;
    await Promise.all(
      [...this.probes].map(async ([name, probe]) => {
        if (this.probing.has(name)) {
          up = false;
          return;
        }
        try {
          await withTimeout(probe());
        } catch (error) {
          up = false;
          this.startProbing(name, probe, error);
        }
      }),
    );
    return up;
  }

  private startProbing(name: string, probe: () => Promise<unknown>, first: unknown): void {
    if (this.probing.has(name)) return;
    const reason = `${name}_unavailable`;
    this.logger.warn({ msg: `${name} unreachable: holding messages until it answers`, error: describeError(first) });
    this.pause(ALL_ROUTES, reason);
    const loop = (async () => {
      while (!this.stopped) {
        await sleep(PROBE_INTERVAL_MS);
        try {
          await withTimeout(probe());
          break;
        } catch {
          /* still down */
        }
      }
      this.probing.delete(name);
      this.resume(ALL_ROUTES, reason);
    })();
    this.probing.set(name, loop);
  }

  /** Everything waiting is let go (the transport is closing). */
  stop(): void {
    this.stopped = true;
    for (const wake of [...this.waiters]) wake();
    for (const listener of [...this.stopListeners]) listener();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Calls `listener` when the transport starts closing; returns the function that removes it. */
  onStop(listener: () => void): () => void {
    this.stopListeners.add(listener);
    return () => this.stopListeners.delete(listener);
  }
}

function withTimeout(work: Promise<unknown>): Promise<unknown> {
  return Promise.race([work, sleep(PROBE_TIMEOUT_MS, undefined, { ref: false }).then(() => Promise.reject(new Error(`no answer in ${PROBE_TIMEOUT_MS} ms`)))]);
}
