// A stand-alone check of what bounds the scaling phase: one JetStream durable pull consumer read by 1, 2 or
// 3 clients at once (each like the service: consume() with max_messages 64, at most 64 in flight, each
// acked ~2 ms later as if after a Redis round trip). Reports msg/s and the nats-server's CPU seconds per
// run; with more than one client and a filtered consumer, nats-server 2.9 can spend many times more CPU
// per message. Uses its own stream (BENCH_PULLERS, subjects pullers.>), deleted at the end.
//
//   SERVERS_DIR=... node bench/nats-multi-puller.mjs [--filtered] [--runs=1,2,1,2,3]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { cpuSeconds, NATS_URL, serverPids } from './lib.mjs';

const filtered = process.argv.includes('--filtered');
const runs = (process.argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? '1,2,1,2,3').split(',').map(Number);
const natsPid = serverPids().nats ?? Number(readFileSync(join(process.env.SERVERS_DIR ?? '.', 'nats.pid'), 'utf8'));
const STREAM = 'BENCH_PULLERS';
const N = 30000;
const EXPECTED = filtered ? N / 3 : N;

const nc = await connect({ servers: NATS_URL });
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
await jsm.streams.delete(STREAM).catch(() => undefined);
await jsm.streams.add({ name: STREAM, subjects: ['pullers.>'] });
const pending = [];
for (let i = 0; i < N; i++) {
  pending.push(js.publish(filtered && i % 3 !== 0 ? 'pullers.other' : 'pullers.wanted', '{"corr_id":"x"}'));
  if (pending.length >= 500) await Promise.all(pending.splice(0));
}
await Promise.all(pending);

for (const [r, clients] of runs.entries()) {
  const name = `pullers-${r}`;
  await jsm.consumers.add(STREAM, {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 1024,
    ...(filtered ? { filter_subject: 'pullers.wanted' } : {}),
  });
  const conns = [];
  let count = 0;
  const cpu0 = cpuSeconds(natsPid);
  const t0 = performance.now();
  await new Promise((resolve) => {
    for (let k = 0; k < clients; k++) {
      void (async () => {
        const c = await connect({ servers: NATS_URL });
        conns.push(c);
        const messages = await (await jetstream(c).consumers.get(STREAM, name)).consume({ max_messages: 64 });
        let used = 0;
        const waiters = [];
        for await (const m of messages) {
          if (used >= 64) await new Promise((w) => waiters.push(w));
          else used++;
          setTimeout(() => {
            m.ack();
            if (++count === EXPECTED) resolve();
            const next = waiters.shift();
            if (next) next();
            else used--;
          }, 2);
        }
      })();
    }
  });
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(
    `${clients} client(s)${filtered ? ', filtered consumer' : ''}: ${Math.round(EXPECTED / seconds)} msg/s, nats-server ${(cpuSeconds(natsPid) - cpu0).toFixed(2)} CPU s for ${EXPECTED} messages\n`,
  );
  for (const c of conns) await c.close();
  await jsm.consumers.delete(STREAM, name);
}
await jsm.streams.delete(STREAM);
await nc.close();
