// Shared helpers of the benchmark: where the servers are, the workload (seeded, deterministic), publishing
// a backlog, streams, child processes, CPU and memory readings from /proc, percentiles.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The benchmark's own servers (scripts/bench.sh starts them). Only loopback, only these ports. */
export const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:27222';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:27379';
/** HTTP ports of the services the benchmark starts: 28000 + n. */
export const HTTP_PORT_BASE = Number(process.env.BENCH_HTTP_PORT_BASE ?? 28000);

export const SUBJECTS = { trigger: 'signals.normalized', agent: (a) => `signals.enriched.${a}`, decision: 'orchestrated.decision' };
export const STREAMS = { signals: 'SIGNALS', decisions: 'DECISIONS', deadLetter: 'DEADLETTER' };

// ---- the workload ------------------------------------------------------------------------------------

/** Mixed instruments, in a fixed rotation: 3/8 FX, 3/8 ETF, 2/8 crypto. */
const INSTRUMENTS = [
  { symbol: 'EURUSD', kind: 'fx', price: 1.0852, maxPosition: 150_000 },
  { symbol: 'SPY', kind: 'etf', price: 512.34, maxPosition: 40_000 },
  { symbol: 'CRYPTO:BTCUSD', kind: 'crypto', price: 67_250.5, maxPosition: 8_000 },
  { symbol: 'GBPUSD', kind: 'fx', price: 1.2718, maxPosition: 150_000 },
  { symbol: 'QQQ', kind: 'etf', price: 438.9, maxPosition: 40_000 },
  { symbol: 'USDJPY', kind: 'fx', price: 151.42, maxPosition: 150_000 },
  { symbol: 'CRYPTO:ETHUSD', kind: 'crypto', price: 3_480.25, maxPosition: 8_000 },
  { symbol: 'IWM', kind: 'etf', price: 204.11, maxPosition: 40_000 },
];

/**
 * The agents the trading strategy needs before it can decide (its `canDecide`): momentum and risk, plus
 * sentiment for crypto. ETF workflows also list correlation and macro as required, but decide without
 * them (docs/ARCHITECTURE.md), so they are not sent: a workflow gets exactly what completes it.
 */
export const NEEDED = { fx: ['momentum', 'risk'], etf: ['momentum', 'risk'], crypto: ['momentum', 'risk', 'sentiment'] };

/** mulberry32: the workload depends on the seed only. */
export function rng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round2 = (x) => Math.round(x * 100) / 100;

function agentPayload(agent, rand, instrument) {
  const bullish = rand() < 0.6;
  switch (agent) {
    case 'momentum':
      return {
        confidence: round2(0.75 + rand() * 0.23),
        analysis: { trend_direction: bullish ? 'bullish' : 'bearish', momentum_strength: round2(0.6 + rand() * 0.35), lookback_minutes: 60 },
      };
    case 'risk':
      return {
        confidence: round2(0.6 + rand() * 0.35),
        analysis: {
          risk_level: ['low', 'low', 'medium', 'high'][Math.floor(rand() * 4)],
          max_position_size: instrument.maxPosition,
          volatility: round2(0.05 + rand() * 0.5),
        },
      };
    case 'sentiment':
      return { confidence: round2(0.5 + rand() * 0.4), sentiment_score: round2(rand() * 2 - 1), sources: ['news', 'social'] };
    default:
      throw new Error(`no payload for ${agent}`);
  }
}

/**
 * Workflow i of a run: its trigger and the signals that complete it, as [subject, JSON text] pairs, in the
 * order an upstream would send them (trigger first). `extra` is merged into the trigger (timeout_seconds...).
 */
