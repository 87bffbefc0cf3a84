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
import { planWorkflows, signalMessage, triggerMessage } from './simulator-messages.mjs';

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

const workflows = planWorkflows(WORKFLOWS, SEED, RUN_ID);
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

function answer(wf, a) {
  return publish(AGENT_SUBJECT(a.agent), signalMessage(wf, a, RUN_ID));
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
    await publish(TRIGGER_SUBJECT, triggerMessage(wf, TIMEOUT_SECONDS));
    wf.sentAt = Date.now();
  } catch {
    wf.failed = true;
    return;
  }
  const later = [];
  if (wf.duplicate) later.push(sleep(200).then(() => publish(TRIGGER_SUBJECT, triggerMessage(wf, TIMEOUT_SECONDS))));
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
