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
  /** Deletes the given streams (missing ones are fine): a clean slate for a test file. */
  deleteStreams(...names: string[]): Promise<void>;
  close(): Promise<void>;
}

export async function openBus(url = NATS_URL): Promise<Bus> {
  const nc = await connect({ servers: url });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
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
    const msgs = await consumer.fetch({ max_messages: n, expires: 2000 });
    for await (const m of msgs) {
      out.push(m);
      if (out.length >= n) break;
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
    async waitFor(stream, n, timeoutMs = 15000) {
      await waitFor(`${n} messages in ${stream}`, async () => (await count(stream)) >= n, timeoutMs);
      return read(stream);
    },
    async deleteStreams(...names) {
      for (const name of names) await jsm.streams.delete(name).catch(() => undefined);
    },
    async close() {
      await nc.drain();
    },
  };
}