export function workflowMessages(runId, i, rand, { kinds = null, extra = {}, agents = null } = {}) {
  const pool = kinds ? INSTRUMENTS.filter((x) => kinds.includes(x.kind)) : INSTRUMENTS;
  const instrument = pool[i % pool.length];
  const corrId = `${runId}.${i}`;
  const ts = new Date().toISOString();
  const trigger = {
    corr_id: corrId,
    instrument: instrument.symbol,
    side: rand() < 0.6 ? 'buy' : 'sell',
    strength: round2(0.4 + rand() * 0.55),
    price: instrument.price,
    normalized_at: ts,
    ...extra,
  };
  const messages = [[SUBJECTS.trigger, JSON.stringify(trigger)]];
  for (const agent of agents ?? NEEDED[instrument.kind]) {
    const signal = { corr_id: corrId, agent_name: agent, signal_type: 'analysis', timestamp: ts, ...agentPayload(agent, rand, instrument) };
    messages.push([SUBJECTS.agent(agent), JSON.stringify(signal)]);
  }
  return { corrId, kind: instrument.kind, instrument: instrument.symbol, messages };
}

/** A backlog of n workflows: every message, in publishing order. */
export function backlog(runId, n, seed = 1, options = {}) {
  const rand = rng(seed);
  const workflows = [];
  for (let i = 0; i < n; i++) workflows.push(workflowMessages(runId, i, rand, options));
  return workflows;
}

/**
 * Open loop at `rate` workflows/s for `seconds` on `js`: each workflow's trigger and needed signals published
 * back to back; `onSent(corrId, at)` when its last message was published.
 */
export async function openLoop(js, runId, seconds, rate, onSent, seed) {
  const total = Math.round(rate * seconds);
  const workflows = backlog(runId, total, seed);
  let publishErrors = 0;
  const t0 = performance.now();
  let i = 0;
  while (i < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    for (; i < due; i++) {
      const { corrId, messages } = workflows[i];
      for (let k = 0; k < messages.length; k++) {
        if (k === messages.length - 1) onSent(corrId, performance.now());
        js.publish(messages[k][0], messages[k][1]).catch(() => publishErrors++);
      }
    }
    await sleep(1);
  }
  return { total, publishErrors, achievedRate: round1(total / ((performance.now() - t0) / 1000)) };
}

/**
 * Decisions received on `nc` (core subscription) against the moments openLoop sent their workflows:
 * `sent(measured)` is openLoop's onSent; a measured workflow's latency goes to `latencies` when its
 * decision arrives. `drain(seconds)` waits (up to then) for the pending ones; `close()` ends the subscription.
 */
export function decisionLatencies(nc) {
  /** corr_id -> { sentAt, measured } until its decision arrives. */
  const pending = new Map();
  const latencies = [];
  const sub = nc.subscribe(SUBJECTS.decision, {
    callback: (_err, msg) => {
      const now = performance.now();
      const corr = JSON.parse(msg.string()).corr_id;
      const p = pending.get(corr);
      if (!p) return;
      pending.delete(corr);
      if (p.measured) latencies.push(now - p.sentAt);
    },
  });
  return {
    pending,
    latencies,
    sent: (measured) => (corr, sentAt) => pending.set(corr, { sentAt, measured }),
    drain: async (seconds) => {
      for (let t = 0; t < seconds * 10 && pending.size > 0; t++) await sleep(100);
    },
    close: () => sub.drain(),
  };
}

/** The orchestrator's settings for the benches' runs (besides its servers and metrics port); consumers named after `tag`. */
export function benchServiceEnv(tag) {
  return {
    META_AGENT_LOG_LEVEL: 'warning',
    META_AGENT_MAX_CONCURRENT_WORKFLOWS: '10000000',
    // The backlog's signals are older than the 60 s default by the time they are read: not stale here.
    META_AGENT_AGENT_TIMEOUT_SECONDS: '0',
    META_AGENT_MIN_CONFIDENCE_THRESHOLD: '0.5',
    META_AGENT_TRIGGER_CONSUMER: `${tag}-trigger`,
    META_AGENT_ENRICHED_CONSUMER: `${tag}-enriched`,
  };
}

