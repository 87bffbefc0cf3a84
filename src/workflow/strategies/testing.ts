import 'reflect-metadata';
import { parseSettings } from '../../config/env.schema.js';
import type { WorkflowConfig } from '../../config/configuration.js';
import { defaultTimeoutDecision, toAgentSignal, toTriggerSignal } from '../workflow-context.js';
import { isReady } from '../readiness.js';
import type { AgentSignal, Decision, JsonObject, WorkflowContext, WorkflowStatus } from '../workflow.types.js';
import { DecisionStrategyProvider } from './decision-strategy.decorator.js';
import type { DecisionStrategy, WorkflowDefinition } from './decision-strategy.interface.js';

/**
 * One workflow as a strategy's spec describes it: the trigger and the agent signals as published on the wire
 * (plain JSON objects, `corr_id` filled in when missing), and optionally what `define` would have given.
 */
export interface Scenario {
  /** The trigger message (`instrument`, `side`, ...), merged over the harness's default trigger. */
  trigger?: JsonObject;
  /** Agent messages (`agent_name`, `confidence`, payload, ...), in arrival order; the latest of an agent wins. */
  signals?: JsonObject[];
  /** Overrides `define(trigger).requiredAgents`. */
  requiredAgents?: string[];
  /** Overrides the timeout (else the trigger's `timeout_seconds`, `define`'s, then the default, capped as the service does). */
  timeoutSeconds?: number;
  /** Overrides `define(trigger).metadata` (the workflow's metadata as stored). */
  metadata?: JsonObject;
  /** Default `waiting_for_agents`. */
  status?: WorkflowStatus;
  /** ISO 8601; default now. */
  startedAt?: string;
  /** `ctx.decidedAt` (default: now). */
  decidedAt?: string;
}

/** What `run` reports: the trigger declined, the workflow decided at its n-th signal (0: on the trigger alone), or timed out. */
export type RunResult = { status: 'declined' } | { status: 'completed'; decision: Decision; afterSignals: number } | { status: 'timeout'; decision: Decision };

export interface StrategyHarness {
  readonly strategy: DecisionStrategy;
  /** The type of the `@DecisionStrategyProvider` on the strategy's class (or the `workflowType` option). */
  readonly workflowType: string;
  /** The trigger as the strategy receives it (`toTriggerSignal`, as the service does). */
  trigger(data?: JsonObject): AgentSignal;
  /** An agent message as the strategy receives it (`toAgentSignal`, as the service does). */
  signal(data: JsonObject): AgentSignal;
  /** The `WorkflowContext` the service would build: requiredAgents, timeout and metadata from `define(trigger)` unless given. */
  context(scenario?: Scenario): Promise<WorkflowContext>;
  shouldStart(trigger?: JsonObject): Promise<boolean>;
  define(trigger?: JsonObject): Promise<WorkflowDefinition>;
  /** The strategy's canDecide; throws where define() declares a `readyWhen` rule that says otherwise. */
  canDecide(scenario?: Scenario): Promise<boolean>;
  evaluate(scenario?: Scenario): Promise<Decision>;
  /** The strategy's `onTimeout`, or the service's default timeout decision when it has none. */
  onTimeout(scenario?: Scenario): Promise<Decision>;
  /**
   * The life cycle in order: `shouldStart`, `define`, then `canDecide` on the trigger alone and after each
   * signal, `evaluate` at the first yes; `onTimeout` when no signal made it ready. Errors are thrown as is
   * (the service would end the workflow as `failed`).
   */
  run(scenario?: Scenario): Promise<RunResult>;
}

export interface HarnessOptions {
  /** Merged under every trigger, e.g. `{ instrument: 'EURUSD' }`. */
  trigger?: JsonObject;
  /** Default `test`. */
  corrId?: string;
  /** Default: read from the class's `@DecisionStrategyProvider`. */
  workflowType?: string;
}

/** The workflow settings with their defaults, overridden: for strategies that inject `workflowConfig`. */
export function workflowSettings(overrides: Partial<WorkflowConfig> = {}): WorkflowConfig {
  return { ...parseSettings({}).workflow, ...overrides };
}

/**
 * Runs a decision strategy on plain wire objects, so that its spec is a few lines:
 *
 * ```ts
 * const h = strategyHarness(new RebalanceStrategy(), { trigger: { portfolio: 'p1' } });
 * expect(await h.canDecide({ signals: [{ agent_name: 'risk', confidence: 0.9 }] })).toBe(false);
 * expect(await h.evaluate({ signals: [risk, allocation] })).toMatchObject({ action: 'rebalance' });
 * expect(await h.onTimeout({ signals: [risk] })).toMatchObject({ missing_signals: ['allocation'] });
 * ```
 */
