import { describeError } from '../../common/errors.js';
import type { DecisionStrategy } from '../../workflow/strategies/decision-strategy.interface.js';
import { isReady, type ReadinessRule } from '../../workflow/readiness.js';
import { cancelDecision, defaultTimeoutDecision, toContext, toDecisionMessage, toTriggerSignal } from '../../workflow/workflow-context.js';
import type { FreezeReason, StoredWorkflow } from '../../workflow/workflow.repository.js';
import { newWorkflow } from '../../workflow/workflow.repository.js';
import { WorkflowStatus, type Decision, type FinalStatus, type JsonObject, type OrchestratedDecision } from '../../workflow/workflow.types.js';
import type { AuditRecord } from '../audit.events.js';
import type { InstanceHistory } from '../audit-history.js';

/*
 * Replay (issue 18, part 3): one recorded workflow instance run again, offline, through the current
 * strategies and settings. Its whole life is simulated as WorkflowService and the scripts would run it:
 * the trigger (shouldStart, define, the timeout), the signals in the order and at the times they were
 * processed (unknown agents, staleness, revisions by stream sequence, early signals within the grace),
 * readiness after each (its rule, or canDecide), an operator's cancel, decide or extend at its time, the
 * deadline; then the decision of whatever froze it. No Redis, nothing published.
 */

/** The settings the simulation reads (the workflow namespace of the service's settings). */
export interface ReplaySettings {
  defaultType: string;
  defaultTimeoutSeconds: number;
  maxTimeoutSeconds: number;
  requiredAgents: string[];
  optionalAgents: string[];
  agentTimeoutSeconds: number;
  earlySignalGraceSeconds: number;
}

export interface ReplayOutcome {
  /** `declined`: shouldStart said no; `rejected`: no strategy for its type (the trigger would be dead-lettered). */
  kind: 'decided' | 'declined' | 'rejected';
  decision: OrchestratedDecision | null;
}

/** What the comparison looks at; `other`: any other difference in the decision message (the orchestrator's name aside). */
export const COMPARED = ['status', 'action', 'direction', 'size', 'confidence', 'decided_at', 'other'] as const;
export type ComparedField = (typeof COMPARED)[number];

interface SignalInput {
  seq: number;
  receivedMs: number;
  agent: string;
  json: string;
  data: JsonObject;
  /** When it was processed: Redis's time, else the event's sort time. */
  atMs: number;
  /** Processed before the trigger started the workflow (buffered). */
  early: boolean;
}

interface AdminInput {
  atMs: number;
  action: 'cancel' | 'decide' | 'extend';
  token: string;
  seconds: number;
}

const EARLY = new Set(['signal_early', 'signal_early_superseded']);
const SIGNAL = /^signal_/;

/** The recorded decision of an instance (null: none was recorded). */
export function recordedDecision(instance: InstanceHistory): OrchestratedDecision | null {
  return (instance.decision as OrchestratedDecision | null) ?? null;
}

/**
 * Runs one recorded instance through `strategyOf` (the current strategies) and `settings`. `appName`: the
 * decision's `orchestrator` field.
 */
