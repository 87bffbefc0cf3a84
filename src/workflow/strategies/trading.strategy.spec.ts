import 'reflect-metadata';
import type { JsonObject } from '../workflow.types.js';
import { strategyHarness, workflowSettings, type Scenario } from './testing.js';
import { TradingDecisionStrategy } from './trading.strategy.js';

type Workflow = ReturnType<typeof workflowSettings>;

function strategy(overrides: Partial<Workflow> = {}): TradingDecisionStrategy {
  return new TradingDecisionStrategy(workflowSettings(overrides));
}

function harness(overrides: Partial<Workflow> = {}) {
  return strategyHarness(strategy(overrides));
}

/** An agent message as published (the strategy sees it through `toAgentSignal`, as in the service). */
function sig(agentName: string, data: JsonObject, confidence = 1.0): JsonObject {
  return { agent_name: agentName, confidence, ...data };
}

/**
 * A workflow opened by `trigger` (EURUSD by default) holding `signals`: requiredAgents and metadata come from
 * the strategy's own `define`, unless `metadata` is given (to test what `define` would never store).
 */
function wf(signals: JsonObject[], trigger: JsonObject = { instrument: 'EURUSD' }, metadata?: JsonObject): Scenario {
  return { trigger, signals, metadata };
}

const momentum = (confidence: number, analysis: unknown) => sig('momentum', { analysis } as JsonObject, confidence);
const risk = (confidence: number, analysis: unknown) => sig('risk', { analysis } as JsonObject, confidence);
/** The template's high-conviction pair: position 100000 * 0.5 * multiplier * (0.9 * 0.8). */
const bullish = () => momentum(0.9, { trend_direction: 'bullish', momentum_strength: 0.8 });
const lowRisk = (confidence = 0.8) => risk(confidence, { risk_level: 'low', max_position_size: 100000 });

