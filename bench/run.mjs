// The benchmark of issue 5: the orchestrator against what NATS and Redis allow, in one run.
// Run it through `npm run bench` (scripts/bench.sh starts private servers and builds first); see
// bench/README.md for what each phase measures and how.
//
//   node bench/run.mjs [--quick] [--only=phase,...] [--profile]
//                      [--rounds=N] [--workflows=N] [--rate=N] [--timeout-window=S] [--timeout-rate=N] [--sustain=S]
//   phases: transport, throughput, audit, scaling, latency, backpressure, publish, timeouts, sustained, footprint
//
// The targets judged are issue 11's table (targets() in report.mjs, and bench/README.md).
//
// The shared state and steps are in context.mjs (it parses the options and connects), one file per phase in
// phases/, the targets and the table in report.mjs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { flag, log, nc, only, publishBacklog, redis, resetStreams, results, RESULTS_DIR, SIZES, TIMEOUT_RATE } from './context.mjs';
import { round1 } from './lib.mjs';
import { phaseTransport } from './phases/transport.mjs';
import { phaseThroughput } from './phases/throughput.mjs';
import { phaseAudit } from './phases/audit.mjs';
import { phaseScaling } from './phases/scaling.mjs';
import { phaseProfile } from './phases/profile.mjs';
import { phaseLatency } from './phases/latency.mjs';
import { phaseBackpressure } from './phases/backpressure.mjs';
import { phasePublish } from './phases/publish.mjs';
import { phaseTimeouts } from './phases/timeouts.mjs';
import { phaseSustained } from './phases/sustained.mjs';
import { phaseFootprint } from './phases/footprint.mjs';
import { table, targets } from './report.mjs';

// ---- run ---------------------------------------------------------------------------------------------

mkdirSync(RESULTS_DIR, { recursive: true });
const wanted = (p) => only.includes(p);
const phase = async (name, fn) => {
  try {
    results[name] = await fn();
  } catch (error) {
    log(`${name} FAILED: ${error.message}`);
    results.errors.push({ phase: name, error: error.message });
  }
};

const t0 = Date.now();
log(
  `mode ${results.mode}; phases ${only.join(', ')}${flag('profile') ? ' + profile' : ''}; ${results.machine.nproc} cores, load ${results.machine.loadavg_at_start.join(' ')}`,
);
if (wanted('transport') || wanted('throughput') || wanted('audit') || flag('profile')) {
  await redis.flushall();
  await resetStreams();
  const n = SIZES.workflows;
  const { messages } = await publishBacklog(`tp-${Date.now().toString(36)}`, n, 1);
  results.backlog = { workflows: n, messages, mix: '3/8 FX (trigger, momentum, risk), 3/8 ETF (same), 2/8 crypto (+ sentiment)' };
  if (wanted('transport')) await phase('transport', () => phaseTransport(messages));
  if (wanted('throughput')) await phase('throughput', () => phaseThroughput(n, messages));
  if (wanted('audit')) await phase('audit', () => phaseAudit(n, messages));
  if (flag('profile')) await phase('profile', () => phaseProfile(n, messages));
}
if (wanted('scaling')) {
  await redis.flushall();
  await resetStreams();
  const n = SIZES.scalingWorkflows;
  const { messages } = await publishBacklog(`sc-${Date.now().toString(36)}`, n, 2);
  await phase('scaling', () => phaseScaling(n, messages));
}
if (wanted('latency')) await phase('latency', phaseLatency);
if (wanted('backpressure')) await phase('backpressure', phaseBackpressure);
if (wanted('publish')) await phase('publish', phasePublish);
if (wanted('timeouts')) await phase('timeouts', () => phaseTimeouts(SIZES.timeouts));
if (wanted('sustained')) {
  const rate = TIMEOUT_RATE ?? (results.timeouts?.capacity_per_s ? Math.round(results.timeouts.capacity_per_s / 2) : null);
  if (rate) await phase('sustained', () => phaseSustained(rate));
  else results.errors.push({ phase: 'sustained', error: 'no timeout capacity measured (the timeouts phase failed) and no --timeout-rate' });
}
if (wanted('footprint')) await phase('footprint', phaseFootprint);
results.machine.loadavg_at_end = loadavg().map(round1);
results.duration_s = Math.round((Date.now() - t0) / 1000);
results.targets = targets(results);

writeFileSync(join(RESULTS_DIR, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
process.stdout.write('\n' + table(results) + '\n');
log(
  `wrote bench/results/latest.json${results.latency ? ', bench/results/latency.svg' : ''}${results.profile ? ', bench/results/profile.txt' : ''} in ${results.duration_s} s`,
);

await nc.drain();
await redis.quit();
process.exit(results.errors.length > 0 ? 1 : 0);
