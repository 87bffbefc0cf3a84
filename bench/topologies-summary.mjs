// Pools the rounds of one or more bench/topologies.mjs runs (their JSON files) and prints, per topology, the
// medians that docs/PERFORMANCE.md "Topologies" reports: decisions/s, CPU ms per workflow by group and of the
// busiest NATS node / Redis primary / replica, and per latency round p50 / p99 (the median of the rounds'
// figures, and their range).
//   node bench/topologies-summary.mjs bench/results/topologies-2026-12-07/*.json
// "Other" is recomputed from the machine's busy CPU minus every measured process, each counted once (the
// first 2026-12-07 run counted the standalone servers twice in its own "other").
import { readFileSync } from 'node:fs';
import { median, round3 } from './lib.mjs';

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: node bench/topologies-summary.mjs <topologies.json>...\n');
  process.exit(2);
}
const throughput = [];
const latency = [];
for (const f of files) {
  const r = JSON.parse(readFileSync(f, 'utf8'));
  throughput.push(...r.throughput);
  latency.push(...r.latency);
}

/** CPU ms per workflow of each measured process (server entries `nats` / `redis` left out: duplicates or idle). */
function perProcess(cpu, n) {
  const out = {};
  for (const [k, v] of Object.entries(cpu)) {
    if (!k.endsWith('_cpu_s') || /^(machine|other|nats_cpu|redis_cpu)/.test(k)) continue;
    out[k.replace(/_cpu_s$/, '')] = (v * 1000) / n;
  }
  return out;
}

function figures(run, n) {
  const each = perProcess(run.cpu, n);
  const sum = (re) => Object.entries(each).reduce((a, [k, v]) => a + (re.test(k) ? v : 0), 0);
  const max = (re) => Math.max(0, ...Object.entries(each).map(([k, v]) => (re.test(k) ? v : 0)));
  const ours = Object.values(each).reduce((a, v) => a + v, 0);
  return {
    service: sum(/^service_/),
    nats: sum(/^nats_/),
    redis_primaries: sum(/^redis_primary_/),
    redis_replicas: sum(/^redis_replica_/),
    other: (run.cpu.machine_busy_cpu_s * 1000) / n - ours,
    busiest_nats_node: max(/^nats_/),
    busiest_primary: max(/^redis_primary_/),
    busiest_replica: max(/^redis_replica_/),
  };
}

const medianOf = (rows, key) => round3(median(rows.map((r) => r[key])));
const keys = ['service', 'nats', 'redis_primaries', 'redis_replicas', 'other', 'busiest_nats_node', 'busiest_primary', 'busiest_replica'];
// Runs of --replicas3 from the alternating block (phase 'replicas') stay apart from the topology rounds.
// The raw pipeline's runs (side 'raw', in runs since it was added) are their own rows.
const label = (x) => `${x.topology}${x.side === 'raw' ? ' raw pipeline' : ''} x${x.replicas}${x.phase ? ` (${x.phase})` : ''}`;
const names = [...new Set(throughput.map(label))];
for (const name of names) {
  const runs = throughput.filter((x) => label(x) === name);
  const f = runs.map((x) => figures(x, x.workflows));
  const out = {
    topology: name,
    rounds: runs.length,
    decisions_per_s: runs.map((x) => x.decisions_per_s),
    median_decisions_per_s: median(runs.map((x) => x.decisions_per_s)),
    median_decisions_per_s_10_to_90: median(runs.map((x) => x.decisions_per_s_10_to_90)),
    redis_commands_per_workflow: round3(median(runs.map((x) => x.redis.commands_per_workflow))),
    evalsha_per_workflow: round3(median(runs.map((x) => x.redis.busiest.find((b) => b.command === 'evalsha')?.calls_per_workflow))),
    early_signals: runs.map((x) => (x.check ?? []).reduce((a, c) => a + (c.early_signals ?? 0), 0)),
    cpu_ms_per_workflow: Object.fromEntries(keys.map((k) => [k, medianOf(f, k)])),
  };
  process.stdout.write(`throughput ${JSON.stringify(out)}\n`);
}
for (const name of [...new Set(latency.map((x) => x.topology))]) {
  const runs = latency.filter((x) => x.topology === name);
  const f = runs.map((x) => figures(x, x.count));
  const out = {
    topology: name,
    rounds: runs.length,
    p50: runs.map((x) => x.p50),
    p99: runs.map((x) => x.p99),
    median_p50: round3(median(runs.map((x) => x.p50))),
    median_p99: round3(median(runs.map((x) => x.p99))),
    missing: runs.reduce((a, x) => a + x.missing, 0),
    cpu_ms_per_workflow: Object.fromEntries(keys.map((k) => [k, medianOf(f, k)])),
  };
  process.stdout.write(`latency ${JSON.stringify(out)}\n`);
}
