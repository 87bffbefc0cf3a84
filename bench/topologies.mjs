// Topologies (issue 17): the built service (dist/main.js) on a standalone nats-server + redis-server, and on
// a 3-node NATS cluster (streams R3) with a Redis Cluster of 3 primaries + 1 replica each, with the
// replication wait off and on. Per topology and round: the throughput phase's backlog drained by the raw
// pipeline (bench/raw-pipeline.mjs, with the same replication wait) and by one service, alternately, then the
// latency phase's open loop at a fixed rate; CPU seconds of the consumer and of every server process from
// /proc. Topologies alternate (A B C, C B A, ...) and medians are reported, with the service's throughput
// and CPU per workflow (consumer + NATS + Redis primaries and replicas) as ratios to the raw pipeline's.
//
//   npm run bench:topologies                                  # scripts/bench-topologies.sh: servers, build, this
//   npm run bench:topologies -- --workflows=20000 --rounds=2 --rate=500 --seconds=10
//   npm run bench:topologies -- --only=standalone,cluster-wait1,valkey-cluster-wait1   # Valkey 8.0 Cluster, WAIT=1
//   npm run bench:topologies -- --replicas3                   # also 3 service replicas against 1 (alternating), cluster WAIT=1
//   npm run bench:topologies -- --only=none --replicas3       # only that
//   npm run bench:topologies -- --no-raw                      # without the raw pipeline's runs
//
// Run as `node --import ./test/faults/register.mjs bench/topologies.mjs` (the clusters come from
// test/support/clusters.ts, TypeScript). The standalone servers are scripts/bench-topologies.sh's
// (SERVERS_DIR, BENCH_NATS_URL, BENCH_REDIS_URL); the clusters are started here, on
// TOPO_NATS_CLUSTER_PORT (53000: 53000-53029) and TOPO_REDIS_CLUSTER_PORT (53100: 53100-53199; Valkey's
// 1000 above), each 300 up (at most twice) when a node cannot bind.
// Writes bench/results/topologies.json.
import { writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import {
  ROOT,
  NATS_URL,
  REDIS_URL,
  HTTP_PORT_BASE,
  STREAMS,
  backlog,
  benchServiceEnv,
  decisionLatencies,
  openLoop,
  publishAll,
  deleteStream,
  deleteConsumers,
  streamCount,
  messageTime,
  Child,
  httpGet,
  waitHttpReady,
  parseMetrics,
  metricSum,
  CpuMeter,
  serverPids,
  summarize,
  median,
  round1,
  round3,
  serviceExtras,
  sleep,
} from './lib.mjs';
import { parseSettings } from '../dist/config/env.schema.js';
import { provisionJetStream } from '../dist/transport/jetstream/provisioning.js';
import { NatsCluster, RedisCluster } from '../test/support/clusters.ts';

const argv = process.argv.slice(2);
const option = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const flag = (name) => argv.includes(`--${name}`);
const SIZES = {
  workflows: Number(option('workflows') ?? 20000),
  rounds: Number(option('rounds') ?? 2),
  rate: Number(option('rate') ?? 500),
  seconds: Number(option('seconds') ?? 10),
  warmup: Number(option('warmup') ?? 2),
  shards: Number(option('shards') ?? 96),
};
const ALL = ['standalone', 'cluster-wait0', 'cluster-wait1', 'valkey-cluster-wait1'];
const DEFAULT = ['standalone', 'cluster-wait0', 'cluster-wait1'];
const only = option('only') === 'none' ? [] : (option('only')?.split(',') ?? DEFAULT);
for (const t of only) if (!ALL.includes(t)) throw new Error(`unknown topology ${t} (${ALL.join(', ')})`);
const MEASURE_LATENCY = !flag('no-latency');
const MEASURE_RAW = !flag('no-raw');
const REPLICAS3 = flag('replicas3');

const log = (msg) => process.stdout.write(`[topologies ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---- topologies ----------------------------------------------------------------------------------------

let natsCluster = null;
/** Redis Clusters by flavour: 'redis' (REDIS_SERVER_BIN, as scripts/lib.sh chose it) and 'valkey' (TOPO_VALKEY_BIN). */
const redisClusters = {};

async function stopClusters() {
  await natsCluster?.stopAll();
  for (const c of Object.values(redisClusters)) await c.stopAll();
}
// On Ctrl-C, bench/lib.mjs kills the services and exits; test/support/clusters.ts's exit hook then kills every
// cluster node and removes their folders.

/**
 * Starts a cluster, on the next block of ports when a node could not bind: these ports are inside Linux's
 * ephemeral range, where an outgoing connection may hold one for a moment (300 ports up, at most twice).
 */
async function startOnFreePorts(what, start) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await start(attempt * 300);
    } catch (error) {
      if (attempt >= 2) throw error;
      log(`${what} start-up failed (${String(error.message ?? error).split('\n')[0]}); trying the next ports`);
    }
  }
}

async function natsClients(servers) {
  const nc = await connect({ servers, name: 'bench-topologies', timeout: 5000, maxReconnectAttempts: -1 });
  return { nc, js: jetstream(nc, { timeout: 20000 }), jsm: await jetstreamManager(nc, { timeout: 20000 }) };
}

/** The standalone pair of scripts/bench-topologies.sh. */
async function standalone() {
  const pids = serverPids();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  return {
    name: 'standalone',
    ...(await natsClients([NATS_URL])),
    serviceEnv: { META_AGENT_NATS_URL: NATS_URL, META_AGENT_REDIS_URL: REDIS_URL },
    rawEnv: { BENCH_NATS_URL: NATS_URL, BENCH_REDIS_URL: REDIS_URL },
    settings: parseSettings({ META_AGENT_NATS_URL: NATS_URL, META_AGENT_REDIS_URL: REDIS_URL }),
    // CpuMeter adds the standalone servers as nats / redis: nulled here, counted once under these names.
    pids: { nats: null, redis: null, nats_1: pids.nats, redis_primary_1: pids.redis },
    primaries: [redis],
    replicas: [],
    async close() {
      redis.disconnect();
    },
  };
}

/** The clusters (started once, shared by the WAIT=0 and WAIT=1 runs; the NATS cluster by every flavour). */
async function clusters(flavor) {
  if (!natsCluster) {
    log('starting a 3-node NATS cluster');
    natsCluster = await startOnFreePorts('NATS cluster', (shift) =>
      NatsCluster.start({ nodes: 3, basePort: Number(process.env.TOPO_NATS_CLUSTER_PORT ?? 53000) + shift }),
    );
  }
  if (!redisClusters[flavor]) {
    log(`starting a ${flavor} Cluster (3 primaries + 1 replica each)`);
    const valkey = flavor === 'valkey';
    if (valkey && !process.env.TOPO_VALKEY_BIN) throw new Error('TOPO_VALKEY_BIN is not set (scripts/bench-topologies.sh sets it)');
    const base = Number(process.env.TOPO_REDIS_CLUSTER_PORT ?? 53100) + (valkey ? 1000 : 0);
    redisClusters[flavor] = await startOnFreePorts(`${flavor} Cluster`, (shift) =>
      RedisCluster.start({
        primaries: 3,
        replicasPerPrimary: 1,
        basePort: base + shift,
        readyTimeoutMs: 30000,
        ...(valkey ? { bin: process.env.TOPO_VALKEY_BIN, cliBin: join(dirname(process.env.TOPO_VALKEY_BIN), 'valkey-cli') } : {}),
      }),
    );
  }
  const redisCluster = redisClusters[flavor];
  const roles = await redisCluster.roles();
  const replicaPorts = [...roles.replicasOf.values()].flat();
  // CpuMeter adds the standalone servers (idle during these runs) as nats / redis: left to "other".
  const pids = { nats: null, redis: null };
  natsCluster.nodes.forEach((n, i) => (pids[`nats_${i + 1}`] = n.process.pid));
  roles.primaries.forEach((p, i) => (pids[`redis_primary_${i + 1}`] = redisCluster.node(p).process.pid));
  replicaPorts.forEach((p, i) => (pids[`redis_replica_${i + 1}`] = redisCluster.node(p).process.pid));
  const urls = natsCluster.nodes.map((n) => n.url);
  const env = { META_AGENT_NATS_URL: urls.join(','), META_AGENT_STREAM_REPLICAS: '3' };
  const node = (port) => new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  const primaries = roles.primaries.map(node);
  const replicas = replicaPorts.map(node);
  return {
    ...(await natsClients(urls)),
    // The streams the bench provisions as the services would (BENCH_SERVICE_ENV included: an audit stream's own replicas).
    settings: parseSettings({ ...env, ...serviceExtras().env }),
    natsEnv: env,
    redisEnv: { META_AGENT_REDIS_CLUSTER_NODES: redisCluster.nodes, META_AGENT_REDIS_SHARDS: String(SIZES.shards) },
    rawEnv: { BENCH_NATS_URL: urls.join(','), RAW_REDIS_CLUSTER_NODES: redisCluster.nodes },
    pids,
    primaries,
    replicas,
    async close() {
      for (const c of [...primaries, ...replicas]) c.disconnect();
    },
  };
}

async function topology(name) {
  if (name === 'standalone') return standalone();
  const c = await clusters(name.startsWith('valkey') ? 'valkey' : 'redis');
  const wait = name.endsWith('wait1') ? '1' : '0';
  return {
    ...c,
    name,
    serviceEnv: { ...c.natsEnv, ...c.redisEnv, META_AGENT_REDIS_WAIT_REPLICAS: wait },
    rawEnv: { ...c.rawEnv, RAW_WAIT_REPLICAS: wait },
  };
}

// ---- streams, Redis ------------------------------------------------------------------------------------

async function resetStreams(t) {
  await deleteStream(t.jsm, STREAMS.signals);
  await deleteStream(t.jsm, STREAMS.decisions);
  await deleteStream(t.jsm, STREAMS.deadLetter);
  await provisionJetStream(t.jsm, t.settings.nats, []);
}

async function resetRedis(t) {
  for (const r of t.primaries) await r.flushall();
  for (const r of [...t.primaries, ...t.replicas]) await r.config('RESETSTAT');
}

/** Commands the primaries ran since RESETSTAT, per workflow, and the busiest commands. */
async function redisCommands(t, n) {
  let total = 0;
  const per = {};
  for (const r of t.primaries) {
    total += Number(/total_commands_processed:(\d+)/.exec(await r.info('stats'))?.[1] ?? 0);
    for (const m of (await r.info('commandstats')).matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g)) {
      per[m[1]] ??= { calls: 0, usec: 0 };
      per[m[1]].calls += Number(m[2]);
      per[m[1]].usec += Number(m[3]);
    }
  }
  const busiest = Object.entries(per)
    .sort((a, b) => b[1].usec - a[1].usec)
    .slice(0, 5)
    .map(([command, c]) => ({ command, calls_per_workflow: round3(c.calls / n), usec_per_call: round1(c.usec / c.calls) }));
  return { commands_per_workflow: round3(total / n), busiest };
}

/** CPU ms per workflow by group (service, nats, redis primaries, redis replicas, other) and per process. */
function cpuPerWorkflow(cpu, n) {
  const per = 1000 / n;
  const group = (prefix) =>
    round3(
      Object.entries(cpu)
        .filter(([k]) => k.startsWith(prefix) && k.endsWith('_cpu_s'))
        .reduce((a, [, v]) => a + v, 0) * per,
    );
  const each = {};
  for (const [k, v] of Object.entries(cpu)) if (k.endsWith('_cpu_s') && !k.startsWith('machine')) each[k.replace(/_cpu_s$/, '')] = round3(v * per);
  return {
    service: group('service'),
    nats: group('nats_'),
    redis_primaries: group('redis_primary_'),
    redis_replicas: group('redis_replica_'),
    other: round3(cpu.other_cpu_s * per),
    per_process: each,
  };
}

// ---- the service ---------------------------------------------------------------------------------------

function canListen(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

let portSeq = 0;
/** The next HTTP port (HTTP_PORT_BASE + 0..399) that nothing holds now (the range is ephemeral: connections take some). */
async function freePort() {
  for (let i = 0; i < 400; i++) {
    const port = HTTP_PORT_BASE + (portSeq++ % 400);
    if (await canListen(port)) return port;
  }
  throw new Error('no free HTTP port');
}

async function startService(t, tag, { wait = true, index = 0 } = {}) {
  const port = await freePort();
  const extra = serviceExtras();
  const child = new Child(`service ${tag}#${index}`, [...extra.flags, 'dist/main.js'], {
    ...t.serviceEnv,
    META_AGENT_METRICS_PORT: String(port),
    ...benchServiceEnv(tag),
    ...extra.env,
  });
  child.port = port;
  if (wait) await waitHttpReady(child, port);
  return child;
}

