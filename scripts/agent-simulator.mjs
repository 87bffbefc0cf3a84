#!/usr/bin/env node
// Agent simulator: plays the normalizer and the agents (momentum, risk, sentiment, correlation, macro)
// against a running orchestrator, and prints each decision as it arrives.
//
//   node scripts/agent-simulator.mjs          # or: npm run demo (starts everything around it)
//
// It publishes triggers on `signals.normalized` and agent signals on `signals.enriched.<agent>` through
// JetStream, and reads `orchestrated.decision` from the orchestrator's decision stream with an ordered
// consumer (so no decision is missed, even one published before the consumer caught up). On purpose,
// some workflows lose an agent (they time out), some get a signal before their trigger, a repeated
// trigger, or a weak trigger (strength < 0.3, which the trading strategy declines).
//
// Settings (environment):
//   SIM_NATS_URL         nats://127.0.0.1:4222
//   SIM_WORKFLOWS        24      workflows to send
//   SIM_RATE             4       workflows per second
//   SIM_TIMEOUT_SECONDS  4       `timeout_seconds` of every trigger, so timeouts show within seconds
//   SIM_WAIT_SECONDS     60      how long to wait for NATS and the orchestrator's streams at start
//   SIM_SEED             random  seed of the payload generator (the same seed replays the same run)
//
// Exit status: 0 when every non-declined workflow got exactly one decision; 1 when a decision is
// missing (after SIM_TIMEOUT_SECONDS + 10 s past the last trigger), repeated or unexpected, or a
// publish failed; 2 on a bad setting or when NATS / the streams never became available.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';

const TRIGGER_SUBJECT = 'signals.normalized';
const AGENT_SUBJECT = (agent) => `signals.enriched.${agent}`;
const DECISION_SUBJECT = 'orchestrated.decision';

function setting(name, def, min, max, integer = false) {
  const raw = process.env[name]?.trim();
  if (!raw) return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    console.error(`agent-simulator: invalid ${name}="${raw}" (expected ${integer ? 'a whole number' : 'a number'} in ${min}..${max})`);
    process.exit(2);
  }
  return n;
}

