import 'reflect-metadata';
import { parseSettings } from '../../config/env.schema.js';
import type { AgentSignal, JsonObject, WorkflowContext } from '../workflow.types.js';
import { TradingDecisionStrategy } from './trading.strategy.js';

const defaults = parseSettings({}).workflow;
type Workflow = typeof defaults;

function strategy(overrides: Partial<Workflow> = {}): TradingDecisionStrategy {
  return new TradingDecisionStrategy({ ...defaults, ...overrides });
}

function sig(agentName: string, data: JsonObject, confidence = 1.0, corrId = 'test'): AgentSignal {
  return {
    corrId,
    agentName,
    signalType: agentName === 'normalizer' ? 'normalized' : 'analysis',
    data,
    confidence,
    timestamp: '2024-01-15T10:00:00Z',
    metadata: {},
  };
}

function ctx(signals: AgentSignal[], metadata: JsonObject = { instrument: 'EURUSD' }, corrId = 'test'): WorkflowContext {
  return {
    corrId,
    workflowId: 'test_workflow',
    workflowType: 'trading',
    status: 'evaluating',
    requiredAgents: ['momentum', 'risk'],
    receivedSignals: Object.fromEntries(signals.map((s) => [s.agentName, s])),
    startedAt: '2024-01-15T10:00:00Z',
    timeoutSeconds: 120,
    metadata,
    trigger: sig('normalizer', metadata, 1.0, corrId),
  };
}

const trigger = (data: JsonObject) => sig('normalizer', data);
const momentum = (confidence: number, analysis: unknown) => sig('momentum', { analysis } as JsonObject, confidence);
const risk = (confidence: number, analysis: unknown) => sig('risk', { analysis } as JsonObject, confidence);
/** The template's high-conviction pair: position 100000 * 0.5 * multiplier * (0.9 * 0.8). */
const bullish = () => momentum(0.9, { trend_direction: 'bullish', momentum_strength: 0.8 });
const lowRisk = (confidence = 0.8) => risk(confidence, { risk_level: 'low', max_position_size: 100000 });

