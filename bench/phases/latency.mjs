// Latency: signal to decision in an open loop at --rate workflows/s, the orchestrator against the raw pipeline. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { latencySvg } from '../svg.mjs';
import { js, log, nc, redis, resetStreams, results, RESULTS_DIR, SIZES, startRawPipeline, startService } from '../context.mjs';
import { CpuMeter, decisionLatencies, openLoop, round3, sides, summarize } from '../lib.mjs';

async function latencyRun(side, tag, seed) {
  await redis.flushall();
  await resetStreams();
  const child = side === 'raw' ? await startRawPipeline(tag) : await startService(tag);
  const decisions = decisionLatencies(nc);
  try {
    // Warm-up at the same rate (not recorded), then let it drain.
    await openLoop(js, `${tag}-warm`, SIZES.warmupSeconds, SIZES.rate, decisions.sent(false), seed + 1000);
    await decisions.drain(10);
    decisions.pending.clear();
    const meter = new CpuMeter({ process: child.pid });
    const loop = await openLoop(js, `${tag}-m`, SIZES.latencySeconds, SIZES.rate, decisions.sent(true), seed);
    await decisions.drain(15);
    const cpu = meter.stop();
    const missing = decisions.pending.size;
    const stats = summarize(decisions.latencies);
    log(
      `latency ${side.padEnd(7)} ${tag}: p50 ${stats.p50} ms, p90 ${stats.p90}, p99 ${stats.p99}, max ${stats.max} (${stats.count} workflows at ${loop.achievedRate}/s${missing ? `, ${missing} MISSING` : ''})`,
    );
    return {
      side,
      tag,
      ...stats,
      rate_requested: SIZES.rate,
      rate_achieved: loop.achievedRate,
      missing,
      publish_errors: loop.publishErrors,
      cpu,
      values: decisions.latencies,
    };
  } finally {
    await decisions.close();
    await child.stop();
  }
}

export async function phaseLatency() {
  const runs = [];
  for (let r = 0; r < SIZES.latencyRounds; r++) {
    for (const side of sides(r, 'raw', 'service')) runs.push(await latencyRun(side, `lat-${side}-${r}`, 100 + r));
  }
  const merged = (side) => runs.filter((x) => x.side === side).flatMap((x) => x.values);
  const raw = summarize(merged('raw'));
  const service = summarize(merged('service'));
  const svg = latencySvg(
    [
      { name: 'raw pipeline', color: '#1f77b4', values: merged('raw'), p50: raw.p50, p99: raw.p99 },
      { name: 'orchestrator', color: '#d62728', values: merged('service'), p50: service.p50, p99: service.p99 },
    ],
    `Decision latency at ${SIZES.rate} workflows/s (open loop), ${results.machine.nproc} cores, servers included`,
  );
  writeFileSync(join(RESULTS_DIR, 'latency.svg'), svg);
  for (const run of runs) delete run.values;
  return { rate: SIZES.rate, seconds_per_run: SIZES.latencySeconds, raw_ms: raw, service_ms: service, p99_ratio: round3(service.p99 / raw.p99), runs };
}
