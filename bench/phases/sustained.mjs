// Timeouts, sustained: deadlines falling due at half the burst capacity. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import { log, redis, resetStreams, settings, SIZES, startService, waitDecisions } from '../context.mjs';
import { CpuMeter, round3, sleep } from '../lib.mjs';
import { seedTimeouts, timeoutLateness } from './timeouts.mjs';

/**
 * (c) Sustained: deadlines falling due evenly at `rate` per second (half the burst's capacity, or
 * --timeout-rate) for SIZES.sustainS seconds; every workflow is created before the first deadline.
 * Judged: lateness p99 <= sweep interval + 100 ms.
 */
export async function phaseSustained(rate) {
  await redis.flushall();
  await resetStreams();
  const child = await startService('ts');
  try {
    const runId = `ts-${Date.now().toString(36)}`;
    const seconds = SIZES.sustainS;
    const n = Math.round(rate * seconds);
    const { t0, targets, seeding } = await seedTimeouts(child, runId, n, (i) => (1000 * i) / rate, 17);
    await sleep(Math.max(0, t0 - 200 - Date.now()));
    const meter = new CpuMeter({ process: child.pid });
    const ok = await waitDecisions(n, seconds * 1000 + 180000, { children: [child] });
    const cpu = meter.stop();
    const late = await timeoutLateness(runId, targets);
    const achieved = Math.round((late.times.length - 1) / ((late.last_decision - late.first_decision) / 1000));
    const result = {
      rate_per_s: rate,
      seconds,
      workflows: n,
      sweep_interval_ms: settings.workflow.sweepIntervalMs,
      seeding,
      decisions: late.decisions,
      all_decided: ok,
      not_timeout_status: late.not_timeout_status,
      without_stored_deadline: late.without_stored_deadline,
      decided_per_s: achieved,
      lateness_ms: late.lateness_ms,
      deadline_placement_ms: late.deadline_placement_ms,
      cpu_ms_per_timeout: {
        service: round3((1000 * cpu.process_cpu_s) / n),
        redis: round3((1000 * cpu.redis_cpu_s) / n),
        nats: round3((1000 * cpu.nats_cpu_s) / n),
      },
      cpu,
    };
    log(
      `sustained timeouts: ${n} due at ${rate}/s over ${seconds} s, decided at ${achieved}/s; lateness p50 ${result.lateness_ms.p50} ms, p99 ${result.lateness_ms.p99} ms, max ${result.lateness_ms.max} ms`,
    );
    return result;
  } finally {
    await child.stop();
    await redis.flushall();
  }
}
