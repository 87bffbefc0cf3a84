// Timeouts, the burst (and the timeout capacity); seeding and measuring timeouts, shared with the sustained phase. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import { js, jsm, log, readDecisions, redis, resetStreams, serviceMetrics, settings, SIZES, startService, waitDecisions } from '../context.mjs';
import {
  backlog,
  CpuMeter,
  histogramQuantile,
  metricSum,
  publishAll,
  round1,
  round3,
  sleep,
  streamCount,
  STREAMS,
  summarize,
  waitConsumersIdle,
} from '../lib.mjs';

/**
 * Workflows that time out at chosen moments, created through the service's public interface: one trigger
 * each on `signals.normalized` with its own `timeout_seconds` (no agent ever answers). `deadlineAt(i)` (ms,
 * from the start `t0` chosen here) is where workflow i's deadline should land. A short calibration first
 * measures how fast the service takes triggers, so that every workflow is created before the first deadline
 * (creation costs CPU: it stays out of the measured window). Triggers are published in deadline order while
 * the service keeps up (at most ~1000 waiting in its consumer), each with timeout = its target − now; the
 * deadline the service actually stored is read from Redis afterwards (`{prefix:N}:wf:<corr_id>`, field
 * `deadline`, docs/ARCHITECTURE.md) and lateness is measured against that.
 */
export async function seedTimeouts(child, runId, n, deadlineAt, seed) {
  const triggerConsumer = child.consumers[0];
  // Three chunks: the first warms the service up, the other two are timed and the faster one counts (a
  // chunk slowed down by another user of the machine would make the lead needlessly long; a lead too short
  // is reported as a warning).
  const chunk = Math.min(2000, Math.max(200, Math.round(n / 40)));
  const calN = 3 * chunk;
  const cal = backlog(`${runId}-cal`, calN, seed + 1, { agents: [], extra: { timeout_seconds: 3000 } }).map((w) => w.messages[0]);
  let ingestPerS = 0;
  for (let k = 0; k < 3; k++) {
    const c0 = Date.now();
    await publishAll(js, cal.slice(k * chunk, (k + 1) * chunk));
    if (!(await waitConsumersIdle(jsm, STREAMS.signals, [triggerConsumer], 60000, 5))) throw new Error('timeouts: the calibration triggers were not consumed');
    if (k > 0) ingestPerS = Math.max(ingestPerS, chunk / ((Date.now() - c0) / 1000));
  }
  // 80 % of the calibrated rate (the publisher waits for the service), plus 2 s of margin.
  const leadMs = Math.round((n / (0.8 * ingestPerS)) * 1000 + 2000);
  const t0 = Date.now() + leadMs;
  const workflows = backlog(runId, n, seed, { agents: [] });
  const targets = new Map();
  let lateSeeded = 0;
  const pending = new Set();
  let failed = null;
  const s0 = Date.now();
  // How long a trigger published now waits before the service stores it (what is ahead of it / the rate):
  // subtracted from its timeout, so that the stored deadline lands near the intended one.
  let queueMs = 0;
  for (let i = 0; i < n; i++) {
    if (failed) throw failed;
    if (i % 250 === 0) {
      for (;;) {
        const info = await jsm.consumers.info(STREAMS.signals, triggerConsumer);
        const waiting = info.num_pending + info.num_ack_pending + pending.size;
        const stored = i - waiting;
        queueMs = (1000 * waiting) / (stored > 2000 ? stored / ((Date.now() - s0) / 1000) : ingestPerS);
        if (waiting <= 1000) break;
        await sleep(10);
      }
    }
    const wf = workflows[i];
    const target = t0 + deadlineAt(i);
    targets.set(wf.corrId, target);
    let timeoutS = (target - Date.now() - queueMs) / 1000;
    if (timeoutS < 0.001) {
      lateSeeded++;
      timeoutS = 0.001;
    }
    const text = `{"timeout_seconds":${timeoutS.toFixed(3)},${wf.messages[0][1].slice(1)}`;
    const p = js.publish(wf.messages[0][0], text).then(
      () => pending.delete(p),
      (error) => {
        failed = error;
        pending.delete(p);
      },
    );
    pending.add(p);
    if (pending.size >= 1000) await Promise.race(pending);
  }
  await Promise.all(pending);
  if (failed) throw failed;
  if (!(await waitConsumersIdle(jsm, STREAMS.signals, [triggerConsumer], 120000))) throw new Error('timeouts: the triggers were not consumed');
  const s1 = Date.now();
  const seeding = {
    calibration_triggers: calN,
    calibrated_triggers_per_s: Math.round(ingestPerS),
    created: n,
    creation_ms: s1 - s0,
    created_per_s: Math.round(n / ((s1 - s0) / 1000)),
    margin_before_first_deadline_ms: t0 + deadlineAt(0) - s1,
    published_after_their_target: lateSeeded,
  };
  if (seeding.margin_before_first_deadline_ms < 300) seeding.warning = 'creation ran into the deadline window';
  log(
    `timeouts: ${n} workflows created through triggers in ${seeding.creation_ms} ms (${seeding.created_per_s}/s); first deadline in ${seeding.margin_before_first_deadline_ms} ms`,
  );
  return { t0, targets, seeding };
}