const NATS_URL = process.env.SIM_NATS_URL?.trim() || 'nats://127.0.0.1:4222';
const WORKFLOWS = setting('SIM_WORKFLOWS', 24, 1, 100_000, true);
const RATE = setting('SIM_RATE', 4, 0.1, 1000);
const TIMEOUT_SECONDS = setting('SIM_TIMEOUT_SECONDS', 4, 1, 3600);
const WAIT_SECONDS = setting('SIM_WAIT_SECONDS', 60, 1, 3600);
const SEED = setting('SIM_SEED', randomBytes(4).readUInt32BE(0) % 1_000_000, 0, 2 ** 32 - 1, true);
// Unique per run, so that decisions of earlier runs (the stream keeps them) are never counted.
const RUN_ID = `sim-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;

// Agents that answer each asset class: the trading strategy's required agents for it.
const INSTRUMENTS = [
  { symbol: 'EURUSD', kind: 'fx', price: 1.0852, maxPosition: [100_000, 200_000] },
  { symbol: 'SPY', kind: 'etf', price: 512.34, maxPosition: [20_000, 50_000] },
  { symbol: 'CRYPTO:BTCUSD', kind: 'crypto', price: 67_250.5, maxPosition: [5_000, 10_000] },
  { symbol: 'GBPUSD', kind: 'fx', price: 1.2718, maxPosition: [100_000, 200_000] },
  { symbol: 'QQQ', kind: 'etf', price: 438.9, maxPosition: [20_000, 50_000] },
  { symbol: 'USDJPY', kind: 'fx', price: 151.42, maxPosition: [100_000, 200_000] },
  { symbol: 'CRYPTO:ETHUSD', kind: 'crypto', price: 3_480.25, maxPosition: [5_000, 10_000] },
  { symbol: 'IWM', kind: 'etf', price: 204.11, maxPosition: [20_000, 50_000] },
];
const AGENTS = {
  fx: ['momentum', 'risk'],
  etf: ['momentum', 'risk', 'correlation', 'macro'],
  crypto: ['momentum', 'risk', 'sentiment', 'correlation'],
};

// A small seeded generator (mulberry32): the plan of a run depends on SIM_SEED only.
let state = SEED >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const between = (lo, hi) => lo + rand() * (hi - lo);
const round = (x, digits = 2) => Number(x.toFixed(digits));
const pick = (items) => items[Math.floor(rand() * items.length)];
function weighted(choices) {
  let r = rand() * choices.reduce((sum, [, w]) => sum + w, 0);
  for (const [value, w] of choices) if ((r -= w) < 0) return value;
  return choices[choices.length - 1][0];
}

/** The payload an agent sends (without corr_id, agent_name and timestamp, added when sent). */
function agentPayload(agent, wf) {
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

/** Everything random about workflow i is drawn here, up front, so the run only depends on the seed. */
function planWorkflow(i) {
  const instrument = INSTRUMENTS[i % INSTRUMENTS.length];
  const label = `${instrument.kind}-${String(i + 1).padStart(4, '0')}`;
  const wf = {
    label,
    corrId: `${RUN_ID}.${label}`,
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
    .map((agent) => ({ agent, delayMs: Math.round(between(50, 1500)), payload: agentPayload(agent, wf) }));
  return wf;
}

const workflows = Array.from({ length: WORKFLOWS }, (_, i) => planWorkflow(i));
const byCorrId = new Map(workflows.map((wf) => [wf.corrId, wf]));
const stats = { completed: 0, timeout: 0, failed: 0, other: 0, repeated: 0, unexpected: 0, publishErrors: 0 };

// ---- NATS ----------------------------------------------------------------------------------------

const startDeadline = Date.now() + WAIT_SECONDS * 1000;
async function untilReady(what, attempt) {
  let lastError;
  while (Date.now() < startDeadline) {
    try {
      return await attempt();
    } catch (error) {
      lastError = error;
      await sleep(500);
    }
  }
  console.error(`agent-simulator: ${what} not available after ${WAIT_SECONDS}s: ${lastError?.message ?? 'timed out'}`);
  process.exit(2);
}

const nc = await untilReady(`NATS at ${NATS_URL}`, () => connect({ servers: NATS_URL, name: 'agent-simulator', timeout: 2000 }));
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
// The orchestrator creates its streams at start: wait for the ones capturing our subjects.
await untilReady(`a stream for ${TRIGGER_SUBJECT}`, () => jsm.streams.find(TRIGGER_SUBJECT));
const decisionStream = await untilReady(`a stream for ${DECISION_SUBJECT} (is the orchestrator running?)`, () => jsm.streams.find(DECISION_SUBJECT));

function publish(subject, body) {
  return js.publish(subject, JSON.stringify(body)).catch((error) => {
    stats.publishErrors++;
    console.error(`PUBLISH   failed on ${subject}: ${error.message}`);
    throw error;
  });
}

// ---- decisions -------------------------------------------------------------------------------------

const runStart = new Date();
const consumer = await js.consumers.get(decisionStream, {
  filter_subjects: DECISION_SUBJECT,
  deliver_policy: DeliverPolicy.StartTime,
  opt_start_time: runStart.toISOString(),
});
const decisions = await consumer.consume();

let onAllDecided = () => {};
const allDecided = new Promise((resolve) => (onAllDecided = resolve));
const expected = () => workflows.filter((wf) => wf.launched && !wf.weak && !wf.failed);
let triggersDone = false;
const checkDone = () => {
  if (triggersDone && expected().every((wf) => wf.decision)) onAllDecided();
};

function describe(msg) {
  const d = msg.decision ?? {};
  if (msg.status === 'timeout') return `missing=[${(d.missing_signals ?? []).join(',')}] got=[${(d.partial_signals ?? []).join(',')}]`;
  if (msg.status === 'failed') return `${d.action} ${d.reason}: ${d.error ?? ''}`;
  if (d.action === 'trade') return `trade ${d.direction} size=${Math.round(d.position_size)} conf=${Number(d.confidence).toFixed(2)}`;
  return `${d.action} ${d.reason} conf=${Number(d.confidence ?? 0).toFixed(2)}`;
}

const reading = (async () => {
  for await (const m of decisions) {
    let msg;
    try {
      msg = m.json();
    } catch {
      continue;
    }
    if (typeof msg.corr_id !== 'string' || !msg.corr_id.startsWith(`${RUN_ID}.`)) continue; // another run's
    const wf = byCorrId.get(msg.corr_id);
    if (!wf || wf.weak) {
      stats.unexpected++;
      console.log(`UNEXPECTED decision for ${msg.corr_id} (${wf ? 'a declined trigger' : 'unknown corr_id'}): ${msg.status}`);
      continue;
    }
    if (wf.decision) {
      stats.repeated++;
      console.log(`REPEATED  decision for ${wf.label}: ${msg.status} (the first was ${wf.decision.status})`);
      continue;
    }
    wf.decision = msg;
    stats[['completed', 'timeout', 'failed'].includes(msg.status) ? msg.status : 'other']++;
    const took = wf.sentAt ? `${((Date.now() - wf.sentAt) / 1000).toFixed(2)}s` : '';
    const notes = [wf.early && 'early-signal', wf.duplicate && 'dup-trigger', wf.withheld && `${wf.withheld}-withheld`].filter(Boolean);
    console.log(
      `DECISION  ${wf.label.padEnd(11)}  ${wf.instrument.symbol.padEnd(14)} ${String(msg.status).padEnd(9)}  ${describe(msg).padEnd(50)} ${took.padStart(6)}` +
        (notes.length ? `  (${notes.join(', ')})` : ''),
    );
    checkDone();
  }
})();

// ---- workflows -------------------------------------------------------------------------------------

function trigger(wf) {
  return {
    corr_id: wf.corrId,
    instrument: wf.instrument.symbol,
    side: wf.side,
    strength: wf.strength,
    price: wf.instrument.price,
    normalized_at: new Date().toISOString(),
    timeout_seconds: TIMEOUT_SECONDS,
    source: 'agent-simulator',
  };
}

function answer(wf, { agent, payload }) {
  return publish(AGENT_SUBJECT(agent), {
    corr_id: wf.corrId,
    agent_name: agent,
    signal_type: 'analysis',
    ...payload,
    timestamp: new Date().toISOString(),
    metadata: { simulator_run: RUN_ID },
  });
}

async function runWorkflow(wf) {
  if (wf.weak)
    console.log(
      `TRIGGER   ${wf.label.padEnd(11)}  ${wf.instrument.symbol.padEnd(14)} weak       strength=${wf.strength}: should be declined, no decision expected`,
    );
  const answers = wf.weak ? [] : [...wf.answers];
  try {
    if (wf.early && answers.length > 0) {
      await answer(wf, answers.shift()); // buffered by the orchestrator until the trigger comes
      await sleep(100);
    }
    await publish(TRIGGER_SUBJECT, trigger(wf));
    wf.sentAt = Date.now();
  } catch {
    wf.failed = true;
    return;
  }
  const later = [];
  if (wf.duplicate) later.push(sleep(200).then(() => publish(TRIGGER_SUBJECT, trigger(wf))));
  for (const a of answers) later.push(sleep(a.delayMs).then(() => answer(wf, a)));
  await Promise.allSettled(later);
}

console.log(
  `agent-simulator: run ${RUN_ID}, seed ${SEED}: ${WORKFLOWS} workflows at ${RATE}/s, timeout_seconds=${TIMEOUT_SECONDS}, ` +
    `NATS ${NATS_URL}, decisions from stream ${decisionStream}`,
);
let interrupted = false;
process.once('SIGINT', () => {
  interrupted = true;
  onAllDecided();
});

const running = [];
for (const [i, wf] of workflows.entries()) {
  if (interrupted) break;
  const due = runStart.getTime() + (i * 1000) / RATE;
  if (due > Date.now()) await sleep(due - Date.now());
  wf.launched = true;
  running.push(runWorkflow(wf));
}
triggersDone = true;
checkDone();

// Wait for the decisions, at most SIM_TIMEOUT_SECONDS + 10 s after the last trigger (sent just now).
let deadline;
await Promise.race([allDecided, new Promise((resolve) => (deadline = setTimeout(resolve, (TIMEOUT_SECONDS + 10) * 1000)))]);
clearTimeout(deadline);
await Promise.allSettled(running); // agent answers still on their way (a few hundred ms at most)
decisions.stop();
await reading.catch(() => {});
await nc.drain();

// ---- summary ---------------------------------------------------------------------------------------

const sent = workflows.filter((wf) => wf.launched);
const missing = expected().filter((wf) => !wf.decision);
const count = (list, f) => list.filter(f).length;
const decided = sent.filter((wf) => wf.decision);
const kinds = ['fx', 'etf', 'crypto'].map((k) => `${k} ${count(sent, (wf) => wf.instrument.kind === k)}`).join(', ');
const actions = ['trade', 'no_trade'].map((a) => `${a} ${count(decided, (wf) => wf.decision.decision?.action === a)}`).join(', ');
const ok = missing.length === 0 && stats.repeated === 0 && stats.unexpected === 0 && stats.publishErrors === 0 && !interrupted;

console.log('');
console.log(`SUMMARY   run ${RUN_ID} (seed ${SEED})`);
console.log(`  workflows sent       ${sent.length} (${kinds})`);
console.log(`  declined triggers    ${count(sent, (wf) => wf.weak)} weak triggers sent (strength < 0.3), no decision expected`);
console.log(
  `  decisions received   ${decided.length}: completed ${stats.completed} (${actions}), timeout ${stats.timeout}, failed ${stats.failed}${stats.other ? `, other ${stats.other}` : ''}`,
);
console.log(
  `  scenarios            agent withheld ${count(sent, (wf) => wf.withheld && !wf.weak)}, early signal ${count(sent, (wf) => wf.early && !wf.weak)}, ` +
    `duplicate trigger ${count(sent, (wf) => wf.duplicate && !wf.weak)}`,
);
console.log(`  missing decisions    ${missing.length}${missing.length ? `: ${missing.map((wf) => wf.label).join(', ')}` : ''}`);
if (stats.repeated || stats.unexpected) console.log(`  invariant broken     ${stats.repeated} repeated decisions, ${stats.unexpected} unexpected decisions`);
if (stats.publishErrors) console.log(`  publish errors       ${stats.publishErrors}`);
console.log(`  result               ${ok ? 'OK' : interrupted ? 'INTERRUPTED' : 'FAILED'}`);
process.exit(ok ? 0 : 1);
