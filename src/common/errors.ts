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
 * A message convicted of crashing or hanging its replica: it was running alone (a suspect, see
 * src/transport/jetstream/isolation.ts) when its replica died or hung, `unfinishedRuns` times. It is
 * dead-lettered before its handler runs again, so it cannot take the replicas down one by one.
 */
export class PoisonMessageError extends OrchestratorError {
  readonly code = 'poison';
  readonly retryable = false;

  constructor(deliveries: number, unfinishedRuns: number) {
    super(
      `its replica died or hung while it ran alone, ${unfinishedRuns} times (delivered ${deliveries} times): its handler crashes or hangs on it; not run again`,
    );
  }
}

/**
 * A message delivered as often as the consumer allows without being settled (the server's `max_deliver`,
 * or MAX_DELIVERIES where no suspect ledger counts crashes): dead-lettered before it runs again.
 */
export class DeliveryLimitError extends OrchestratorError {
  readonly code = 'max_deliveries';
  readonly retryable = false;

  constructor(deliveries: number, limit: number) {
    super(`delivered ${deliveries} times (the limit is ${limit}) without being settled; not run again`);
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
