import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Response } from 'express';
import { natsConfig, type NatsConfig } from '../config/configuration.js';
import { NatsConnectionService } from '../nats/nats-connection.service.js';

/** Live streams one replica serves at once; one more is refused (503): each is a subscription and a socket. */
export const LIVE_MAX_STREAMS = 32;
/**
 * Bytes a stream may have waiting in its socket (a slow or stalled client): past that, decisions are skipped
 * for that client and counted, and an `event: dropped` says how many once it has caught up. Nothing is
 * queued beyond it, in the service or in the NATS client (a callback subscription has no queue).
 */
export const LIVE_MAX_BUFFERED_BYTES = 256 * 1024;
/** A comment line this often: keeps proxies from closing an idle stream, and finds a client that has gone. */
export const LIVE_HEARTBEAT_MS = 15_000;

/**
 * One Server-Sent Events frame: `event`, an optional `id` (one line), and the data, one `data:` line per
 * line of it (the client joins them with a newline again).
 */
export function sseFrame(event: string, data: string, id?: string): string {
  const idLine = id ? `id: ${id.replace(/[\r\n]/g, '')}\n` : '';
  return `${idLine}event: ${event}\n${data
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}\n`)
    .join('')}\n`;
}

/** One client's stream: its subscription, its response, what it missed. */
class LiveStream {
  dropped = 0;
  sent = 0;
  private heartbeat?: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly token: string,
    private readonly res: Response,
    private sub: Subscription | undefined,
    private readonly onClose: (stream: LiveStream) => void,
  ) {
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), LIVE_HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** The subscription, once made (unsubscribed at once if the client went meanwhile). */
  attach(sub: Subscription): void {
    this.sub = sub;
    if (this.closed) sub.unsubscribe();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A decision message from NATS: sent, or skipped and counted while the client's socket is full. */
  decision(msg: Msg): void {
    if (this.closed) return;
    if (this.res.writableLength > LIVE_MAX_BUFFERED_BYTES) {
      this.dropped++;
      return;
    }
    if (this.dropped > 0) {
      this.write(sseFrame('dropped', JSON.stringify({ count: this.dropped })));
      this.dropped = 0;
    }
    this.sent++;
    this.write(sseFrame('decision', msg.string(), msg.headers?.get('Nats-Msg-Id') || undefined));
  }

  write(chunk: string): void {
    if (!this.closed && !this.res.writableEnded) this.res.write(chunk);
  }

  /** Unsubscribes and ends the response (the client went, or the service stops). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.sub?.unsubscribe();
    if (!this.res.writableEnded) this.res.end();
    this.onClose(this);
  }
}

/**
 * Decisions as they are published, for the operator console (`GET /workflows/decisions/live`): a core NATS
 * subscription on the decision subject per HTTP client, on the process's one connection, written to the client
 * as Server-Sent Events and unsubscribed when the client goes. It sees every replica's decisions (they all
 * publish on that subject), from the moment it subscribed; nothing is replayed, and decisions published while
 * NATS is away are not seen (the DECISIONS stream and the history have them). A decision published twice (a
 * takeover re-publishing it within the duplicate window, which JetStream stores once) reaches the stream twice,
 * with the same `id` (its Nats-Msg-Id). Bounded: LIVE_MAX_STREAMS streams, LIVE_MAX_BUFFERED_BYTES each.
 */
@Injectable()
export class LiveDecisions implements OnModuleDestroy {
  private readonly logger = new Logger('Console');
  private readonly streams = new Set<LiveStream>();
  private stopping = false;

  constructor(
    private readonly nats: NatsConnectionService,
    @Inject(natsConfig.KEY) private readonly config: NatsConfig,
  ) {}

  get open(): number {
    return this.streams.size;
  }

  /**
   * Why another stream may not open now, if it may not: LIVE_MAX_STREAMS are open, or the service is stopping
   * (a client reconnecting while the service stops would hold the HTTP server open, which waits for its
   * responses to end, until the shutdown timeout).
   */
  refusal(): string | undefined {
    if (this.stopping) return 'the service is stopping';
    if (this.streams.size >= LIVE_MAX_STREAMS) return `at most ${LIVE_MAX_STREAMS} live decision streams per replica are open already`;
    return undefined;
  }

  /** Streams decisions to `res` until the client goes (or the service stops). The caller checked `refusal()`. */
  async serve(res: Response, token: string): Promise<void> {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx and the like: do not buffer the stream.
      'x-accel-buffering': 'no',
    });
    const subject = this.config.subjects.decision;
    const stream = new LiveStream(token, res, undefined, (s) => {
      this.streams.delete(s);
      this.logger.log({ msg: 'live decisions stream closed', token: s.token, sent: s.sent, open: this.streams.size });
    });
    this.streams.add(stream);
    // The response's 'close': the connection ended (the request's fires once its body is read).
    res.once('close', () => stream.close());
    res.once('error', () => stream.close());
    try {
      const nc = this.nats.connection;
      stream.attach(nc.subscribe(subject, { callback: (error, msg) => (error ? stream.close() : stream.decision(msg)) }));
      // The server has the subscription once the flush returns: from `ready` on, no decision is missed.
      await nc.flush();
    } catch (error) {
      this.logger.warn({ msg: 'live decisions stream could not subscribe', error: (error as Error).message });
      stream.write(sseFrame('error', JSON.stringify({ message: 'NATS is not available; try again' })));
      stream.close();
      return;
    }
    if (stream.isClosed) return;
    stream.write(sseFrame('ready', JSON.stringify({ subject, max_buffered_bytes: LIVE_MAX_BUFFERED_BYTES })));
    this.logger.log({ msg: 'live decisions stream opened', token, subject, open: this.streams.size });
  }

  /** Before the HTTP server closes (which waits for open responses): end every stream, and open no more. */
  onModuleDestroy(): void {
    this.stopping = true;
    for (const stream of [...this.streams]) stream.close();
  }
}
