import { createInbox, headers, type Msg, type MsgHdrs, type NatsConnection, type Status, type Subscription } from '@nats-io/transport-node';
import { utf8 } from './utf8.js';

/** What JetStream answers to a stored (or de-duplicated) publish. */
export interface PublishAck {
  stream: string;
  seq: number;
  /** The stream already had a message with this `Nats-Msg-Id` within its duplicate window. */
  duplicate: boolean;
  domain?: string;
}

/** A publish that was not acknowledged: JetStream's error reply, no stream for the subject, timeout, disconnect or close. */
export class JetStreamPublishError extends Error {
  /** The status code of JetStream's error reply (e.g. 503 for no responders), if any. */
  readonly code: number | undefined;
  /** JetStream's `err_code` (e.g. 10060 "expected stream does not match"), if any. */
  readonly errCode: number | undefined;

  constructor(message: string, code?: number, errCode?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'JetStreamPublishError';
    this.code = code;
    this.errCode = errCode;
  }
}

export interface JetStreamPublisherOptions {
  /** How long a publish waits for its acknowledgement. */
  timeoutMs: number;
  /** How often expired publishes are swept (default: a tenth of the timeout, 10 ms–1 s). A publish times out within `timeoutMs + sweepIntervalMs`. */
  sweepIntervalMs?: number;
  /** The connection's inbox prefix, if it is not `_INBOX` (the client does not expose it). */
  inboxPrefix?: string;
}

interface Pending {
  resolve: (ack: PublishAck) => void;
  reject: (error: Error) => void;
  deadline: number;
  subject: string;
}

interface AckJson {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  domain?: string;
  error?: { code?: number; err_code?: number; description?: string };
}

/**
 * De-duplicating JetStream publishes without the client's per-request machinery: one wildcard reply
 * subscription (`<inbox>.*`) for every publish, a map of the acknowledgements awaited, and one timer that
 * sweeps the expired ones while any are awaited. `js.publish` (nats.js 3.4) instead makes per publish a
 * request object, a timer, a `Promise.race` and an `Error` it never throws (docs/PERFORMANCE.md, "nats.js
 * builds an Error on every completed request").
 *
 * Semantics as `js.publish(subject, data, { msgID })` without `expect` options: resolves with the PubAck,
 * rejects on JetStream's error reply, on no responders (no stream takes the subject, or no JetStream), on
 * a publish permission violation for its subject, on timeout (within one sweep interval after it); and,
 * unlike the client, at once on disconnect (an acknowledgement of the old connection can no longer arrive)
 * and on close.
 */
export class JetStreamPublisher {
  private readonly nc: NatsConnection;
  private readonly timeoutMs: number;
  private readonly sweepIntervalMs: number;
  private readonly inboxPrefix: string | undefined;
  private readonly pending = new Map<string, Pending>();
  /** `<inbox>.`, set with the subscription on the first publish. */
  private replyPrefix: string | undefined;
  private sub: Subscription | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private readonly status: AsyncIterable<Status> & { stop?: () => void };
  private nextToken = 0;
  private disconnected = false;
  private closedError: Error | undefined;

  constructor(nc: NatsConnection, options: JetStreamPublisherOptions) {
    this.nc = nc;
    this.timeoutMs = options.timeoutMs;
    this.sweepIntervalMs = options.sweepIntervalMs ?? Math.min(1000, Math.max(10, Math.floor(options.timeoutMs / 10)));
    this.inboxPrefix = options.inboxPrefix;
    this.status = nc.status();
    void nc.closed().then((error) => this.close(error ?? undefined));
    void this.watchStatus();
  }

