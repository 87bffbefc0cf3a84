import 'reflect-metadata';
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
  body?: { status: string; started_at: string; deadline_at: string; decision_published: boolean };
}

export interface CheckInput {
  replicaEnv: Record<string, string>;
  workflows: WorkflowRecord[];
  hostile: HostileMessage[];
  decisions: StoredDecision[];
  /** workflow_id -> every payload a plain core-NATS subscriber received. */
  plain: Map<string, string[]>;
  deadLetters: DeadLetter[];
  inspections: Map<string, Inspection>;
  /** Lateness bound of timeout decisions (ms). */
  latenessBoundMs: number;
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
    accepted: 0, unconfirmed: 0, declined: 0, completed: 0, timedOut: 0, failed: 0,
    decisionsInStream: input.decisions.length, duplicates: 0, missing: 0, wrong: 0, timeoutsWithEnoughSignals: 0,
    malformedSent: 0, deadLettered: 0, oddAccepted: 0, unexpectedDeadLetters: 0,
    plainSeen: 0, plainMissed: 0, plainDuplicates: 0,
    timeoutsMeasured: 0, worstLatenessMs: 0, p99LatenessMs: 0, worstStoredLatenessMs: 0, latenessSamples: [], violations,
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

    // The service's own record agrees, and the decision is marked published.
    const seen = input.inspections.get(wf.corrId);
    if (!seen || seen.status !== 200 || !seen.body) {
      violate('workflow not inspectable', `${wf.corrId}: HTTP ${seen?.status}`);
    } else {
      if (seen.body.status !== d.body.status) violate('stored status differs from the decision', `${wf.corrId}: ${seen.body.status} vs ${d.body.status}`);
      if (!seen.body.decision_published) violate('decision not marked published', wf.corrId);
      if (d.body.status === 'timeout') {
        const late = Date.parse(d.body.orchestrated_at) - Date.parse(seen.body.deadline_at);
        const storedLate = d.storedAt - Date.parse(seen.body.deadline_at);
        lateness.push(late);
        r.latenessSamples.push({ corrId: wf.corrId, deadline: seen.body.deadline_at, lateMs: late, storedLateMs: storedLate });
        r.worstStoredLatenessMs = Math.max(r.worstStoredLatenessMs, storedLate);
        if (late > input.latenessBoundMs) violate('timeout too late', `${wf.corrId}: ${late} ms after its deadline`);
        if (late < -100) violate('timeout before its deadline', `${wf.corrId}: ${-late} ms early`);
      }
    }
    if (d.body.status === 'timeout') {
      const ctx = contextFor(strategy, wf, d);
      if (ctx && strategy.canDecide(ctx)) r.timeoutsWithEnoughSignals++;
    }

    // What a plain subscriber saw: never a different decision for the same workflow.
    const plain = input.plain.get(workflowId) ?? [];
    r.plainSeen += plain.length > 0 ? 1 : 0;
    if (plain.length === 0) r.plainMissed++;
    if (plain.length > 1) r.plainDuplicates += plain.length - 1;
    for (const text of plain) {
      if (text !== d.text) violate('a plain subscriber saw a different decision', `${wf.corrId}`);
    }
  }

  for (const [workflowId, list] of byWorkflow) {
    if (!known.has(workflowId)) violate('decision for a workflow nobody opened', `${workflowId} (${list.length})`);
  }

  // Hostile input.
  const letters = new Map<string, DeadLetter[]>();
  for (const dl of input.deadLetters) {
    const id = dl.headers['Fault-Id'];
    if (id === undefined) {
      r.unexpectedDeadLetters++;
      violate('real traffic dead-lettered', `${dl.headers['Meta-Agent-Original-Subject']}: ${dl.headers['Meta-Agent-Reason']} ${new TextDecoder().decode(dl.data.slice(0, 120))}`);
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
    if (!h.expect.dl.includes(code)) violate('dead letter with an unexpected reason', `#${h.id} ${h.label}: ${code} (${dl.headers['Meta-Agent-Reason']}), expected ${h.expect.dl.join('|')}`);
    if (!dl.headers['Meta-Agent-Reason']) violate('dead letter without a reason', `#${h.id} ${h.label}`);
    if (dl.headers['Meta-Agent-Original-Subject'] !== h.subject) violate('dead letter with the wrong subject', `#${h.id} ${h.label}`);
    const sent = typeof h.data === 'string' ? new TextEncoder().encode(h.data) : h.data;
    if (Buffer.compare(Buffer.from(sent), Buffer.from(dl.data)) !== 0) violate('dead letter payload altered', `#${h.id} ${h.label}`);
  }

  r.timeoutsMeasured = lateness.length;
  r.worstLatenessMs = lateness.length > 0 ? Math.max(...lateness) : 0;
  r.p99LatenessMs = percentile(lateness, 99);
  if (r.timedOut === 0) violate('no timeout fired', 'the run must exercise timeouts');
  return r;
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
      if (!same(b.decision[field], expected[field])) return `${field} is ${JSON.stringify(b.decision[field])}, the strategy gives ${JSON.stringify(expected[field])}`;
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
    if (!same([...(b.decision.partial_signals as string[])].sort(), [...(expected.partial_signals as string[])].sort())) return 'partial_signals differs from source_signals';
    if (!same([...(b.decision.missing_signals as string[])].sort(), [...(expected.missing_signals as string[])].sort())) return `missing_signals ${JSON.stringify(b.decision.missing_signals)}, expected ${JSON.stringify(expected.missing_signals)}`;
    return null;
  }
  return `status ${b.status}: ${JSON.stringify(b.decision).slice(0, 200)}`;
}
