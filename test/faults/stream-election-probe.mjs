// What plain publishes (`nc.publish` and one `flush` per batch, as the audit trail sent its events before it
// awaited an acknowledgement per batch) lose while a replicated stream's Raft group is paused and resumes
// (docs/RELIABILITY.md, "The audit trail under faults").
//
//   bash scripts/clusters.sh nats                     # in another shell: prints the cluster's folder
//   node test/faults/stream-election-probe.mjs --dir=/tmp/nats-cluster-XXXXXX [--pause=leader|follower]
//        [--connect=follower|leader|paused] [--pause-ms=8000]
//
// Makes an R3 stream, publishes 20 numbered messages every 10 ms through a client connected to the node
// `--connect` names, SIGSTOPs the node `--pause` names after 3 s for `--pause-ms`, SIGCONTs it, publishes
// 10 s more, then reads the stream back and prints which numbers are missing, by when they were published.
import { execFileSync } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const dir = arg('dir');
if (!dir) {
  process.stderr.write('usage: node test/faults/stream-election-probe.mjs --dir=<folder printed by scripts/clusters.sh nats>\n');
  process.exit(2);
}
const pauseWhat = arg('pause', 'follower');
const connectTo = arg('connect', 'follower');
const pauseMs = Number(arg('pause-ms', '8000'));
const base = Number(process.env.NATS_CLUSTER_BASE_PORT ?? 41000);
const nodes = ['n1', 'n2', 'n3'];
const url = (n) => `nats://127.0.0.1:${base + nodes.indexOf(n)}`;
const pid = (n) =>
  execFileSync('pgrep', ['-f', `${dir}/${n}/nats.conf`], { encoding: 'utf8' })
    .trim()
    .split('\n')[0];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (text) => process.stdout.write(`${text}\n`);

const admin = await connect({ servers: nodes.map(url) });
const jsm = await jetstreamManager(admin);
const name = `PROBE${Date.now() % 1_000_000}`;
await jsm.streams.add({ name, subjects: [`${name}.>`], num_replicas: 3 });
await sleep(1500);
const leader = (await jsm.streams.info(name)).cluster.leader;
const followers = nodes.filter((n) => n !== leader);
const paused = pauseWhat === 'leader' ? leader : followers[0];
const via = connectTo === 'leader' ? leader : connectTo === 'paused' ? paused : followers.find((n) => n !== paused);
say(`stream ${name}: leader ${leader}; pausing ${paused} for ${pauseMs} ms; publishing through ${via}`);

const nc = await connect({ servers: url(via), pingInterval: 2000, maxPingOut: 2, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
const t0 = Date.now();
const sentAt = [];
let seq = 0;
let stop = false;
const publishing = (async () => {
  while (!stop) {
    for (let i = 0; i < 20; i++) {
      sentAt[++seq] = Date.now() - t0;
      try {
        nc.publish(`${name}.e`, JSON.stringify({ seq }));
      } catch {
        // closed: counted as missing
      }
    }
    await nc.flush().catch(() => undefined);
    await sleep(10);
  }
})();
await sleep(3000);
execFileSync('kill', ['-STOP', pid(paused)]);
say(`SIGSTOP ${paused} at ${Date.now() - t0} ms`);
await sleep(pauseMs);
execFileSync('kill', ['-CONT', pid(paused)]);
say(`SIGCONT ${paused} at ${Date.now() - t0} ms`);
await sleep(10_000);
stop = true;
await publishing;
await sleep(2000);

const stored = new Set();
const total = (await jsm.streams.info(name)).state.messages;
const consumer = await jetstream(admin).consumers.get(name, (await jsm.consumers.add(name, { ack_policy: AckPolicy.None })).name);
for await (const m of await consumer.fetch({ max_messages: total, expires: 10_000 })) {
  stored.add(m.json().seq);
  if (stored.size >= total) break;
}
const ranges = [];
for (let s = 1; s <= seq; s++) {
  if (stored.has(s)) continue;
  const last = ranges.at(-1);
  if (last && sentAt[s] - last.to < 300) {
    last.to = sentAt[s];
    last.n++;
  } else ranges.push({ from: sentAt[s], to: sentAt[s], n: 1 });
}
say(`published ${seq}, stored ${stored.size}, missing ${seq - stored.size}`);
say(`missing, by publish time (ms from the start): ${ranges.map((r) => `${r.from}-${r.to} (${r.n})`).join(', ') || 'none'}`);
await jsm.streams.delete(name);
await nc.close();
await admin.close();
