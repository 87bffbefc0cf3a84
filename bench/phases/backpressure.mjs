// Back-pressure: a burst drained with MAX_CONCURRENT_WORKFLOWS=20 against unlimited. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import { decisionSpan, js, jsm, log, redis, resetStreams, serviceMetrics, SIZES, startService, waitDecisions } from '../context.mjs';
import { backlog, CpuMeter, median, messageTime, metricSum, publishAll, round3, sides, streamCount, STREAMS, waitConsumersIdle } from '../lib.mjs';

/**
 * Back-pressure (issue 11; the fault suite's `backpressure` scenario, on one replica here): a burst of n
 * workflows that can all decide at once, their signals published first (the service buffers them as early
 * signals), then their triggers; the same burst drained with the concurrency limit out of the way and at
 * `limit`. Rate = n / (last decision − first trigger), both from stream timestamps.
 */
async function backpressureRun(limit, tag, n, seed) {
  await redis.flushall();
  await resetStreams();
  const child = await startService(tag, { env: { META_AGENT_MAX_CONCURRENT_WORKFLOWS: String(limit) } });
  try {
    const workflows = backlog(`${tag}-${Date.now().toString(36)}`, n, seed);
    const signals = workflows.flatMap((w) => w.messages.slice(1));
    const triggers = workflows.map((w) => w.messages[0]);
    await publishAll(js, signals);
    if (!(await waitConsumersIdle(jsm, STREAMS.signals, [child.consumers[1]], 120000))) throw new Error(`backpressure ${tag}: the signals were not consumed`);
    const meter = new CpuMeter({ process: child.pid });
    const firstAck = await js.publish(triggers[0][0], triggers[0][1]);
    await publishAll(js, triggers.slice(1));
    if (!(await waitDecisions(n, Math.max(120000, n * 20), { children: [child] })))
      throw new Error(`backpressure ${tag}: only ${await streamCount(jsm, STREAMS.decisions)} of ${n} decisions`);
    const cpu = meter.stop();
    const firstTrigger = await messageTime(jsm, STREAMS.signals, firstAck.seq);
    const span = await decisionSpan();
    const m = await serviceMetrics(child);
    const run = {
      max_concurrent_workflows: limit,
      workflows: n,
      seconds: round3((span.last - firstTrigger) / 1000),
      decisions_per_s: Math.round(n / ((span.last - firstTrigger) / 1000)),
      dead_lettered: metricSum(m, 'meta_agent_dead_letters_total'),
      cpu,
    };
    log(`backpressure MAX_CONCURRENT_WORKFLOWS=${limit}: ${run.decisions_per_s} decisions/s (${n} in ${run.seconds} s from the first trigger)`);
    return run;
  } finally {
    await child.stop();
  }
}

export async function phaseBackpressure() {
  const runs = [];
  const n = SIZES.burst;
  for (let r = 0; r < SIZES.backpressureRounds; r++) {
    for (const limit of sides(r, 10000000, 20)) {
      const run = await backpressureRun(limit, `bp-${limit === 20 ? 'limited' : 'unlimited'}-${r}`, n, 300 + r);
      run.round = r;
      runs.push(run);
    }
  }
  const med = (limit) => Math.round(median(runs.filter((x) => x.max_concurrent_workflows === limit).map((x) => x.decisions_per_s)));
  const unlimited = med(10000000);
  const limited = med(20);
  return {
    workflows: n,
    replicas: 1,
    limit: 20,
    unlimited_decisions_per_s: unlimited,
    limited_decisions_per_s: limited,
    ratio: round3(limited / unlimited),
    runs,
  };
}
