/**
 * The fault-injection suite (issue 3): real nats-server, redis-server and orchestrator replicas on
 * loopback, steady load with duplicates and out-of-order signals, hostile input, and faults — replicas
 * SIGKILLed and restarted, NATS and Redis SIGKILLed and restarted, a rolling restart (SIGTERM each
 * replica in turn). After the load drains it checks, from the outside, that every accepted trigger has
 * exactly one decision, the right one, that malformed input is dead-lettered and changed nothing, that
 * no process crashed unasked, that the consumers end with nothing pending and that timeouts fired on time.
 *
 *   npm run test:faults                 # the full run (scripts/faults.sh; about 8 minutes)
 *   bash scripts/faults.sh --short      # the short form npm test runs (about 2 minutes)
 *
 * Environment: FAULTS_SEED (replays a plan), FAULTS_LOAD_SECONDS, FAULTS_KEEP=1 (keep logs and data),
 * FAULTS_REPORT=<file> (also write the summary table there), FAULTS_APPENDFSYNC (always|everysec).
 * Ports: NATS 30222 (monitor 30822), Redis 30379, replicas' HTTP 31000 up; FAULTS_NATS_PORT,
 * FAULTS_NATS_MONITOR_PORT, FAULTS_REDIS_PORT, FAULTS_HTTP_PORT move them.
 */