export async function replayInstance(
  instance: InstanceHistory,
  strategyOf: (type: string) => DecisionStrategy | undefined,
  settings: ReplaySettings,
  appName: string,
): Promise<ReplayOutcome> {
  const events = instance.events as AuditRecord[];
  const accepted = events.find((e) => e.event === 'trigger_accepted');
  const triggerData = (accepted?.trigger ?? firstSnapshot(events)?.trigger) as JsonObject | undefined;
  if (!triggerData) throw new Error(`${instance.instance}: no trigger recorded (its trigger_accepted and freeze events are missing)`);
  const corrId = String(triggerData.corr_id);
  const startedMs = Number(instance.instance.slice(instance.instance.lastIndexOf('@') + 1));
  const triggerReceivedMs = (accepted?.input as { received_ms?: number } | undefined)?.received_ms ?? startedMs;

  const type = typeof triggerData.workflow_type === 'string' ? triggerData.workflow_type : settings.defaultType;
  const strategy = strategyOf(type);
  if (!strategy) return { kind: 'rejected', decision: null };
  const trigger = toTriggerSignal(triggerData);
  if (!(await strategy.shouldStart(trigger))) return { kind: 'declined', decision: null };
  const definition = await strategy.define(trigger);
  const requested = typeof triggerData.timeout_seconds === 'number' ? triggerData.timeout_seconds : undefined;
  const timeoutSeconds = Math.min(requested ?? definition.timeoutSeconds ?? settings.defaultTimeoutSeconds, settings.maxTimeoutSeconds);
  const timeoutMs = Math.round(timeoutSeconds * 1000);
  const rule: ReadinessRule | null = definition.readyWhen ?? null;

  const wf: StoredWorkflow = newWorkflow({
    corrId,
    workflowType: type,
    startedMs,
    timeoutMs,
    requiredAgents: definition.requiredAgents,
    metadata: definition.metadata ?? {},
    triggerJson: JSON.stringify(triggerData),
    hasRule: rule !== null,
  });
  const seqs = new Map<string, number>();
  const known = [...settings.requiredAgents, ...settings.optionalAgents];
  const knownAgents = known.length > 0 ? new Set(known) : null;
  const usable = (s: SignalInput) => {
    if (knownAgents && !knownAgents.has(s.agent)) return false; // dead-lettered: unknown_agent
    const ts = typeof s.data.timestamp === 'string' ? Date.parse(s.data.timestamp) : NaN;
    return !(settings.agentTimeoutSeconds > 0 && Number.isFinite(ts) && s.receivedMs - ts > settings.agentTimeoutSeconds * 1000);
  };
  const store = (s: SignalInput) => {
    const held = seqs.get(s.agent);
    if (held !== undefined && held >= s.seq) return false;
    seqs.set(s.agent, s.seq);
    if (wf.signals[s.agent] === s.json) return false; // the same bytes again: only the sequence moves
    wf.signals[s.agent] = s.json;
    wf.status = WorkflowStatus.WaitingForAgents;
    wf.version++;
    return true;
  };
  // The recorded freeze: a freeze of the same kind on the same signals happens at its recorded moment (a
  // freeze-3 or sweep a few ms after the step that prompted it), so unchanged settings give the same time.
  const recordedFreeze = events.find((e) => e.event === 'frozen' || e.event === 'timeout' || e.event === 'takeover');
  const sameSignals = (snapshot: unknown) => {
    const recorded = (snapshot as { signals?: Record<string, unknown> } | undefined)?.signals ?? {};
    const mine = Object.keys(wf.signals);
    return mine.length === Object.keys(recorded).length && mine.every((a) => JSON.stringify(recorded[a]) === JSON.stringify(JSON.parse(wf.signals[a])));
  };
  const freeze = (atMs: number, why: FreezeReason, by: string | null) => {
    wf.status = WorkflowStatus.Evaluating;
    if (recordedFreeze && recordedFreeze.why === why && sameSignals(recordedFreeze.snapshot)) atMs = Number(recordedFreeze.frozen_ms);
    wf.frozenMs = atMs;
    wf.why = why;
    wf.frozenBy = by;
  };
  /** Readiness after a change, as the scripts (a rule) or canDecide (without one) judge it. */
  const judge = async (atMs: number) => {
    if (rule) {
      if (isReady(rule, Object.keys(wf.signals))) freeze(atMs, 'decide', null);
      return;
    }
    try {
      if (await strategy.canDecide(toContext({ ...wf, frozenMs: atMs }))) freeze(atMs, 'decide', null);
    } catch (error) {
      freeze(atMs, 'fail', describeError(error));
    }
  };

  // Inputs, deduplicated by stream sequence (a redelivered message is one input), in processing order.
  const signals = new Map<number, SignalInput>();
  const admin: AdminInput[] = [];
  for (const e of events) {
    const input = e.input as { seq: number; received_ms: number } | undefined;
    if (SIGNAL.test(e.event) && input && e.signal && typeof e.agent === 'string') {
      const prior = signals.get(input.seq);
      if (prior && !prior.early && !EARLY.has(e.event)) continue;
      signals.set(input.seq, {
        seq: input.seq,
        receivedMs: input.received_ms,
        agent: e.agent,
        json: JSON.stringify(e.signal),
        data: e.signal as JsonObject,
        atMs: e.order[0],
        early: EARLY.has(e.event) || (prior?.early ?? false),
      });
    } else if (e.event === 'admin_action' && (e.outcome === 'ok' || e.outcome === 'clamped')) {
      admin.push({ atMs: e.order[0], action: e.action as AdminInput['action'], token: String(e.token), seconds: Number(e.requested_seconds ?? 0) });
    }
  }
  const extended = events.filter((e) => e.event === 'admin_action' && e.action === 'extend' && typeof e.deadline_ms === 'number');
  const recordedDeadline = Number(extended.at(-1)?.deadline_ms ?? accepted?.deadline_ms);
  /**
   * Until when the workflow takes signals: its deadline, or — the deadline being the recorded one — the
   * recorded freeze that came at or after it (the sweeper freezes a little after the deadline, and a signal
   * processed in between is stored).
   */
  const closesAt = () =>
    recordedFreeze && wf.deadlineMs === recordedDeadline && Number(recordedFreeze.frozen_ms) >= wf.deadlineMs
      ? Number(recordedFreeze.frozen_ms)
      : wf.deadlineMs;
  const graceMs = settings.earlySignalGraceSeconds * 1000;

  // The start: early signals within their grace are taken in (the latest revision of each agent).
  for (const s of [...signals.values()].filter((x) => x.early).sort((a, b) => a.seq - b.seq)) {
    if (graceMs > 0 && triggerReceivedMs <= s.receivedMs + graceMs && usable(s)) store(s);
  }
  await judge(startedMs);

  type Step = { atMs: number; order: number; run: () => Promise<void> | void };
  const steps: Step[] = [];
  for (const s of signals.values()) {
    if (s.early) continue;
    steps.push({
      atMs: s.atMs,
      order: s.seq,
      run: async () => {
        if (wf.status === WorkflowStatus.Evaluating || !usable(s)) return;
        if (store(s)) await judge(s.atMs);
      },
    });
  }
  for (const a of admin) {
    steps.push({
      atMs: a.atMs,
      order: 0,
      run: () => {
        if (wf.status === WorkflowStatus.Evaluating) return;
        if (a.action === 'extend') wf.deadlineMs = Math.min(wf.deadlineMs + a.seconds * 1000, startedMs + settings.maxTimeoutSeconds * 1000);
        else freeze(a.atMs, a.action === 'cancel' ? 'cancel' : 'force', a.token);
      },
    });
  }
  steps.sort((a, b) => a.atMs - b.atMs || a.order - b.order);
  for (const step of steps) {
    if (wf.status !== WorkflowStatus.Evaluating && step.atMs > closesAt()) break;
    await step.run();
  }
  if (wf.status !== WorkflowStatus.Evaluating) freeze(closesAt(), 'timeout', null);
  return { kind: 'decided', decision: await evaluate(wf, strategy, appName) };
}