/** The deadlines the service stored for a run's workflows (corr_id → ms), from the documented workflow hash. */
async function storedDeadlines(runId) {
  const out = new Map();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{*}:wf:${runId}.*`, 'COUNT', 2000);
    cursor = next;
    const values = await Promise.all(keys.map((k) => redis.hget(k, 'deadline')));
    keys.forEach((k, i) => values[i] !== null && out.set(k.slice(k.indexOf(':wf:') + 4), Number(values[i])));
  } while (cursor !== '0');
  return out;
}

/**
 * The decisions of a timeout run: lateness (decision's stream timestamp − the stored deadline) for every
 * workflow of `runId`, and how far the stored deadlines landed from where they were meant to be.
 */
export async function timeoutLateness(runId, targets) {
  const decisions = (await readDecisions(await streamCount(jsm, STREAMS.decisions))).filter((d) => d.body.corr_id?.startsWith(`${runId}.`));
  const deadlines = await storedDeadlines(runId);
  const lateness = [];
  const placement = [];
  let notTimeout = 0;
  let noDeadline = 0;
  for (const d of decisions) {
    if (d.body.status !== 'timeout') notTimeout++;
    const deadline = deadlines.get(d.body.corr_id);
    if (deadline === undefined) {
      noDeadline++;
      continue;
    }
    lateness.push(d.at - deadline);
    placement.push(deadline - targets.get(d.body.corr_id));
  }
  const times = decisions.map((d) => d.at).sort((a, b) => a - b);
  const bytes = decisions.length ? Math.round(decisions.reduce((a, d) => a + d.bytes, 0) / decisions.length) : null;
  return {
    decisions: decisions.length,
    not_timeout_status: notTimeout,
    without_stored_deadline: noDeadline,
    lateness_ms: summarize(lateness),
    deadline_placement_ms: summarize(placement),
    first_decision: times[0],
    last_decision: times[times.length - 1],
    times,
    decision_bytes_avg: bytes,
  };
}

/**
 * (b) The burst: N workflows whose deadlines are spread evenly over a window of a few seconds (100,000 in 3 s:
 * far beyond what the sweeper can do, so it also measures the timeout capacity: decisions/s between the
 * 10th and the 90th percent of them). Reported, not judged; the capacity feeds target (a) and the sustained
 * phase's rate.
 */
export async function phaseTimeouts(n) {
  await redis.flushall();
  await resetStreams();
  const child = await startService('to');
  try {
    const runId = `to-${Date.now().toString(36)}`;
    const windowMs = SIZES.timeoutWindowS * 1000;
    const { t0, targets, seeding } = await seedTimeouts(child, runId, n, (i) => (windowMs * i) / n, 7);
    const result = {
      workflows: n,
      deadline_window_ms: windowMs,
      sweep_interval_ms: settings.workflow.sweepIntervalMs,
      sweep_batch: settings.workflow.sweepBatch,
      seeding,
    };
    // The sweeper's cost while N workflows are active and none is due.
    await sleep(300);
    if (t0 - 200 - Date.now() >= 500) {
      const idleMeter = new CpuMeter({ process: child.pid });
      await sleep(t0 - 200 - Date.now());
      const idle = idleMeter.stop();
      result.idle_before_deadlines = {
        active: n + seeding.calibration_triggers,
        wall_s: idle.wall_s,
        service_cpu_percent: round1((100 * idle.process_cpu_s) / idle.wall_s),
        redis_cpu_percent: round1((100 * idle.redis_cpu_s) / idle.wall_s),
      };
    } else await sleep(Math.max(0, t0 - 200 - Date.now()));
    // The storm.
    const storm = new CpuMeter({ process: child.pid });
    const ok = await waitDecisions(n, windowMs + 180000, { children: [child] });
    const cpu = storm.stop();
    const late = await timeoutLateness(runId, targets);
    const m = await serviceMetrics(child);
    const q = (x) => round3(histogramQuantile(m, 'meta_agent_timeout_lateness_seconds', x) * 1000);
    const at = (f) => late.times[Math.min(late.times.length - 1, Math.max(0, Math.round(late.times.length * f) - 1))];
    const capacity = Math.round((0.8 * late.times.length) / ((at(0.9) - at(0.1)) / 1000));
    Object.assign(result, {
      decisions: late.decisions,
      all_decided: ok,
      not_timeout_status: late.not_timeout_status,
      without_stored_deadline: late.without_stored_deadline,
      lateness_ms: late.lateness_ms,
      deadline_placement_ms: late.deadline_placement_ms,
      decision_bytes_avg: late.decision_bytes_avg,
      lateness_ms_from_service_histogram: {
        count: metricSum(m, 'meta_agent_timeout_lateness_seconds_count'),
        p50: q(0.5),
        p99: q(0.99),
        mean: round3((1000 * metricSum(m, 'meta_agent_timeout_lateness_seconds_sum')) / metricSum(m, 'meta_agent_timeout_lateness_seconds_count')),
      },
      // Timeouts/s while the sweeper had a backlog (between the 10th and the 90th percent of the decisions).
      capacity_per_s: capacity,
      // The sweeper kept up with the deadlines (no backlog): the rate is theirs, the capacity is at least that.
      capacity_is_a_lower_bound: capacity >= (0.9 * n) / (windowMs / 1000),
      storm: {
        last_decision_after_last_deadline_ms: round1(late.last_decision - (t0 + windowMs)),
        timeouts_per_s: Math.round(n / cpu.wall_s),
        service_cpu_s: cpu.process_cpu_s,
        redis_cpu_s: cpu.redis_cpu_s,
        nats_cpu_s: cpu.nats_cpu_s,
        service_cpu_ms_per_timeout: round3((1000 * cpu.process_cpu_s) / n),
        redis_cpu_ms_per_timeout: round3((1000 * cpu.redis_cpu_s) / n),
        nats_cpu_ms_per_timeout: round3((1000 * cpu.nats_cpu_s) / n),
        cpu,
      },
    });
    log(
      `timeouts: lateness p50 ${result.lateness_ms.p50} ms, p99 ${result.lateness_ms.p99} ms, max ${result.lateness_ms.max} ms (service histogram p99 ≈ ${q(0.99)} ms); capacity ${capacity} timeouts/s; service CPU ${cpu.process_cpu_s} s, redis ${cpu.redis_cpu_s} s`,
    );
    return result;
  } finally {
    await child.stop();
    await redis.flushall();
  }
}
