import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { parseSettings } from '../../src/config/env.schema.js';
import { TradingDecisionStrategy } from '../../src/workflow/strategies/trading.strategy.js';
import { defaultTimeoutDecision, toAgentSignal, toTriggerSignal } from '../../src/workflow/workflow-context.js';
import type { AgentSignal, Decision, WorkflowContext } from '../../src/workflow/workflow.types.js';
import type { HostileMessage } from './hostile.js';
import type { SentSignal, WorkflowRecord } from './load.js';

/*
 * The checks of a fault run, from the outside: what the generator sent, what the DECISIONS and
 * DEADLETTER streams hold, what a plain subscriber saw, what the service reports for each workflow.
 */

export interface StoredDecision {
  text: string;
  /** When the stream stored it (ms). */
  storedAt: number;
  /** Its Nats-Msg-Id: the workflow instance, `<workflow_id>@<started ms>`. */
  msgId?: string;
  body: {
    corr_id: string;
    workflow_id: string;
    workflow_type: string;
    status: string;
    decision: Decision;
    source_signals: { agent: string; confidence: number; timestamp: string | null }[];
    orchestrated_at: string;
    metadata: Record<string, unknown>;
  };
}

export interface DeadLetter {
  data: Uint8Array;
  headers: Record<string, string>;
}

export interface Inspection {
  status: number;
  /** The fields of GET /workflows/:corr_id the checks use (kept small: a long run inspects 200,000). */
  body?: {
    status: string;
    started_at: string;
    deadline_at: string;
    decision_published: boolean;
    /** agent -> the stored signal's timestamp and confidence. */
    signals?: Record<string, { timestamp: unknown; confidence: unknown }>;
  };
}

/** A message the run expects in DEADLETTER (matched by its `Poison-Id` header), e.g. a poison trigger. */
export interface ExpectedDeadLetter {
  id: string;
  label: string;
  reasons: string[];
}

/** Digest of a decision's bytes: what the plain subscriber keeps of each message it saw. */
export const digest = (text: string) => createHash('sha1').update(text).digest('base64');

export interface CheckInput {
  replicaEnv: Record<string, string>;
  workflows: WorkflowRecord[];
  hostile: HostileMessage[];
  decisions: StoredDecision[];
  /** workflow_id -> the digest of every payload a plain core-NATS subscriber received. */
  plain: Map<string, string[]>;
  deadLetters: DeadLetter[];
  inspections: Map<string, Inspection>;
  /** Lateness bound of timeout decisions (ms). */
  latenessBoundMs: number;
  /**
   * Times Redis was away (stopped, killed, paused): a timeout whose deadline fell in one (or within 1 s
   * before it) is measured from its end.
   */
  /**
   * Times Redis was away: a deadline inside one is measured from its end (plus `extraMs`: after a stall
   * longer than the command timeout, a sweep whose reply was lost has claimed what was due for one claim
   * lease, and those timeouts come after that lease; docs/RELIABILITY.md, "Timeouts").
   */
  blackouts?: { from: number; to: number; extraMs?: number }[];
  /**
   * Issue 9, 9: a workflow whose deciding signals were all acknowledged by JetStream at least 3 s before
   * its deadline must be decided on them (completed), never timed out; and no timeout may have every
   * needed signal stored. For runs whose timeouts are long enough for that to be fair.
   */
  strictComplete?: boolean;
  /** Messages that must be dead-lettered (poison triggers). */
  expectedDeadLetters?: ExpectedDeadLetter[];
  /** At least one timeout must fire (default true; a burst of complete workflows has none). */
  requireTimeouts?: boolean;
}

export interface CheckResult {
  accepted: number;
  unconfirmed: number;
  declined: number;
  completed: number;
  timedOut: number;
  failed: number;
  decisionsInStream: number;
  duplicates: number;
  missing: number;
  wrong: number;
  timeoutsWithEnoughSignals: number;
  /** Complete workflows (every deciding signal acknowledged in time) that timed out. */
  completeTimedOut: number;
  /** Targeted revision workflows: whose second revision was seen stored before momentum went out / decided on the first revision anyway. */
  revisionsChecked: number;
  revisionsSuperseded: number;
  /** Targeted revision workflows decided on the first revision while the second was never seen stored (not judged). */
  revisionsUnverified: number;
  /** Decisions whose source_signals differ from the signals GET /workflows/:corr_id shows stored. */
  storedMismatch: number;
  poisonDeadLettered: number;
  malformedSent: number;
  deadLettered: number;
  oddAccepted: number;
  unexpectedDeadLetters: number;
  plainSeen: number;
  plainMissed: number;
  plainDuplicates: number;
  timeoutsMeasured: number;
  worstLatenessMs: number;
  p99LatenessMs: number;
  worstStoredLatenessMs: number;
  /** Every timeout measured: corr_id, deadline, lateness (ms), for the post-mortem. */
  latenessSamples: { corrId: string; deadline: string; lateMs: number; storedLateMs: number }[];
  violations: Map<string, string[]>;
}