/** The raw pipeline (bench/raw-pipeline.mjs) on the topology's servers, with its replication wait. */
async function startRaw(t, tag) {
  const child = new Child(`raw-pipeline ${tag}`, ['bench/raw-pipeline.mjs'], { ...t.rawEnv, RAW_NAME: tag });
  await child.waitLine((l) => l === 'raw-pipeline ready', 30000, 'ready line');
  return child;
}

async function waitDecisions(t, n, timeoutMs, { onFirst, children }) {
  const until = Date.now() + timeoutMs;
  let seen = false;
  while (Date.now() < until) {
    const count = await streamCount(t.jsm, STREAMS.decisions);
    if (!seen && count > 0) {
      seen = true;
      onFirst(count);
    }
    if (count >= n) return true;
    for (const c of children) if (!c.running) throw new Error(`${c.name} exited:\n${c.tail()}`);
    await sleep(count > 0 ? 100 : 20);
  }
  return false;
}

async function rateBetween(t, a, b) {
  const info = await t.jsm.streams.info(STREAMS.decisions);
  const ta = await messageTime(t.jsm, STREAMS.decisions, info.state.first_seq + a - 1);
  const tb = await messageTime(t.jsm, STREAMS.decisions, info.state.first_seq + b - 1);
  return Math.round((b - a) / ((tb - ta) / 1000));
}