/**
 * For experiments, what every service a run starts gets on top of its phase's: BENCH_SERVICE_NODE_FLAGS, node
 * flags (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`); BENCH_SERVICE_ENV, settings (`META_AGENT_AUDIT=false ...`).
 */
export function serviceExtras() {
  const words = (v) => v?.split(' ').filter(Boolean) ?? [];
  return {
    flags: words(process.env.BENCH_SERVICE_NODE_FLAGS),
    env: Object.fromEntries(
      words(process.env.BENCH_SERVICE_ENV).map((kv) => {
        const at = kv.indexOf('=');
        if (at < 1) throw new Error(`BENCH_SERVICE_ENV: "${kv}" is not NAME=value`);
        return [kv.slice(0, at), kv.slice(at + 1)];
      }),
    ),
  };
}

// ---- NATS --------------------------------------------------------------------------------------------

export async function openNats(name = 'bench') {
  const nc = await connect({ servers: NATS_URL, name, timeout: 5000 });
  return { nc, js: jetstream(nc, { timeout: 20000 }), jsm: await jetstreamManager(nc, { timeout: 20000 }) };
}

/**
 * Runs `publish(i)` for i = 0 .. count-1 with at most `window` unsettled at once, `onAck` on each result;
 * stops at the first failure and throws it.
 */
export async function publishWindowed(count, window, publish, onAck = () => undefined) {
  const pending = new Set();
  let failed = null;
  for (let i = 0; i < count && !failed; i++) {
    const p = publish(i).then(
      (ack) => {
        onAck(ack);
        pending.delete(p);
      },
      (error) => {
        failed = error;
        pending.delete(p);
      },
    );
    pending.add(p);
    if (pending.size >= window) await Promise.race(pending);
  }
  await Promise.all(pending);
  if (failed) throw failed;
}

/**
 * Publishes [subject, text] pairs to JetStream with at most `window` unacknowledged publishes.
 * @returns messages per second.
 */
export async function publishAll(js, pairs, window = 1000) {
  const started = performance.now();
  await publishWindowed(pairs.length, window, (i) => js.publish(pairs[i][0], pairs[i][1]));
  return pairs.length / ((performance.now() - started) / 1000);
}

export async function deleteStream(jsm, name) {
  await jsm.streams.delete(name).catch(() => undefined);
}

export async function streamCount(jsm, name) {
  try {
    return (await jsm.streams.info(name)).state.messages;
  } catch {
    return 0;
  }
}

/** Deletes every consumer of a stream except those named in `keep`. */
export async function deleteConsumers(jsm, stream, keep = []) {
  const names = [];
  for await (const c of jsm.consumers.list(stream)) names.push(c.name);
  for (const name of names) if (!keep.includes(name)) await jsm.consumers.delete(stream, name).catch(() => undefined);
}

/** Waits until every named durable of `stream` has nothing pending and nothing unacknowledged. */
export async function waitConsumersIdle(jsm, stream, names, timeoutMs, pollMs = 100) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    let idle = true;
    for (const name of names) {
      const info = await jsm.consumers.info(stream, name).catch(() => null);
      if (!info || info.num_pending > 0 || info.num_ack_pending > 0) idle = false;
    }
    if (idle) return true;
    await sleep(pollMs);
  }
  return false;
}

/** Milliseconds since the epoch of a stream message's timestamp (the server's clock: this machine's). */
export async function messageTime(jsm, stream, seq) {
  const m = await jsm.streams.getMessage(stream, { seq });
  return m.time.getTime();
}

// ---- child processes ---------------------------------------------------------------------------------

const children = new Set();

/** Kills every child this process started (on exit, and on Ctrl-C). */
export function killChildren(signal = 'SIGKILL') {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
}
process.once('exit', () => killChildren());
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    killChildren();
    process.exit(130);
  });
}