const EPS = 1e-9;

function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) < EPS;
  return JSON.stringify(a) === JSON.stringify(b);
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function check(input: CheckInput): CheckResult {
  const violations = new Map<string, string[]>();
  const violate = (kind: string, detail: string) => {
    const list = violations.get(kind) ?? [];
    list.push(detail);
    violations.set(kind, list);
  };
  const strategy = new TradingDecisionStrategy(parseSettings(input.replicaEnv).workflow);

  const byWorkflow = new Map<string, StoredDecision[]>();
  for (const d of input.decisions) {
    const list = byWorkflow.get(d.body.workflow_id) ?? [];
    list.push(d);
    byWorkflow.set(d.body.workflow_id, list);
  }

  const r: CheckResult = {
    accepted: 0,
    unconfirmed: 0,
    declined: 0,
    completed: 0,
    timedOut: 0,
    failed: 0,
    decisionsInStream: input.decisions.length,
    duplicates: 0,
    missing: 0,
    wrong: 0,
    timeoutsWithEnoughSignals: 0,
    completeTimedOut: 0,
    revisionsChecked: 0,
    revisionsSuperseded: 0,
    revisionsUnverified: 0,
    storedMismatch: 0,
    poisonDeadLettered: 0,
    malformedSent: 0,
    deadLettered: 0,
    oddAccepted: 0,
    unexpectedDeadLetters: 0,
    plainSeen: 0,
    plainMissed: 0,
    plainDuplicates: 0,
    timeoutsMeasured: 0,
    worstLatenessMs: 0,
    p99LatenessMs: 0,
    worstStoredLatenessMs: 0,
    latenessSamples: [],
    violations,
  };
  const lateness: number[] = [];
  const known = new Set<string>();

  for (const wf of input.workflows) {
    const workflowId = `trading:${wf.corrId}`;
    known.add(workflowId);
    const found = byWorkflow.get(workflowId) ?? [];
    const confirmed = wf.triggerMessage?.ackedAt !== undefined || wf.repeats.some((m) => m.ackedAt !== undefined);
    if (wf.kind === 'declined') {
      r.declined++;
      if (found.length > 0) violate('decision for a declined trigger', wf.corrId);
      continue;
    }
    if (!confirmed) {
      // JetStream never acknowledged the trigger: it may or may not be in the stream; at most one decision.
      r.unconfirmed++;
      if (found.length > 1) violate('duplicate decisions', `${wf.corrId}: ${found.length}`);
      continue;
    }
    r.accepted++;
    if (found.length === 0) {
      r.missing++;
      violate('missing decision', wf.corrId);
      continue;
    }
    if (found.length > 1) {
      r.duplicates += found.length - 1;
      violate('duplicate decisions', `${wf.corrId}: ${found.length} in the stream`);
    }
    const d = found[0];
    const problem = checkDecision(strategy, wf, d);
    if (problem) {
      r.wrong++;
      violate('wrong decision', `${wf.corrId}: ${problem}`);
    }
    if (d.body.status === 'completed') r.completed++;
    else if (d.body.status === 'timeout') r.timedOut++;
    else r.failed++;

    // Issue 9, 1: the latest revision is the one JetStream stored last.
    if (wf.revision) {
      const risk = d.body.source_signals.find((s) => s.agent === 'risk');
      const usedFirst = !!risk && risk.timestamp === wf.revision.first.payload.timestamp && risk.confidence === wf.revision.first.payload.confidence;
      const s1 = wf.revision.first.message?.seq;
      const s2 = wf.revision.second.message?.seq;
      if (s1 !== undefined && s2 !== undefined && !(s2 > s1)) violate('harness: revisions stored out of order', `${wf.corrId}: ${s1} / ${s2}`);
      if (wf.revision.secondSeenAt !== undefined) {
        r.revisionsChecked++;
        if (usedFirst) {
          r.revisionsSuperseded++;
          violate(
            'decision on a superseded revision',
            `${wf.corrId}: ${d.body.status} ${String(d.body.decision.action)}/${String(d.body.decision.reason)} used risk revision 1 (seq ${s1}), though revision 2 (seq ${s2}) was seen stored ${(wf.revision.momentumAt ?? 0) - wf.revision.secondSeenAt} ms before momentum went out`,
          );
        }
      } else if (usedFirst) {
        r.revisionsUnverified++;
      }
    }

    // The service's own record agrees, and the decision is marked published.
    const seen = input.inspections.get(wf.corrId);
    if (!seen || seen.status !== 200 || !seen.body) {
      violate('workflow not inspectable', `${wf.corrId}: HTTP ${seen?.status}`);
    } else {
      if (seen.body.status !== d.body.status) violate('stored status differs from the decision', `${wf.corrId}: ${seen.body.status} vs ${d.body.status}`);
      if (!seen.body.decision_published) violate('decision not marked published', wf.corrId);
      // The signals stored with a decision are exactly the ones it names (ARCHITECTURE, invariant 6).
      if (seen.body.signals) {
        const stored = seen.body.signals;
        const named = d.body.source_signals;
        const differs =
          Object.keys(stored).length !== named.length ||
          named.some((s) => !Object.hasOwn(stored, s.agent) || stored[s.agent].timestamp !== s.timestamp || stored[s.agent].confidence !== s.confidence);
        if (differs) {
          r.storedMismatch++;
          violate(
            "stored signals differ from the decision's source_signals",
            `${wf.corrId}: stored ${JSON.stringify(stored)}, decision names ${JSON.stringify(named)}`,
          );
        }
      }
      if (d.body.status === 'timeout') {
        const deadline = Date.parse(seen.body.deadline_at);
        let from = deadline;
        for (const b of input.blackouts ?? []) if (deadline >= b.from - 1000 && deadline <= b.to) from = Math.max(from, b.to + (b.extraMs ?? 0));
        const late = Date.parse(d.body.orchestrated_at) - from;
        const storedLate = d.storedAt - Date.parse(seen.body.deadline_at);
        lateness.push(late);
        r.latenessSamples.push({ corrId: wf.corrId, deadline: seen.body.deadline_at, lateMs: late, storedLateMs: storedLate });
        r.worstStoredLatenessMs = Math.max(r.worstStoredLatenessMs, storedLate);
        if (late > input.latenessBoundMs) violate('timeout too late', `${wf.corrId}: ${late} ms after its deadline`);
        if (Date.parse(d.body.orchestrated_at) - deadline < -100)
          violate('timeout before its deadline', `${wf.corrId}: ${deadline - Date.parse(d.body.orchestrated_at)} ms early`);
      }
    }
    if (d.body.status === 'timeout') {
      const ctx = contextFor(strategy, wf, d);
      if (ctx && strategy.canDecide(ctx)) {
        r.timeoutsWithEnoughSignals++;
        if (input.strictComplete)
          violate('timeout with every needed signal stored (ready but never decided)', `${wf.corrId}: ${d.body.source_signals.map((s) => s.agent).join(',')}`);
      }
      if (wf.kind === 'complete' && input.strictComplete) {
        const triggerAt = wf.triggerMessage?.ackedAt ?? Math.min(...wf.repeats.map((m) => m.ackedAt ?? Infinity));
        const needed = decidingAgentsOf(wf);
        const lastSignal = Math.max(...needed.map((a) => Math.min(...wf.signals.filter((s) => s.agent === a).map((s) => s.message?.ackedAt ?? Infinity))));
        if (lastSignal + 3000 < triggerAt + wf.timeoutSeconds * 1000) {
          r.completeTimedOut++;
          violate(
            'complete workflow timed out',
            `${wf.corrId}: every deciding signal acknowledged by JetStream ${Math.round((triggerAt + wf.timeoutSeconds * 1000 - lastSignal) / 1000)} s before its deadline; decided on ${d.body.source_signals.map((s) => s.agent).join(',') || 'nothing'}`,
          );
        }
      }
    }

    // What a plain subscriber saw: never a different decision for the same workflow.
    const plain = input.plain.get(workflowId) ?? [];
    r.plainSeen += plain.length > 0 ? 1 : 0;
    if (plain.length === 0) r.plainMissed++;
    if (plain.length > 1) r.plainDuplicates += plain.length - 1;
    if (plain.length > 0) {
      const mine = digest(d.text);
      for (const seenDigest of plain) {
        if (seenDigest !== mine) violate('a plain subscriber saw a different decision', `${wf.corrId}`);
      }
    }
  }

  for (const [workflowId, list] of byWorkflow) {
    if (!known.has(workflowId)) violate('decision for a workflow nobody opened', `${workflowId} (${list.length})`);
  }

  // Hostile input.
  const letters = new Map<string, DeadLetter[]>();
  const poison = new Map<string, DeadLetter[]>();
  for (const dl of input.deadLetters) {
    const poisonId = dl.headers['Poison-Id'];
    if (poisonId !== undefined) {
      poison.set(poisonId, [...(poison.get(poisonId) ?? []), dl]);
      continue;
    }
    const id = dl.headers['Fault-Id'];
    if (id === undefined) {
      r.unexpectedDeadLetters++;
      violate(
        'real traffic dead-lettered',
        `${dl.headers['Meta-Agent-Original-Subject']}: ${dl.headers['Meta-Agent-Reason']} ${new TextDecoder().decode(dl.data.slice(0, 120))}`,
      );
      continue;
    }
    letters.set(id, [...(letters.get(id) ?? []), dl]);
  }
  for (const h of input.hostile) {
    const found = letters.get(String(h.id)) ?? [];
    if (h.message?.ackedAt === undefined) continue;
    if ('accept' in h.expect) {
      r.oddAccepted++;
      if (found.length > 0) violate('valid input dead-lettered', `${h.label}: ${found[0].headers['Meta-Agent-Reason']}`);
      const workflowId = `trading:${h.corrId}`;
      if (byWorkflow.has(workflowId)) violate('hostile input opened a workflow', `${h.label}: ${h.corrId}`);
      const seen = h.corrId ? input.inspections.get(h.corrId) : undefined;
      if (seen && seen.status !== 404) violate('hostile input opened a workflow', `${h.label}: ${h.corrId} is HTTP ${seen.status}`);
      continue;
    }
    r.malformedSent++;
    if (found.length === 0) {
      violate('malformed message not dead-lettered', `#${h.id} ${h.label}`);
      continue;
    }
    r.deadLettered++;
    if (found.length > 1) violate('malformed message dead-lettered more than once', `#${h.id} ${h.label}: ${found.length}`);
    const dl = found[0];
    const code = dl.headers['Meta-Agent-Reason-Code'];
    if (!h.expect.dl.includes(code))
      violate('dead letter with an unexpected reason', `#${h.id} ${h.label}: ${code} (${dl.headers['Meta-Agent-Reason']}), expected ${h.expect.dl.join('|')}`);
    if (!dl.headers['Meta-Agent-Reason']) violate('dead letter without a reason', `#${h.id} ${h.label}`);
    if (dl.headers['Meta-Agent-Original-Subject'] !== h.subject) violate('dead letter with the wrong subject', `#${h.id} ${h.label}`);
    const sent = typeof h.data === 'string' ? new TextEncoder().encode(h.data) : h.data;
    if (Buffer.compare(Buffer.from(sent), Buffer.from(dl.data)) !== 0) violate('dead letter payload altered', `#${h.id} ${h.label}`);
  }

  // Poison messages (issue 9, 5): dead-lettered once, for having been delivered too often.
  for (const p of input.expectedDeadLetters ?? []) {
    const found = poison.get(p.id) ?? [];
    if (found.length === 0) {
      violate('poison message not dead-lettered', p.label);
      continue;
    }
    r.poisonDeadLettered++;
    if (found.length > 1) violate('poison message dead-lettered more than once', `${p.label}: ${found.length}`);
    const code = found[0].headers['Meta-Agent-Reason-Code'];
    if (!p.reasons.includes(code))
      violate(
        'poison message dead-lettered with an unexpected reason',
        `${p.label}: ${code} (${found[0].headers['Meta-Agent-Reason']}), expected ${p.reasons.join('|')}`,
      );
  }
  for (const [id, list] of poison) {
    if (!(input.expectedDeadLetters ?? []).some((p) => p.id === id)) violate('unexpected dead letter', `Poison-Id ${id} (${list.length})`);
  }

  r.timeoutsMeasured = lateness.length;
  r.worstLatenessMs = lateness.reduce((a, b) => Math.max(a, b), 0);
  r.p99LatenessMs = percentile(lateness, 99);
  if (r.timedOut === 0 && input.requireTimeouts !== false) violate('no timeout fired', 'the run must exercise timeouts');
  return r;
}