// ---- throughput: a backlog drained -----------------------------------------------------------------------

async function throughputRun(t, tag, n, replicas = 1, side = 'service') {
  await resetStreams(t);
  const workflows = backlog(tag, n, 1);
  const pairs = workflows.flatMap((w) => w.messages);
  const publishRate = await publishAll(t.js, pairs);
  await resetRedis(t);
  let meter = null;
  let atMeter = 0;
  const spawnedAt = Date.now();
  const children = [];
  if (side === 'raw') children.push(await startRaw(t, tag));
  else for (let i = 0; i < replicas; i++) children.push(await startService(t, tag, { wait: false, index: i }));
  try {
    const ok = await waitDecisions(t, n, Math.max(180000, n * 30), {
      children,
      onFirst: (count) => {
        const pids = { ...t.pids };
        children.forEach((c, i) => (pids[`service_${i + 1}`] = c.pid));
        meter = new CpuMeter(pids);
        atMeter = count;
      },
    });
    const cpu = meter?.stop();
    if (!ok) throw new Error(`${t.name}: only ${await streamCount(t.jsm, STREAMS.decisions)} of ${n} decisions`);
    const info = await t.jsm.streams.info(STREAMS.decisions);
    const first = await messageTime(t.jsm, STREAMS.decisions, info.state.first_seq);
    const last = await messageTime(t.jsm, STREAMS.decisions, info.state.last_seq);
    const seconds = (last - first) / 1000;
    const run = {
      topology: t.name,
      side,
      replicas,
      tag,
      workflows: n,
      messages: pairs.length,
      publish_msgs_per_s: Math.round(publishRate),
      decisions: info.state.messages,
      seconds: round3(seconds),
      decisions_per_s: Math.round((info.state.messages - 1) / seconds),
      // The last replica is ready only after a few seconds: the 10-90 % rate is the steadier figure.
      decisions_per_s_10_to_90: await rateBetween(t, Math.round(n * 0.1), Math.round(n * 0.9)),
      start_to_first_decision_s: round3((first - spawnedAt) / 1000),
      cpu,
      cpu_ms_per_workflow: cpu ? cpuPerWorkflow(cpu, Math.max(n - atMeter, 1)) : null,
      redis: await redisCommands(t, n),
    };
    const checks = [];
    for (const c of side === 'raw' ? [] : children) {
      const m = parseMetrics((await httpGet(c.port, '/metrics')).text);
      checks.push({
        completed: metricSum(m, 'meta_agent_workflows_completed_total', { status: 'completed' }),
        dead_lettered: metricSum(m, 'meta_agent_dead_letters_total'),
        naks: metricSum(m, 'meta_agent_messages_settled_total', { action: 'nak' }),
        early_signals: metricSum(m, 'meta_agent_early_signals_total'),
      });
    }
    run.check = checks;
    const c = run.cpu_ms_per_workflow;
    log(
      `throughput ${t.name.padEnd(13)} ${side.padEnd(7)} ${tag} x${replicas}: ${run.decisions_per_s} decisions/s (10-90 %: ${run.decisions_per_s_10_to_90}), ` +
        `CPU ms/workflow service ${c?.service} nats ${c?.nats} redis ${c?.redis_primaries}+${c?.redis_replicas} other ${c?.other}; ` +
        `${run.redis.commands_per_workflow} Redis commands/workflow`,
    );
    return run;
  } finally {
    for (const c of children) await c.stop();
    await deleteConsumers(t.jsm, STREAMS.signals);
  }
}