describe('TradingDecisionStrategy', () => {
  // Ported from the template's TestTradingDecisionMetaAgent.
  describe('template tests', () => {
    it('test_workflow_creation', () => {
      const fxSignal = harness().trigger({ corr_id: 'test_001', instrument: 'EURUSD', side: 'buy' });

      const workflow = strategy().define(fxSignal);

      // `workflow.corr_id == "test_001"`: the service, not `define`, attaches the trigger's corr_id,
      // so here the trigger is what carries it.
      expect(fxSignal.corrId).toBe('test_001');
      expect(workflow.requiredAgents).toContain('momentum');
      expect(workflow.requiredAgents).toContain('risk');
      expect(workflow.timeoutSeconds).toBe(120); // FX timeout
    });

    it('test_decision_evaluation', async () => {
      const context = wf(
        [
          sig('momentum', { analysis: { trend_direction: 'bullish', momentum_strength: 0.8 } }, 0.9),
          sig('risk', { analysis: { risk_level: 'low', max_position_size: 100000 } }, 0.8),
        ],
        { corr_id: 'test_002', instrument: 'EURUSD' },
      );

      const decision = await harness().evaluate(context);

      expect(decision.action).toBe('trade');
      expect(decision.direction).toBe('bullish');
      expect(decision.confidence).toBeGreaterThan(0.7);
      expect(decision.position_size).toBeGreaterThan(0);
    });

    it('test_risk_blocking', async () => {
      const context = wf([sig('risk', { analysis: { risk_level: 'blocked' } }, 1.0)], { corr_id: 'test_003', instrument: 'EURUSD' });

      const decision = await harness().evaluate(context);

      expect(decision.action).toBe('no_trade');
      expect(decision.reason).toBe('risk_blocked');
      expect(decision.confidence).toBe(1.0);
    });
  });

  describe('define', () => {
    it('gives FX instruments momentum and risk with 120 s', async () => {
      expect(await harness().define({ instrument: 'EURUSD', side: 'buy', price: 1.0875 })).toEqual({
        requiredAgents: ['momentum', 'risk'],
        timeoutSeconds: 120,
        metadata: { instrument: 'EURUSD', trigger_price: 1.0875, trigger_side: 'buy' },
        // canDecide's rule, declared so that Redis judges it as signals are stored.
        readyWhen: { all: ['momentum', 'risk'], atLeast: 2 },
      });
    });

    it.each(['SPY', 'QQQ', 'IWM'])('gives the ETF %s momentum, risk, correlation and macro with 180 s', async (instrument) => {
      const def = await harness().define({ instrument, side: 'sell', price: 500 });
      expect(def.requiredAgents).toEqual(['momentum', 'risk', 'correlation', 'macro']);
      expect(def.timeoutSeconds).toBe(180);
      expect(def.metadata).toEqual({ instrument, trigger_price: 500, trigger_side: 'sell' });
    });

    it('does not treat a name merely containing an ETF ticker as an ETF', async () => {
      expect((await harness().define({ instrument: 'SPYX', side: 'buy' })).timeoutSeconds).toBe(120);
    });

    it('gives CRYPTO instruments momentum, risk, sentiment and correlation with 300 s', async () => {
      const def = await harness().define({ instrument: 'CRYPTO:BTCUSD', side: 'buy', price: 65000 });
      expect(def.requiredAgents).toEqual(['momentum', 'risk', 'sentiment', 'correlation']);
      expect(def.timeoutSeconds).toBe(300);
      expect(def.metadata).toEqual({ instrument: 'CRYPTO:BTCUSD', trigger_price: 65000, trigger_side: 'buy' });
      expect(def.readyWhen).toEqual({ all: ['momentum', 'risk', 'sentiment'], atLeast: 2 });
    });

    it('uses UNKNOWN and the FX branch when the instrument is missing, with null price and side', async () => {
      expect(await harness().define({})).toEqual({
        requiredAgents: ['momentum', 'risk'],
        timeoutSeconds: 120,
        metadata: { instrument: 'UNKNOWN', trigger_price: null, trigger_side: null },
        readyWhen: { all: ['momentum', 'risk'], atLeast: 2 },
      });
    });

    it('uses UNKNOWN when the instrument is not a string', async () => {
      expect((await harness().define({ instrument: 42, side: 'buy' })).metadata).toEqual({
        instrument: 'UNKNOWN',
        trigger_price: null,
        trigger_side: 'buy',
      });
      expect((await harness().define({ instrument: null })).metadata?.instrument).toBe('UNKNOWN');
    });
  });

  describe('shouldStart', () => {
    it('declines a trigger without a side', async () => {
      expect(await harness().shouldStart({ strength: 0.9 })).toBe(false);
      expect(await harness().shouldStart({ side: null, strength: 0.9 })).toBe(false);
    });

    it('declines a trigger without a strength (defaults to 0)', async () => {
      expect(await harness().shouldStart({ side: 'buy' })).toBe(false);
    });

    it('declines strength 0.29 and accepts 0.3', async () => {
      expect(await harness().shouldStart({ side: 'buy', strength: 0.29 })).toBe(false);
      expect(await harness().shouldStart({ side: 'buy', strength: 0.3 })).toBe(true);
      expect(await harness().shouldStart({ side: 'sell', strength: 1 })).toBe(true);
    });

    it('treats a non-number strength as 0', async () => {
      expect(await harness().shouldStart({ side: 'buy', strength: '0.9' })).toBe(false);
      expect(await harness().shouldStart({ side: 'buy', strength: true })).toBe(false);
      expect(await harness().shouldStart({ side: 'buy', strength: Number.NaN })).toBe(false);
    });
  });

  describe('canDecide', () => {
    const m = () => sig('momentum', {});
    const r = () => sig('risk', {});
    const s = () => sig('sentiment', {});
    const c = () => sig('correlation', {});
    const x = () => sig('macro', {});

    it('waits for risk and for momentum', async () => {
      expect(await harness().canDecide(wf([m()]))).toBe(false);
      expect(await harness().canDecide(wf([r()]))).toBe(false);
      expect(await harness().canDecide(wf([r(), s(), c()]))).toBe(false);
      expect(await harness().canDecide(wf([m(), r()]))).toBe(true);
    });

    it('also waits for sentiment on crypto', async () => {
      const crypto = { instrument: 'CRYPTO:ETHUSD' };
      expect(await harness().canDecide(wf([m(), r()], crypto))).toBe(false);
      expect(await harness().canDecide(wf([m(), r(), c()], crypto))).toBe(false);
      expect(await harness().canDecide(wf([m(), r(), s()], crypto))).toBe(true);
    });

    it('treats a missing or non-string instrument as not crypto', async () => {
      expect(await harness().canDecide(wf([m(), r()], {}, {}))).toBe(true);
      expect(await harness().canDecide(wf([m(), r()], { instrument: 7 }, { instrument: 7 }))).toBe(true);
    });

    it('honours minAgentsRequired', async () => {
      const st = harness({ minAgentsRequired: 3 });
      expect(await st.canDecide(wf([m(), r()]))).toBe(false);
      expect(await st.canDecide(wf([m(), r(), c()]))).toBe(true);
    });

    it('honours custom requiredAgents', async () => {
      const st = harness({ requiredAgents: ['momentum', 'risk', 'macro'] });
      expect(await st.canDecide(wf([m(), r()]))).toBe(false);
      expect(await st.canDecide(wf([m(), r(), c()]))).toBe(false);
      expect(await st.canDecide(wf([m(), r(), x()]))).toBe(true);

      const momentumOnly = harness({ requiredAgents: ['momentum'], minAgentsRequired: 1 });
      expect(await momentumOnly.canDecide(wf([m()]))).toBe(true);
      expect(await momentumOnly.canDecide(wf([r()]))).toBe(false);
    });
  });

  describe('evaluate', () => {
    it('builds the template decision, fields in the template order', async () => {
      const decision = await harness().evaluate(wf([bullish(), lowRisk()]));

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

    it('dates its analysis by the decision (ctx.decidedAt, the freeze), not by the clock: every run decides the same', async () => {
      const decidedAt = '2026-11-29T14:30:00.000Z';
      const first = await harness().evaluate({ ...wf([bullish(), lowRisk()]), decidedAt });
      await new Promise((r) => setTimeout(r, 5));
      const again = await harness().evaluate({ ...wf([bullish(), lowRisk()]), decidedAt });
      expect(first.metadata).toMatchObject({ analysis_timestamp: decidedAt });
      expect(again).toEqual(first);
    });

    it('blocks on a top-level risk_level', async () => {
      const decision = await harness().evaluate(
        wf([bullish(), sig('risk', { risk_level: 'blocked', analysis: { risk_level: 'low', max_position_size: 100000 } }, 0.8)]),
      );
      expect(decision).toEqual({
        action: 'no_trade',
        reason: 'risk_blocked',
        confidence: 1.0,
        metadata: expect.objectContaining({ instrument: 'EURUSD', agents_consulted: ['momentum', 'risk'] }),
      });
    });

    it('blocks on analysis.risk_level even with a strong momentum signal', async () => {
      const decision = await harness().evaluate(wf([bullish(), risk(0.8, { risk_level: 'blocked', max_position_size: 100000 })]));
      expect(decision.action).toBe('no_trade');
      expect(decision.reason).toBe('risk_blocked');
      expect(decision.confidence).toBe(1.0);
    });

    it('does not trade when momentum confidence is exactly 0.8', async () => {
      const decision = await harness().evaluate(wf([momentum(0.8, { trend_direction: 'bullish', momentum_strength: 0.9 }), lowRisk()]));
      expect(decision.action).toBe('no_trade');
      expect(decision.reason).toBe('insufficient_confidence');
      expect(decision.confidence).toBe(0.0);
      expect(decision).not.toHaveProperty('direction');
      expect(decision).not.toHaveProperty('position_size');
    });

    it('does not trade when momentum strength is exactly 0.7', async () => {
      const decision = await harness().evaluate(wf([momentum(0.9, { trend_direction: 'bullish', momentum_strength: 0.7 }), lowRisk()]));
      expect(decision.action).toBe('no_trade');
      expect(decision.reason).toBe('insufficient_confidence');
      expect(decision.confidence).toBe(0.0);
    });

    it('does not trade without a risk signal (position size 0)', async () => {
      const decision = await harness().evaluate(wf([bullish()]));
      expect(decision.action).toBe('no_trade');
      expect(decision.reason).toBe('insufficient_confidence');
      expect(decision.confidence).toBe(0.0);
      expect(strategy().calculatePositionSize(undefined, 0.8, 0.9)).toBe(0);
    });

    it('does not trade when the risk agent gives no max_position_size', async () => {
      expect((await harness().evaluate(wf([bullish(), risk(0.8, { risk_level: 'low' })]))).action).toBe('no_trade');
    });

    it.each([
      ['low', 36000], // 50000 * 1.0 * 0.72
      ['medium', 25200], // 50000 * 0.7 * 0.72
      ['high', 10800], // 50000 * 0.3 * 0.72
      ['extreme', 18000], // unknown level: 50000 * 0.5 * 0.72
      ['constructor', 18000], // not an Object.prototype lookup
    ])('sizes a %s risk position at %d', async (riskLevel, expected) => {
      const decision = await harness().evaluate(wf([bullish(), risk(0.8, { risk_level: riskLevel, max_position_size: 100000 })]));
      expect(decision.action).toBe('trade');
      expect(decision.position_size).toBeCloseTo(expected, 6);
    });

    it('sizes a position with no risk level at the default multiplier', async () => {
      const decision = await harness().evaluate(wf([bullish(), risk(0.8, { max_position_size: 100000 })]));
      expect(decision.position_size).toBeCloseTo(18000, 6);
    });

    it('calculatePositionSize: blocked is 0, and the formula is base * risk * (confidence * strength)', () => {
      const st = strategy();
      const signal = harness().signal;
      expect(st.calculatePositionSize(signal(risk(1, { risk_level: 'blocked', max_position_size: 100000 })), 0.8, 0.9)).toBe(0);
      // 200000 * 0.5 * 0.7 * (0.5 * 0.6)
      expect(st.calculatePositionSize(signal(risk(1, { risk_level: 'medium', max_position_size: 200000 })), 0.6, 0.5)).toBeCloseTo(21000, 6);
    });

    it('takes the lower of momentum and risk confidence', async () => {
      expect((await harness().evaluate(wf([bullish(), lowRisk(0.8)]))).confidence).toBe(0.8);
      expect((await harness().evaluate(wf([bullish(), lowRisk(0.95)]))).confidence).toBe(0.9);
    });

    it('copies trend_direction as received, null when missing', async () => {
      const bearish = await harness().evaluate(wf([momentum(0.9, { trend_direction: 'bearish', momentum_strength: 0.8 }), lowRisk()]));
      expect(bearish.direction).toBe('bearish');
      const none = await harness().evaluate(wf([momentum(0.9, { momentum_strength: 0.8 }), lowRisk()]));
      expect(none.action).toBe('trade');
      expect(none.direction).toBeNull();
    });

    describe('sentiment boost (crypto)', () => {
      const crypto = { instrument: 'CRYPTO:BTCUSD' };
      const sentiment = (score: unknown) => sig('sentiment', { sentiment_score: score } as JsonObject, 0.7);

      it('boosts an aligned bullish trade by 1.2', async () => {
        const decision = await harness().evaluate(wf([bullish(), lowRisk(0.7), sentiment(0.7)], crypto));
        expect(decision.action).toBe('trade');
        expect(decision.confidence).toBeCloseTo(0.84, 10);
        expect(decision.metadata).toMatchObject({ sentiment_boost: true });
      });

      it('caps the boost at 1.0', async () => {
        const decision = await harness().evaluate(wf([bullish(), lowRisk(0.95), sentiment(0.9)], crypto));
        expect(decision.confidence).toBe(1.0);
        expect(decision.metadata).toMatchObject({ sentiment_boost: true });
      });

      it('boosts an aligned bearish trade', async () => {
        const bearish = momentum(0.9, { trend_direction: 'bearish', momentum_strength: 0.8 });
        const decision = await harness().evaluate(wf([bearish, lowRisk(0.7), sentiment(-0.7)], crypto));
        expect(decision.confidence).toBeCloseTo(0.84, 10);
        expect(decision.metadata).toMatchObject({ sentiment_boost: true });
      });

      it('does not boost against the direction', async () => {
        const decision = await harness().evaluate(wf([bullish(), lowRisk(0.7), sentiment(-0.9)], crypto));
        expect(decision.action).toBe('trade');
        expect(decision.confidence).toBe(0.7);
        expect(decision.metadata).not.toHaveProperty('sentiment_boost');
      });

      it('does not boost when |score| is 0.6 or less', async () => {
        for (const score of [0.6, -0.6, 0.3]) {
          const decision = await harness().evaluate(wf([bullish(), lowRisk(0.7), sentiment(score)], crypto));
          expect(decision.confidence).toBe(0.7);
          expect(decision.metadata).not.toHaveProperty('sentiment_boost');
        }
      });

      it('does not boost a non-crypto instrument', async () => {
        const decision = await harness().evaluate(wf([bullish(), lowRisk(0.7), sentiment(0.9)], { instrument: 'EURUSD' }));
        expect(decision.confidence).toBe(0.7);
        expect(decision.metadata).not.toHaveProperty('sentiment_boost');
      });

      it('does not boost a no_trade decision', async () => {
        const decision = await harness().evaluate(wf([lowRisk(0.7), sentiment(0.9)], crypto));
        expect(decision.action).toBe('no_trade');
        expect(decision.confidence).toBe(0.0);
        expect(decision.metadata).not.toHaveProperty('sentiment_boost');
      });

      it('does not throw when the instrument is missing', async () => {
        const decision = await harness().evaluate(wf([bullish(), lowRisk(0.7), sentiment(0.9)], {}, {}));
        expect(decision.action).toBe('trade');
        expect(decision.confidence).toBe(0.7);
        expect(decision.metadata).toMatchObject({ instrument: null });
        expect(decision.metadata).not.toHaveProperty('sentiment_boost');
      });
    });

    describe('correlation adjustment', () => {
      const correlation = (value: unknown) => sig('correlation', { correlation_risk: value } as JsonObject, 0.9);

      it('halves the position when correlation_risk > 0.8', async () => {
        const decision = await harness().evaluate(wf([bullish(), lowRisk(), correlation(0.81)]));
        expect(decision.position_size).toBeCloseTo(18000, 6);
        expect(decision.metadata).toMatchObject({ correlation_adjustment: true });
      });

      it('leaves the position at correlation_risk exactly 0.8', async () => {
        const decision = await harness().evaluate(wf([bullish(), lowRisk(), correlation(0.8)]));
        expect(decision.position_size).toBeCloseTo(36000, 6);
        expect(decision.metadata).not.toHaveProperty('correlation_adjustment');
      });

      it('leaves a no_trade decision alone', async () => {
        const decision = await harness().evaluate(wf([lowRisk(), correlation(0.95)]));
        expect(decision).not.toHaveProperty('position_size');
        expect(decision.metadata).not.toHaveProperty('correlation_adjustment');
      });
    });

    describe('min confidence threshold', () => {
      it('turns a trade below the threshold into no_trade insufficient_confidence', async () => {
        const decision = await harness({ minConfidenceThreshold: 0.9 }).evaluate(wf([bullish(), lowRisk(0.8)]));
        expect(decision).toEqual({
          action: 'no_trade',
          reason: 'insufficient_confidence',
          confidence: 0.8,
          metadata: expect.objectContaining({ instrument: 'EURUSD', min_confidence_threshold: 0.9 }),
        });
        expect(decision).not.toHaveProperty('direction');
        expect(decision).not.toHaveProperty('position_size');
      });

      it('trades at exactly the threshold', async () => {
        const decision = await harness({ minConfidenceThreshold: 0.8 }).evaluate(wf([bullish(), lowRisk(0.8)]));
        expect(decision.action).toBe('trade');
        expect(decision.confidence).toBe(0.8);
        expect(decision.metadata).not.toHaveProperty('min_confidence_threshold');
      });

      it('applies after the sentiment boost', async () => {
        const st = harness({ minConfidenceThreshold: 0.8 });
        const context = wf([bullish(), lowRisk(0.7), sig('sentiment', { sentiment_score: 0.9 }, 0.7)], { instrument: 'CRYPTO:BTCUSD' });
        const decision = await st.evaluate(context);
        expect(decision.action).toBe('trade');
        expect(decision.confidence).toBeCloseTo(0.84, 10);
      });

      it('uses the default threshold 0.5', async () => {
        const decision = await harness().evaluate(wf([bullish(), lowRisk(0.4)]));
        expect(decision.action).toBe('no_trade');
        expect(decision.confidence).toBe(0.4);
        expect(decision.metadata).toMatchObject({ min_confidence_threshold: 0.5 });
      });
    });

    describe('malformed payloads', () => {
      it('ignores string numbers (template defaults apply)', async () => {
        const st = harness();
        expect((await st.evaluate(wf([momentum(0.9, { trend_direction: 'bullish', momentum_strength: '0.8' }), lowRisk()]))).action).toBe('no_trade');
        expect((await st.evaluate(wf([bullish(), risk(0.8, { risk_level: 'low', max_position_size: '100000' })]))).action).toBe('no_trade');

        const crypto = { instrument: 'CRYPTO:BTCUSD' };
        const noBoost = await st.evaluate(wf([bullish(), lowRisk(0.7), sig('sentiment', { sentiment_score: '0.9' })], crypto));
        expect(noBoost.confidence).toBe(0.7);
        expect(noBoost.metadata).not.toHaveProperty('sentiment_boost');

        const noHalving = await st.evaluate(wf([bullish(), lowRisk(), sig('correlation', { correlation_risk: '0.95' })]));
        expect(noHalving.position_size).toBeCloseTo(36000, 6);
        expect(noHalving.metadata).not.toHaveProperty('correlation_adjustment');
      });

      it('treats a non-object analysis as empty', async () => {
        for (const analysis of ['bullish', null, [0.9, 0.8], 3]) {
          expect((await harness().evaluate(wf([momentum(0.9, analysis), lowRisk()]))).action).toBe('no_trade');
          expect((await harness().evaluate(wf([bullish(), risk(0.8, analysis)]))).action).toBe('no_trade');
        }
      });
    });
  });

  describe('onTimeout and the life cycle', () => {
    it('has no onTimeout: the default timeout decision lists what define required and did not arrive', async () => {
      expect(await harness().onTimeout(wf([bullish(), sig('correlation', {})], { instrument: 'SPY' }))).toEqual({
        action: 'timeout',
        reason: 'workflow_timeout',
        partial_signals: ['momentum', 'correlation'],
        missing_signals: ['risk', 'macro'],
      });
    });

    it('declines, decides at the signal that completes it, or times out', async () => {
      expect(await harness().run(wf([bullish(), lowRisk()], { instrument: 'EURUSD', strength: 0.9 }))).toEqual({ status: 'declined' });
      const fx = { instrument: 'EURUSD', side: 'buy', strength: 0.9 };
      expect(await harness().run(wf([bullish(), lowRisk()], fx))).toMatchObject({ status: 'completed', afterSignals: 2, decision: { action: 'trade' } });
      expect(await harness().run(wf([bullish()], fx))).toMatchObject({ status: 'timeout', decision: { missing_signals: ['risk'] } });
    });
  });
});
