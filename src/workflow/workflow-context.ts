import type { StoredWorkflow } from './workflow.repository.js';
import type { AgentSignal, Decision, FinalStatus, JsonObject, OrchestratedDecision, WorkflowContext } from './workflow.types.js';

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The template's AgentSignal of an agent message: the whole object is `data`. */
export function toAgentSignal(data: JsonObject): AgentSignal {
  return {
    corrId: String(data.corr_id),
    agentName: String(data.agent_name),
    signalType: typeof data.signal_type === 'string' ? data.signal_type : 'analysis',
    data,
    confidence: typeof data.confidence === 'number' ? data.confidence : 0,
    timestamp: typeof data.timestamp === 'string' ? data.timestamp : null,
    metadata: isObject(data.metadata) ? data.metadata : {},
  };
}

/** The template's AgentSignal of a trigger: agent `normalizer`, confidence 1.0, timestamp `normalized_at`. */
export function toTriggerSignal(data: JsonObject): AgentSignal {
  return {
    corrId: String(data.corr_id),
    agentName: 'normalizer',
    signalType: 'normalized',
    data,
    confidence: 1.0,
    timestamp: typeof data.normalized_at === 'string' ? data.normalized_at : null,
    metadata: {},
  };
}

export function toContext(wf: StoredWorkflow): WorkflowContext {
  const receivedSignals: Record<string, AgentSignal> = {};
  for (const [agent, json] of Object.entries(wf.signals)) {
    receivedSignals[agent] = toAgentSignal(JSON.parse(json) as JsonObject);
  }
  return {
    corrId: wf.corrId,
    workflowId: wf.workflowId,
    workflowType: wf.workflowType,
    status: wf.status,
    requiredAgents: wf.requiredAgents,
    receivedSignals,
    startedAt: new Date(wf.startedMs).toISOString(),
    decidedAt: new Date(wf.frozenMs ?? Date.now()).toISOString(),
    timeoutSeconds: wf.timeoutMs / 1000,
    metadata: wf.metadata,
    trigger: toTriggerSignal(JSON.parse(wf.triggerJson) as JsonObject),
  };
}

/** The template's timeout decision. */
export function defaultTimeoutDecision(ctx: WorkflowContext): Decision {
  const received = Object.keys(ctx.receivedSignals);
  return {
    action: 'timeout',
    reason: 'workflow_timeout',
    partial_signals: received,
    missing_signals: ctx.requiredAgents.filter((a) => !received.includes(a)),
  };
}

/** An operator's cancel (admin API); who asked is in the decision message's metadata (`cancelled_by`). */
export function cancelDecision(): Decision {
  return { action: 'cancelled', reason: 'cancelled_by_operator' };
}

/**
 * The template's `orchestrated_signal`, plus `workflow_type` and `status`. `decidedAtMs`: when the decision
 * was made, i.e. when the workflow was frozen (Redis's clock): a decision built again from the same frozen
 * snapshot (its first decider died, or NATS was away) says the same time, and the same bytes when the
 * strategy is a function of the snapshot.
 */
export function toDecisionMessage(
  ctx: WorkflowContext,
  orchestrator: string,
  status: FinalStatus,
  decision: Decision,
  decidedAtMs: number = Date.now(),
): OrchestratedDecision {
  return {
    corr_id: ctx.corrId,
    workflow_id: ctx.workflowId,
    orchestrator,
    decision,
    source_signals: Object.values(ctx.receivedSignals).map((s) => ({ agent: s.agentName, confidence: s.confidence, timestamp: s.timestamp })),
    orchestrated_at: new Date(decidedAtMs).toISOString(),
    metadata: ctx.metadata,
    workflow_type: ctx.workflowType,
    status,
  } as OrchestratedDecision;
}