// ---- latency: an open loop at a fixed rate (as bench/run.mjs's latency phase) ------------------------------

async function latencyRun(t, tag, seed) {
  await resetStreams(t);
  await resetRedis(t);
  const child = await startService(t, tag);
  const decisions = decisionLatencies(t.nc);
  try {
    await openLoop(t.js, `${tag}-warm`, SIZES.warmup, SIZES.rate, decisions.sent(false), seed + 1000);
    await decisions.drain(10);
    decisions.pending.clear();
    const pids = { ...t.pids, service_1: child.pid };
    const meter = new CpuMeter(pids);
    const loop = await openLoop(t.js, `${tag}-m`, SIZES.seconds, SIZES.rate, decisions.sent(true), seed);
    await decisions.drain(15);
    const cpu = meter.stop();
    const stats = summarize(decisions.latencies);
    const missing = decisions.pending.size;
    log(
      `latency    ${t.name.padEnd(13)} ${tag}: p50 ${stats.p50} ms, p90 ${stats.p90}, p99 ${stats.p99}, max ${stats.max} ` +
        `(${stats.count} at ${loop.achievedRate}/s${missing ? `, ${missing} MISSING` : ''}; other CPU ${cpu.other_cpu_s} s of ${cpu.wall_s} s)`,
    );
    return {
      topology: t.name,
      tag,
      ...stats,
      rate_requested: SIZES.rate,
      rate_achieved: loop.achievedRate,
      missing,
      publish_errors: loop.publishErrors,
      cpu,
      cpu_ms_per_workflow: cpuPerWorkflow(cpu, Math.max(stats.count, 1)),
      values: decisions.latencies,
    };
  } finally {
    await decisions.close();
    await child.stop();
    await deleteConsumers(t.jsm, STREAMS.signals);
  }
}

