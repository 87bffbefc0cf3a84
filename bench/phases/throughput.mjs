// Throughput: the orchestrator against the raw pipeline, on the same backlog. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import {
  decisionSpan,
  jsm,
  log,
  rateBetween,
  redis,
  redisStats,
  resetStreams,
  serviceMetrics,
  SIZES,
  startRawPipeline,
  startService,
  waitDecisions,
} from '../context.mjs';
import { CpuMeter, deleteConsumers, histogramQuantile, median, metricSum, redisPerWorkflow, round3, sides, streamCount, STREAMS } from '../lib.mjs';

/** One run of a consumer (raw pipeline or service) over the SIGNALS backlog, from a clean Redis and DECISIONS. */
export async function throughputRun(side, tag, n, inbound, { nodeFlags = [], env = {} } = {}) {
  await redis.flushall();
  await resetStreams({ signals: false });
  await redis.config('RESETSTAT');
  const spawnedAt = Date.now();
  let meter = null;
  let decisionsAtMeter = 0;
  const child = side === 'raw' ? await startRawPipeline(tag) : await startService(tag, { nodeFlags, env, wait: false });
  try {
    const ok = await waitDecisions(n, Math.max(120000, n * 20), {
      children: [child],
      onFirst: (count) => {
        meter = new CpuMeter({ process: child.pid });
        decisionsAtMeter = count;
      },
    });
    const cpu = meter?.stop();
    if (!ok) throw new Error(`${side}: only ${await streamCount(jsm, STREAMS.decisions)} of ${n} decisions`);
    const span = await decisionSpan();
    const seconds = (span.last - span.first) / 1000;
    const run = {
      side,
      tag,
      decisions: span.count,
      seconds: round3(seconds),
      decisions_per_s: Math.round((span.count - 1) / seconds),
      inbound_msgs_per_s: Math.round((inbound * (span.count - 1)) / span.count / seconds),
      // Without the ramp-up and the tail: between the 10th and the 90th percent of the decisions.
      decisions_per_s_10_to_90: await rateBetween(Math.max(1, Math.round(n * 0.1)), Math.round(n * 0.9)),
      start_to_first_decision_s: round3((span.first - spawnedAt) / 1000),
      cpu,
    };
    if (cpu) {
      const per = 1000 / Math.max(n - decisionsAtMeter, 1);
      run.cpu_ms_per_workflow = {
        consumer: round3(cpu.process_cpu_s * per),
        redis: round3(cpu.redis_cpu_s * per),
        nats: round3(cpu.nats_cpu_s * per),
        other: round3(cpu.other_cpu_s * per),
      };
    }
    run.redis_per_workflow = redisPerWorkflow(await redisStats(), n);
    if (side !== 'raw') {
      const m = await serviceMetrics(child);
      run.check = {
        completed: metricSum(m, 'meta_agent_workflows_completed_total', { status: 'completed' }),
        dead_lettered: metricSum(m, 'meta_agent_dead_letters_total'),
        early_signals: metricSum(m, 'meta_agent_early_signals_total'),
        naks: metricSum(m, 'meta_agent_messages_settled_total', { action: 'nak' }),
        audit_published: metricSum(m, 'meta_agent_audit_published_total'),
        audit_dropped: metricSum(m, 'meta_agent_audit_dropped_total'),
      };
      const p = (q) => round3(histogramQuantile(m, 'meta_agent_signal_to_decision_seconds', q) * 1000);
      run.internal_signal_to_decision_ms = { p50: p(0.5), p99: p(0.99) };
    }
    return run;
  } finally {
    await child.stop();
    await deleteConsumers(jsm, STREAMS.signals);
  }
}

export async function phaseThroughput(n, inbound) {
  const runs = [];
  for (let r = 0; r < SIZES.rounds; r++) {
    for (const side of sides(r, 'raw', 'service')) {
      const run = await throughputRun(side, `tp-${side}-${r}`, n, inbound);
      run.round = r;
      runs.push(run);
      log(
        `throughput ${side.padEnd(7)} round ${r}: ${run.decisions_per_s} decisions/s, ${run.inbound_msgs_per_s} msg/s in (${run.decisions} in ${run.seconds} s)` +
          (run.cpu_ms_per_workflow
            ? `; CPU ms/workflow: consumer ${run.cpu_ms_per_workflow.consumer}, redis ${run.cpu_ms_per_workflow.redis}, nats ${run.cpu_ms_per_workflow.nats}, other ${run.cpu_ms_per_workflow.other}`
            : ''),
      );
    }
  }
  const med = (side, key) => Math.round(median(runs.filter((x) => x.side === side).map((x) => x[key])));
  const raw = med('raw', 'decisions_per_s');
  const service = med('service', 'decisions_per_s');
  // Issue 11: CPU per decided workflow of consumer + Redis + NATS (the rest of the machine left out), median per side.
  const cpuTotal = (side) =>
    round3(
      median(
        runs
          .filter((x) => x.side === side && x.cpu_ms_per_workflow)
          .map((x) => x.cpu_ms_per_workflow.consumer + x.cpu_ms_per_workflow.redis + x.cpu_ms_per_workflow.nats),
      ),
    );
  const cpuRaw = cpuTotal('raw');
  const cpuService = cpuTotal('service');
  return {
    workflows: n,
    cpu_ms_per_workflow_total: { raw: cpuRaw, service: cpuService, ratio: cpuRaw && cpuService ? round3(cpuService / cpuRaw) : null },
    inbound_messages: inbound,
    raw: { decisions_per_s: raw, inbound_msgs_per_s: med('raw', 'inbound_msgs_per_s'), decisions_per_s_10_to_90: med('raw', 'decisions_per_s_10_to_90') },
    service: {
      decisions_per_s: service,
      inbound_msgs_per_s: med('service', 'inbound_msgs_per_s'),
      decisions_per_s_10_to_90: med('service', 'decisions_per_s_10_to_90'),
    },
    ratio: round3(service / raw),
    runs,
  };
}