/** The agents the trading strategy needs before it can decide, for this workflow's instrument. */
function decidingAgentsOf(wf: WorkflowRecord): string[] {
  return wf.instrument.startsWith('CRYPTO') ? ['momentum', 'risk', 'sentiment'] : ['momentum', 'risk'];
}

/** The signal the decision names for an agent, found among what the generator sent (by timestamp and confidence). */
function sentSignal(wf: WorkflowRecord, source: { agent: string; confidence: number; timestamp: string | null }): SentSignal | undefined {
  return wf.signals.find((s) => s.agent === source.agent && s.payload.timestamp === source.timestamp && s.payload.confidence === source.confidence);
}

function contextFor(strategy: TradingDecisionStrategy, wf: WorkflowRecord, d: StoredDecision): WorkflowContext | null {
  const received: Record<string, AgentSignal> = {};
  for (const source of d.body.source_signals) {
    const sent = sentSignal(wf, source);
    if (!sent) return null;
    received[source.agent] = toAgentSignal(sent.payload);
  }
  const trigger = toTriggerSignal(wf.trigger);
  const definition = strategy.define(trigger);
  return {
    corrId: wf.corrId,
    workflowId: `trading:${wf.corrId}`,
    workflowType: 'trading',
    status: 'evaluating',
    requiredAgents: definition.requiredAgents,
    receivedSignals: received,
    startedAt: new Date().toISOString(),
    decidedAt: d.body.orchestrated_at,
    timeoutSeconds: wf.timeoutSeconds,
    metadata: definition.metadata ?? {},
    trigger,
  };
}