// ---- the run ---------------------------------------------------------------------------------------------

const results = {
  command: `node bench/topologies.mjs ${argv.join(' ')}`.trim(),
  service_extras: serviceExtras(),
  started_at: new Date().toISOString(),
  sizes: SIZES,
  machine: { nproc: cpus().length, cpu: cpus()[0]?.model, mem_gb: round1(totalmem() / 2 ** 30), loadavg_at_start: loadavg().map(round1) },
  servers: {
    nats_server: process.env.NATS_SERVER_BIN ?? 'nats-server',
    redis_server: process.env.REDIS_SERVER_BIN ?? 'redis-server',
    valkey_server: process.env.TOPO_VALKEY_BIN ?? null,
  },
  throughput: [],
  latency: [],
  errors: [],
};

const open = new Map();
async function get(name) {
  if (!open.has(name)) open.set(name, await topology(name));
  return open.get(name);
}

try {
  for (let r = 0; r < SIZES.rounds; r++) {
    const order = r % 2 === 0 ? only : [...only].reverse();
    for (const name of order) {
      const t = await get(name);
      // A port taken between the check and the service's listen (EADDRINUSE) is retried once, on another port.
      const attempt = async (what, run) => {
        try {
          return await run(0);
        } catch (error) {
          if (!/EADDRINUSE/.test(String(error.message))) throw error;
          log(`${name} round ${r}: ${what} hit a port in use; once more`);
          return run(1);
        }
      };
      try {
        // The raw pipeline and the service alternate too (raw first in even rounds).
        const sides = !MEASURE_RAW ? ['service'] : r % 2 === 0 ? ['raw', 'service'] : ['service', 'raw'];
        for (const side of sides) {
          const tag = `topo-${name}-tp-${side === 'raw' ? 'raw-' : ''}${r}`;
          results.throughput.push(await attempt(`throughput (${side})`, (k) => throughputRun(t, `${tag}${k ? 'b' : ''}`, SIZES.workflows, 1, side)));
        }
        if (MEASURE_LATENCY) results.latency.push(await attempt('latency', (k) => latencyRun(t, `topo-${name}-lat-${r}${k ? 'b' : ''}`, 100 + r)));
      } catch (error) {
        log(`${name} round ${r} failed: ${error.stack ?? error}`);
        results.errors.push({ topology: name, round: r, error: String(error.message ?? error) });
      }
    }
  }
  if (REPLICAS3) {
    // 3 service replicas against 1, alternating (3 1, 1 3, ...), on the cluster with WAIT=1.
    const t = await get('cluster-wait1');
    for (let r = 0; r < SIZES.rounds; r++) {
      for (const replicas of r % 2 === 0 ? [3, 1] : [1, 3]) {
        try {
          const run = await throughputRun(t, `topo-cluster-wait1-x${replicas}-${r}`, SIZES.workflows, replicas);
          results.throughput.push({ ...run, phase: 'replicas' });
        } catch (error) {
          results.errors.push({ topology: `cluster-wait1 x${replicas}`, round: r, error: String(error.message ?? error) });
        }
      }
    }
  }
} finally {
  for (const t of open.values()) {
    await t.close();
    await t.nc.close().catch(() => undefined);
  }
  await stopClusters();
}