export class Child {
  /** `args`: node arguments (flags, then the script relative to the repository). */
  constructor(name, args, env = {}) {
    this.name = name;
    this.lines = [];
    this.proc = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(this.proc);
    this.pid = this.proc.pid;
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code, signal) => {
        children.delete(this.proc);
        resolve(code ?? signal);
      }),
    );
    this.waiters = [];
    let buffer = '';
    const collect = (chunk) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const line of parts) {
        if (line.length === 0) continue;
        this.lines.push(line);
        if (this.lines.length > 2000) this.lines.splice(0, 1000);
        for (const w of [...this.waiters]) {
          if (w.test(line)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    };
    this.proc.stdout.on('data', collect);
    this.proc.stderr.on('data', collect);
  }

  get running() {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Resolves with the first output line (from now on) that `test` accepts. */
  waitLine(test, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const w = { test, resolve };
      this.waiters.push(w);
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; last output:\n${this.tail()}`));
      }, timeoutMs);
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code}) before ${what}; last output:\n${this.tail()}`));
      });
      const done = w.resolve;
      w.resolve = (line) => {
        clearTimeout(timer);
        done(line);
      };
    });
  }

  tail(n = 15) {
    return this.lines.slice(-n).join('\n');
  }

  async stop(timeoutMs = 30000) {
    if (this.running) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.running && this.proc.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** GET on a local HTTP port; { status, text } or status 0 when nothing answers. */
export async function httpGet(port, path) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: globalThis.AbortSignal.timeout(5000) });
    return { status: res.status, text: await res.text() };
  } catch {
    return { status: 0, text: '' };
  }
}

export async function waitHttpReady(child, port, timeoutMs = 60000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!child.running) throw new Error(`${child.name} exited during start-up:\n${child.tail()}`);
    if ((await httpGet(port, '/health/ready')).status === 200) return;
    await sleep(50);
  }
  throw new Error(`${child.name} not ready within ${timeoutMs} ms:\n${child.tail()}`);
}

/** Samples of a Prometheus text exposition: name -> [{labels, value}]. */
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const kv of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[kv[1]] = kv[2];
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value: Number(m[4]) });
  }
  return out;
}

export function metricSum(metrics, name, labels = {}) {
  return (metrics.get(name) ?? []).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** Quantile estimate from a Prometheus histogram's cumulative buckets (linear inside a bucket). */
export function histogramQuantile(metrics, name, q) {
  const buckets = (metrics.get(`${name}_bucket`) ?? [])
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le);
  if (buckets.length === 0) return null;
  const total = buckets[buckets.length - 1].count;
  if (total === 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe; // above the last bound: report the last bound (a lower bound)
      const inBucket = b.count - prevCount;
      return inBucket === 0 ? b.le : prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

// ---- /proc -------------------------------------------------------------------------------------------

const CLK_TCK = 100; // Linux USER_HZ, 100 on every mainstream kernel

/** CPU seconds (user + system) a process used so far; null when it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine (all cores), and elapsed CPU seconds (busy + idle). */
export function machineCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = v;
  return { busy: (user + nice + system + irq + softirq + steal) / CLK_TCK, total: (user + nice + system + idle + iowait + irq + softirq + steal) / CLK_TCK };
}

/** Resident set size of a process in bytes (VmRSS). */
export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function serverPids() {
  const dir = process.env.SERVERS_DIR;
  const read = (f) => {
    try {
      return Number(readFileSync(join(dir, f), 'utf8').trim());
    } catch {
      return null;
    }
  };
  return dir ? { nats: read('nats.pid'), redis: read('redis.pid') } : { nats: null, redis: null };
}

/**
 * CPU accounting over an interval: CPU seconds of the given processes, of the servers, and of everything
 * else on the machine (other users of these 2 cores: the noise).
 */
export class CpuMeter {
  constructor(pids) {
    this.pids = { ...serverPids(), ...pids };
    this.start = this.read();
    this.t0 = performance.now();
  }

  read() {
    const per = {};
    for (const [name, pid] of Object.entries(this.pids)) per[name] = pid ? cpuSeconds(pid) : null;
    return { per, machine: machineCpu() };
  }

  /** CPU seconds per process and for the rest of the machine since construction; `wall` in seconds. */
  stop() {
    const end = this.read();
    const wall = (performance.now() - this.t0) / 1000;
    const out = { wall_s: round3(wall) };
    let ours = 0;
    for (const name of Object.keys(this.pids)) {
      const a = this.start.per[name];
      const b = end.per[name];
      if (a === null || a === undefined || b === null || b === undefined) continue;
      out[`${name}_cpu_s`] = round3(b - a);
      ours += b - a;
    }
    const busy = end.machine.busy - this.start.machine.busy;
    out.machine_busy_cpu_s = round3(busy);
    out.other_cpu_s = round3(Math.max(busy - ours, 0));
    out.machine_capacity_cpu_s = round3(end.machine.total - this.start.machine.total);
    return out;
  }
}

// ---- numbers -----------------------------------------------------------------------------------------

export const round3 = (x) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 1000) / 1000);
export const round1 = (x) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10) / 10);

