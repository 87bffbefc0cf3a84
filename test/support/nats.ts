import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { NATS_URL, waitFor } from './env.js';

export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  /** Publishes an object as JSON (or a string/bytes as they are) to JetStream. */
  publish(subject: string, payload: unknown, headers?: Record<string, string>): Promise<void>;
  /** Every message of a stream, oldest first. */
  read(stream: string): Promise<JsMsg[]>;
  /** Messages in a stream (0 when it does not exist). */
  count(stream: string): Promise<number>;
  /** Waits until the stream holds at least n messages, then returns them all. */
  waitFor(stream: string, n: number, timeoutMs?: number): Promise<JsMsg[]>;
  /**
   * Waits until every durable consumer of the stream (the service's: triggers, agents) has delivered all its
   * messages and has none waiting for an ack: everything published to the stream before the call has been
   * handled to its end (a handler acks after its effect is stored, decision included), redeliveries too.
   * The proof that nothing more is on its way from the inputs, where a test must show something did not
   * happen. The deadline covers an ack wait (30 s by default) for messages a stopped replica had pulled.
   */
  waitForIdle(stream?: string, timeoutMs?: number): Promise<void>;
  /** Deletes the given streams (missing ones are fine): a clean slate for a test file. */
  deleteStreams(...names: string[]): Promise<void>;
  close(): Promise<void>;
}

export async function openBus(url = NATS_URL): Promise<Bus> {
  const nc = await connect({ servers: url });
  const js = jetstream(nc);
  // A server that accepts connections but has no JetStream yet (just started): do not leave the connection open.
  const jsm = await jetstreamManager(nc).catch(async (error: unknown) => {
    await nc.close();
    throw error;
  });
  const count = async (stream: string) => {
    try {
      return (await jsm.streams.info(stream)).state.messages;
    } catch {
      return 0;
    }
  };
  const read = async (stream: string) => {
    const n = await count(stream);
    if (n === 0) return [];
    const consumer = await js.consumers.get(stream);
    const out: JsMsg[] = [];
    // One pull may end (its expiry) before it has brought all n on a loaded machine: pull again for the
    // rest (the ordered consumer goes on after the last message it delivered), rather than return fewer.
    const until = Date.now() + 30_000;
    while (out.length < n) {
      if (Date.now() > until) throw new Error(`read ${stream}: ${out.length} of ${n} messages within 30 s`);
      const msgs = await consumer.fetch({ max_messages: n - out.length, expires: 5000 });
      for await (const m of msgs) {
        out.push(m);
        if (out.length >= n) break;
      }
    }
    return out;
  };
  return {
    nc,
    js,
    async publish(subject, payload, hdrs) {
      const data = typeof payload === 'string' || payload instanceof Uint8Array ? payload : JSON.stringify(payload);
      let h;
      if (hdrs) {
        h = natsHeaders();
        for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
      }
      await js.publish(subject, data, h ? { headers: h } : undefined);
    },
    read,
    count,
    async waitFor(stream, n, timeoutMs = 30000) {
      await waitFor(`${n} messages in ${stream}`, async () => (await count(stream)) >= n, timeoutMs);
      return read(stream);
    },
    async waitForIdle(stream = 'SIGNALS', timeoutMs = 60_000) {
      await waitFor(
        `the consumers of ${stream} to be idle`,
        async () => {
          const durable = [];
          for await (const c of jsm.consumers.list(stream)) if (c.config.durable_name) durable.push(c);
          return durable.length > 0 && durable.every((c) => c.num_pending === 0 && c.num_ack_pending === 0);
        },
        timeoutMs,
      );
    },
    async deleteStreams(...names) {
      for (const name of names) await jsm.streams.delete(name).catch(() => undefined);
    },
    async close() {
      await nc.drain();
    },
  };
}
