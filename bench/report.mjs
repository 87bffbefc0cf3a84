// The end of a benchmark run: the targets (issue 11's table, with issue 20's bounds) judged on the results, and the table printed on stdout.
import { SCALING_TOLERANCE, settings, SIZES } from './context.mjs';
import { median, round1, round3 } from './lib.mjs';

/**
 * Issue 11's targets, its table in its order, with the bounds issue 20 set for throughput, CPU and timeout
 * capacity (0.60, 1.6, 0.3; issue 11 had 0.70, 1.4, 0.5), and the same two throughput targets with the audit
 * trail off (phase `audit`, against this run's raw pipeline). A target whose figures were not measured in this
 * run (a phase left out with --only, or failed) is listed as n/a.
 */
const THROUGHPUT_MIN = 0.6;
const CPU_MAX = 1.6;
const TIMEOUTS_MIN = 0.3;

export function targets(r) {
  const out = [];
  const ok = (v) => v !== null && v !== undefined && !Number.isNaN(v);
  const add = (name, value, target, pass, note) =>
    out.push({ name, value: ok(value) ? value : null, target, pass: ok(value) ? pass : null, ...(note ? { note } : {}) });
  // 1. Throughput against the raw pipeline, same backlog, same run.
  add('throughput / raw pipeline', r.throughput?.ratio, `>= ${THROUGHPUT_MIN}`, r.throughput?.ratio >= THROUGHPUT_MIN);
  // 2. CPU per decided workflow, service + Redis + NATS, against the raw pipeline's.
  const cpu = r.throughput?.cpu_ms_per_workflow_total;
  add('CPU/workflow (self+redis+nats) / raw pipeline', cpu?.ratio, `<= ${CPU_MAX}`, cpu?.ratio <= CPU_MAX);
  // 1 and 2 with META_AGENT_AUDIT=false (phase audit), against the throughput phase's raw pipeline.
  const offRate = r.audit && r.throughput?.raw?.decisions_per_s ? round3(r.audit.off.decisions_per_s / r.throughput.raw.decisions_per_s) : null;
  const offCpu = r.audit && cpu?.raw ? round3(r.audit.off.cpu_ms_per_workflow / cpu.raw) : null;
  add('throughput / raw pipeline, audit off', offRate, `>= ${THROUGHPUT_MIN}`, offRate >= THROUGHPUT_MIN);
  add('CPU/workflow / raw pipeline, audit off', offCpu, `<= ${CPU_MAX}`, offCpu <= CPU_MAX);
  // 3. p99 signal → decision at --rate workflows/s (500) against the raw pipeline's p99.
  add(`p99 signal → decision at ${r.latency?.rate ?? SIZES.rate}/s / raw p99`, r.latency?.p99_ratio, '<= 1.5', r.latency?.p99_ratio <= 1.5);
  // 4. 1 → top replica count: throughput does not fall (within the stated noise tolerance).
  const scRun = (k) => r.scaling?.runs.find((x) => x.side === 'service' && x.replicas === k);
  const top = r.scaling ? Math.max(...r.scaling.runs.filter((x) => x.side === 'service').map((x) => x.replicas)) : 3;
  const scaling =
    r.scaling && scRun(1)?.decisions_per_s && scRun(top)?.decisions_per_s && top > 1 ? round3(scRun(top).decisions_per_s / scRun(1).decisions_per_s) : null;
  // A run measured over too little of the backlog (see phaseScaling's warning) is not judged.
  const scWarning = scRun(1)?.warning ?? scRun(top)?.warning;
  add(
    `throughput ${top} replicas / 1 replica (no fall, ${SCALING_TOLERANCE * 100} % noise)`,
    scaling,
    `>= ${1 - SCALING_TOLERANCE}`,
    scWarning ? null : scaling >= 1 - SCALING_TOLERANCE,
    scWarning && `not judged: ${scWarning}`,
  );
  // 5a. Timeout capacity against de-duplicated JetStream publishes acked per second by one process.
  const timeoutRatio = r.timeouts?.capacity_per_s && r.publish?.acked_per_s ? round3(r.timeouts.capacity_per_s / r.publish.acked_per_s) : null;
  add('timeout decisions/s / dedup publishes acked/s', timeoutRatio, `>= ${TIMEOUTS_MIN}`, timeoutRatio >= TIMEOUTS_MIN);
  // 5c. Lateness at half the timeout capacity, sustained.
  const sweep = settings.workflow.sweepIntervalMs;
  const s = r.sustained;
  add(
    `timeout lateness p99 (ms), ${s ? `${s.rate_per_s}/s for ${s.seconds} s` : 'half capacity, sustained'}`,
    s?.lateness_ms.p99,
    `<= ${sweep + 100}`,
    s?.lateness_ms.p99 <= sweep + 100,
  );
  // 6. Back-pressure: a burst drains with MAX_CONCURRENT_WORKFLOWS=20 at half the unlimited rate or better.
  add('burst drain at MAX_CONCURRENT_WORKFLOWS=20 / unlimited', r.backpressure?.ratio, '>= 0.5', r.backpressure?.ratio >= 0.5);
  // 7. Footprint, as before issue 11.
  const rss = r.footprint?.rss.slice(0, 3).map((x) => x.rss_mb);
  const spread = rss ? round3(Math.max(...rss) / Math.min(...rss)) : null;
  add(
    `RSS max/min over ${
      r.footprint
        ? r.footprint.rss
            .slice(0, 3)
            .map((x) => x.active_workflows)
            .join(' / ')
        : '0 / 10k / 100k'
    } active`,
    spread,
    '<= 1.20',
    spread <= 1.2,
  );
  // Judged with the Redis configuration the project runs and recommends (hash-max-listpack-value 4096);
  // the default encoding's figure is reported beside it (footprint section).
  const bytes = r.footprint?.active_2_signals.bytes_per_workflow;
  add(`Redis bytes per active workflow (2 signals)${r.footprint ? `, listpack ${r.footprint.hash_max_listpack_value}` : ''}`, bytes, '<= 2048', bytes <= 2048);
  return out;
}

