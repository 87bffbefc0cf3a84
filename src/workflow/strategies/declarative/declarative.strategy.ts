import type { AgentSignal, Decision, JsonObject, WorkflowContext } from '../../workflow.types.js';
import type { DecisionStrategy, WorkflowDefinition } from '../decision-strategy.interface.js';
import { isReady, type ReadinessRule } from '../../readiness.js';
import type { Condition, WorkflowTypeSpec } from './workflows-file.js';

const DIRECTIONS = ['bullish', 'bearish', 'neutral'] as const;
type Direction = (typeof DIRECTIONS)[number];

/** The value at a dotted path of a message (own properties only: nothing is found through a prototype). */
export function valueAt(data: unknown, path: string): unknown {
  let node = data;
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** Every operator the condition gives must hold; a missing field matches nothing. */
export function matches(condition: Condition, data: unknown): boolean {
  const value = valueAt(data, condition.field);
  if (value === undefined) return false;
  if (Object.hasOwn(condition, 'equals') && value !== condition.equals) return false;
  if (condition.in !== undefined && !condition.in.some((v) => v === value)) return false;
  const number = typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  if (condition.gte !== undefined && (number === undefined || number < condition.gte)) return false;
  if (condition.lte !== undefined && (number === undefined || number > condition.lte)) return false;
  return true;
}

const round = (x: number): number => Math.round(x * 1e6) / 1e6;

export interface DeclarativeOptions {
  /** `vote.min_confidence` when the type sets none: META_AGENT_MIN_CONFIDENCE_THRESHOLD. */
  minConfidence: number;
}

/**
 * A workflow type of META_AGENT_WORKFLOWS_FILE as a `DecisionStrategy` (README "Adding a workflow type"):
 * registered like a provider class, it has the same life cycle, timeouts, metrics and exactly-once
 * decisions; its timeout decision is the default one (`missing_signals`).
 */
export class DeclarativeStrategy implements DecisionStrategy {
  /** `required_agents`, then the veto and position-size agents (always waited for). */
  readonly requiredAgents: string[];
  private readonly quorum: number;
  /** Agents that must have answered whatever the quorum. */
  private readonly mandatory: string[];
  private readonly readiness: ReadinessRule;

  constructor(
    readonly type: string,
    readonly spec: WorkflowTypeSpec,
    private readonly options: DeclarativeOptions,
  ) {
    this.mandatory = [...new Set([...(spec.veto ?? []).map((r) => r.agent), ...(spec.position_size ? [spec.position_size.agent] : [])])];
    this.requiredAgents = [...new Set([...spec.required_agents, ...this.mandatory])];
    this.quorum = spec.quorum ?? spec.required_agents.length;
    // The quorum among required_agents, and the veto and position-size agents whatever the quorum.
    this.readiness = { all: this.mandatory, atLeast: this.quorum, among: spec.required_agents };
  }

  shouldStart(trigger: AgentSignal): boolean {
    return this.spec.start_when === undefined || matches(this.spec.start_when, trigger.data);
  }

  define(): WorkflowDefinition {
    return {
      requiredAgents: this.requiredAgents,
      ...(this.spec.timeout_seconds !== undefined && { timeoutSeconds: this.spec.timeout_seconds }),
      metadata: { defined_in: 'workflows_file' },
      readyWhen: this.readiness,
    };
  }

  canDecide(ctx: WorkflowContext): boolean {
    return isReady(this.readiness, Object.keys(ctx.receivedSignals));
  }

  /**
   * `direction` and `confidence` are the vote's outcome (the winner and its share of all votes) whatever the
   * action; `action` and `reason` say whether it trades: a matching veto, no votes, a tie, a neutral winner, a
   * share below `min_confidence`, or no position size each make it `no_trade`.
   */
  evaluate(ctx: WorkflowContext): Decision {
    const signals = ctx.receivedSignals;
    const signal = (agent: string): AgentSignal | undefined => (Object.hasOwn(signals, agent) ? signals[agent] : undefined);

    const votes: Record<Direction, number> = { bullish: 0, bearish: 0, neutral: 0 };
    for (const [agent, weight] of Object.entries(this.spec.vote.weights)) {
      const s = signal(agent);
      const value = s && valueAt(s.data, this.spec.vote.field);
      if (s && typeof value === 'string' && (DIRECTIONS as readonly string[]).includes(value)) {
        votes[value as Direction] += weight * Math.min(Math.max(s.confidence, 0), 1);
      }
    }
    const total = votes.bullish + votes.bearish + votes.neutral;
    const top = Math.max(votes.bullish, votes.bearish, votes.neutral);
    const leaders = DIRECTIONS.filter((d) => votes[d] === top);
    const direction = total > 0 && leaders.length === 1 ? leaders[0] : null;
    const share = total > 0 ? top / total : 0;
    const decision = (action: 'trade' | 'no_trade', reason: string, extra: JsonObject = {}): Decision => ({
      action,
      direction,
      confidence: round(share),
      reason,
      votes: { bullish: round(votes.bullish), bearish: round(votes.bearish), neutral: round(votes.neutral) },
      ...extra,
    });

    for (const rule of this.spec.veto ?? []) {
      const s = signal(rule.agent);
      if (s && matches(rule, s.data)) return decision('no_trade', `veto:${rule.agent}`);
    }
    if (total === 0) return decision('no_trade', 'no_votes');
    if (direction === null) return decision('no_trade', 'tie');
    if (direction === 'neutral') return decision('no_trade', 'neutral');
    if (share < (this.spec.vote.min_confidence ?? this.options.minConfidence)) return decision('no_trade', 'insufficient_confidence');

    const sizing = this.spec.position_size;
    if (!sizing) return decision('trade', 'weighted_vote');
    const s = signal(sizing.agent);
    const value = s ? valueAt(s.data, sizing.field) : undefined;
    const size = typeof value === 'number' && Number.isFinite(value) ? value * (sizing.scale_by_confidence && s ? s.confidence : 1) : 0;
    if (!(size > 0)) return decision('no_trade', 'no_position_size');
    return decision('trade', 'weighted_vote', { position_size: size });
  }
}
