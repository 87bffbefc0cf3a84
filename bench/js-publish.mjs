// The reference of issue 11's timeout target: the rate at which ONE process of this machine gets
// de-duplicated JetStream publishes acknowledged. Publishes PUB_COUNT messages of PUB_BYTES (a decision's
// size) to PUB_SUBJECT, each with its own `msgID` (so the server's duplicate window checks every one), with
// at most PUB_WINDOW unacknowledged, and prints
//   RESULT {count, first_ms, last_ms, cpu_ms, duplicates}
// The stream (created by the driver) has the decisions stream's configuration, duplicate window included.
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { publishWindowed } from './lib.mjs';

const url = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:27222';
const subject = process.env.PUB_SUBJECT ?? 'bench.dedup';
const count = Number(process.env.PUB_COUNT ?? 20000);
const window = Number(process.env.PUB_WINDOW ?? 256);
const bytes = Number(process.env.PUB_BYTES ?? 700);
const tag = process.env.PUB_TAG ?? `p${process.pid}`;

// PUB_CLIENT: `js` the client's js.publish; `service` the service's JetStreamPublisher (dist/, one wildcard
// inbox: what the service publishes its decisions with). The reference is the faster of the two.
const client = process.env.PUB_CLIENT ?? 'js';
const nc = await connect({ servers: url, name: `bench-js-publish-${tag}`, timeout: 5000, noAsyncTraces: true });
let js = jetstream(nc, { timeout: 20000 });
if (client === 'service') {
  const { JetStreamPublisher } = await import('../dist/nats/jetstream-publisher.js');
  const publisher = new JetStreamPublisher(nc, { timeoutMs: 20000 });
  js = { publish: (subject, data, { msgID }) => publisher.publish(subject, data, msgID) };
} else if (client !== 'js') {
  throw new Error(`PUB_CLIENT must be js or service, not ${client}`);
}

// A decision-like body of about `bytes` bytes (the id differs per message; the rest is constant).
const filler = 'x'.repeat(Math.max(0, bytes - 120));
const body = (i) => `{"corr_id":"${tag}.${i}","workflow_id":"trading:${tag}.${i}","status":"timeout","action":"hold","reasoning":"${filler}"}`;

// Warm-up (connection, JetStream API, JIT): not measured.
for (let i = 0; i < 200; i++) await js.publish(subject, body(`w${i}`), { msgID: `${tag}-w${i}` });

let duplicates = 0;
let failed = null;
const cpu0 = process.cpuUsage();
const first = performance.now();
await publishWindowed(
  count,
  window,
  (i) => js.publish(subject, body(i), { msgID: `${tag}-${i}` }),
  (ack) => {
    if (ack.duplicate) duplicates++;
  },
).catch((error) => (failed = error));
const last = performance.now();
const cpu = process.cpuUsage(cpu0);
if (failed) {
  process.stderr.write(`js-publish: ${failed.message}\n`);
  process.exit(1);
}
process.stdout.write(`RESULT ${JSON.stringify({ count, first_ms: first, last_ms: last, cpu_ms: (cpu.user + cpu.system) / 1000, duplicates })}\n`);
await nc.drain();
