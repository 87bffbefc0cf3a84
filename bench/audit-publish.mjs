#!/usr/bin/env node
// The audit trail's two ways to publish, per event (issue 18; docs/PERFORMANCE.md "Audit trail"): acknowledged
// JetStream publishes (the service's JetStreamPublisher, awaited per batch) against plain publishes with one
// flush per batch (what AuditTrail does). Client CPU and nats-server CPU per event, 800-byte events, 50 per
// event-loop turn, alternating, twice each. Needs a built service (dist/) and a nats-server with JetStream:
//
//   BENCH_NATS_URL=nats://127.0.0.1:27222 NATS_PID=<its pid> node bench/audit-publish.mjs
import { readFileSync } from 'node:fs';
import { setImmediate } from 'node:timers';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { JetStreamPublisher } from '../dist/nats/jetstream-publisher.js';

const url = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:27222';
const natsPid = Number(process.env.NATS_PID);
const N = Number(process.env.EVENTS ?? 200000);
const PER_TURN = 50;
const STREAM = 'BENCH_AUDIT';
const nc = await connect({ servers: url, noAsyncTraces: true });
const jsm = await jetstreamManager(nc);
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, 100 ticks/s
};
const payload = JSON.stringify({ v: 1, event: 'signal_stored', corr_id: 'x', pad: 'p'.repeat(800) });

async function run(mode) {
  await jsm.streams.delete(STREAM).catch(() => undefined);
  await jsm.streams.add({ name: STREAM, subjects: ['bench-audit.>'] });
  const publisher = new JetStreamPublisher(nc, { timeoutMs: 5000 });
  const c0 = process.cpuUsage();
  const n0 = natsPid ? cpuMs(natsPid) : 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i += PER_TURN) {
    if (mode === 'acknowledged') {
      const acks = [];
      for (let k = 0; k < PER_TURN; k++) acks.push(publisher.publish(`bench-audit.c${i + k}.signal_stored`, payload));
      // At most 20 turns' worth unacknowledged (1,000 events), as a bounded buffer would.
      if (i % (PER_TURN * 20) === 0) await Promise.all(acks);
      else await new Promise((r) => setImmediate(r));
    } else {
      for (let k = 0; k < PER_TURN; k++) nc.publish(`bench-audit.c${i + k}.signal_stored`, payload);
      await nc.flush();
    }
  }
  await nc.flush();
  while ((await jsm.streams.info(STREAM)).state.messages < N) await new Promise((r) => setTimeout(r, 20));
  const c = process.cpuUsage(c0);
  const seconds = (performance.now() - t0) / 1000;
  const server = natsPid ? `, nats-server ${(((cpuMs(natsPid) - n0) / N) * 1000).toFixed(2)} µs/event` : '';
  console.log(`${mode.padEnd(12)} client ${((c.user + c.system) / N).toFixed(2)} µs/event${server}, ${Math.round(N / seconds)} events/s stored`);
}

for (const mode of ['acknowledged', 'plain+flush', 'acknowledged', 'plain+flush']) await run(mode);
await jsm.streams.delete(STREAM);
await nc.close();
