import { readFileSync } from 'node:fs';
import { strategyHarness } from '../testing.js';
import { DeclarativeStrategy } from './declarative.strategy.js';
import { parseWorkflowsFile, type WorkflowTypeSpec } from './workflows-file.js';

/** The example file shipped in deploy/, without its position size (added where a test wants it). */
const HEDGE = readFileSync(new URL('../../../../deploy/workflows/hedge.example.yaml', import.meta.url), 'utf8').replace(/ {4}position_size:.*\n/, '');

function harness(yaml = HEDGE, type = 'hedge', minConfidence = 0.5) {
  const spec = parseWorkflowsFile(yaml, 'test.yaml').workflow_types[type];
  return strategyHarness(new DeclarativeStrategy(type, spec, { minConfidence }), { workflowType: type, trigger: { instrument: 'EURUSD', strength: 0.8 } });
}

const risk = (level = 'low', extra: Record<string, unknown> = {}) => ({ agent_name: 'risk', confidence: 0.9, analysis: { risk_level: level }, ...extra });
const momentum = (trend: string, confidence = 0.9) => ({ agent_name: 'momentum', confidence, analysis: { trend_direction: trend } });
const sentiment = (trend: string, confidence = 0.8) => ({ agent_name: 'sentiment', confidence, analysis: { trend_direction: trend } });

