import { BackpressureError, describeError, OrchestratorError, isRetryable } from '../../common/errors.js';

/**
 * The one settlement policy of the transport: how a delivered message ends, from what its handler
 * did and how many of its attempts failed. Nothing else in the code acks, naks or terms (the transport
 * only hands back a message it pulled but never started, when closing).
 *
 *  - handler stored its effect           -> ack
 *  - bad input (non-retryable error)     -> dead-letter with the reason, then term (a poison message
 *                                           convicted by the transport, `poison`, is such an error)
 *  - transient error, attempts left      -> nak with exponential back-off (never dropped)
 *  - transient error, last attempt       -> dead-letter ("max_deliveries"), then term
 *
 * Attempts are the failed runs the transport counted (its suspect ledger), not deliveries: a delivery
 * lost because a replica died under the message is not the message's failure.
 *
 * If the dead-letter publish itself fails, the executor naks instead: a message is never lost.
 */
export type Outcome = { ok: true } | { ok: false; error: unknown };

export type Settlement = { action: 'ack' } | { action: 'nak'; delayMs: number; reason: string } | { action: 'dead-letter'; reason: string; code: string };

const ACK: Settlement = Object.freeze({ action: 'ack' });

export interface SettlementOptions {
  maxDeliveries: number;
  nakDelayMs: number;
  nakMaxDelayMs: number;
}

/** `attempts` (failed attempts, this one included) is read only for a transient failure: most messages succeed. */
export function settle(outcome: Outcome, attempts: () => number, options: SettlementOptions): Settlement {
  if (outcome.ok) return ACK;
  const { error } = outcome;
  const reason = describeError(error);
  if (!isRetryable(error)) {
    const code = error instanceof OrchestratorError ? error.code : 'bad_input';
    return { action: 'dead-letter', code, reason: `${code}: ${error instanceof Error ? error.message : reason}` };
  }
  // Back-pressure is not a failure of this message: it waits without using up its deliveries.
  if (error instanceof BackpressureError) {
    return { action: 'nak', delayMs: options.nakMaxDelayMs > 0 ? Math.min(options.nakDelayMs * 4, options.nakMaxDelayMs) : 0, reason };
  }
  const failed = attempts();
  if (failed >= options.maxDeliveries) {
    return { action: 'dead-letter', code: 'max_deliveries', reason: `max_deliveries: failed ${failed} times, last error: ${reason}` };
  }
  return { action: 'nak', delayMs: backoff(failed, options), reason };
}

/** nakDelay * 2^(n-1), capped: 0.5 s, 1 s, 2 s ... 30 s with the defaults. */
export function backoff(attempts: number, options: SettlementOptions): number {
  const exp = Math.min(Math.max(attempts - 1, 0), 30);
  return Math.min(options.nakDelayMs * 2 ** exp, options.nakMaxDelayMs);
}