// ---- summary ---------------------------------------------------------------------------------------------

const med = (runs, f) => round3(median(runs.map(f)));
const summary = [];
const rows = [
  ...only.map((n) => [n, 1, undefined]),
  ...(REPLICAS3
    ? [
        ['cluster-wait1', 1, 'replicas'],
        ['cluster-wait1', 3, 'replicas'],
      ]
    : []),
];
for (const [name, replicas, phase] of rows) {
  const tp = results.throughput.filter((x) => x.topology === name && x.side === 'service' && x.replicas === replicas && x.phase === phase);
  const raw = phase === undefined ? results.throughput.filter((x) => x.topology === name && x.side === 'raw') : [];
  // CPU per workflow of the consumer and every server (NATS, Redis primaries and replicas): the issue's CPU measure.
  const total = (x) =>
    x.cpu_ms_per_workflow.service + x.cpu_ms_per_workflow.nats + x.cpu_ms_per_workflow.redis_primaries + x.cpu_ms_per_workflow.redis_replicas;
  const vsRaw =
    raw.length && tp.length
      ? {
          rounds: raw.length,
          decisions_per_s: med(raw, (x) => x.decisions_per_s),
          cpu_ms_per_workflow_total: med(raw, total),
          throughput_ratio: round3(median(tp.map((x) => x.decisions_per_s)) / median(raw.map((x) => x.decisions_per_s))),
          cpu_ratio: round3(median(tp.map(total)) / median(raw.map(total))),
        }
      : null;
  const lat = phase === undefined ? results.latency.filter((x) => x.topology === name) : [];
  const merged = summarize(lat.flatMap((x) => x.values));
  const c = (f) => med(tp, (x) => f(x.cpu_ms_per_workflow));
  summary.push({
    topology: name,
    replicas,
    ...(phase ? { phase } : {}),
    rounds: tp.length,
    decisions_per_s: med(tp, (x) => x.decisions_per_s),
    decisions_per_s_10_to_90: med(tp, (x) => x.decisions_per_s_10_to_90),
    latency_ms: lat.length ? { p50: merged.p50, p90: merged.p90, p99: merged.p99, max: merged.max, count: merged.count } : null,
    cpu_ms_per_workflow: {
      service: c((x) => x.service),
      nats: c((x) => x.nats),
      redis_primaries: c((x) => x.redis_primaries),
      redis_replicas: c((x) => x.redis_replicas),
      other: c((x) => x.other),
    },
    latency_cpu_ms_per_workflow: lat.length
      ? {
          service: med(lat, (x) => x.cpu_ms_per_workflow.service),
          nats: med(lat, (x) => x.cpu_ms_per_workflow.nats),
          redis_primaries: med(lat, (x) => x.cpu_ms_per_workflow.redis_primaries),
          redis_replicas: med(lat, (x) => x.cpu_ms_per_workflow.redis_replicas),
          other: med(lat, (x) => x.cpu_ms_per_workflow.other),
        }
      : null,
    redis_commands_per_workflow: med(tp, (x) => x.redis.commands_per_workflow),
    // The raw pipeline on the same topology (its medians), and the service's ratios to it.
    raw: vsRaw,
    // Per process (each NATS node, each Redis primary and replica, each service replica): what the
    // capacity estimate of docs/PERFORMANCE.md divides by.
    cpu_ms_per_workflow_per_process: Object.fromEntries(
      Object.keys(tp[0]?.cpu_ms_per_workflow?.per_process ?? {}).map((k) => [k, med(tp, (x) => x.cpu_ms_per_workflow.per_process[k])]),
    ),
  });
}
results.summary = summary;
results.finished_at = new Date().toISOString();
for (const l of results.latency) delete l.values;
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'topologies.json'), `${JSON.stringify(results, null, 2)}\n`);

