import { connect, headers as natsHeaders, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The harness's side of NATS: a connection that rides out server restarts, a publisher that retries
 * until JetStream acknowledges (with a `Nats-Msg-Id`, so a retry whose first attempt did land is
 * stored once), and readers of whole streams.
 */
export interface SentMessage {
  subject: string;
  data: string | Uint8Array;
  msgId: string;
  headers?: Record<string, string>;
  /** When JetStream acknowledged it (undefined: never, the publish gave up). */
  ackedAt?: number;
  seq?: number;
  attempts: number;
}

export class HarnessBus {
  private inFlight = new Set<Promise<unknown>>();
  publishFailures = 0;

  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
  ) {}

  static async open(url: string): Promise<HarnessBus> {
    const nc = await connect({ servers: url, name: 'fault-harness', maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: true });
    return new HarnessBus(nc, jetstream(nc, { timeout: 3000 }), await jetstreamManager(nc, { timeout: 3000 }));
  }

  /** Publishes to JetStream, retrying (same Nats-Msg-Id) until acknowledged or `giveUpMs` passed. */
  publish(message: Omit<SentMessage, 'attempts'>, giveUpMs = 90000): Promise<SentMessage> {
    const sent: SentMessage = { ...message, attempts: 0 };
    const task = (async () => {
      const end = Date.now() + giveUpMs;
      while (Date.now() < end) {
        sent.attempts++;
        try {
          let h;
          if (message.headers) {
            h = natsHeaders();
            for (const [k, v] of Object.entries(message.headers)) h.set(k, v);
          }
          const ack = await this.js.publish(message.subject, message.data, { msgID: message.msgId, headers: h, timeout: 3000 });
          sent.ackedAt = Date.now();
          sent.seq = ack.seq;
          return sent;
        } catch {
          this.publishFailures++;
          await sleep(300);
        }
      }
      return sent;
    })();
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
    return task;
  }

  /** Waits (bounded) for every publish still retrying. */
  async settled(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.inFlight.size > 0 && Date.now() < end) await Promise.race([Promise.allSettled([...this.inFlight]), sleep(1000)]);
  }

  /** A plain core-NATS subscription (what a naive consumer of decisions does). */
  subscribe(subject: string, onMessage: (data: string) => void): Subscription {
    return this.nc.subscribe(subject, { callback: (_err, msg) => onMessage(msg.string()) });
  }

  /** Every message of a stream, oldest first, read with an ordered consumer (bounded in time). */
  async readAll(stream: string, timeoutMs = 60000): Promise<JsMsg[]> {
    const out: JsMsg[] = [];
    await this.readEach(stream, (m) => out.push(m), timeoutMs);
    return out;
  }

  /** Hands every message of a stream, oldest first, to `fn` (which keeps what it needs: a long run reads 200,000). */
  async readEach(stream: string, fn: (m: JsMsg) => void, timeoutMs = 60000): Promise<number> {
    const info = await this.jsm.streams.info(stream);
    const last = info.state.last_seq;
    if (info.state.messages === 0) return 0;
    const consumer = await this.js.consumers.get(stream);
    let count = 0;
    let lastSeen = 0;
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const batch = await consumer.fetch({ max_messages: 2000, expires: 2000 });
      for await (const m of batch) {
        fn(m);
        count++;
        lastSeen = m.seq;
      }
      if (lastSeen >= last) return count;
    }
    throw new Error(`could not read stream ${stream} up to sequence ${last} within ${timeoutMs} ms (got ${count})`);
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => undefined);
  }
}
