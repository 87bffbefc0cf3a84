/**
 * Errors that carry meaning. Settlement and metrics branch on `code` and `retryable`, never on message text.
 *
 * - `retryable: true`  — the message is naked with a delay and comes back (Redis down, NATS timeout, back-pressure).
 * - `retryable: false` — the message is bad input: it goes to the dead-letter stream and is terminated.
 */
export abstract class OrchestratorError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Input that can never succeed, however often it is retried. */
export class BadInputError extends OrchestratorError {
  readonly retryable = false;

  /** @param code short machine-readable reason, e.g. `invalid_json`, `validation_failed`. */
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A message delivered more than MAX_DELIVERIES times without being settled: the handlers that ran it crashed
 * or hung. It is dead-lettered before its handler runs again, so it cannot take the replicas down one by one.
 */
export class PoisonMessageError extends OrchestratorError {
  readonly code = 'max_deliveries';
  readonly retryable = false;

  constructor(deliveries: number, maxDeliveries: number) {
    super(`delivered ${deliveries} times (META_AGENT_MAX_DELIVERIES is ${maxDeliveries}) without being settled: its handler crashed or hung; not run again`);
  }
}

/** A dependency (Redis, NATS) failed or timed out; the same message may succeed later. */
export class TransientError extends OrchestratorError {
  readonly code = 'transient';
  readonly retryable = true;
}

/** Too many active workflows: the trigger waits (nak with delay) instead of being dropped. */
export class BackpressureError extends OrchestratorError {
  readonly code = 'backpressure';
  readonly retryable = true;
}

/** True when a failure should be retried. Unknown errors are retried: a bug must not drop a message. */
export function isRetryable(error: unknown): boolean {
  return error instanceof OrchestratorError ? error.retryable : true;
}

/** A short, single-line description of any thrown value, for logs and dead-letter reasons. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.replace(/\s+/g, ' ').slice(0, 500);
  return String(error).replace(/\s+/g, ' ').slice(0, 500);
}
