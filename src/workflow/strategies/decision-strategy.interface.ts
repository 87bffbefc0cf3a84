import type { ReadinessRule } from '../readiness.js';
import type { AgentSignal, Decision, JsonObject, WorkflowContext } from '../workflow.types.js';

/** What `define` returns: the shape of one workflow. */
export interface WorkflowDefinition {
  /** Agents this workflow waits for (reported as `missing_signals` on timeout). */
  requiredAgents: string[];
  /** Seconds until the workflow times out; default `META_AGENT_DEFAULT_TIMEOUT_SECONDS`.
   *  A trigger's `timeout_seconds` overrides it; both are capped by `META_AGENT_MAX_TIMEOUT_SECONDS`. */
  timeoutSeconds?: number;
  /** Free-form metadata, stored with the workflow and copied into the decision message. */
  metadata?: JsonObject;
  /**
   * When the workflow can decide, as a rule on which agents have answered: Redis then judges it as it
   * stores each signal (one round trip per signal, the snapshot only to the signal that makes the workflow
   * ready), and `canDecide` is not called for this workflow. It must say what `canDecide` says
   * (`strategyHarness` checks that on every scenario it runs); write `canDecide` with `isReady(rule, ...)`.
   * Without it, `canDecide` is asked after every signal.
   */
  readyWhen?: ReadinessRule;
}

/**
 * A decision strategy serves one workflow type. Implement it in a provider class, mark the class with
 * `@DecisionStrategyProvider('<type>')`, and list it in a module's `providers`. Each method may be sync or
 * async; none may keep state between calls (any replica may run any step of a workflow).
 *
 * @example
 * ```ts
 * @DecisionStrategyProvider('rebalance')
 * @Injectable()
 * export class RebalanceStrategy implements DecisionStrategy {
 *   shouldStart(trigger: AgentSignal) { return trigger.data.portfolio !== undefined; }
 *   define() { return { requiredAgents: ['risk', 'allocation'], timeoutSeconds: 60 }; }
 *   canDecide(ctx: WorkflowContext) { return 'risk' in ctx.receivedSignals && 'allocation' in ctx.receivedSignals; }
 *   evaluate(ctx: WorkflowContext) { return { action: 'rebalance', weights: ctx.receivedSignals.allocation.data.weights }; }
 * }
 * ```
 */
export interface DecisionStrategy {
  /** Whether a trigger opens a workflow at all. A declined trigger is acked and counted. */
  shouldStart(trigger: AgentSignal): boolean | Promise<boolean>;
  /** The workflow a trigger opens: agents to wait for, timeout, metadata. */
  define(trigger: AgentSignal): WorkflowDefinition | Promise<WorkflowDefinition>;
  /** Called after every stored signal: true when enough has arrived to decide (not called where `define` declared `readyWhen`). */
  canDecide(context: WorkflowContext): boolean | Promise<boolean>;
  /**
   * Runs once per workflow, on the signals stored when it was claimed (frozen). Throwing ends the workflow
   * as `failed`. Should the replica die before the decision is published, another runs it again on the same
   * frozen context: take any time from `context.decidedAt` rather than the clock (and no chance), and every
   * run decides the same bytes.
   */
  evaluate(context: WorkflowContext): Decision | Promise<Decision>;
  /** Builds the timeout decision. Default: `{action: 'timeout', reason: 'workflow_timeout', partial_signals, missing_signals}`. */
  onTimeout?(context: WorkflowContext): Decision | Promise<Decision>;
}