export function table(r) {
  const rows = [];
  const row = (a, b = '', c = '') => rows.push([a, String(b ?? '-'), String(c ?? '')]);
  const head = (t) => rows.push([`== ${t}`, '', '']);
  head(
    `machine: ${r.machine.nproc} × ${r.machine.cpu_model}, node ${r.machine.node}, ${r.machine.nats_server}, ${r.machine.redis_server?.split(' ').slice(0, 3).join(' ')}; load ${r.machine.loadavg_at_start.join(' ')} → ${r.machine.loadavg_at_end.join(' ')}`,
  );
  if (r.transport) {
    head(`transport alone (${r.transport.messages} messages, median of ${SIZES.transportRounds})`);
    row('raw consume-and-ack', `${r.transport.raw_msgs_per_s} msg/s`);
    row('JetStreamServer + trivial handler', `${r.transport.transport_msgs_per_s} msg/s`, `ratio ${r.transport.ratio}`);
  }
  if (r.throughput) {
    head(`throughput (${r.throughput.workflows} workflows, ${r.throughput.inbound_messages} messages, median of ${SIZES.rounds})`);
    const cpu = (side) => {
      const runs = r.throughput.runs.filter((x) => x.side === side && x.cpu_ms_per_workflow);
      const m = (k) => round3(median(runs.map((x) => x.cpu_ms_per_workflow[k])));
      return `CPU ms/workflow: self ${m('consumer')}, redis ${m('redis')}, nats ${m('nats')}, other ${m('other')}`;
    };
    const rate = (x) => `${x.decisions_per_s} decisions/s, ${x.inbound_msgs_per_s} msg/s (10–90 %: ${x.decisions_per_s_10_to_90}/s)`;
    row('raw pipeline', rate(r.throughput.raw), cpu('raw'));
    row('orchestrator', rate(r.throughput.service), cpu('service'));
    const rw = (side) => {
      const runs = r.throughput.runs.filter((x) => x.side === side && x.redis_per_workflow);
      const m = (k) => round1(median(runs.map((x) => x.redis_per_workflow[k])));
      const evalsha = runs.map((x) => x.redis_per_workflow.busiest_commands.find((c) => c.command === 'evalsha')).filter(Boolean);
      const e = (k) => round1(median(evalsha.map((c) => c[k])));
      return `${m('commands')} commands (${e('calls_per_workflow')} scripts × ${e('usec_per_call')} µs), ${m('bytes_in')} B in, ${m('bytes_out')} B out`;
    };
    row('Redis per workflow, raw pipeline', rw('raw'));
    row('Redis per workflow, orchestrator', rw('service'));
    const ct = r.throughput.cpu_ms_per_workflow_total;
    row('CPU ms/workflow, self + redis + nats', `raw ${ct.raw}, orchestrator ${ct.service}`, `ratio ${ct.ratio}`);
    row('ratio', r.throughput.ratio);
  }
  if (r.audit) {
    const a = r.audit;
    head(`audit trail cost (${a.workflows} workflows, the same backlog, median of ${SIZES.rounds})`);
    row(
      'META_AGENT_AUDIT=false',
      `${a.off.decisions_per_s} decisions/s`,
      `CPU ms/workflow (self+redis+nats) ${a.off.cpu_ms_per_workflow}; internal p99 ${a.off.p99_ms} ms`,
    );
    row(
      'META_AGENT_AUDIT=true (default)',
      `${a.on.decisions_per_s} decisions/s`,
      `CPU ms/workflow (self+redis+nats) ${a.on.cpu_ms_per_workflow}; internal p99 ${a.on.p99_ms} ms`,
    );
    // Runs before a decision's events went as one message recorded `events_per_workflow` (then one message each).
    const messages = a.on.messages_per_workflow ?? a.on.events_per_workflow;
    row('audit messages per workflow', `${messages} (${a.on.bytes_per_workflow} B stored)`, `dropped ${a.on.dropped}`);
    row('ratio on / off', a.ratio);
  }
  if (r.scaling) {
    head(`scaling (${r.scaling.workflows} workflows; rate once every replica consumes)`);
    for (const s of r.scaling.runs) {
      const c = s.cpu_ms_per_workflow;
      row(
        `${s.side === 'raw' ? 'raw pipeline' : 'orchestrator'} × ${s.replicas}`,
        `${s.decisions_per_s} decisions/s, ${s.inbound_msgs_per_s} msg/s`,
        s.warning ?? `CPU ms/workflow: replicas ${c.replicas}, redis ${c.redis}, nats ${c.nats}, other ${c.other}`,
      );
    }
  }
  if (r.latency) {
    head(`latency at ${r.latency.rate} workflows/s, open loop (ms)`);
    const l = (x) => `p50 ${x.p50}  p90 ${x.p90}  p99 ${x.p99}  max ${x.max}  (n=${x.count})`;
    row('raw pipeline', l(r.latency.raw_ms));
    row('orchestrator', l(r.latency.service_ms), `p99 ratio ${r.latency.p99_ratio}`);
  }
  if (r.backpressure) {
    const b = r.backpressure;
    head(`back-pressure (${b.workflows} ready workflows, signals first, then triggers; ${b.replicas} replica; median of ${SIZES.backpressureRounds})`);
    row('drain, MAX_CONCURRENT_WORKFLOWS unlimited', `${b.unlimited_decisions_per_s} decisions/s`);
    row(`drain, MAX_CONCURRENT_WORKFLOWS=${b.limit}`, `${b.limited_decisions_per_s} decisions/s`, `ratio ${b.ratio}`);
  }
  if (r.publish) {
    const p = r.publish;
    head(
      `de-duplicated JetStream publishes, one process (${p.publishes_per_run} per run, ${p.payload_bytes} B, unique msgID, duplicate window ${p.stream.duplicate_window_ms} ms)`,
    );
    for (const w of p.per_window) {
      const best = w.window === p.best_window && w.client === p.best_client;
      row(`${w.client === 'js' ? 'js.publish' : 'JetStreamPublisher'}, ${w.window} in flight`, `${w.acked_per_s} acked/s`, best ? 'best: the reference' : '');
    }
  }
  if (r.timeouts) {
    const t = r.timeouts;
    head(`timeouts, burst (${t.workflows} deadlines within ${t.deadline_window_ms} ms; sweep every ${t.sweep_interval_ms} ms)`);
    row('lateness (decision stored − deadline)', `p50 ${t.lateness_ms.p50}  p99 ${t.lateness_ms.p99}  max ${t.lateness_ms.max} ms`, 'reported, no target');
    row('lateness (service histogram, bucket estimate)', `p50 ${t.lateness_ms_from_service_histogram.p50}  p99 ${t.lateness_ms_from_service_histogram.p99} ms`);
    row(
      'capacity (10–90 % of the decisions)',
      `${t.capacity_per_s} timeouts/s${t.capacity_is_a_lower_bound ? ' (a lower bound: the sweeper kept up)' : ''}`,
      `CPU ms/timeout: service ${t.storm.service_cpu_ms_per_timeout}, redis ${t.storm.redis_cpu_ms_per_timeout}, nats ${t.storm.nats_cpu_ms_per_timeout}; other ${t.storm.cpu.other_cpu_s} s over ${t.storm.cpu.wall_s} s`,
    );
    if (r.publish)
      row(
        'capacity / dedup publishes acked/s',
        round3(t.capacity_per_s / r.publish.acked_per_s),
        `${r.publish.acked_per_s}/s (${r.publish.best_client === 'js' ? 'js.publish' : 'JetStreamPublisher'}, ${r.publish.best_window} in flight)`,
      );
    row(
      'deadlines stored − intended',
      `p50 ${t.deadline_placement_ms.p50}  p99 ${t.deadline_placement_ms.p99}  max ${t.deadline_placement_ms.max} ms`,
      `created at ${t.seeding.created_per_s}/s, ${t.seeding.margin_before_first_deadline_ms} ms before the first deadline`,
    );
    if (t.idle_before_deadlines)
      row(
        `idle sweeper at ${t.idle_before_deadlines.active} active, none due`,
        `service ${t.idle_before_deadlines.service_cpu_percent}% CPU, redis ${t.idle_before_deadlines.redis_cpu_percent}%`,
      );
  }
  if (r.sustained) {
    const t = r.sustained;
    head(`timeouts, sustained (${t.rate_per_s}/s due for ${t.seconds} s: ${t.workflows} deadlines; sweep every ${t.sweep_interval_ms} ms)`);
    row(
      'lateness (decision stored − deadline)',
      `p50 ${t.lateness_ms.p50}  p99 ${t.lateness_ms.p99}  max ${t.lateness_ms.max} ms`,
      `decided at ${t.decided_per_s}/s`,
    );
    row(
      'CPU ms/timeout',
      `service ${t.cpu_ms_per_timeout.service}, redis ${t.cpu_ms_per_timeout.redis}, nats ${t.cpu_ms_per_timeout.nats}`,
      `other ${t.cpu.other_cpu_s} s over ${t.cpu.wall_s} s`,
    );
    row(
      'deadlines stored − intended',
      `p50 ${t.deadline_placement_ms.p50}  p99 ${t.deadline_placement_ms.p99}  max ${t.deadline_placement_ms.max} ms`,
      `created at ${t.seeding.created_per_s}/s, ${t.seeding.margin_before_first_deadline_ms} ms before the first deadline`,
    );
  }
  if (r.footprint) {
    const f = r.footprint;
    head('footprint');
    row(
      'Redis per active workflow, 2 signals',
      `${f.active_2_signals.bytes_per_workflow} B`,
      `hash-max-listpack-value ${f.hash_max_listpack_value}; ${JSON.stringify(f.active_2_signals.memory_usage_sample)}`,
    );
    if (f.active_2_signals_default_encoding) {
      row(
        '  the same, Redis default encoding (64)',
        `${f.active_2_signals_default_encoding.bytes_per_workflow} B`,
        JSON.stringify(f.active_2_signals_default_encoding.memory_usage_sample),
      );
    }
    row('Redis per active workflow, trigger only', `${f.active_trigger_only.bytes_per_workflow} B`);
    row('Redis per finished workflow (retained)', `${f.finished.bytes_per_workflow} B`, JSON.stringify(f.finished.memory_usage_sample));
    for (const s of f.rss) row(`service RSS at ${s.active_workflows} active`, `${s.rss_mb} MB (heap used ${s.heap_used_mb} MB)`, s.label);
  }
  if (r.profile) {
    head('profile (top 5 self time)');
    for (const fn of r.profile.functions.slice(0, 5)) row(`${fn.share}%`, fn.name);
  }
  if (r.targets.length) {
    head('targets');
    for (const t of r.targets) row(t.name, t.value, `${t.target}  ${t.pass === null ? 'n/a' : t.pass ? 'PASS' : 'FAIL'}${t.note ? `  (${t.note})` : ''}`);
  }
  for (const e of r.errors) row(`ERROR in ${e.phase}`, e.error.split('\n')[0]);
  const w0 = Math.max(...rows.map((x) => (x[0].startsWith('== ') ? 0 : x[0].length)));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  return rows.map(([a, b, c]) => (a.startsWith('== ') ? `\n${a}` : `  ${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`.trimEnd())).join('\n');
}