/** Null when the decision is the one the strategy gives for the signals it names; else what differs. */
export function checkDecision(strategy: TradingDecisionStrategy, wf: WorkflowRecord, d: StoredDecision): string | null {
  const b = d.body;
  if (b.corr_id !== wf.corrId || b.workflow_type !== 'trading') return `names ${b.corr_id} / ${b.workflow_type}`;
  const agents = b.source_signals.map((s) => s.agent);
  if (new Set(agents).size !== agents.length) return `source_signals names an agent twice: ${agents.join(',')}`;
  for (const source of b.source_signals) {
    if (!sentSignal(wf, source)) return `source signal ${source.agent}@${source.timestamp} (confidence ${source.confidence}) was never sent by that agent`;
  }
  const ctx = contextFor(strategy, wf, d)!;
  if (!same(b.metadata, ctx.metadata)) return `metadata ${JSON.stringify(b.metadata)}, expected ${JSON.stringify(ctx.metadata)}`;
  if (b.status === 'completed') {
    if (!strategy.canDecide(ctx)) return `completed with signals the strategy cannot decide on: ${agents.join(',')}`;
    if (wf.kind === 'withheld' && agents.includes(wf.withheldAgent!)) return `used the withheld agent ${wf.withheldAgent}`;
    const expected = strategy.evaluate(ctx);
    for (const field of ['action', 'reason', 'direction', 'position_size', 'confidence'] as const) {
      if (!same(b.decision[field], expected[field]))
        return `${field} is ${JSON.stringify(b.decision[field])}, the strategy gives ${JSON.stringify(expected[field])}`;
    }
    const em = expected.metadata as Record<string, unknown>;
    const am = (b.decision.metadata ?? {}) as Record<string, unknown>;
    for (const field of ['instrument', 'sentiment_boost', 'correlation_adjustment', 'min_confidence_threshold'] as const) {
      if (!same(am[field], em[field])) return `decision.metadata.${field} is ${JSON.stringify(am[field])}, expected ${JSON.stringify(em[field])}`;
    }
    if (!same([...((am.agents_consulted as string[]) ?? [])].sort(), [...(em.agents_consulted as string[])].sort())) return 'agents_consulted differs';
    return null;
  }
  if (b.status === 'timeout') {
    const expected = defaultTimeoutDecision(ctx);
    if (b.decision.action !== 'timeout' || b.decision.reason !== 'workflow_timeout') return `timeout decision ${JSON.stringify(b.decision)}`;
    if (!same([...(b.decision.partial_signals as string[])].sort(), [...(expected.partial_signals as string[])].sort()))
      return 'partial_signals differs from source_signals';
    if (!same([...(b.decision.missing_signals as string[])].sort(), [...(expected.missing_signals as string[])].sort()))
      return `missing_signals ${JSON.stringify(b.decision.missing_signals)}, expected ${JSON.stringify(expected.missing_signals)}`;
    return null;
  }
  return `status ${b.status}: ${JSON.stringify(b.decision).slice(0, 200)}`;
}
