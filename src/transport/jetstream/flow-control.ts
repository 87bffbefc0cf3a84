import { Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../../common/errors.js';

/** Pauses every consumer, not one route. */
export const ALL_ROUTES = '*';

const PROBE_INTERVAL_MS = 500;
const PROBE_TIMEOUT_MS = 2000;

/**
 * When the transport may pull, and how long a failed message is held. A route (a consumer, by its handler
 * pattern) pulls while nothing pauses it:
 *  - back-pressure pauses the trigger route (the workflow layer says when: above MAX_CONCURRENT_WORKFLOWS);
 *  - an unreachable dependency (Redis) pauses every route: after a transient failure the transport asks
 *    `outage(route, error)`; if the probe fails, pulling stops and the failed messages are held (not naked, so
 *    no delivery is used up) until the probe answers again;
 *  - a failure the workflow layer blamed on one part of a dependency (`blamePart`: one Redis Cluster shard,
 *    whose primary is failing over) pauses nothing: only the messages that failed on that part are held,
 *    until its own probe answers, and the other parts' messages keep flowing (no head-of-line blocking).
 * Each change of state is logged once, never once per message.
 */
@Injectable()
export class FlowControl {
  private readonly logger = new Logger('FlowControl');
  private readonly reasons = new Map<string, Set<string>>();
  private readonly waiters = new Set<() => void>();
  private readonly probes = new Map<string, () => Promise<unknown>>();
  private readonly partProbes = new Map<string, (part: string) => Promise<unknown>>();
  private readonly probing = new Map<string, Promise<void>>();
  /** Parts being probed (`<dependency> <part>`): resolves when the part answers again, or the transport stops. */
  private readonly partsDown = new Map<string, Promise<void>>();
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

  /**
   * A dependency whose outage pauses everything: `probe` resolves when it answers. `partProbe`, if the
   * dependency has parts that fail on their own (blamePart), resolves when that part answers.
   */
  registerProbe(name: string, probe: () => Promise<unknown>, partProbe?: (part: string) => Promise<unknown>): void {
    this.probes.set(name, probe);
    if (partProbe) this.partProbes.set(name, partProbe);
  }

  /**
   * After a transient failure of a message on `pattern`: null when the dependencies answer (the failure was
   * the message's own: it is retried with a delay, as usual); else the outage that failed it, whose `over`
   * resolves when it ends (or the transport stops): the caller holds the message until then and runs it
   * again. A failure blamed on a part waits for that part only; any other waits for every probe, pulling paused.
   */
  async outage(pattern: string, error: unknown): Promise<Outage | null> {
    const blamed = blamedPart(error);
    const partProbe = blamed && this.partProbes.get(blamed.dependency);
    if (blamed && partProbe) return this.partOutage(blamed.dependency, blamed.part, partProbe);
    return (await this.dependenciesUp()) ? null : { part: null, over: this.waitOpen(pattern) };
  }

  private async partOutage(name: string, part: string, probe: (part: string) => Promise<unknown>): Promise<Outage | null> {
    const id = `${name} ${part}`;
    let over = this.partsDown.get(id);
    if (!over) {
      try {
        await withTimeout(probe(part));
        return null;
      } catch (error) {
        over = this.partsDown.get(id) ?? this.startProbingPart(id, () => probe(part), error);
      }
    }
    return { part: id, over };
  }

  private startProbingPart(id: string, probe: () => Promise<unknown>, first: unknown): Promise<void> {
    this.logger.warn({ msg: `${id} unreachable: holding its messages until it answers, the others go on`, error: describeError(first) });
    const since = performance.now();
    const loop = (async () => {
      while (!(await this.sleepUnlessStopped(PROBE_INTERVAL_MS))) {
        try {
          await withTimeout(probe());
          this.logger.log({ msg: `${id} answers again: its held messages run`, held_ms: Math.round(performance.now() - since) });
          break;
        } catch {
          /* still down */
        }
      }
      this.partsDown.delete(id);
    })();
    this.partsDown.set(id, loop);
    return loop;
  }

  /** True when the transport stopped before `ms` passed. */
  private sleepUnlessStopped(ms: number): Promise<boolean> {
    if (this.stopped) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        remove();
        resolve(false);
      }, ms);
      const remove = this.onStop(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Are the dependencies reachable? A failing probe pauses every route and keeps probing until it answers;
   * meanwhile this returns false (the caller holds its message and waits for `waitOpen`).
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

/** What holds a failed message: a part of a dependency (`<dependency> <part>`), or all of them (null). */
export interface Outage {
  part: string | null;
  over: Promise<void>;
}

const blamed = new WeakMap<object, { dependency: string; part: string }>();

/**
 * Marks a transient failure as one part's (`part` of `dependency`: a Redis Cluster shard's hash tag): the
 * transport then holds the message until that part answers (FlowControl.outage), pausing nothing else.
 * Returns the error, for `throw blamePart(...)`.
 */
export function blamePart(error: unknown, dependency: string, part: string): unknown {
  if (typeof error === 'object' && error !== null) blamed.set(error, { dependency, part });
  return error;
}

export function blamedPart(error: unknown): { dependency: string; part: string } | undefined {
  return typeof error === 'object' && error !== null ? blamed.get(error) : undefined;
}

function withTimeout(work: Promise<unknown>): Promise<unknown> {
  return Promise.race([work, sleep(PROBE_TIMEOUT_MS, undefined, { ref: false }).then(() => Promise.reject(new Error(`no answer in ${PROBE_TIMEOUT_MS} ms`)))]);
}