export function strategyHarness(strategy: DecisionStrategy, options: HarnessOptions = {}): StrategyHarness {
  const corrId = options.corrId ?? 'test';
  const decorated: unknown = Reflect.getMetadata(DecisionStrategyProvider.KEY, strategy.constructor);
  const workflowType = options.workflowType ?? (typeof decorated === 'string' ? decorated : 'test');
  const settings = parseSettings({}).workflow;

  const trigger = (data: JsonObject = {}): AgentSignal => toTriggerSignal({ corr_id: corrId, ...options.trigger, ...data });
  const signal = (data: JsonObject): AgentSignal => toAgentSignal({ corr_id: corrId, ...data });

  const context = async (scenario: Scenario = {}, signals = scenario.signals ?? []): Promise<WorkflowContext> => {
    const triggerSignal = trigger(scenario.trigger);
    const needsDefinition = scenario.requiredAgents === undefined || scenario.metadata === undefined || scenario.timeoutSeconds === undefined;
    const definition = needsDefinition ? await strategy.define(triggerSignal) : undefined;
    const requested = triggerSignal.data.timeout_seconds;
    const timeoutSeconds =
      scenario.timeoutSeconds ??
      Math.min(
        (typeof requested === 'number' ? requested : undefined) ?? definition?.timeoutSeconds ?? settings.defaultTimeoutSeconds,
        settings.maxTimeoutSeconds,
      );
    const workflowCorrId = triggerSignal.corrId;
    const receivedSignals: Record<string, AgentSignal> = {};
    for (const data of signals) {
      const s = toAgentSignal({ corr_id: workflowCorrId, ...data });
      receivedSignals[s.agentName] = s;
    }
    return {
      corrId: workflowCorrId,
      workflowId: `${workflowType}:${workflowCorrId}`,
      workflowType,
      status: scenario.status ?? 'waiting_for_agents',
      requiredAgents: scenario.requiredAgents ?? definition?.requiredAgents ?? [],
      receivedSignals,
      startedAt: scenario.startedAt ?? new Date().toISOString(),
      decidedAt: scenario.decidedAt ?? new Date().toISOString(),
      timeoutSeconds,
      metadata: scenario.metadata ?? definition?.metadata ?? {},
      trigger: triggerSignal,
    };
  };

  // canDecide, checked against the readyWhen rule define() declares (Redis judges the rule in its place, so
  // the two must agree on every scenario a spec runs).
  const canDecide = async (ctx: WorkflowContext, scenario: Scenario): Promise<boolean> => {
    const answer = await strategy.canDecide(ctx);
    const rule = (await strategy.define(trigger(scenario.trigger))).readyWhen;
    if (rule && isReady(rule, Object.keys(ctx.receivedSignals)) !== answer) {
      throw new Error(
        `define().readyWhen ${JSON.stringify(rule)} and canDecide disagree with signals from [${Object.keys(ctx.receivedSignals).join(', ')}]: canDecide says ${String(answer)}`,
      );
    }
    return answer;
  };

  const onTimeout = async (ctx: WorkflowContext): Promise<Decision> => (strategy.onTimeout ? await strategy.onTimeout(ctx) : defaultTimeoutDecision(ctx));

  return {
    strategy,
    workflowType,
    trigger,
    signal,
    context: (scenario) => context(scenario),
    shouldStart: async (data) => await strategy.shouldStart(trigger(data)),
    define: async (data) => await strategy.define(trigger(data)),
    canDecide: async (scenario = {}) => await canDecide(await context(scenario), scenario),
    evaluate: async (scenario) => await strategy.evaluate(await context(scenario)),
    onTimeout: async (scenario) => await onTimeout(await context(scenario)),
    run: async (scenario = {}) => {
      if (!(await strategy.shouldStart(trigger(scenario.trigger)))) return { status: 'declined' };
      const signals = scenario.signals ?? [];
      for (let n = 0; n <= signals.length; n++) {
        const ctx = await context(scenario, signals.slice(0, n));
        if (await canDecide(ctx, scenario)) return { status: 'completed', decision: await strategy.evaluate(ctx), afterSignals: n };
      }
      return { status: 'timeout', decision: await onTimeout(await context(scenario)) };
    },
  };
}