const pad = (s, n) => `${String(s ?? '-')} `.padEnd(n);
process.stdout.write(`\n== topologies (${SIZES.workflows} workflows backlog; latency at ${SIZES.rate}/s for ${SIZES.seconds} s; median of ${SIZES.rounds})\n`);
process.stdout.write(
  `${pad('topology', 24)}${pad('decisions/s', 13)}${pad('10-90 %', 9)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('vs raw: rate', 14)}${pad('CPU', 7)}CPU ms/workflow: service / NATS / Redis primaries + replicas / other\n`,
);
for (const s of summary) {
  const c = s.cpu_ms_per_workflow;
  process.stdout.write(
    `${pad(`${s.topology}${s.phase ? ` x${s.replicas}` : ''}`, 24)}${pad(s.decisions_per_s, 13)}${pad(s.decisions_per_s_10_to_90, 9)}${pad(s.latency_ms?.p50, 8)}${pad(s.latency_ms?.p99, 8)}` +
      `${pad(s.raw?.throughput_ratio, 14)}${pad(s.raw?.cpu_ratio, 7)}` +
      `${c.service} / ${c.nats} / ${c.redis_primaries} + ${c.redis_replicas} / ${c.other}\n`,
  );
}
if (results.errors.length) process.stdout.write(`errors: ${JSON.stringify(results.errors)}\n`);
process.stdout.write('wrote bench/results/topologies.json\n');
process.exit(results.errors.length ? 1 : 0);