/** Nearest-rank percentile of a sorted array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

export function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return { count: 0 };
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    mean: round3(sum / sorted.length),
    p50: round3(percentile(sorted, 50)),
    p90: round3(percentile(sorted, 90)),
    p99: round3(percentile(sorted, 99)),
    max: round3(sorted[sorted.length - 1]),
  };
}

export function median(values) {
  const v = values.filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export { sleep };

/**
 * For the consume-only sides (raw consume, transport alone): call the returned function once per message
 * handled; at the `expected`-th it prints `RESULT {count, first_ms, last_ms, cpu_ms}` (times from the first
 * message on), which the driver reads.
 */
export function resultCounter(expected) {
  let count = 0;
  let first = 0;
  let cpu0 = null;
  return () => {
    if (count === 0) {
      first = performance.now();
      cpu0 = process.cpuUsage();
    }
    count++;
    if (count === expected) {
      const cpu = process.cpuUsage(cpu0);
      process.stdout.write(`RESULT ${JSON.stringify({ count, first_ms: first, last_ms: performance.now(), cpu_ms: (cpu.user + cpu.system) / 1000 })}\n`);
    }
  };
}

/** Redis work per workflow over a run (after CONFIG RESETSTAT at its start). */
export function redisPerWorkflow(stats, n) {
  const per = (x) => round1(x / n);
  const top = Object.entries(stats.perCommand)
    .sort((a, b) => b[1].usec - a[1].usec)
    .slice(0, 4)
    .map(([name, c]) => ({ command: name, calls_per_workflow: round3(c.calls / n), usec_per_workflow: per(c.usec), usec_per_call: round1(c.usec / c.calls) }));
  return { commands: round3(stats.commands / n), bytes_in: per(stats.bytesIn), bytes_out: per(stats.bytesOut), busiest_commands: top };
}

/** The machine a run is on (the table's first line, and `machine` in latest.json). */
export function machineInfo() {
  const version = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0];
    } catch {
      return null;
    }
  };
  return {
    nproc: cpus().length,
    cpu_model: cpus()[0]?.model ?? null,
    memory_gb: round1(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    nats_server: version(process.env.NATS_SERVER_BIN ?? 'nats-server', ['--version']) ?? version('/usr/sbin/nats-server', ['--version']),
    redis_server: version(process.env.REDIS_SERVER_BIN ?? 'redis-server', ['--version']),
    loadavg_at_start: loadavg().map(round1),
  };
}

/** Side order of round r: alternate which side goes first, so drift hits both alike. */
export const sides = (r, a, b) => (r % 2 === 0 ? [a, b] : [b, a]);
