import { Inject, Injectable } from '@nestjs/common';
import { workflowConfig, type WorkflowConfig } from '../../config/configuration.js';
import { isReady, type ReadinessRule } from '../readiness.js';
import type { AgentSignal, Decision, JsonObject, WorkflowContext } from '../workflow.types.js';
import { DecisionStrategyProvider } from './decision-strategy.decorator.js';
import type { DecisionStrategy, WorkflowDefinition } from './decision-strategy.interface.js';

const ETF_INSTRUMENTS = ['SPY', 'QQQ', 'IWM'];

// A Map, so that a risk level such as "constructor" cannot pick up an Object.prototype member.
const RISK_MULTIPLIERS = new Map<string, number>([
  ['low', 1.0],
  ['medium', 0.7],
  ['high', 0.3],
  ['blocked', 0.0],
]);
const DEFAULT_RISK_MULTIPLIER = 0.5;

interface TradingDecision extends JsonObject {
  action: string;
  reason: string;
  confidence: number;
  metadata: JsonObject;
  direction?: unknown;
  position_size?: number;
}

/** Signal payloads are JSON from other teams' agents: a string or NaN must fall back to the template's default, not poison arithmetic. */
function num(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** The template did `.get("analysis", {})`; anything but an object (null, array, string) is treated as empty. */
function obj(value: unknown): JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : {};
}

/** The template crashed on a missing or non-string instrument (`None.startswith`); such a workflow is simply not crypto. */
function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * The built-in `trading` workflow: the template's `TradingDecisionMetaAgent`
 * (shared/reference/meta-agent-template.md) rule for rule, with its defects fixed (risk block also read
 * from `data.analysis.risk_level`, no crash on a missing instrument, non-numeric payload values ignored)
 * and the SPEC's `min_confidence_threshold` applied to trades.
 */
@DecisionStrategyProvider('trading')
@Injectable()
export class TradingDecisionStrategy implements DecisionStrategy {
  constructor(@Inject(workflowConfig.KEY) private readonly config: WorkflowConfig) {}

  // The template's duplicate-workflow check is gone on purpose: de-duplication is done atomically in Redis.
  shouldStart(trigger: AgentSignal): boolean {
    const data = trigger.data;
    if (data.side === undefined || data.side === null) return false;
    const strength = num(data.strength, 0);
    return strength >= 0.3;
  }

  define(trigger: AgentSignal): WorkflowDefinition {
    const data = trigger.data;
    const instrument = typeof data.instrument === 'string' ? data.instrument : 'UNKNOWN';

    let requiredAgents: string[];
    let timeoutSeconds: number;
    if (instrument.startsWith('CRYPTO')) {
      requiredAgents = ['momentum', 'risk', 'sentiment', 'correlation'];
      timeoutSeconds = 300;
    } else if (ETF_INSTRUMENTS.includes(instrument)) {
      requiredAgents = ['momentum', 'risk', 'correlation', 'macro'];
      timeoutSeconds = 180;
    } else {
      requiredAgents = ['momentum', 'risk'];
      timeoutSeconds = 120;
    }

    return {
      requiredAgents,
      timeoutSeconds,
      metadata: {
        instrument,
        trigger_price: data.price ?? null,
        trigger_side: data.side ?? null,
      },
      readyWhen: this.readiness(instrument),
    };
  }

  canDecide(ctx: WorkflowContext): boolean {
    return isReady(this.readiness(str(ctx.metadata.instrument)), Object.keys(ctx.receivedSignals));
  }

  // The template hard-coded {momentum, risk} and `>= 2`; their defaults in config are exactly those values.
  // Crypto also waits for sentiment. Redis judges this rule as it stores each signal (src/workflow/readiness.ts).
  private readiness(instrument: string): ReadinessRule {
    const all = instrument.startsWith('CRYPTO') ? [...this.config.requiredAgents, 'sentiment'] : this.config.requiredAgents;
    return { all, atLeast: this.config.minAgentsRequired };
  }

