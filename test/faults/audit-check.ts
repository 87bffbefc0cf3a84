import type { JsMsg } from '@nats-io/jetstream';
import { AUDIT_DECIDED, firstCopies } from '../../src/audit/audit.events.js';
import { asyncApiSchemas, readAsyncApi } from '../support/asyncapi.js';
import { digest, type StoredDecision } from './check.js';
import type { WorkflowRecord } from './load.js';

/*
 * The audit trail under faults (issue 18, 1; docs/ARCHITECTURE.md "Audit trail", docs/RELIABILITY.md): what the
 * AUDIT stream holds for the workflows the checker saw decided, judged against what the docs promise.
 *
 * Always, whatever the faults:
 * - every event fits docs/asyncapi.yaml (the schema of its kind);
 * - every instance an event names is one whose decision is in DECISIONS (its Nats-Msg-Id): no events for
 *   instances that never existed;
 * - every `decision_published` carries exactly the bytes of the decision stored for its instance; at most one
 *   of them says `finalized` (the first finalisation wins);
 * - a workflow is frozen once: at most one `trigger_accepted`, at most one `frozen` or `timeout` (a takeover
 *   is recorded as such); every freeze event has the freeze time of the decision (`orchestrated_at`) and the
 *   snapshot the decision names (`source_signals`), and a `timeout` goes with a timeout decision;
 * - the events of an instance that ran a script (`redis_ms`) are in the order of its Redis steps: accepted at
 *   its start, signals stored between its start and its freeze, the signal that made it ready at the freeze,
 *   its finish after the freeze.
 *
 * Gaps — a decided workflow without its `trigger_accepted`, without a freeze event (frozen, timeout or
 * takeover), without its `decision_published`, or a signal of its snapshot without its signal_stored,
 * signal_duplicate or signal_early — are
 * what a crash can cost (a replica killed or dying: the events of its last moments, and a step whose message
 * is redelivered is recorded by its second run: as a duplicate, or as late when the lost step froze the
 * workflow; NATS killed or stopped: the batch being sent; Redis killed or stalled: a step whose reply was
 * lost is recorded by its redelivery). A gap is excused only when such a fault happened while the workflow was live
 * (from its first message to its decision, give or take LIVE_MARGIN_MS); any other gap fails the run.
 * SIGTERM (a rolling restart) and replica pauses excuse nothing: the docs say no event is lost to them.
 */

/** A time the docs allow audit events to be lost: a fault from `from` to `to` (ms), and what it was. */
export interface LossSpan {
  from: number;
  to: number;
  what: string;
}

export interface AuditCheckInput {
  /** Reads the AUDIT stream, oldest first, handing each message to the callback. */
  readAudit: (fn: (m: JsMsg) => void) => Promise<number>;
  decisions: StoredDecision[];
  workflows: WorkflowRecord[];
  spans: LossSpan[];
}

export interface AuditCheckResult {
  rows: [string, string][];
  violations: Map<string, string[]>;
}

/** Around a workflow's life, the time within which a fault may have cost one of its events. */
const LIVE_MARGIN_MS = 2000;
const GAPS = ['trigger_accepted', 'freeze', 'decision_published', 'signal'] as const;
type Gap = (typeof GAPS)[number];

/** What the checks keep of an event (a long run reads millions). */
interface Seen {
  kind: string;
  instance: string | null;
  redisMs: number | null;
  /** Freeze events: when, why, the snapshot's signals as `agent|timestamp|confidence`. */
  frozenMs?: number;
  why?: string;
  snapshot?: string[];
  /** Signal events: `agent|timestamp|confidence`; made_ready. */
  signal?: string;
  madeReady?: boolean;
  /** decision_published: digest of the decision, finalized. */
  decision?: string;
  finalized?: boolean;
  duplicate?: boolean;
}

