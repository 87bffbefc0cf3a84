// Scaling: 1 to 3 replicas sharing the durable consumers, the orchestrator and the raw pipeline alike. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import { decisionSpan, jsm, log, rateBetween, redis, resetStreams, SIZES, startRawPipeline, startService, waitDecisions } from '../context.mjs';
import { CpuMeter, deleteConsumers, round3, sleep, streamCount, STREAMS, waitHttpReady } from '../lib.mjs';

/**
 * k replicas sharing the durable consumers, for the service and for the raw pipeline alike; the rate is
 * measured once every replica is consuming (from then, or 10 % of the backlog, to 90 % of it).
 */
export async function phaseScaling(n, inbound) {
  const runs = [];
  for (const k of SIZES.replicas) {
    for (const side of ['raw', 'service']) {
      await redis.flushall();
      await resetStreams({ signals: false });
      const tag = `sc-${side}-${k}`;
      const replicas = [];
      try {
        if (side === 'raw') {
          for (let i = 0; i < k; i++) replicas.push(await startRawPipeline(tag));
        } else {
          for (let i = 0; i < k; i++) replicas.push(await startService(tag, { wait: false }));
          await Promise.all(replicas.map((c) => waitHttpReady(c, c.port)));
        }
        const atReady = await streamCount(jsm, STREAMS.decisions);
        // A moment for the last replica to warm up; then the rate from there to 90 % of the backlog.
        await sleep(side === 'raw' ? 200 : 1000);
        const from = Math.max(await streamCount(jsm, STREAMS.decisions), Math.round(n * 0.1), 1);
        const to = Math.round(n * 0.9);
        const meter = new CpuMeter(Object.fromEntries(replicas.map((c, i) => [`replica${i}`, c.pid])));
        if (!(await waitDecisions(n, Math.max(120000, n * 20), { children: replicas }))) throw new Error(`scaling ${side} ${k}: decisions missing`);
        const cpu = meter.stop();
        const span = await decisionSpan();
        const per = 1000 / Math.max(n - from, 1);
        const replicasCpu = replicas.reduce((sum, _c, i) => sum + (cpu[`replica${i}_cpu_s`] ?? 0), 0);
        const run = {
          side,
          replicas: k,
          decisions_before_all_ready: atReady,
          measured_from_decision: from,
          measured_to_decision: to,
          decisions_per_s: from < to ? await rateBetween(from, to) : null,
          first_to_last_decisions_per_s: Math.round((span.count - 1) / ((span.last - span.first) / 1000)),
          cpu_ms_per_workflow: {
            replicas: round3(replicasCpu * per),
            redis: round3(cpu.redis_cpu_s * per),
            nats: round3(cpu.nats_cpu_s * per),
            other: round3(cpu.other_cpu_s * per),
          },
          cpu,
        };
        run.inbound_msgs_per_s = run.decisions_per_s && Math.round((run.decisions_per_s * inbound) / n);
        if (from > n * 0.6) run.warning = `only decisions ${from}..${to} measured with every replica running: use a larger backlog`;
        runs.push(run);
        log(
          `scaling ${side.padEnd(7)} ${k} replica(s): ${run.decisions_per_s} decisions/s with all consuming (decisions ${from}..${to}; ${atReady} before all were ready); CPU ms/workflow ${JSON.stringify(run.cpu_ms_per_workflow)}`,
        );
      } finally {
        await Promise.all(replicas.map((c) => c.stop()));
        await deleteConsumers(jsm, STREAMS.signals);
      }
    }
  }
  return { workflows: n, runs };
}