describe('TradingDecisionStrategy', () => {
  // Ported from the template's TestTradingDecisionMetaAgent.
  describe('template tests', () => {
    it('test_workflow_creation', () => {
      const fxSignal = sig('normalizer', { instrument: 'EURUSD', side: 'buy' }, 1.0, 'test_001');

      const workflow = strategy().define(fxSignal);

      // `workflow.corr_id == "test_001"`: the service, not `define`, attaches the trigger's corr_id,
      // so here the trigger is what carries it.
      expect(fxSignal.corrId).toBe('test_001');
      expect(workflow.requiredAgents).toContain('momentum');
      expect(workflow.requiredAgents).toContain('risk');
      expect(workflow.timeoutSeconds).toBe(120); // FX timeout
    });

    it('test_decision_evaluation', () => {
      const context = ctx(
        [
          sig('momentum', { analysis: { trend_direction: 'bullish', momentum_strength: 0.8 } }, 0.9, 'test_002'),
          sig('risk', { analysis: { risk_level: 'low', max_position_size: 100000 } }, 0.8, 'test_002'),
        ],
        { instrument: 'EURUSD' },
        'test_002',
      );

      const decision = strategy().evaluate(context);

      expect(decision.action).toBe('trade');
      expect(decision.direction).toBe('bullish');
      expect(decision.confidence).toBeGreaterThan(0.7);
      expect(decision.position_size).toBeGreaterThan(0);
    });

    it('test_risk_blocking', () => {
      const context = ctx(
        [sig('risk', { analysis: { risk_level: 'blocked' } }, 1.0, 'test_003')],
        { instrument: 'EURUSD' },
        'test_003',
      );

      const decision = strategy().evaluate(context);

      expect(decision.action).toBe('no_trade');
      expect(decision.reason).toBe('risk_blocked');
      expect(decision.confidence).toBe(1.0);
    });
  });

  describe('define', () => {
    it('gives FX instruments momentum and risk with 120 s', () => {
      expect(strategy().define(trigger({ instrument: 'EURUSD', side: 'buy', price: 1.0875 }))).toEqual({
        requiredAgents: ['momentum', 'risk'],
        timeoutSeconds: 120,
        metadata: { instrument: 'EURUSD', trigger_price: 1.0875, trigger_side: 'buy' },
      });
    });

    it.each(['SPY', 'QQQ', 'IWM'])('gives the ETF %s momentum, risk, correlation and macro with 180 s', (instrument) => {
      const def = strategy().define(trigger({ instrument, side: 'sell', price: 500 }));
      expect(def.requiredAgents).toEqual(['momentum', 'risk', 'correlation', 'macro']);
      expect(def.timeoutSeconds).toBe(180);
      expect(def.metadata).toEqual({ instrument, trigger_price: 500, trigger_side: 'sell' });
    });

    it('does not treat a name merely containing an ETF ticker as an ETF', () => {
      expect(strategy().define(trigger({ instrument: 'SPYX', side: 'buy' })).timeoutSeconds).toBe(120);
    });

    it('gives CRYPTO instruments momentum, risk, sentiment and correlation with 300 s', () => {
      const def = strategy().define(trigger({ instrument: 'CRYPTO:BTCUSD', side: 'buy', price: 65000 }));
      expect(def.requiredAgents).toEqual(['momentum', 'risk', 'sentiment', 'correlation']);
      expect(def.timeoutSeconds).toBe(300);
      expect(def.metadata).toEqual({ instrument: 'CRYPTO:BTCUSD', trigger_price: 65000, trigger_side: 'buy' });
    });

    it('uses UNKNOWN and the FX branch when the instrument is missing, with null price and side', () => {
      expect(strategy().define(trigger({}))).toEqual({
        requiredAgents: ['momentum', 'risk'],
        timeoutSeconds: 120,
        metadata: { instrument: 'UNKNOWN', trigger_price: null, trigger_side: null },
      });
    });

    it('uses UNKNOWN when the instrument is not a string', () => {
      expect(strategy().define(trigger({ instrument: 42, side: 'buy' })).metadata).toEqual({
        instrument: 'UNKNOWN',
        trigger_price: null,
        trigger_side: 'buy',
      });
      expect(strategy().define(trigger({ instrument: null })).metadata?.instrument).toBe('UNKNOWN');
    });
  });

  describe('shouldStart', () => {
    it('declines a trigger without a side', () => {
      expect(strategy().shouldStart(trigger({ strength: 0.9 }))).toBe(false);
      expect(strategy().shouldStart(trigger({ side: null, strength: 0.9 }))).toBe(false);
    });

    it('declines a trigger without a strength (defaults to 0)', () => {
      expect(strategy().shouldStart(trigger({ side: 'buy' }))).toBe(false);
    });

    it('declines strength 0.29 and accepts 0.3', () => {
      expect(strategy().shouldStart(trigger({ side: 'buy', strength: 0.29 }))).toBe(false);
      expect(strategy().shouldStart(trigger({ side: 'buy', strength: 0.3 }))).toBe(true);
      expect(strategy().shouldStart(trigger({ side: 'sell', strength: 1 }))).toBe(true);
    });

    it('treats a non-number strength as 0', () => {
      expect(strategy().shouldStart(trigger({ side: 'buy', strength: '0.9' }))).toBe(false);
      expect(strategy().shouldStart(trigger({ side: 'buy', strength: true }))).toBe(false);
      expect(strategy().shouldStart(trigger({ side: 'buy', strength: Number.NaN }))).toBe(false);
    });
  });

  describe('canDecide', () => {
    const m = () => sig('momentum', {});
    const r = () => sig('risk', {});
    const s = () => sig('sentiment', {});
    const c = () => sig('correlation', {});
    const x = () => sig('macro', {});

    it('waits for risk and for momentum', () => {
      expect(strategy().canDecide(ctx([m()]))).toBe(false);
      expect(strategy().canDecide(ctx([r()]))).toBe(false);
      expect(strategy().canDecide(ctx([r(), s(), c()]))).toBe(false);
      expect(strategy().canDecide(ctx([m(), r()]))).toBe(true);
    });

    it('also waits for sentiment on crypto', () => {
      const crypto = { instrument: 'CRYPTO:ETHUSD' };
      expect(strategy().canDecide(ctx([m(), r()], crypto))).toBe(false);
      expect(strategy().canDecide(ctx([m(), r(), c()], crypto))).toBe(false);
      expect(strategy().canDecide(ctx([m(), r(), s()], crypto))).toBe(true);
    });

    it('treats a missing or non-string instrument as not crypto', () => {
      expect(strategy().canDecide(ctx([m(), r()], {}))).toBe(true);
      expect(strategy().canDecide(ctx([m(), r()], { instrument: 7 }))).toBe(true);
    });

    it('honours minAgentsRequired', () => {
      const st = strategy({ minAgentsRequired: 3 });
      expect(st.canDecide(ctx([m(), r()]))).toBe(false);
      expect(st.canDecide(ctx([m(), r(), c()]))).toBe(true);
    });

    it('honours custom requiredAgents', () => {
      const st = strategy({ requiredAgents: ['momentum', 'risk', 'macro'] });
      expect(st.canDecide(ctx([m(), r()]))).toBe(false);
      expect(st.canDecide(ctx([m(), r(), c()]))).toBe(false);
      expect(st.canDecide(ctx([m(), r(), x()]))).toBe(true);

      const momentumOnly = strategy({ requiredAgents: ['momentum'], minAgentsRequired: 1 });
      expect(momentumOnly.canDecide(ctx([m()]))).toBe(true);
      expect(momentumOnly.canDecide(ctx([r()]))).toBe(false);
    });
  });

  describe('evaluate', () => {
    it('builds the template decision, fields in the template order', () => {
      const decision = strategy().evaluate(ctx([bullish(), lowRisk()]));

      expect(Object.keys(decision)).toEqual(['action', 'reason', 'confidence', 'metadata', 'direction', 'position_size']);
      expect(decision).toEqual({
        action: 'trade',
        reason: 'high_conviction_momentum',
        confidence: 0.8,
        metadata: {
          instrument: 'EURUSD',
          analysis_timestamp: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
          agents_consulted: ['momentum', 'risk'],
        },
        direction: 'bullish',
        position_size: expect.closeTo(36000, 6),
      });
    });

    it('blocks on a top-level risk_level', () => {
      const decision = strategy().evaluate(
        ctx([bullish(), sig('risk', { risk_level: 'blocked', analysis: { risk_level: 'low', max_position_size: 100000 } }, 0.8)]),
      );
      expect(decision).toEqual({
        action: 'no_trade',
        reason: 'risk_blocked',
        confidence: 1.0,
        metadata: expect.objectContaining({ instrument: 'EURUSD', agents_consulted: ['momentum', 'risk'] }),
      });
    });

    it('blocks on analysis.risk_level even with a strong momentum signal', () => {
      const decision = strategy().evaluate(ctx([bullish(), risk(0.8, { risk_level: 'blocked', max_position_size: 100000 })]));
      expect(decision.action).toBe('no_trade');
      expect(decision.reason).toBe('risk_blocked');
      expect(decision.confidence).toBe(1.0);
    });

    it('does not trade when momentum confidence is exactly 0.8', () => {
      const decision = strategy().evaluate(ctx([momentum(0.8, { trend_direction: 'bullish', momentum_strength: 0.9 }), lowRisk()]));
      expect(decision.action).toBe('no_trade');
      expect(decision.reason).toBe('insufficient_confidence');
      expect(decision.confidence).toBe(0.0);
      expect(decision).not.toHaveProperty('direction');
      expect(decision).not.toHaveProperty('position_size');
    });

    it('does not trade when momentum strength is exactly 0.7', () => {
      const decision = strategy().evaluate(ctx([momentum(0.9, { trend_direction: 'bullish', momentum_strength: 0.7 }), lowRisk()]));
      expect(decision.action).toBe('no_trade');
      expect(decision.reason).toBe('insufficient_confidence');
      expect(decision.confidence).toBe(0.0);
    });

    it('does not trade without a risk signal (position size 0)', () => {
      const decision = strategy().evaluate(ctx([bullish()]));
      expect(decision.action).toBe('no_trade');
      expect(decision.reason).toBe('insufficient_confidence');
      expect(decision.confidence).toBe(0.0);
      expect(strategy().calculatePositionSize(undefined, 0.8, 0.9)).toBe(0);
    });

    it('does not trade when the risk agent gives no max_position_size', () => {
      expect(strategy().evaluate(ctx([bullish(), risk(0.8, { risk_level: 'low' })])).action).toBe('no_trade');
    });

    it.each([
      ['low', 36000], // 50000 * 1.0 * 0.72
      ['medium', 25200], // 50000 * 0.7 * 0.72
      ['high', 10800], // 50000 * 0.3 * 0.72
      ['extreme', 18000], // unknown level: 50000 * 0.5 * 0.72
      ['constructor', 18000], // not an Object.prototype lookup
    ])('sizes a %s risk position at %d', (riskLevel, expected) => {
      const decision = strategy().evaluate(ctx([bullish(), risk(0.8, { risk_level: riskLevel, max_position_size: 100000 })]));
      expect(decision.action).toBe('trade');
      expect(decision.position_size).toBeCloseTo(expected, 6);
    });

    it('sizes a position with no risk level at the default multiplier', () => {
      const decision = strategy().evaluate(ctx([bullish(), risk(0.8, { max_position_size: 100000 })]));
      expect(decision.position_size).toBeCloseTo(18000, 6);
    });

    it('calculatePositionSize: blocked is 0, and the formula is base * risk * (confidence * strength)', () => {
      const st = strategy();
      expect(st.calculatePositionSize(risk(1, { risk_level: 'blocked', max_position_size: 100000 }), 0.8, 0.9)).toBe(0);
      // 200000 * 0.5 * 0.7 * (0.5 * 0.6)
      expect(st.calculatePositionSize(risk(1, { risk_level: 'medium', max_position_size: 200000 }), 0.6, 0.5)).toBeCloseTo(21000, 6);
    });

    it('takes the lower of momentum and risk confidence', () => {
      expect(strategy().evaluate(ctx([bullish(), lowRisk(0.8)])).confidence).toBe(0.8);
      expect(strategy().evaluate(ctx([bullish(), lowRisk(0.95)])).confidence).toBe(0.9);
    });

    it('copies trend_direction as received, null when missing', () => {
      const bearish = strategy().evaluate(ctx([momentum(0.9, { trend_direction: 'bearish', momentum_strength: 0.8 }), lowRisk()]));
      expect(bearish.direction).toBe('bearish');
      const none = strategy().evaluate(ctx([momentum(0.9, { momentum_strength: 0.8 }), lowRisk()]));
      expect(none.action).toBe('trade');
      expect(none.direction).toBeNull();
    });

    describe('sentiment boost (crypto)', () => {
      const crypto = { instrument: 'CRYPTO:BTCUSD' };
      const sentiment = (score: unknown) => sig('sentiment', { sentiment_score: score } as JsonObject, 0.7);

      it('boosts an aligned bullish trade by 1.2', () => {
        const decision = strategy().evaluate(ctx([bullish(), lowRisk(0.7), sentiment(0.7)], crypto));
        expect(decision.action).toBe('trade');
        expect(decision.confidence).toBeCloseTo(0.84, 10);
        expect(decision.metadata).toMatchObject({ sentiment_boost: true });
      });

      it('caps the boost at 1.0', () => {
        const decision = strategy().evaluate(ctx([bullish(), lowRisk(0.95), sentiment(0.9)], crypto));
        expect(decision.confidence).toBe(1.0);
        expect(decision.metadata).toMatchObject({ sentiment_boost: true });
      });

      it('boosts an aligned bearish trade', () => {
        const bearish = momentum(0.9, { trend_direction: 'bearish', momentum_strength: 0.8 });
        const decision = strategy().evaluate(ctx([bearish, lowRisk(0.7), sentiment(-0.7)], crypto));
        expect(decision.confidence).toBeCloseTo(0.84, 10);
        expect(decision.metadata).toMatchObject({ sentiment_boost: true });
      });

      it('does not boost against the direction', () => {
        const decision = strategy().evaluate(ctx([bullish(), lowRisk(0.7), sentiment(-0.9)], crypto));
        expect(decision.action).toBe('trade');
        expect(decision.confidence).toBe(0.7);
        expect(decision.metadata).not.toHaveProperty('sentiment_boost');
      });

      it('does not boost when |score| is 0.6 or less', () => {
        for (const score of [0.6, -0.6, 0.3]) {
          const decision = strategy().evaluate(ctx([bullish(), lowRisk(0.7), sentiment(score)], crypto));
          expect(decision.confidence).toBe(0.7);
          expect(decision.metadata).not.toHaveProperty('sentiment_boost');
        }
      });

      it('does not boost a non-crypto instrument', () => {
        const decision = strategy().evaluate(ctx([bullish(), lowRisk(0.7), sentiment(0.9)], { instrument: 'EURUSD' }));
        expect(decision.confidence).toBe(0.7);
        expect(decision.metadata).not.toHaveProperty('sentiment_boost');
      });

      it('does not boost a no_trade decision', () => {
        const decision = strategy().evaluate(ctx([lowRisk(0.7), sentiment(0.9)], crypto));
        expect(decision.action).toBe('no_trade');
        expect(decision.confidence).toBe(0.0);
        expect(decision.metadata).not.toHaveProperty('sentiment_boost');
      });

      it('does not throw when the instrument is missing', () => {
        const decision = strategy().evaluate(ctx([bullish(), lowRisk(0.7), sentiment(0.9)], {}));
        expect(decision.action).toBe('trade');
        expect(decision.confidence).toBe(0.7);
        expect(decision.metadata).toMatchObject({ instrument: null });
        expect(decision.metadata).not.toHaveProperty('sentiment_boost');
      });
    });

    describe('correlation adjustment', () => {
      const correlation = (value: unknown) => sig('correlation', { correlation_risk: value } as JsonObject, 0.9);

      it('halves the position when correlation_risk > 0.8', () => {
        const decision = strategy().evaluate(ctx([bullish(), lowRisk(), correlation(0.81)]));
        expect(decision.position_size).toBeCloseTo(18000, 6);
        expect(decision.metadata).toMatchObject({ correlation_adjustment: true });
      });

      it('leaves the position at correlation_risk exactly 0.8', () => {
        const decision = strategy().evaluate(ctx([bullish(), lowRisk(), correlation(0.8)]));
        expect(decision.position_size).toBeCloseTo(36000, 6);
        expect(decision.metadata).not.toHaveProperty('correlation_adjustment');
      });

      it('leaves a no_trade decision alone', () => {
        const decision = strategy().evaluate(ctx([lowRisk(), correlation(0.95)]));
        expect(decision).not.toHaveProperty('position_size');
        expect(decision.metadata).not.toHaveProperty('correlation_adjustment');
      });
    });

    describe('min confidence threshold', () => {
      it('turns a trade below the threshold into no_trade insufficient_confidence', () => {
        const decision = strategy({ minConfidenceThreshold: 0.9 }).evaluate(ctx([bullish(), lowRisk(0.8)]));
        expect(decision).toEqual({
          action: 'no_trade',
          reason: 'insufficient_confidence',
          confidence: 0.8,
          metadata: expect.objectContaining({ instrument: 'EURUSD', min_confidence_threshold: 0.9 }),
        });
        expect(decision).not.toHaveProperty('direction');
        expect(decision).not.toHaveProperty('position_size');
      });

      it('trades at exactly the threshold', () => {
        const decision = strategy({ minConfidenceThreshold: 0.8 }).evaluate(ctx([bullish(), lowRisk(0.8)]));
        expect(decision.action).toBe('trade');
        expect(decision.confidence).toBe(0.8);
        expect(decision.metadata).not.toHaveProperty('min_confidence_threshold');
      });

      it('applies after the sentiment boost', () => {
        const st = strategy({ minConfidenceThreshold: 0.8 });
        const context = ctx(
          [bullish(), lowRisk(0.7), sig('sentiment', { sentiment_score: 0.9 }, 0.7)],
          { instrument: 'CRYPTO:BTCUSD' },
        );
        const decision = st.evaluate(context);
        expect(decision.action).toBe('trade');
        expect(decision.confidence).toBeCloseTo(0.84, 10);
      });

      it('uses the default threshold 0.5', () => {
        const decision = strategy().evaluate(ctx([bullish(), lowRisk(0.4)]));
        expect(decision.action).toBe('no_trade');
        expect(decision.confidence).toBe(0.4);
        expect(decision.metadata).toMatchObject({ min_confidence_threshold: 0.5 });
      });
    });

    describe('malformed payloads', () => {
      it('ignores string numbers (template defaults apply)', () => {
        const st = strategy();
        expect(st.evaluate(ctx([momentum(0.9, { trend_direction: 'bullish', momentum_strength: '0.8' }), lowRisk()])).action).toBe(
          'no_trade',
        );
        expect(st.evaluate(ctx([bullish(), risk(0.8, { risk_level: 'low', max_position_size: '100000' })])).action).toBe('no_trade');

        const crypto = { instrument: 'CRYPTO:BTCUSD' };
        const noBoost = st.evaluate(ctx([bullish(), lowRisk(0.7), sig('sentiment', { sentiment_score: '0.9' })], crypto));
        expect(noBoost.confidence).toBe(0.7);
        expect(noBoost.metadata).not.toHaveProperty('sentiment_boost');

        const noHalving = st.evaluate(ctx([bullish(), lowRisk(), sig('correlation', { correlation_risk: '0.95' })]));
        expect(noHalving.position_size).toBeCloseTo(36000, 6);
        expect(noHalving.metadata).not.toHaveProperty('correlation_adjustment');
      });

      it('treats a non-object analysis as empty', () => {
        for (const analysis of ['bullish', null, [0.9, 0.8], 3]) {
          expect(strategy().evaluate(ctx([momentum(0.9, analysis), lowRisk()])).action).toBe('no_trade');
          expect(strategy().evaluate(ctx([bullish(), risk(0.8, analysis)])).action).toBe('no_trade');
        }
      });
    });
  });
});