  /** Number of publishes awaiting their acknowledgement. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Publishes `data` to `subject` with `Nats-Msg-Id: msgId` (if given) and waits for JetStream's acknowledgement. */
  publish(subject: string, data: string | Uint8Array, msgId?: string): Promise<PublishAck> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.disconnected) return Promise.reject(new JetStreamPublishError('NATS is disconnected'));
    return new Promise<PublishAck>((resolve, reject) => {
      const token = (this.nextToken++).toString(36);
      try {
        const prefix = this.replyPrefix ?? this.subscribe();
        let h: MsgHdrs | undefined;
        if (msgId !== undefined) {
          h = headers();
          h.set('Nats-Msg-Id', msgId);
        }
        this.nc.publish(subject, utf8(data), { reply: prefix + token, headers: h });
      } catch (error) {
        // Closed or draining connection, invalid subject or header: refused before anything was sent.
        reject(error instanceof Error ? error : new JetStreamPublishError(String(error)));
        return;
      }
      this.pending.set(token, { resolve, reject, deadline: performance.now() + this.timeoutMs, subject });
      this.sweeper ??= setInterval(() => this.sweep(), this.sweepIntervalMs).unref();
    });
  }

  /** Rejects every awaited publish, stops listening; later publishes are rejected. Idempotent. */
  close(cause?: Error): void {
    if (this.closedError) return;
    this.closedError = new JetStreamPublishError('NATS connection closed', undefined, undefined, cause ? { cause } : undefined);
    this.failAll(this.closedError);
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    try {
      if (this.sub && !this.nc.isClosed()) this.sub.unsubscribe();
    } catch {
      // draining or closing: the subscription ends with the connection
    }
    this.sub = undefined;
    this.status.stop?.();
  }

  private subscribe(): string {
    const inbox = createInbox(this.inboxPrefix);
    this.sub = this.nc.subscribe(`${inbox}.*`, { callback: (error, msg) => this.onReply(error, msg) });
    this.replyPrefix = `${inbox}.`;
    return this.replyPrefix;
  }

  private onReply(error: Error | null, msg: Msg): void {
    if (error) {
      // The subscription itself failed (e.g. a permissions violation on the inbox): nothing will be acknowledged.
      this.failAll(new JetStreamPublishError(`acknowledgement subscription failed: ${error.message}`, undefined, undefined, { cause: error }));
      return;
    }
    const token = msg.subject.substring(this.replyPrefix?.length ?? 0);
    const p = this.pending.get(token);
    if (p === undefined) return; // late: timed out, or rejected at a disconnect
    this.pending.delete(token);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      p.reject(new JetStreamPublishError(`no responders for ${p.subject}: no stream takes it, or JetStream is not enabled`, 503));
      return;
    }
    let ack: AckJson;
    try {
      ack = msg.json<AckJson>();
    } catch (parseError) {
      p.reject(new JetStreamPublishError('invalid acknowledgement (not JSON)', undefined, undefined, { cause: parseError }));
      return;
    }
    if (ack.error) {
      p.reject(new JetStreamPublishError(ack.error.description ?? 'JetStream error', ack.error.code, ack.error.err_code));
    } else if (typeof ack.stream !== 'string' || ack.stream === '' || typeof ack.seq !== 'number') {
      p.reject(new JetStreamPublishError('invalid acknowledgement'));
    } else {
      const result: PublishAck = { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true };
      if (ack.domain !== undefined) result.domain = ack.domain;
      p.resolve(result);
    }
  }

  /** Rejects the expired publishes; stops when none is awaited (the next publish starts it again). */
  private sweep(): void {
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const now = performance.now();
    // In publish order, so in deadline order: stop at the first that has not expired.
    for (const [token, p] of this.pending) {
      if (p.deadline > now) break;
      this.pending.delete(token);
      p.reject(new JetStreamPublishError(`timeout: no acknowledgement within ${this.timeoutMs} ms`));
    }
  }

  private failSubject(subject: string, cause: Error): void {
    for (const [token, p] of this.pending) {
      if (p.subject !== subject) continue;
      this.pending.delete(token);
      p.reject(new JetStreamPublishError(`publish refused: ${cause.message}`, undefined, undefined, { cause }));
    }
  }

  private failAll(error: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(error);
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.status) {
      if (s.type === 'disconnect') {
        this.disconnected = true;
        // An acknowledgement sent on the lost connection will not arrive; the message may have been stored.
        this.failAll(new JetStreamPublishError('NATS disconnected before the acknowledgement'));
      } else if (s.type === 'reconnect') {
        this.disconnected = false;
      } else if (s.type === 'error') {
        // The server refused a publish (permissions): it names the subject, not the message, so every
        // publish awaited on that subject fails now rather than at its timeout (as the client's requests do).
        const e = s.error as Error & { operation?: string; subject?: string };
        if (e.operation === 'publish' && e.subject) this.failSubject(e.subject, e);
      }
    }
  }
}
