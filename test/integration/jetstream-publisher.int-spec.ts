import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { NATS_URL, uniqueId } from '../support/env.js';
import { JetStreamPublisher, JetStreamPublishError } from '../../src/nats/jetstream-publisher.js';

/** `JetStreamPublisher` (one wildcard inbox, a map of awaited acks) against a real nats-server with JetStream. */
let nc: NatsConnection;
let jsm: JetStreamManager;
let publisher: JetStreamPublisher;
const stream = uniqueId('PUBINT').replace(/[^A-Za-z0-9_-]/g, '_');
const subject = `pubint.${stream}`;

beforeAll(async () => {
  nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${subject}.>`], max_msg_size: 1024, duplicate_window: 60e9 });
  publisher = new JetStreamPublisher(nc, { timeoutMs: 5000 });
});

afterAll(async () => {
  publisher.close();
  await jsm.streams.delete(stream).catch(() => undefined);
  await nc.close();
});

describe('JetStreamPublisher on nats-server', () => {
  it('stores a message once: the second publish with the same msgID is a duplicate of the same sequence', async () => {
    const id = uniqueId('wf');
    const first = await publisher.publish(`${subject}.dedup`, '{"n":1}', id);
    const second = await publisher.publish(`${subject}.dedup`, '{"n":2}', id);
    expect(first).toEqual({ stream, seq: first.seq, duplicate: false });
    expect(second).toEqual({ stream, seq: first.seq, duplicate: true });
    // The client's own js.publish agrees on the same id.
    const viaClient = await jetstream(nc).publish(`${subject}.dedup`, '{"n":3}', { msgID: id });
    expect(viaClient.duplicate).toBe(true);
    expect((await jsm.streams.getMessage(stream, { seq: first.seq }))?.string()).toBe('{"n":1}');
  });

  it('rejects a publish to a subject no stream takes (no responders)', async () => {
    const error = await publisher.publish(`nostream.${stream}`, 'x', uniqueId('wf')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamPublishError);
    expect(error).toMatchObject({ code: 503 });
  });

  it("rejects with JetStream's error (message larger than the stream's max_msg_size)", async () => {
    const error = await publisher.publish(`${subject}.big`, 'x'.repeat(2048), uniqueId('wf')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamPublishError);
    expect(error).toMatchObject({ errCode: 10054, message: expect.stringContaining('exceeds maximum') as unknown });
  });

  it('acknowledges many publishes in flight, each with its own sequence', async () => {
    const before = (await jsm.streams.info(stream)).state.last_seq;
    const n = 1000;
    const acks = await Promise.all(Array.from({ length: n }, (_, i) => publisher.publish(`${subject}.many`, `{"i":${i}}`, uniqueId(`m${i}`))));
    expect(acks.every((a) => a.stream === stream && !a.duplicate)).toBe(true);
    const seqs = acks.map((a) => a.seq).sort((a, b) => a - b);
    expect(new Set(seqs).size).toBe(n);
    expect(seqs[0]).toBe(before + 1);
    expect(seqs[n - 1]).toBe(before + n);
    expect(publisher.inFlight).toBe(0);
    // Each ack names the message it acknowledges.
    const m = await jsm.streams.getMessage(stream, { seq: acks[123].seq });
    expect(m?.string()).toBe('{"i":123}');
  });

  it('rejects what is awaited when its connection closes, and refuses afterwards', async () => {
    const own = await connect({ servers: NATS_URL, noAsyncTraces: true });
    const p = new JetStreamPublisher(own, { timeoutMs: 5000 });
    const pending = p.publish(`${subject}.close`, 'x', uniqueId('wf'));
    await own.close();
    // Either acknowledged before the close flushed, or rejected by it: never left hanging.
    await pending.then(
      (ack) => expect(ack.stream).toBe(stream),
      (error: unknown) => expect(error).toBeInstanceOf(JetStreamPublishError),
    );
    await expect(p.publish(`${subject}.close`, 'x')).rejects.toThrow('NATS connection closed');
  });
});
