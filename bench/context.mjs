// The benchmark's shared state and steps (bench/run.mjs and the phases in bench/phases/): the options, the
// connections to the private servers, the processes under test, reading decisions back, and the results
// being gathered. Importing it parses the command line and connects (top-level await); the stateless
// helpers (workload, publishing, /proc readings, percentiles) are in lib.mjs.
import 'reflect-metadata';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { parseSettings } from '../dist/config/env.schema.js';
import { provisionJetStream } from '../dist/transport/jetstream/provisioning.js';
import {
  backlog,
  benchServiceEnv,
  Child,
  deleteStream,
  HTTP_PORT_BASE,
  httpGet,
  machineInfo,
  messageTime,
  NATS_URL,
  openNats,
  parseMetrics,
  publishAll,
  REDIS_URL,
  ROOT,
  serviceExtras,
  sleep,
  streamCount,
  STREAMS,
  waitHttpReady,
} from './lib.mjs';

// ---- options -----------------------------------------------------------------------------------------

export const argv = process.argv.slice(2);
export const flag = (name) => argv.includes(`--${name}`);
export const option = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
for (const a of argv) {
  if (!/^--(quick|profile|only=.+|rounds=\d+|workflows=\d+|rate=\d+|timeout-window=\d+(\.\d+)?|timeout-rate=\d+|sustain=\d+)$/.test(a)) {
    process.stderr.write(
      `bench: unknown argument ${a}\nusage: node bench/run.mjs [--quick] [--only=phase,...] [--profile] [--rounds=N] [--workflows=N] [--rate=N] [--timeout-window=S] [--timeout-rate=N] [--sustain=S]\n`,
    );
    process.exit(2);
  }
}
export const QUICK = flag('quick');
export const PHASES = ['transport', 'throughput', 'audit', 'scaling', 'latency', 'backpressure', 'publish', 'timeouts', 'sustained', 'footprint'];
export const only = option('only')?.split(',') ?? [...PHASES];
for (const p of only) {
  if (!PHASES.includes(p)) {
    process.stderr.write(`bench: unknown phase ${p} (phases: ${PHASES.join(', ')})\n`);
    process.exit(2);
  }
}
export const SIZES = QUICK
  ? {
      workflows: 3000,
      rounds: 1,
      transportRounds: 1,
      rate: 500,
      latencySeconds: 2,
      warmupSeconds: 1,
      latencyRounds: 1,
      timeouts: 20000,
      timeoutWindowS: 1,
      sustainS: 10,
      publishCount: 20000,
      publishRounds: 1,
      burst: 3000,
      backpressureRounds: 1,
      finished: 1000,
      active: 1000,
      activeTotal: 5000,
      scalingWorkflows: 10000, // as the full run: three replicas need a second or two to start, the backlog must outlast that
      replicas: [1, 3],
    }
  : {
      workflows: 20000,
      rounds: 2,
      transportRounds: 3,
      rate: 500,
      latencySeconds: 10,
      warmupSeconds: 2,
      latencyRounds: 2,
      timeouts: 100000,
      timeoutWindowS: 3,
      sustainS: 60,
      publishCount: 50000,
      publishRounds: 2,
      burst: 10000,
      backpressureRounds: 2,
      finished: 10000,
      active: 10000,
      activeTotal: 100000,
      scalingWorkflows: 10000,
      replicas: [1, 2, 3],
    };
if (option('rounds')) SIZES.rounds = SIZES.transportRounds = SIZES.latencyRounds = SIZES.publishRounds = SIZES.backpressureRounds = Number(option('rounds'));
if (option('workflows')) SIZES.workflows = Number(option('workflows'));
if (option('rate')) SIZES.rate = Number(option('rate'));
if (option('timeout-window')) SIZES.timeoutWindowS = Number(option('timeout-window'));
if (option('sustain')) SIZES.sustainS = Number(option('sustain'));
/** Timeouts/s of the sustained phase: half the burst's measured capacity, unless given. */
export const TIMEOUT_RATE = option('timeout-rate') ? Number(option('timeout-rate')) : null;
// The sustained phase needs the timeout capacity the burst measures: run the burst too unless a rate is given.
if (only.includes('sustained') && !only.includes('timeouts') && TIMEOUT_RATE === null) only.splice(only.indexOf('sustained'), 0, 'timeouts');
/** Issue 11's scaling judgement: the top replica count's rate may be below one replica's by this much (noise). */
export const SCALING_TOLERANCE = 0.1;

export const RESULTS_DIR = join(ROOT, 'bench', 'results');
export const MAX_IN_FLIGHT = 64; // the service's default (META_AGENT_MAX_IN_FLIGHT); the raw consumers use the same

export const log = (msg) => process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---- servers, streams, Redis -------------------------------------------------------------------------

export const { nc, js, jsm } = await openNats('bench-driver');
export const redis = new Redis(REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });

/** The service's settings, as it reads them (stream provisioning, the sweep interval). */
export const settings = parseSettings({ META_AGENT_NATS_URL: NATS_URL, META_AGENT_REDIS_URL: REDIS_URL });

/** Fresh streams, created exactly as the service provisions them; `signals` false keeps the SIGNALS backlog. */
export async function resetStreams({ signals = true } = {}) {
  if (signals) await deleteStream(jsm, STREAMS.signals);
  await deleteStream(jsm, STREAMS.decisions);
  await deleteStream(jsm, STREAMS.deadLetter);
  await deleteStream(jsm, settings.nats.audit.stream);
  await provisionJetStream(jsm, settings.nats, []);
}

