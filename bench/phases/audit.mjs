// The audit trail's cost (issue 18): the service on the throughput backlog with META_AGENT_AUDIT off and on. Part of `npm run bench` (bench/run.mjs).
import { jsm, log, settings, SIZES } from '../context.mjs';
import { median, round3, sides } from '../lib.mjs';
import { throughputRun } from './throughput.mjs';

/** The service on the same backlog with META_AGENT_AUDIT off and on (the default), sides alternating, median per side; and what the trail published per workflow. */
export async function phaseAudit(n, inbound) {
  const runs = [];
  for (let r = 0; r < SIZES.rounds; r++) {
    for (const side of sides(r, 'audit-off', 'audit-on')) {
      const env = side === 'audit-off' ? { META_AGENT_AUDIT: 'false' } : {};
      const run = await throughputRun(side, `au-${side}-${r}`, n, inbound, { env });
      if (side === 'audit-on') {
        const info = await jsm.streams.info(settings.nats.audit.stream);
        run.audit_stream = { messages: info.state.messages, bytes: info.state.bytes };
      }
      run.round = r;
      runs.push(run);
      const c = run.cpu_ms_per_workflow;
      log(
        `audit ${side.padEnd(9)} round ${r}: ${run.decisions_per_s} decisions/s (${run.decisions} in ${run.seconds} s)` +
          (c ? `; CPU ms/workflow: service ${c.consumer}, redis ${c.redis}, nats ${c.nats}, other ${c.other}` : '') +
          (run.audit_stream ? `; audit ${run.audit_stream.messages} events, ${run.check.audit_dropped} dropped` : ''),
      );
    }
  }
  const of = (side) => runs.filter((x) => x.side === side);
  const med = (side, f) => round3(median(of(side).map(f)));
  const off = med('audit-off', (x) => x.decisions_per_s);
  const on = med('audit-on', (x) => x.decisions_per_s);
  const cpu = (side) =>
    med(side, (x) => (x.cpu_ms_per_workflow ? x.cpu_ms_per_workflow.consumer + x.cpu_ms_per_workflow.redis + x.cpu_ms_per_workflow.nats : NaN));
  return {
    workflows: n,
    off: { decisions_per_s: Math.round(off), cpu_ms_per_workflow: cpu('audit-off'), p99_ms: med('audit-off', (x) => x.internal_signal_to_decision_ms?.p99) },
    on: {
      decisions_per_s: Math.round(on),
      cpu_ms_per_workflow: cpu('audit-on'),
      p99_ms: med('audit-on', (x) => x.internal_signal_to_decision_ms?.p99),
      // Messages in the audit stream: a decision's events go as one (docs/ARCHITECTURE.md, "Audit trail").
      messages_per_workflow: med('audit-on', (x) => x.audit_stream.messages / n),
      bytes_per_workflow: Math.round(med('audit-on', (x) => x.audit_stream.bytes / n)),
      dropped: med('audit-on', (x) => x.check.audit_dropped),
    },
    ratio: round3(on / off),
    runs,
  };
}
