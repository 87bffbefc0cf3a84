// Raw consume-and-ack: the reference for the transport alone. The plain @nats-io/jetstream loop on the
// same two durable consumers as the service (same filters, same consumer configuration, the same
// max_messages pulled ahead), doing what the transport's trivial handler does: decode the payload as
// UTF-8 JSON, then ack.
//
//   BENCH_NATS_URL, RAW_NAME (consumer name prefix), RAW_MAX_IN_FLIGHT (64), EXPECTED (messages)
// Prints "raw-consume ready" once consuming, then one line "RESULT {json}" when EXPECTED messages have
// been handled: {count, first_ms, last_ms, cpu_ms} measured with performance.now() in this process.
import { connect, nanos } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { resultCounter } from './lib.mjs';

const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:27222';
const NAME = process.env.RAW_NAME ?? 'bench-consume';
const MAX_IN_FLIGHT = Number(process.env.RAW_MAX_IN_FLIGHT ?? 64);
const EXPECTED = Number(process.env.EXPECTED ?? 0);

const nc = await connect({ servers: NATS_URL, name: NAME });
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
const decoder = new TextDecoder('utf-8', { fatal: true });

const counted = resultCounter(EXPECTED);

const subscriptions = [];
async function start(durable, filter) {
  await jsm.consumers.add('SIGNALS', {
    durable_name: durable,
    filter_subject: filter,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30000),
    max_deliver: -1,
    max_ack_pending: Math.max(MAX_IN_FLIGHT * 16, 1000),
  });
  const messages = await (await js.consumers.get('SIGNALS', durable)).consume({ max_messages: MAX_IN_FLIGHT });
  subscriptions.push(messages);
  // Wrapped: an async function returning this promise would make the caller wait for the whole loop.
  return {
    loop: (async () => {
      for await (const msg of messages) {
        JSON.parse(decoder.decode(msg.data));
        counted();
        msg.ack();
      }
    })(),
  };
}

const loops = [(await start(`${NAME}-trigger`, 'signals.normalized')).loop, (await start(`${NAME}-enriched`, 'signals.enriched.*')).loop];
process.stdout.write('raw-consume ready\n');

process.once('SIGTERM', () => {
  for (const s of subscriptions) s.stop();
  void Promise.allSettled(loops)
    .then(() => nc.drain())
    .finally(() => process.exit(0));
});