const signalKey = (agent: unknown, s: { timestamp?: unknown; confidence?: unknown } | undefined) =>
  `${String(agent)}|${String(s?.timestamp ?? null)}|${String(s?.confidence ?? 0)}`;
const startedOf = (instance: string) => Number(instance.slice(instance.lastIndexOf('@') + 1));

export async function checkAuditTrail(input: AuditCheckInput): Promise<AuditCheckResult> {
  const violations = new Map<string, string[]>();
  const violate = (kind: string, detail: string) => violations.set(kind, [...(violations.get(kind) ?? []), detail]);
  const schemas = asyncApiSchemas(readAsyncApi().document);
  const validate = schemas('AuditEvent');
  const validateDecided = schemas('AuditDecided');

  // The events, by corr_id.
  const byCorrId = new Map<string, Seen[]>();
  const kinds = new Map<string, number>();
  let read = 0;
  let invalid = 0;
  let copies = 0;
  const first = firstCopies();
  await input.readAudit((m) => {
    read++;
    const text = m.string();
    // A batch sent again (not acknowledged the first time) stores its events twice: the readers keep one.
    if (!first(text)) {
      copies++;
      return;
    }
    const payload = JSON.parse(text) as Record<string, any> | Record<string, any>[];
    if (m.subject.endsWith(`.${AUDIT_DECIDED}`)) {
      // The events of a decision together: its freeze (and the signal that made it ready), then the decision.
      const events = Array.isArray(payload) ? payload : [payload];
      if (!validateDecided(events)) {
        invalid++;
        violate('audit: decided message not fitting docs/asyncapi.yaml', `${m.subject}: ${JSON.stringify(validateDecided.errors?.slice(0, 2))}`);
      }
      const instances = new Set(events.map((e) => e.instance));
      if (events.at(-1)?.event !== 'decision_published' || instances.size !== 1)
        violate(
          'audit: decided message not one instance ending with its decision',
          `${m.subject}: ${events.map((e) => `${e.event} ${e.instance}`).join(', ')}`,
        );
      for (const e of events) take(e);
    } else {
      if (Array.isArray(payload) || !validate(payload)) {
        invalid++;
        violate('audit: event not fitting docs/asyncapi.yaml', `${m.subject}: ${JSON.stringify(validate.errors?.slice(0, 2))}`);
      }
      if (!Array.isArray(payload)) take(payload);
    }
  });

  function take(e: Record<string, any>): void {
    const kind = String(e.event);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    const seen: Seen = { kind, instance: e.instance ?? null, redisMs: e.redis_ms ?? null };
    if (kind === 'frozen' || kind === 'timeout' || kind === 'takeover') {
      seen.frozenMs = e.frozen_ms;
      seen.why = e.why;
      seen.snapshot = Object.entries((e.snapshot?.signals ?? {}) as Record<string, Record<string, unknown>>)
        .map(([agent, s]) => signalKey(agent, s))
        .sort();
    } else if (kind === 'decision_published') {
      seen.decision = digest(JSON.stringify(e.decision));
      seen.finalized = e.finalized === true;
      seen.duplicate = e.duplicate === true;
    } else if (kind.startsWith('signal_')) {
      seen.signal = signalKey(e.agent, e.signal);
      seen.madeReady = e.made_ready === true;
    }
    const list = byCorrId.get(String(e.corr_id));
    if (list) list.push(seen);
    else byCorrId.set(String(e.corr_id), [seen]);
  }

  // The instances decided (the first decision of each workflow: the main check judges duplicates).
  const decided = new Map<string, StoredDecision>();
  for (const d of input.decisions) if (d.msgId && !decided.has(d.msgId)) decided.set(d.msgId, d);
  for (const [corrId, events] of byCorrId) {
    for (const e of events) {
      if (e.instance !== null && !decided.has(e.instance))
        violate('audit: event for an instance that has no decision', `${corrId}: ${e.kind} of ${e.instance}`);
    }
  }

  const workflows = new Map(input.workflows.map((w) => [w.corrId, w]));
  const gaps: Record<Gap, { excused: number; unexcused: number }> = Object.fromEntries(GAPS.map((g) => [g, { excused: 0, unexcused: 0 }])) as never;
  const excusedBy = new Map<string, number>();
  let complete = 0;
  let published = 0;
  let publishedDuplicate = 0;
  let publishedNotFinalized = 0;
  let orderChecked = 0;
  let signalsRecordedLate = 0;
  let takenOver = 0;
  let takenOverUnrecordedFreeze = 0;
  for (const [instance, d] of decided) {
    const corrId = d.body.corr_id;
    const started = startedOf(instance);
    const frozenMs = Date.parse(d.body.orchestrated_at);
    const events = (byCorrId.get(corrId) ?? []).filter((e) => e.instance === null || e.instance === instance);
    const of = (...k: string[]) => events.filter((e) => k.includes(e.kind));

    // Gaps, and whether a fault during the workflow's life excuses them.
    const wf = workflows.get(corrId);
    const firstSent = Math.min(
      started,
      ...[wf?.triggerMessage, ...(wf?.repeats ?? []), ...(wf?.signals ?? []).map((s) => s.message)].map((m) => m?.ackedAt ?? Infinity),
    );
    const liveFrom = firstSent - LIVE_MARGIN_MS;
    const liveTo = d.storedAt + LIVE_MARGIN_MS;
    const during = input.spans.filter((s) => s.from <= liveTo && s.to >= liveFrom);
    const missing: Gap[] = [];
    if (of('trigger_accepted').length === 0) missing.push('trigger_accepted');
    if (of('frozen', 'timeout', 'takeover').length === 0) missing.push('freeze');
    if (of('decision_published').length === 0) missing.push('decision_published');
    const signalEvents = new Set(of('signal_stored', 'signal_duplicate', 'signal_early').map((e) => e.signal));
    const unrecorded = d.body.source_signals.filter((s) => !signalEvents.has(signalKey(s.agent, s)));
    if (unrecorded.length > 0) {
      missing.push('signal');
      // The signal that froze the workflow, its event lost with its replica: the redelivery finds it frozen.
      const late = new Set(of('signal_late').map((e) => e.signal));
      if (unrecorded.every((s) => late.has(signalKey(s.agent, s)))) signalsRecordedLate++;
    }
    if (missing.length === 0) complete++;
    for (const gap of missing) {
      if (during.length > 0) {
        gaps[gap].excused++;
        for (const what of new Set(during.map((s) => s.what))) excusedBy.set(what, (excusedBy.get(what) ?? 0) + 1);
      } else {
        gaps[gap].unexcused++;
        const detail = gap === 'signal' ? `${gap} ${unrecorded.map((s) => s.agent).join(',')}` : gap;
        violate(
          'audit: event missing with no fault during the workflow',
          `${corrId}: ${detail} (live ${new Date(liveFrom).toISOString()} to ${new Date(liveTo).toISOString()})`,
        );
      }
    }

    // What holds whatever happened.
    if (of('trigger_accepted').length > 1) violate('audit: trigger_accepted recorded twice', `${corrId}: ${of('trigger_accepted').length}`);
    if (of('frozen', 'timeout').length > 1) violate('audit: frozen twice', `${corrId}: ${of('frozen', 'timeout').length} frozen/timeout events`);
    const sources = d.body.source_signals.map((s) => signalKey(s.agent, s)).sort();
    for (const f of of('frozen', 'timeout', 'takeover')) {
      if (f.frozenMs !== frozenMs)
        violate("audit: freeze time differs from the decision's orchestrated_at", `${corrId}: ${f.kind} ${f.frozenMs} vs ${frozenMs}`);
      if (JSON.stringify(f.snapshot) !== JSON.stringify(sources))
        violate(
          'audit: snapshot differs from the signals the decision names',
          `${corrId}: ${f.kind} ${JSON.stringify(f.snapshot)} vs ${JSON.stringify(sources)}`,
        );
      if ((f.why === 'timeout') !== (d.body.status === 'timeout') && d.body.status !== 'failed')
        violate('audit: freeze reason differs from the decision', `${corrId}: ${f.kind} why ${f.why}, decision ${d.body.status}`);
    }
    if (of('takeover').length > 0) {
      takenOver++;
      // The decider's own freeze event is lost when it died before sending it (documented).
      if (of('frozen', 'timeout').length === 0) takenOverUnrecordedFreeze++;
    }
    const publishedEvents = of('decision_published');
    published += publishedEvents.length;
    for (const p of publishedEvents) {
      if (p.duplicate) publishedDuplicate++;
      if (!p.finalized) publishedNotFinalized++;
      if (p.decision !== digest(d.text)) violate('audit: decision_published carries another decision', corrId);
    }
    if (publishedEvents.filter((p) => p.finalized).length > 1)
      violate('audit: finalised twice', `${corrId}: ${publishedEvents.filter((p) => p.finalized).length}`);

    // Redis's order.
    orderChecked++;
    const misordered = (what: string) => violate("audit: events out of their Redis steps' order", `${corrId}: ${what}`);
    for (const a of of('trigger_accepted')) if (a.redisMs !== started) misordered(`trigger_accepted at ${a.redisMs}, started ${started}`);
    for (const s of of('signal_stored', 'signal_duplicate', 'signal_superseded')) {
      if (s.redisMs === null || s.redisMs < started || s.redisMs > frozenMs) misordered(`${s.kind} at ${s.redisMs}, started ${started}, frozen ${frozenMs}`);
      if (s.madeReady && s.redisMs !== frozenMs) misordered(`the signal that made it ready at ${s.redisMs}, frozen ${frozenMs}`);
    }
    for (const p of publishedEvents)
      if (p.finalized && (p.redisMs === null || p.redisMs < frozenMs)) misordered(`finalised at ${p.redisMs}, frozen ${frozenMs}`);
  }

  const gapCells = (k: 'excused' | 'unexcused') => GAPS.map((g) => gaps[g][k]).join(' / ');
  const rows: [string, string][] = [
    ['audit messages in AUDIT / events in them / not fitting docs/asyncapi.yaml', `${read} / ${[...kinds.values()].reduce((a, b) => a + b, 0)} / ${invalid}`],
    ['audit messages stored twice (a batch sent again when not acknowledged; read once)', `${copies}`],
    [
      'audit events by kind',
      [...kinds]
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', '),
    ],
    [
      'decided workflows with a whole audit trail (trigger_accepted, freeze, decision_published, an event per snapshot signal)',
      `${complete} of ${decided.size}`,
    ],
    [
      `audit gaps in workflows live during a fault (+-${LIVE_MARGIN_MS / 1000} s): trigger_accepted / freeze / decision_published / signal`,
      `${gapCells('excused')}${excusedBy.size > 0 ? ` (faults: ${[...excusedBy].map(([w, n]) => `${w} ${n}`).join(', ')})` : ''}`,
    ],
    ['audit gaps with no fault during the workflow (must be 0)', gapCells('unexcused')],
    ['signal gaps whose signal was recorded by its redelivery, as signal_late (the workflow frozen meanwhile)', `${signalsRecordedLate}`],
    ['decision_published events / duplicate / not finalised by their replica', `${published} / ${publishedDuplicate} / ${publishedNotFinalized}`],
    ['workflows taken over (takeover event) / of them without the event of the freeze taken over', `${takenOver} / ${takenOverUnrecordedFreeze}`],
    [
      'audit: instances checked for order, decision and snapshot / violations',
      `${orderChecked} / ${[...violations].filter(([k]) => !k.startsWith('audit: event missing')).reduce((n, [, v]) => n + v.length, 0)}`,
    ],
  ];
  return { rows, violations };
}