/** Redis's own counters since the last CONFIG RESETSTAT: commands, network bytes, and time per command. */
export async function redisStats() {
  const stats = await redis.info('stats');
  const num = (name) => Number(new RegExp(`${name}:(\\d+)`).exec(stats)?.[1] ?? NaN);
  const commands = {};
  for (const m of (await redis.info('commandstats')).matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g))
    commands[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  return { commands: num('total_commands_processed'), bytesIn: num('total_net_input_bytes'), bytesOut: num('total_net_output_bytes'), perCommand: commands };
}

export async function redisMemory() {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}

// ---- the processes under test ------------------------------------------------------------------------

let portSeq = 0;
const nextPort = () => HTTP_PORT_BASE + (portSeq++ % 900);

/** The orchestrator (dist/main.js) with throughput settings; consumers named after `tag` so each run starts fresh. */
export async function startService(tag, { env = {}, nodeFlags = [], wait = true } = {}) {
  const port = nextPort();
  const extra = serviceExtras();
  const child = new Child(`service ${tag}`, [...extra.flags, ...nodeFlags, 'dist/main.js'], {
    META_AGENT_NATS_URL: NATS_URL,
    META_AGENT_REDIS_URL: REDIS_URL,
    META_AGENT_METRICS_PORT: String(port),
    ...benchServiceEnv(tag),
    ...env,
    ...extra.env,
  });
  child.port = port;
  child.consumers = [`${tag}-trigger`, `${tag}-enriched`];
  if (wait) await waitHttpReady(child, port);
  return child;
}

export async function startRawPipeline(tag) {
  const child = new Child(`raw-pipeline ${tag}`, ['bench/raw-pipeline.mjs'], {
    BENCH_NATS_URL: NATS_URL,
    BENCH_REDIS_URL: REDIS_URL,
    RAW_NAME: tag,
    RAW_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
  });
  child.consumers = [`${tag}-trigger`, `${tag}-enriched`];
  await child.waitLine((l) => l === 'raw-pipeline ready', 30000, 'ready line');
  return child;
}

export async function serviceMetrics(child) {
  return parseMetrics((await httpGet(child.port, '/metrics')).text);
}

/** Waits until DECISIONS holds `n` messages; false after `timeoutMs`. `onFirst` runs when the first one is seen. */
export async function waitDecisions(n, timeoutMs, { onFirst, children = [] } = {}) {
  const until = Date.now() + timeoutMs;
  let seen = false;
  while (Date.now() < until) {
    const count = await streamCount(jsm, STREAMS.decisions);
    if (!seen && count > 0) {
      seen = true;
      onFirst?.(count);
    }
    if (count >= n) return true;
    for (const c of children) if (!c.running) throw new Error(`${c.name} exited:\n${c.tail()}`);
    await sleep(count > 0 ? 100 : 20);
  }
  return false;
}

/** First and last decision's stream timestamps (ms), and the count. */
export async function decisionSpan() {
  const info = await jsm.streams.info(STREAMS.decisions);
  const first = await messageTime(jsm, STREAMS.decisions, info.state.first_seq);
  const last = await messageTime(jsm, STREAMS.decisions, info.state.last_seq);
  return { count: info.state.messages, first, last };
}

/** Decisions per second between the a-th and the b-th decision (1-based, by stream timestamps). */
export async function rateBetween(a, b) {
  const info = await jsm.streams.info(STREAMS.decisions);
  const ta = await messageTime(jsm, STREAMS.decisions, info.state.first_seq + a - 1);
  const tb = await messageTime(jsm, STREAMS.decisions, info.state.first_seq + b - 1);
  return Math.round((b - a) / ((tb - ta) / 1000));
}

/** Every message of DECISIONS, parsed, with its stream timestamp (ms). */
export async function readDecisions(expected, timeoutMs = 120000) {
  const consumer = await js.consumers.get(STREAMS.decisions);
  const messages = await consumer.consume({ max_messages: 1000 });
  const out = [];
  const timer = setTimeout(() => messages.stop(), timeoutMs);
  for await (const m of messages) {
    out.push({ at: Number(m.info.timestampNanos) / 1e6, bytes: m.data.length, body: JSON.parse(m.string()) });
    if (out.length >= expected) break;
  }
  clearTimeout(timer);
  messages.stop();
  return out;
}

// ---- the backlog -------------------------------------------------------------------------------------

function flatten(workflows) {
  const pairs = [];
  for (const wf of workflows) for (const m of wf.messages) pairs.push(m);
  return pairs;
}

export async function publishBacklog(runId, n, seed, options) {
  const workflows = backlog(runId, n, seed, options);
  const pairs = flatten(workflows);
  const rate = await publishAll(js, pairs);
  log(`published ${n} workflows (${pairs.length} messages) at ${Math.round(rate)} msg/s`);
  return { workflows, messages: pairs.length };
}

// ---- phases ------------------------------------------------------------------------------------------

export const results = {
  command: `node bench/run.mjs ${argv.join(' ')}`.trim(),
  service_extras: serviceExtras(),
  started_at: new Date().toISOString(),
  mode: QUICK ? 'quick' : 'full',
  sizes: SIZES,
  machine: machineInfo(),
  service_settings: {
    META_AGENT_MAX_CONCURRENT_WORKFLOWS: '10000000',
    META_AGENT_AGENT_TIMEOUT_SECONDS: '0',
    META_AGENT_LOG_LEVEL: 'warning',
    META_AGENT_MIN_CONFIDENCE_THRESHOLD: '0.5',
    others: 'defaults (MAX_IN_FLIGHT 64, REDIS_SHARDS 16, SWEEP_INTERVAL_MS 250, SWEEP_BATCH 500)',
  },
  errors: [],
};