/** As WorkflowService.evaluate: the decision of a frozen workflow, by why it was frozen. */
async function evaluate(wf: StoredWorkflow, strategy: DecisionStrategy, appName: string): Promise<OrchestratedDecision> {
  const frozenMs = wf.frozenMs ?? wf.deadlineMs;
  const frozenCtx = toContext(wf);
  const by = wf.frozenBy;
  if (wf.why === 'fail') {
    const decision: Decision = { action: 'error', reason: 'strategy_error', error: by ?? 'canDecide threw' };
    return toDecisionMessage(frozenCtx, appName, WorkflowStatus.Failed, decision, frozenMs);
  }
  const asked = wf.why === 'cancel' ? { cancelled_by: by } : wf.why === 'force' ? { forced: true, forced_by: by } : null;
  const ctx = asked ? { ...frozenCtx, metadata: { ...frozenCtx.metadata, ...asked } } : frozenCtx;
  try {
    let status: FinalStatus = WorkflowStatus.Completed;
    let decision: Decision;
    if (wf.why === 'timeout') {
      status = WorkflowStatus.Timeout;
      decision = strategy.onTimeout ? await strategy.onTimeout(ctx) : defaultTimeoutDecision(ctx);
    } else if (wf.why === 'cancel') {
      status = WorkflowStatus.Cancelled;
      decision = cancelDecision();
    } else decision = await strategy.evaluate(ctx);
    if (typeof decision !== 'object' || decision === null || typeof decision.action !== 'string') {
      throw new Error('the strategy returned no decision object with a string "action"');
    }
    return toDecisionMessage(ctx, appName, status, decision, frozenMs);
  } catch (error) {
    const decision: Decision = { action: 'error', reason: 'strategy_error', error: describeError(error) };
    return toDecisionMessage(ctx, appName, WorkflowStatus.Failed, decision, frozenMs);
  }
}

function firstSnapshot(events: AuditRecord[]): { trigger: unknown } | undefined {
  const frozen = events.find((e) => e.snapshot);
  return frozen?.snapshot as { trigger: unknown } | undefined;
}

/** The fields in which two decision messages differ (the orchestrator's name aside). */
export function changedFields(recorded: OrchestratedDecision | null, replayed: OrchestratedDecision | null): ComparedField[] {
  if (recorded === null && replayed === null) return [];
  if (recorded === null || replayed === null) return ['status', 'action'];
  const d = (m: OrchestratedDecision) => m.decision as Record<string, unknown>;
  const out: ComparedField[] = [];
  const differ = (a: unknown, b: unknown) => JSON.stringify(a) !== JSON.stringify(b);
  if (recorded.status !== replayed.status) out.push('status');
  if (differ(d(recorded).action, d(replayed).action)) out.push('action');
  if (differ(d(recorded).direction, d(replayed).direction)) out.push('direction');
  if (differ(d(recorded).position_size, d(replayed).position_size)) out.push('size');
  if (differ(d(recorded).confidence, d(replayed).confidence)) out.push('confidence');
  if (recorded.orchestrated_at !== replayed.orchestrated_at) out.push('decided_at');
  const rest = (m: OrchestratedDecision) => {
    const { orchestrator: _o, ...others } = m;
    return JSON.stringify(others);
  };
  if (out.length === 0 && rest(recorded) !== rest(replayed)) out.push('other');
  return out;
}