  evaluate(ctx: WorkflowContext): Decision {
    const signals = ctx.receivedSignals;
    const instrument = ctx.metadata.instrument;
    const momentum = signal(signals, 'momentum');
    const risk = signal(signals, 'risk');
    const sentiment = signal(signals, 'sentiment');
    const correlation = signal(signals, 'correlation');

    // Field order follows the template's dict updates, so the published JSON looks the same.
    const decision: TradingDecision = {
      action: 'no_trade',
      reason: 'insufficient_confidence',
      confidence: 0.0,
      metadata: {
        instrument: instrument ?? null,
        // When the decision was made (the freeze), the same on every run from the frozen snapshot.
        analysis_timestamp: ctx.decidedAt,
        agents_consulted: Object.keys(signals),
      },
    };

    // Risk agents send the level inside `analysis` (the template's own test does); the template only read the top level.
    if (risk && (risk.data.risk_level === 'blocked' || obj(risk.data.analysis).risk_level === 'blocked')) {
      Object.assign(decision, { action: 'no_trade', reason: 'risk_blocked', confidence: 1.0 });
      return decision;
    }

    if (momentum) {
      const analysis = obj(momentum.data.analysis);
      const momentumConfidence = momentum.confidence;
      const trendDirection = analysis.trend_direction ?? null;
      const momentumStrength = num(analysis.momentum_strength, 0);

      if (momentumConfidence > 0.8 && momentumStrength > 0.7) {
        const positionSize = this.calculatePositionSize(risk, momentumStrength, momentumConfidence);
        if (positionSize > 0) {
          Object.assign(decision, {
            action: 'trade',
            direction: trendDirection,
            position_size: positionSize,
            confidence: Math.min(momentumConfidence, risk ? risk.confidence : 1.0),
            reason: 'high_conviction_momentum',
          });
        }
      }
    }

    if (sentiment && str(instrument).startsWith('CRYPTO')) {
      const sentimentScore = num(sentiment.data.sentiment_score, 0);
      if (Math.abs(sentimentScore) > 0.6 && decision.action === 'trade') {
        const aligned = (sentimentScore > 0 && decision.direction === 'bullish') || (sentimentScore < 0 && decision.direction === 'bearish');
        if (aligned) {
          decision.confidence = Math.min(decision.confidence * 1.2, 1.0);
          decision.metadata.sentiment_boost = true;
        }
      }
    }

    if (correlation) {
      const correlationRisk = num(correlation.data.correlation_risk, 0);
      if (correlationRisk > 0.8 && decision.action === 'trade') {
        decision.position_size = (decision.position_size ?? 0) * 0.5;
        decision.metadata.correlation_adjustment = true;
      }
    }

    // The template read min_confidence_threshold but never applied it; the SPEC makes it the last word on a trade.
    const threshold = this.config.minConfidenceThreshold;
    if (decision.action === 'trade' && decision.confidence < threshold) {
      decision.action = 'no_trade';
      decision.reason = 'insufficient_confidence';
      delete decision.direction;
      delete decision.position_size;
      decision.metadata.min_confidence_threshold = threshold;
    }

    return decision;
  }

  /** The template's `calculate_position_size`: half the risk agent's limit, scaled by risk level and signal conviction. */
  calculatePositionSize(risk: AgentSignal | undefined, momentumStrength: number, confidence: number): number {
    if (!risk) return 0.0;

    const riskData = obj(risk.data.analysis);
    const maxPosition = num(riskData.max_position_size, 0);
    const riskLevel = riskData.risk_level;

    const baseSize = maxPosition * 0.5;
    const riskMultiplier = typeof riskLevel === 'string' ? (RISK_MULTIPLIERS.get(riskLevel) ?? DEFAULT_RISK_MULTIPLIER) : DEFAULT_RISK_MULTIPLIER;
    const signalMultiplier = confidence * momentumStrength;

    return baseSize * riskMultiplier * signalMultiplier;
  }
}

// Own properties only: an agent can't be "found" through Object.prototype.
function signal(signals: Record<string, AgentSignal>, agent: string): AgentSignal | undefined {
  return Object.hasOwn(signals, agent) ? signals[agent] : undefined;
}
