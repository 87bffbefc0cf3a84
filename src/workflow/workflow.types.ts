/** The template's workflow statuses. */
export const WorkflowStatus = {
  Pending: 'pending',
  InProgress: 'in_progress',
  WaitingForAgents: 'waiting_for_agents',
  Evaluating: 'evaluating',
  Completed: 'completed',
  Failed: 'failed',
  Timeout: 'timeout',
  /** Ended by an operator (admin API: POST /workflows/:corr_id/cancel). Not one of the template's. */
  Cancelled: 'cancelled',
} as const;
export type WorkflowStatus = (typeof WorkflowStatus)[keyof typeof WorkflowStatus];

/** How a workflow ends; also the `status` field of the published decision. */
export type FinalStatus = typeof WorkflowStatus.Completed | typeof WorkflowStatus.Timeout | typeof WorkflowStatus.Failed | typeof WorkflowStatus.Cancelled;

export type JsonObject = Record<string, unknown>;

/**
 * A signal as the strategies see it (the template's `AgentSignal`). `data` is the whole message
 * object as received, so `data.analysis`, `data.sentiment_score` etc. are there.
 */
export interface AgentSignal {
  corrId: string;
  agentName: string;
  signalType: string;
  data: JsonObject;
  confidence: number;
  timestamp: string | null;
  metadata: JsonObject;
}

/** The template's `WorkflowContext`, read from Redis. */
export interface WorkflowContext {
  corrId: string;
  workflowId: string;
  workflowType: string;
  status: WorkflowStatus;
  requiredAgents: string[];
  /** Latest signal of each agent, by agent name. */
  receivedSignals: Record<string, AgentSignal>;
  /** ISO 8601 UTC. */
  startedAt: string;
  /**
   * ISO 8601 UTC: the time of this decision, when the workflow was frozen for it (before that, in
   * `canDecide`, the time the context was built). Every run from the frozen snapshot (a replica that takes
   * over from one that died) sees the same value: a strategy that dates its decision takes the time from
   * here, not from the clock, and so decides the same bytes on every run.
   */
  decidedAt: string;
  timeoutSeconds: number;
  metadata: JsonObject;
  /** The trigger that opened the workflow, as an `AgentSignal` from agent `normalizer`. */
  trigger: AgentSignal;
}

/** What a strategy decides. `action` is required (`trade`, `no_trade`, `timeout`, `error`, ...). */
export type Decision = JsonObject & { action: string };

/** The message published on `orchestrated.decision` (the template's `orchestrated_signal` + type and status). */
export interface OrchestratedDecision {
  corr_id: string;
  workflow_id: string;
  orchestrator: string;
  workflow_type: string;
  status: FinalStatus;
  decision: Decision;
  source_signals: { agent: string; confidence: number; timestamp: string | null }[];
  orchestrated_at: string;
  metadata: JsonObject;
}