import { appendFileSync, cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { HarnessBus } from './bus.js';
import { check, type CheckResult, type DeadLetter, type Inspection, type StoredDecision } from './check.js';
import { HostileInjector } from './hostile.js';
import { LoadGenerator, prng } from './load.js';
import { NatsServer, portOpen, ProcessBook, RedisServer, Replica } from './procs.js';
import { DEFAULT_CONSUMERS } from '../support/signals.js';

type Fault = 'kill' | 'nats' | 'redis' | 'rolling';

interface Profile {
  name: 'full' | 'short';
  loadSeconds: number;
  rate: number;
  hostileRate: number;
  plan: Fault[];
  drainSeconds: number;
}

const K: Fault = 'kill';
const PROFILES: Record<Profile['name'], Profile> = {
  full: {
    name: 'full',
    loadSeconds: 300,
    rate: 8,
    hostileRate: 12,
    plan: [K, K, K, 'nats', K, K, K, 'redis', K, K, 'rolling', K, K, K, 'nats', K, K, 'redis', K, K],
    drainSeconds: 120,
  },
  short: {
    name: 'short',
    loadSeconds: 75,
    rate: 5,
    hostileRate: 10,
    plan: [K, 'nats', K, 'redis', K, 'rolling', K],
    drainSeconds: 75,
  },
};

const NATS_PORT = Number(process.env.FAULTS_NATS_PORT ?? 30222);
const NATS_MONITOR_PORT = Number(process.env.FAULTS_NATS_MONITOR_PORT ?? 30822);
const REDIS_PORT = Number(process.env.FAULTS_REDIS_PORT ?? 30379);
const HTTP_BASE_PORT = Number(process.env.FAULTS_HTTP_PORT ?? 31000);
const REPLICAS = 3;
const LATENESS_BOUND_MS = 2000;
const CONSUMERS = [DEFAULT_CONSUMERS.trigger, DEFAULT_CONSUMERS.agents];

let activeBook: ProcessBook | undefined;
const log = (msg: string) => process.stdout.write(`[faults ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);

interface Counters {
  kills: number;
  restarts: number;
  terms: number;
  natsRestarts: number;
  redisRestarts: number;
}

async function main(): Promise<number> {
  const profile = PROFILES[process.argv.includes('--short') ? 'short' : 'full'];
  if (process.env.FAULTS_LOAD_SECONDS) profile.loadSeconds = Number(process.env.FAULTS_LOAD_SECONDS);
  const seed = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : Math.floor(Math.random() * 2 ** 31);
  const appendfsync = process.env.FAULTS_APPENDFSYNC === 'everysec' ? 'everysec' : 'always';
  const runId = `${Date.now().toString(36)}`;
  const dir = mkdtempSync(join(tmpdir(), `meta-agent-faults-${runId}-`));
  const pidFile = process.env.FAULTS_PIDFILE ?? join(dir, 'pids');
  const book = new ProcessBook(pidFile);
  activeBook = book;
  const started = Date.now();
  log(`${profile.name} run, seed ${seed}, logs and data in ${dir}`);

  for (const port of [NATS_PORT, NATS_MONITOR_PORT, REDIS_PORT, ...Array.from({ length: REPLICAS }, (_, i) => HTTP_BASE_PORT + i)]) {
    if (await portOpen(port)) throw new Error(`port ${port} is in use: another fault run, or something else; not touching it`);
  }

  const nats = new NatsServer(book, NATS_PORT, NATS_MONITOR_PORT, join(dir, 'nats'));
  const redis = new RedisServer(book, REDIS_PORT, join(dir, 'redis'), appendfsync);
  const replicaEnv: Record<string, string> = {
    META_AGENT_NAME: 'trading_decision_meta_agent',
    META_AGENT_NATS_URL: nats.url,
    META_AGENT_REDIS_URL: redis.url,
    META_AGENT_LOG_LEVEL: 'info',
    META_AGENT_MIN_CONFIDENCE_THRESHOLD: '0.6',
    META_AGENT_NAK_DELAY_MS: '500',
    META_AGENT_HEALTH_CHECK_INTERVAL: '5',
  };
  // Replicas run a copy of dist/ taken now: a rebuild in the working tree during the run must not mix versions.
  const entry = snapshotBuild(join(dir, 'build'));
  const replicas = Array.from({ length: REPLICAS }, (_, i) => new Replica(book, i, HTTP_BASE_PORT + i, replicaEnv, join(dir, `replica-${i}.log`), entry));
  const counters: Counters = { kills: 0, restarts: 0, terms: 0, natsRestarts: 0, redisRestarts: 0 };
  const faultLog: string[] = [];
  const problems: string[] = [];
  let bus: HarnessBus | undefined;
  let result: CheckResult | undefined;

  try {
    await Promise.all([nats.start(), redis.start()]);
    // The first replica provisions the streams and consumers; the others then start together.
    await replicas[0].start();
    await Promise.all(replicas.slice(1).map((r) => r.start()));
    bus = await HarnessBus.open(nats.url);
    log(`servers and ${REPLICAS} replicas ready`);

    const plain = new Map<string, string[]>();
    bus.subscribe('orchestrated.decision', (text) => {
      let id = '?';
      try {
        id = String((JSON.parse(text) as { workflow_id: unknown }).workflow_id);
      } catch {
        /* counted under '?' */
      }
      plain.set(id, [...(plain.get(id) ?? []), text]);
    });

    const rng = prng(seed);
    const load = new LoadGenerator(bus, { runId, rate: profile.rate, rng });
    const hostile = new HostileInjector(bus, runId, prng(seed + 1), profile.hostileRate, () => load.recentCorrIds());
    load.start();
    hostile.start();

    // Faults, one after another, spread over the load; the load runs on for a while after the last one.
    const faultRng = prng(seed + 2);
    const windowMs = (profile.loadSeconds - 25) * 1000;
    const loadStart = Date.now();
    for (let i = 0; i < profile.plan.length; i++) {
      const at = loadStart + 10000 + Math.round((i * windowMs) / profile.plan.length);
      await sleep(Math.max(1000, at - Date.now()));
      const fault = profile.plan[i];
      const t = Date.now();
      const what = await inject(fault, { nats, redis, replicas, counters, rng: faultRng });
      faultLog.push(`${((t - loadStart) / 1000).toFixed(1)}s ${what} (${Date.now() - t} ms)`);
      log(`fault ${i + 1}/${profile.plan.length}: ${what}`);
      const notReady = await replicasReady(replicas, 30000);
      if (notReady.length > 0) problems.push(`after "${what}": ${notReady.join(', ')} not ready within 30 s`);
    }
    const settledAfterFaults = await Promise.all(replicas.map((r) => r.metric('meta_agent_messages_settled_total').catch(() => -1)));
    await sleep(Math.max(15000, loadStart + profile.loadSeconds * 1000 - Date.now()));
    load.stopOpening();
    hostile.stop();
    log(`load stopped: ${load.workflows.length} workflows, ${hostile.sent.length} hostile messages; draining`);

    // Drain: everything sent, acknowledged, consumed, decided.
    const drainEnd = Date.now() + profile.drainSeconds * 1000;
    while (!load.idle() && Date.now() < drainEnd) await sleep(200);
    await bus.settled(Math.max(1000, drainEnd - Date.now()));
    const expected = load.workflows.filter((w) => w.kind !== 'declined').length;
    let quiet = 0;
    while (Date.now() < drainEnd && quiet < 3) {
      const pending = await consumersPending(bus);
      const decisions = (await bus.jsm.streams.info('DECISIONS')).state.messages;
      quiet = pending === 0 && decisions >= expected ? quiet + 1 : 0;
      await sleep(1000);
    }
    log(`drained in ${((Date.now() - (drainEnd - profile.drainSeconds * 1000)) / 1000).toFixed(1)} s`);

    for (const [i, r] of replicas.entries()) {
      const after = await r.metric('meta_agent_messages_settled_total').catch(() => -1);
      if (!(after > settledAfterFaults[i])) problems.push(`${r.name} settled no message after the last fault (${settledAfterFaults[i]} -> ${after}): it stopped consuming`);
    }
    for (const durable of CONSUMERS) {
      const info = await bus.jsm.consumers.info('SIGNALS', durable);
      if (info.num_pending !== 0 || info.num_ack_pending !== 0) {
        problems.push(`consumer ${durable}: ${info.num_pending} pending, ${info.num_ack_pending} awaiting ack after the drain`);
      }
    }

    const decisions: StoredDecision[] = (await bus.readAll('DECISIONS')).map((m) => ({
      text: m.string(),
      storedAt: Math.round(m.info.timestampNanos / 1e6),
      body: JSON.parse(m.string()) as StoredDecision['body'],
    }));
    const deadLetters: DeadLetter[] = (await bus.readAll('DEADLETTER')).map((m) => ({
      data: m.data,
      headers: Object.fromEntries([...(m.headers ?? [])].map(([k, v]) => [k, v[0]])),
    }));
    const toInspect = [
      ...load.workflows.filter((w) => w.kind !== 'declined').map((w) => w.corrId),
      ...hostile.sent.filter((h) => h.corrId && /^[A-Za-z0-9._:-]{1,128}$/.test(h.corrId)).map((h) => h.corrId!),
    ];
    const inspections = await inspect(replicas, toInspect);

    // What was sent, for a post-mortem (kept with the logs when the run fails).
    const preview = (d: string | Uint8Array) => (typeof d === 'string' ? d : Buffer.from(d).toString('hex')).slice(0, 400);
    writeFileSync(join(dir, 'hostile.jsonl'), hostile.sent.map((h) => JSON.stringify({ id: h.id, label: h.label, subject: h.subject, expect: h.expect, acked: h.message?.ackedAt !== undefined, data: preview(h.data) })).join('\n') + '\n');
    writeFileSync(join(dir, 'workflows.jsonl'), load.workflows.map((w) => JSON.stringify({ ...w, triggerMessage: undefined, repeats: w.repeats.length, signals: w.signals.map((s) => ({ agent: s.agent, text: s.text, acked: s.message?.ackedAt !== undefined })) })).join('\n') + '\n');
    result = check({
      replicaEnv,
      workflows: load.workflows,
      hostile: hostile.sent,
      decisions,
      plain,
      deadLetters,
      inspections,
      latenessBoundMs: LATENESS_BOUND_MS,
    });
    writeFileSync(join(dir, 'timeouts.jsonl'), result.latenessSamples.map((x) => JSON.stringify(x)).join('\n') + '\n');
    log(`checked ${decisions.length} decisions, ${deadLetters.length} dead letters; stopping`);
  } catch (error) {
    problems.push(`harness error: ${(error as Error).stack ?? String(error)}`);
  } finally {
    await bus?.close();
    for (const r of replicas) {
      if (r.running()) {
        const code = await r.terminate();
        if (code !== 0) problems.push(`${r.name} exited ${code} on the final SIGTERM`);
      }
      r.close();
    }
    await redis.terminate(10000);
    await nats.terminate(10000);
    await book.stopAll(5000);
  }

  for (const e of book.unexpectedExits()) {
    problems.push(`${e.name} (pid ${e.pid}) exited unasked: code ${e.code}, signal ${e.signal}${e.cause === 'term' ? ' after SIGTERM' : ''}`);
  }
  const errors = new Map<string, number>();
  for (const r of replicas) for (const [msg, n] of r.errors) errors.set(msg, (errors.get(msg) ?? 0) + n);

  const report = summary(profile, seed, appendfsync, counters, result, problems, Date.now() - started, triggerCount(result));
  process.stdout.write('\n' + report + '\n');
  if (errors.size > 0) {
    process.stdout.write('error lines logged by the replicas (not failures by themselves):\n');
    for (const [msg, n] of [...errors].sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(`  ${n} x ${msg}\n`);
  }
  process.stdout.write(`faults injected:\n${faultLog.map((l) => `  ${l}`).join('\n')}\n`);
  if (process.env.FAULTS_REPORT) writeFileSync(process.env.FAULTS_REPORT, report + '\n');
  appendFileSync(join(dir, 'summary.md'), report + '\n');

  const failed = problems.length > 0 || !result || result.violations.size > 0;
  if (failed || process.env.FAULTS_KEEP === '1') {
    log(`logs and data kept in ${dir}`);
  } else {
    rmSync(dir, { recursive: true, force: true });
  }
  log(failed ? 'FAILED' : 'passed');
  return failed ? 1 : 0;
}

/** Copies dist/ to `target` (with a node_modules link beside it, for imports); returns its main.js relative to the repository. */
function snapshotBuild(target: string): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  if (!existsSync(join(root, 'dist', 'main.js'))) throw new Error('dist/main.js is missing: npm run build first');
  cpSync(join(root, 'dist'), join(target, 'dist'), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(target, 'node_modules'));
  writeFileSync(join(target, 'package.json'), '{"type":"module"}\n');
  return relative(root, join(target, 'dist', 'main.js'));
}

function triggerCount(result: CheckResult | undefined): number {
  return result ? result.accepted + result.unconfirmed + result.declined : 0;
}

async function inject(fault: Fault, ctx: { nats: NatsServer; redis: RedisServer; replicas: Replica[]; counters: Counters; rng: () => number }): Promise<string> {
  const { counters } = ctx;
  switch (fault) {
    case 'kill': {
      const r = ctx.replicas[Math.floor(ctx.rng() * ctx.replicas.length)];
      await r.kill();
      counters.kills++;
      await sleep(Math.round(ctx.rng() * 1000));
      await r.start();
      counters.restarts++;
      return `SIGKILL ${r.name}, restarted`;
    }
    case 'nats':
      await ctx.nats.kill();
      await sleep(1000 + Math.round(ctx.rng() * 1500));
      await ctx.nats.start();
      counters.natsRestarts++;
      return 'SIGKILL nats-server, restarted';
    case 'redis':
      await ctx.redis.kill();
      await sleep(300 + Math.round(ctx.rng() * 700));
      await ctx.redis.start();
      counters.redisRestarts++;
      return 'SIGKILL redis-server, restarted (AOF)';
    case 'rolling':
      for (const r of ctx.replicas) {
        const code = await r.terminate();
        counters.terms++;
        if (code !== 0) throw new Error(`${r.name} exited ${code} after SIGTERM`);
        await r.start();
        counters.restarts++;
      }
      return `rolling restart (SIGTERM each of ${ctx.replicas.length} replicas in turn)`;
  }
}

async function replicasReady(replicas: Replica[], timeoutMs: number): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  let notReady: string[];
  do {
    notReady = [];
    for (const r of replicas) {
      const ok = await fetch(r.url('/health/ready'))
        .then((res) => res.status === 200)
        .catch(() => false);
      if (!ok) notReady.push(r.name);
    }
    if (notReady.length === 0) return [];
    await sleep(250);
  } while (Date.now() < end);
  return notReady;
}

async function consumersPending(bus: HarnessBus): Promise<number> {
  let total = 0;
  for (const durable of CONSUMERS) {
    const info = await bus.jsm.consumers.info('SIGNALS', durable);
    total += info.num_pending + info.num_ack_pending;
  }
  return total;
}

/** GET /workflows/:corr_id for each, spread over the replicas, a few at a time. */
async function inspect(replicas: Replica[], corrIds: string[]): Promise<Map<string, Inspection>> {
  const out = new Map<string, Inspection>();
  let next = 0;
  const worker = async (w: number) => {
    while (next < corrIds.length) {
      const corrId = corrIds[next++];
      const r = replicas[(next + w) % replicas.length];
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          const res = await fetch(r.url(`/workflows/${encodeURIComponent(corrId)}`));
          const text = await res.text();
          out.set(corrId, { status: res.status, body: res.status === 200 ? (JSON.parse(text) as Inspection['body']) : undefined });
          break;
        } catch {
          await sleep(200);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
  return out;
}

function summary(profile: Profile, seed: number, fsync: string, c: Counters, r: CheckResult | undefined, problems: string[], ms: number, triggers: number): string {
  const rows: [string, string][] = [
    ['run', `${profile.name}, seed ${seed}, ${(ms / 1000).toFixed(0)} s, ${REPLICAS} replicas, Redis appendfsync ${fsync}`],
    ['workflows (triggers sent)', `${triggers}: ${r?.accepted ?? '?'} accepted, ${r?.declined ?? '?'} declined by the strategy, ${r?.unconfirmed ?? '?'} never acknowledged by JetStream`],
    ['replica kills (SIGKILL) / restarts', `${c.kills} / ${c.restarts}`],
    ['rolling restart (SIGTERM, exit 0)', `${c.terms}`],
    ['NATS restarts (SIGKILL)', `${c.natsRestarts}`],
    ['Redis restarts (SIGKILL, AOF)', `${c.redisRestarts}`],
    ['decisions in DECISIONS', `${r?.decisionsInStream ?? '?'}: ${r?.completed ?? '?'} completed, ${r?.timedOut ?? '?'} timeout, ${r?.failed ?? '?'} failed`],
    ['duplicates', `${r?.duplicates ?? '?'}`],
    ['missing', `${r?.missing ?? '?'}`],
    ['wrong decisions', `${r?.wrong ?? '?'}`],
    ['timeouts with every needed signal stored', `${r?.timeoutsWithEnoughSignals ?? '?'}`],
    ['malformed messages / dead-lettered', `${r?.malformedSent ?? '?'} / ${r?.deadLettered ?? '?'}`],
    ['odd but valid messages (accepted, no effect)', `${r?.oddAccepted ?? '?'}`],
    ['real traffic dead-lettered', `${r?.unexpectedDeadLetters ?? '?'}`],
    ['plain subscriber: workflows seen / missed / extra copies', `${r?.plainSeen ?? '?'} / ${r?.plainMissed ?? '?'} / ${r?.plainDuplicates ?? '?'}`],
    ['worst timeout lateness (p99), orchestrated_at - deadline', r ? `${r.worstLatenessMs} ms (${r.p99LatenessMs} ms) over ${r.timeoutsMeasured} timeouts` : '?'],
    ['worst timeout lateness, stored in the stream - deadline', r ? `${r.worstStoredLatenessMs} ms` : '?'],
  ];
  const lines = ['| | |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)];
  const all = [...problems.map((p) => ['process/consumer check', [p]] as const), ...(r ? [...r.violations] : [])];
  lines.push('');
  if (all.length === 0) {
    lines.push('violations: none');
  } else {
    lines.push('VIOLATIONS:');
    for (const [kind, details] of all) {
      lines.push(`- ${kind} (${details.length}): ${details.slice(0, 5).join('; ')}${details.length > 5 ? '; ...' : ''}`);
    }
  }
  return lines.join('\n');
}

// Whatever happens to this process, the servers and replicas it started do not outlive it.
process.on('exit', () => activeBook?.killAll());
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    activeBook?.killAll();
    process.exit(130);
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`fault run failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  },
);