describe('DeclarativeStrategy (a workflow type of META_AGENT_WORKFLOWS_FILE)', () => {
  it('defines the workflow: required and veto agents, the timeout', async () => {
    const h = harness();
    expect(await h.define()).toEqual({
      requiredAgents: ['risk', 'momentum', 'sentiment'],
      timeoutSeconds: 30,
      metadata: { defined_in: 'workflows_file' },
      // Judged by Redis as signals are stored: the quorum among required_agents, the veto agent whatever the quorum.
      readyWhen: { all: ['risk'], atLeast: 2, among: ['risk', 'momentum', 'sentiment'] },
    });
    const ctx = await h.context();
    expect(ctx).toMatchObject({ workflowType: 'hedge', timeoutSeconds: 30 });
  });

  it('start_when: a trigger that does not match is declined', async () => {
    const h = harness();
    expect(await h.shouldStart({ strength: 0.3 })).toBe(true);
    expect(await h.shouldStart({ strength: 0.29 })).toBe(false);
    expect(await h.shouldStart({ strength: 'high' })).toBe(false);
    expect(await h.run({ trigger: { strength: 0.1 }, signals: [risk(), momentum('bullish')] })).toEqual({ status: 'declined' });
    // Without start_when, every trigger opens a workflow.
    const open = harness(`workflow_types: { t: { required_agents: [momentum], vote: { field: d, weights: { momentum: 1 } } } }`, 't');
    expect(await open.shouldStart({ strength: 0 })).toBe(true);
  });

  it('quorum: decides once that many required agents have answered', async () => {
    const h = harness(HEDGE.replace(/ {4}veto:\n.*\n/, '')); // no veto agent to wait for
    expect(await h.canDecide({ signals: [momentum('bullish')] })).toBe(false);
    expect(await h.canDecide({ signals: [momentum('bullish'), sentiment('bullish')] })).toBe(true);
    // Default quorum: all of them.
    const all = harness(HEDGE.replace('quorum: 2', ''));
    expect(await all.canDecide({ signals: [risk(), momentum('bullish')] })).toBe(false);
    expect(await all.canDecide({ signals: [risk(), momentum('bullish'), sentiment('bullish')] })).toBe(true);
  });

  it('a veto agent is waited for even past the quorum, and a matching veto decides no_trade', async () => {
    const h = harness();
    expect(await h.canDecide({ signals: [momentum('bullish'), sentiment('bullish')] })).toBe(false);
    const run = await h.run({ signals: [momentum('bullish'), sentiment('bullish'), risk('blocked')] });
    expect(run).toMatchObject({ status: 'completed', afterSignals: 3 });
    expect(run.status === 'completed' && run.decision).toMatchObject({ action: 'no_trade', reason: 'veto:risk', direction: 'bullish' });
    // A veto that does not match lets the vote decide.
    expect(await h.evaluate({ signals: [momentum('bullish'), sentiment('bullish'), risk('low')] })).toMatchObject({ action: 'trade', reason: 'weighted_vote' });
  });

  it('weighted vote: weight × confidence per agent, the winning share as confidence', async () => {
    const h = harness();
    // momentum 2 × 0.9 = 1.8 bullish; sentiment 1 × 0.6 = 0.6 bearish: share 1.8 / 2.4 = 0.75.
    const d = await h.evaluate({ signals: [risk(), momentum('bullish', 0.9), sentiment('bearish', 0.6)] });
    expect(d).toEqual({ action: 'trade', direction: 'bullish', confidence: 0.75, reason: 'weighted_vote', votes: { bullish: 1.8, bearish: 0.6, neutral: 0 } });
    // Agents without a weight (risk) and values that are not a direction do not vote.
    const e = await h.evaluate({ signals: [risk('low', { analysis: { trend_direction: 'bearish' } }), momentum('up'), sentiment('bearish', 0.5)] });
    expect(e).toMatchObject({ action: 'trade', direction: 'bearish', confidence: 1, votes: { bullish: 0, bearish: 0.5, neutral: 0 } });
  });

  it('min_confidence: a winning share below it is no_trade, insufficient_confidence', async () => {
    const h = harness();
    // 2 × 0.5 = 1.0 bullish; 1 × 0.8 = 0.8 bearish: share 0.5556 < 0.6.
    expect(await h.evaluate({ signals: [risk(), momentum('bullish', 0.5), sentiment('bearish', 0.8)] })).toMatchObject({
      action: 'no_trade',
      reason: 'insufficient_confidence',
      direction: 'bullish',
      confidence: 0.555556,
    });
    // Without min_confidence, META_AGENT_MIN_CONFIDENCE_THRESHOLD applies (here 0.5).
    const h2 = harness(HEDGE.replace('min_confidence: 0.6', ''), 'hedge', 0.5);
    expect(await h2.evaluate({ signals: [risk(), momentum('bullish', 0.5), sentiment('bearish', 0.8)] })).toMatchObject({ action: 'trade' });
  });

  it('neutral winning, a tie, or no votes: no_trade', async () => {
    const h = harness(HEDGE.replace('min_confidence: 0.6', 'min_confidence: 0'));
    expect(await h.evaluate({ signals: [risk(), momentum('neutral'), sentiment('bullish')] })).toMatchObject({
      action: 'no_trade',
      reason: 'neutral',
      direction: 'neutral',
    });
    expect(await h.evaluate({ signals: [risk(), momentum('bullish', 0.4), sentiment('bearish', 0.8)] })).toMatchObject({
      action: 'no_trade',
      reason: 'tie',
      direction: null,
      confidence: 0.5,
    });
    expect(await h.evaluate({ signals: [risk(), momentum('sideways'), sentiment('up')] })).toMatchObject({
      action: 'no_trade',
      reason: 'no_votes',
      direction: null,
      confidence: 0,
    });
  });

  it('conditions: equals, in, gte, lte on dotted paths; own properties only', async () => {
    const yaml = `
workflow_types:
  c:
    required_agents: [risk, momentum]
    start_when: { field: meta.venue.name, in: [XNAS, XNYS] }
    veto:
      - { agent: risk, field: analysis.scores.var, gte: 0.2, lte: 0.9 }
      - { agent: momentum, field: analysis.halted, equals: true }
    vote: { field: analysis.trend_direction, weights: { momentum: 1 }, min_confidence: 0 }
`;
    const h = harness(yaml, 'c');
    expect(await h.shouldStart({ meta: { venue: { name: 'XNAS' } } })).toBe(true);
    expect(await h.shouldStart({ meta: { venue: { name: 'XLON' } } })).toBe(false);
    expect(await h.shouldStart({ meta: { venue: 'XNAS' } })).toBe(false);
    expect(await h.shouldStart({ meta: { venue: { name: 'constructor' } } })).toBe(false);
    const trigger = { meta: { venue: { name: 'XNYS' } } };
    const riskVar = (v: unknown) => ({ agent_name: 'risk', confidence: 1, analysis: { scores: { var: v } } });
    const mom = { agent_name: 'momentum', confidence: 1, analysis: { trend_direction: 'bullish', halted: false } };
    expect(await h.evaluate({ trigger, signals: [riskVar(0.5), mom] })).toMatchObject({ reason: 'veto:risk' });
    expect(await h.evaluate({ trigger, signals: [riskVar(0.95), mom] })).toMatchObject({ action: 'trade' });
    expect(await h.evaluate({ trigger, signals: [riskVar('0.5'), mom] })).toMatchObject({ action: 'trade' });
    expect(await h.evaluate({ trigger, signals: [riskVar(0.1), { ...mom, analysis: { ...mom.analysis, halted: true } }] })).toMatchObject({
      reason: 'veto:momentum',
    });
  });

  it('position_size: from a signal field, scaled by its confidence; its agent is waited for', async () => {
    const yaml = `${HEDGE}    position_size: { agent: risk, field: analysis.max_position_size, scale_by_confidence: true }\n`;
    const h = harness(yaml.replace(/ {4}veto:\n.*\n/, ''));
    expect(await h.define()).toMatchObject({ requiredAgents: ['risk', 'momentum', 'sentiment'] });
    expect(await h.canDecide({ signals: [momentum('bullish'), sentiment('bullish')] })).toBe(false);
    const sized = { agent_name: 'risk', confidence: 0.5, analysis: { max_position_size: 10000 } };
    expect(await h.evaluate({ signals: [momentum('bullish'), sentiment('bullish'), sized] })).toMatchObject({ action: 'trade', position_size: 5000 });
    expect(await h.evaluate({ signals: [momentum('bullish'), sentiment('bullish'), { ...sized, analysis: {} }] })).toMatchObject({
      action: 'no_trade',
      reason: 'no_position_size',
    });
    // No position_size on a no_trade.
    const neutral = await h.evaluate({ signals: [momentum('neutral'), sentiment('bullish'), sized] });
    expect(neutral).toMatchObject({ action: 'no_trade', reason: 'neutral' });
    expect(neutral).not.toHaveProperty('position_size');
  });

  it('times out with the default timeout decision (missing_signals)', async () => {
    const h = harness();
    const run = await h.run({ signals: [momentum('bullish'), sentiment('bullish')] });
    expect(run).toEqual({
      status: 'timeout',
      decision: { action: 'timeout', reason: 'workflow_timeout', partial_signals: ['momentum', 'sentiment'], missing_signals: ['risk'] },
    });
  });

  it('the spec types check (a file-defined type is plain data)', () => {
    const spec: WorkflowTypeSpec = { required_agents: ['momentum'], vote: { field: 'd', weights: { momentum: 1 } } };
    expect(new DeclarativeStrategy('t', spec, { minConfidence: 0.5 }).requiredAgents).toEqual(['momentum']);
  });
});
