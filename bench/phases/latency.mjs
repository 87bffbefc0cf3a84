// Latency: signal to decision in an open loop at --rate workflows/s, the orchestrator against the raw pipeline. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { latencySvg } from '../svg.mjs';
import { js, log, nc, redis, resetStreams, results, RESULTS_DIR, SIZES, startRawPipeline, startService } from '../context.mjs';
import { backlog, CpuMeter, round1, round3, sides, sleep, SUBJECTS, summarize } from '../lib.mjs';

/**
 * Open loop at `rate` workflows/s for `seconds`: each workflow's trigger and needed signals published back
 * to back; latency = decision received (core subscription) − the moment its last message was published.
 */
async function openLoop(runId, seconds, rate, onSent, seed) {
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

async function latencyRun(side, tag, seed) {
  await redis.flushall();
  await resetStreams();
  const child = side === 'raw' ? await startRawPipeline(tag) : await startService(tag);
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
  const drain = async (seconds) => {
    for (let t = 0; t < seconds * 10 && pending.size > 0; t++) await sleep(100);
  };
  try {
    // Warm-up at the same rate (not recorded), then let it drain.
    await openLoop(`${tag}-warm`, SIZES.warmupSeconds, SIZES.rate, (corr, sentAt) => pending.set(corr, { sentAt, measured: false }), seed + 1000);
    await drain(10);
    pending.clear();
    const meter = new CpuMeter({ process: child.pid });
    const loop = await openLoop(`${tag}-m`, SIZES.latencySeconds, SIZES.rate, (corr, sentAt) => pending.set(corr, { sentAt, measured: true }), seed);
    await drain(15);
    const cpu = meter.stop();
    const missing = pending.size;
    const stats = summarize(latencies);
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
      values: latencies,
    };
  } finally {
    await sub.drain();
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
