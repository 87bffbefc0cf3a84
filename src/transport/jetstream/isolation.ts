/**
 * Poison isolation (SPEC "Streams and consumers"; docs/RELIABILITY.md, "Poison messages"): a message
 * delivered again after it went unsettled is a *suspect* — the replica that had it may have died of it, or
 * of a message beside it. A suspect runs alone in its replica, its run marked in Redis (the ledger below)
 * while it runs, so a replica that dies or hangs during that run convicts that message and nothing else.
 * Messages delivered for the first time run side by side as before; they only wait while a suspect runs.
 */

/**
 * Runs of a suspect, alone, that never ended (its replica died, or it hung past the ack wait) before it is
 * given up on: dead-lettered (`poison`) before it runs again. Two, not one: a replica killed for a reason of
 * its own (an eviction, an OOM kill, a deploy) while an innocent suspect happens to run alone gives that
 * message one strike, and such coincidences do not come twice to one message. A poison message thus costs
 * at most 1 + POISON_STRIKES replica deaths: its first run (among others), then its runs alone.
 */
export const POISON_STRIKES = 2;

/**
 * Where suspects' runs are counted, outside any one process (a replica that dies cannot count its own
 * death). Keyed by the message's stream and stream sequence. The workflow layer provides it (Redis); the
 * transport only calls it for suspects and for failed messages, never on the normal path.
 */
export interface SuspectLedger {
  /** Marks a run alone as started; returns how many earlier runs alone were started and never ended. */
  arm(stream: string, sequence: number): Promise<number>;
  /** The run alone ended (whatever its outcome). */
  disarm(stream: string, sequence: number): Promise<void>;
  /** One more failed attempt (a retryable error, naked); returns the failures counted so far, this one included. */
  recordFailure(stream: string, sequence: number): Promise<number>;
  /** The message is settled for good (acked or dead-lettered): its record is dropped. */
  forget(stream: string, sequence: number): Promise<void>;
}

type Waiter = () => void;

/**
 * A readers-writer gate over the messages a replica runs: first deliveries hold it shared, a suspect holds it
 * exclusively (alone). Writers are preferred — while a suspect waits, new messages wait too, so a steady load
 * cannot starve it — and after a suspect's run every message waiting is let in before the next suspect, so a
 * stream of suspects cannot starve the others either. A message that parks (waits for back-pressure room, or
 * for Redis to come back) gives its place up meanwhile: it runs no code while parked, and a suspect must not
 * wait for it (which could be forever: room comes from workflows that need other messages to end).
 */
export class IsolationGate {
  private shared = 0;
  private alone = false;
  private readonly sharedWaiters: Waiter[] = [];
  private readonly aloneWaiters: Waiter[] = [];
  private reported = false;

  /**
   * @param onIsolating called with true when a suspect starts waiting for the gate (or holds it) and none
   *   did, with false when none waits or holds it any more: the transport stops pulling meanwhile.
   */
  constructor(private readonly onIsolating: (isolating: boolean) => void = () => undefined) {}

  /** Whether a suspect holds the gate or waits for it. */
  get isolating(): boolean {
    return this.alone || this.aloneWaiters.length > 0;
  }

  /** Takes a shared place at once when no suspect holds or waits for the gate (the normal path: no promise). */
  tryShared(): boolean {
    if (this.isolating) return false;
    this.shared++;
    return true;
  }

  /** Waits for a shared place. */
  async enterShared(): Promise<void> {
    if (this.tryShared()) return;
    await new Promise<void>((resolve) => this.sharedWaiters.push(resolve));
  }

  leaveShared(): void {
    this.shared--;
    // The last one out lets the first waiting suspect in (writers are preferred).
    if (this.shared === 0 && !this.alone) this.nextAlone();
  }

  /** Waits until the caller runs alone. */
  async enterAlone(): Promise<void> {
    if (!this.isolating && this.shared === 0) {
      this.alone = true;
      this.report();
      return;
    }
    const wait = new Promise<void>((resolve) => this.aloneWaiters.push(resolve));
    this.report();
    await wait;
  }

  leaveAlone(): void {
    this.alone = false;
    if (this.sharedWaiters.length > 0) {
      // Everything that waited runs first; the next suspect goes in when they are done.
      const waiting = this.sharedWaiters.splice(0);
      this.shared += waiting.length;
      for (const wake of waiting) wake();
    } else {
      this.nextAlone();
    }
    this.report();
  }

  private nextAlone(): void {
    const suspect = this.aloneWaiters.shift();
    if (!suspect) return;
    this.alone = true;
    suspect();
  }

  private report(): void {
    const now = this.isolating;
    if (now === this.reported) return;
    this.reported = now;
    this.onIsolating(now);
  }
}
