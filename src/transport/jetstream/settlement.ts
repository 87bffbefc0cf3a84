import { BackpressureError, describeError, OrchestratorError, isRetryable } from '../../common/errors.js';

/**
 * The one settlement policy of the transport: how a delivered message ends, from what its handler
 * did and how often it was delivered. Nothing else in the code acks, naks or terms.
 *
 *  - handler stored its effect           -> ack
 *  - bad input (non-retryable error)     -> dead-letter with the reason, then term
 *  - transient error, deliveries left    -> nak with exponential back-off (never dropped)
 *  - transient error, last delivery      -> dead-letter ("max_deliveries"), then term
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

/** `deliveryCount` is read only for a failure (parsing a message's delivery info costs, and most messages succeed). */
export function settle(outcome: Outcome, deliveryCount: () => number, options: SettlementOptions): Settlement {
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
  const deliveries = deliveryCount();
  if (deliveries >= options.maxDeliveries) {
    return { action: 'dead-letter', code: 'max_deliveries', reason: `max_deliveries: delivered ${deliveries} times, last error: ${reason}` };
  }
  return { action: 'nak', delayMs: backoff(deliveries, options), reason };
}

/** nakDelay * 2^(n-1), capped: 0.5 s, 1 s, 2 s ... 30 s with the defaults. */
export function backoff(deliveryCount: number, options: SettlementOptions): number {
  const exp = Math.min(Math.max(deliveryCount - 1, 0), 30);
  return Math.min(options.nakDelayMs * 2 ** exp, options.nakMaxDelayMs);
}
