// The agent simulator's messages (scripts/agent-simulator.mjs): the plan of a run, drawn from a seed, and the
// trigger and agent signals it publishes. Apart from the simulator so that tests can check these messages
// against the message contract (docs/asyncapi.yaml) without NATS.

// Agents that answer each asset class: the trading strategy's required agents for it.
export const INSTRUMENTS = [
  { symbol: 'EURUSD', kind: 'fx', price: 1.0852, maxPosition: [100_000, 200_000] },
  { symbol: 'SPY', kind: 'etf', price: 512.34, maxPosition: [20_000, 50_000] },
  { symbol: 'CRYPTO:BTCUSD', kind: 'crypto', price: 67_250.5, maxPosition: [5_000, 10_000] },
  { symbol: 'GBPUSD', kind: 'fx', price: 1.2718, maxPosition: [100_000, 200_000] },
  { symbol: 'QQQ', kind: 'etf', price: 438.9, maxPosition: [20_000, 50_000] },
  { symbol: 'USDJPY', kind: 'fx', price: 151.42, maxPosition: [100_000, 200_000] },
  { symbol: 'CRYPTO:ETHUSD', kind: 'crypto', price: 3_480.25, maxPosition: [5_000, 10_000] },
  { symbol: 'IWM', kind: 'etf', price: 204.11, maxPosition: [20_000, 50_000] },
];
export const AGENTS = {
  fx: ['momentum', 'risk'],
  etf: ['momentum', 'risk', 'correlation', 'macro'],
  crypto: ['momentum', 'risk', 'sentiment', 'correlation'],
};

/** A small seeded generator (mulberry32): the plan of a run depends on the seed only. */
function seeded(seed) {
  let state = seed >>> 0;
  const rand = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const between = (lo, hi) => lo + rand() * (hi - lo);
  const pick = (items) => items[Math.floor(rand() * items.length)];
  function weighted(choices) {
    let r = rand() * choices.reduce((sum, [, w]) => sum + w, 0);
    for (const [value, w] of choices) if ((r -= w) < 0) return value;
    return choices[choices.length - 1][0];
  }
  return { rand, between, pick, weighted };
}
const round = (x, digits = 2) => Number(x.toFixed(digits));

/** The payload an agent sends (without corr_id, agent_name and timestamp, added when sent). */
function agentPayload({ rand, between, pick, weighted }, agent, wf) {
  const bullish = wf.side === 'buy' ? rand() < 0.8 : rand() < 0.2;
  switch (agent) {
    case 'momentum':
      return {
        confidence: round(between(0.7, 0.98)),
        analysis: { trend_direction: bullish ? 'bullish' : 'bearish', momentum_strength: round(between(0.5, 0.95)), lookback_minutes: 60 },
      };
    case 'risk':
      return {
        confidence: round(between(0.55, 0.95)),
        analysis: {
          risk_level: weighted([
            ['low', 4],
            ['medium', 3],
            ['high', 2],
            ['blocked', 1],
          ]),
          max_position_size: pick(wf.instrument.maxPosition),
          volatility: round(between(0.05, 0.6), 3),
        },
      };
    case 'sentiment':
      return { confidence: round(between(0.5, 0.9)), sentiment_score: round(between(-1, 1)), sources: ['news', 'social'] };
    case 'correlation':
      return { confidence: round(between(0.6, 0.95)), correlation_risk: round(between(0, 1)), analysis: { window_days: 30 } };
    case 'macro':
      return { confidence: round(between(0.5, 0.9)), analysis: { regime: pick(['risk_on', 'risk_off', 'neutral', 'tightening']) } };
    default:
      throw new Error(`no payload for agent ${agent}`);
  }
}

/**
 * The plan of `count` workflows: everything random about them is drawn here, up front, so a run only depends
 * on `seed`. On purpose, some workflows lose an agent (they time out), some get a signal before their
 * trigger, a repeated trigger, or a weak trigger (strength < 0.3, which the trading strategy declines).
 */
export function planWorkflows(count, seed, runId) {
  const random = seeded(seed);
  const { rand, between } = random;
  return Array.from({ length: count }, (_, i) => {
    const instrument = INSTRUMENTS[i % INSTRUMENTS.length];
    const label = `${instrument.kind}-${String(i + 1).padStart(4, '0')}`;
    const wf = {
      label,
      corrId: `${runId}.${label}`,
      instrument,
      side: rand() < 0.6 ? 'buy' : 'sell',
      weak: i % 10 === 7, // strength < 0.3: declined, no decision expected, no agent answers
      early: i % 6 === 1, // the first agent answers before the trigger is published
      duplicate: i % 9 === 4, // the trigger is published twice
      withheld: i % 7 === 2 ? (Math.floor(i / 7) % 2 === 0 ? 'risk' : 'momentum') : null, // ~15%: a timeout
      launched: false,
      sentAt: 0,
      failed: false,
      decision: null,
    };
    wf.strength = wf.weak ? round(between(0.05, 0.29)) : round(between(0.35, 0.95));
    wf.answers = AGENTS[instrument.kind]
      .filter((agent) => agent !== wf.withheld)
      .map((agent) => ({ agent, delayMs: Math.round(between(50, 1500)), payload: agentPayload(random, agent, wf) }));
    return wf;
  });
}

/** The trigger of a planned workflow, on `signals.normalized`. */
export function triggerMessage(wf, timeoutSeconds, now = new Date()) {
  return {
    corr_id: wf.corrId,
    instrument: wf.instrument.symbol,
    side: wf.side,
    strength: wf.strength,
    price: wf.instrument.price,
    normalized_at: now.toISOString(),
    timeout_seconds: timeoutSeconds,
    source: 'agent-simulator',
  };
}

/** One agent's answer (an entry of `wf.answers`), on `signals.enriched.<agent>`. */
export function signalMessage(wf, { agent, payload }, runId, now = new Date()) {
  return {
    corr_id: wf.corrId,
    agent_name: agent,
    signal_type: 'analysis',
    ...payload,
    timestamp: now.toISOString(),
    metadata: { simulator_run: runId },
  };
}
