import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { AppProcess, freePort } from '../support/app.js';
import { REDIS_URL, uniqueId, waitFor } from '../support/env.js';
import { openBus, type Bus } from '../support/nats.js';
import { agentSubject, decisionsFor, expectOneDecision, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision, now } from '../support/signals.js';

/*
 * Workflow types without code (META_AGENT_WORKFLOWS_FILE), on the built service and real servers: a type
 * from a YAML file with a quorum, a veto that waits past the quorum, a weighted vote, a position size, a
 * start condition and a timeout, decided exactly once like a provider class's; and an invalid file, or a
 * type also served by a provider class, stopping start-up with one line.
 */
/**
 * The example file shipped in deploy/, with a 2 s timeout (for the timeout test; the others give their trigger
 * 60 s, so that a loaded machine cannot turn them into timeouts).
 */
const HEDGE = readFileSync(new URL('../../deploy/workflows/hedge.example.yaml', import.meta.url), 'utf8').replace('timeout_seconds: 30', 'timeout_seconds: 2');

let dir: string;
let app: AppProcess;
let bus: Bus;

function sentiment(corrId: string, trend: string, confidence = 0.9) {
  return { corr_id: corrId, agent_name: 'sentiment', signal_type: 'analysis', confidence, timestamp: now(), analysis: { trend_direction: trend } };
}

/** Starts the service on a file and waits for it to exit: the code and what it printed. */
async function failedStart(file: string): Promise<{ code: number | null; lines: string[] }> {
  const failing = AppProcess.spawn({ META_AGENT_WORKFLOWS_FILE: file }, await freePort());
  const code = await failing.exited();
  return { code, lines: failing.lines };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'workflows-file-'));
  writeFileSync(join(dir, 'workflows.yaml'), HEDGE);
  bus = await openBus();
  await bus.deleteStreams('SIGNALS', 'DECISIONS', 'DEADLETTER');
  const redis = new Redis(REDIS_URL);
  await redis.flushall();
  redis.disconnect();
  app = await AppProcess.start({ META_AGENT_WORKFLOWS_FILE: join(dir, 'workflows.yaml'), META_AGENT_SWEEP_INTERVAL_MS: '100' });
});

afterAll(async () => {
  expect(await app.stop()).toBe(0);
  await bus.close();
  rmSync(dir, { recursive: true, force: true });
});

it("registers the file's types beside the built-in one", async () => {
  const [line] = await app.waitForLogs('decision strategies registered');
  expect(JSON.parse(line).types.sort()).toEqual(['hedge', 'trading']);
});

it('quorum reached, the veto agent still awaited; then a weighted vote decides, with a position size, once', async () => {
  const id = uniqueId('hedge');
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'hedge', timeout_seconds: 60 }));
  await bus.publish(agentSubject('momentum'), momentum(id, { confidence: 0.9, analysis: { trend_direction: 'bearish' } }));
  await bus.publish(agentSubject('sentiment'), sentiment(id, 'bullish', 0.9));
  // Two of three answered (the quorum), but risk can veto: both handled (the consumers idle) and stored, and
  // the workflow still waits, so no decision was made on them.
  await bus.waitForIdle();
  expect((await app.get(`/workflows/${id}`)).body).toMatchObject({
    status: 'waiting_for_agents',
    received_agents: expect.arrayContaining(['momentum', 'sentiment']),
  });
  expect(await decisionsFor(bus, id)).toHaveLength(0);
  await bus.publish(agentSubject('risk'), risk(id, { confidence: 0.8, analysis: { risk_level: 'low', max_position_size: 100000 } }));
  const d = await waitForDecision(bus, id);
  // bearish 2 × 0.9 = 1.8, bullish 1 × 0.9 = 0.9: share 0.666667 >= 0.6; size 100000 × 0.8.
  expect(d).toMatchObject({ workflow_type: 'hedge', workflow_id: `hedge:${id}`, status: 'completed', metadata: { defined_in: 'workflows_file' } });
  expect(d.decision).toEqual({
    action: 'trade',
    direction: 'bearish',
    confidence: 0.666667,
    reason: 'weighted_vote',
    votes: { bullish: 0.9, bearish: 1.8, neutral: 0 },
    position_size: 80000,
  });
  expect(d.source_signals.map((s) => s.agent).sort()).toEqual(['momentum', 'risk', 'sentiment']);
  await expectOneDecision(bus, app, id);
});

it('a matching veto decides no_trade', async () => {
  const id = uniqueId('hedge-veto');
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'hedge', timeout_seconds: 60 }));
  await bus.publish(agentSubject('risk'), risk(id, { analysis: { risk_level: 'blocked' } }));
  await bus.publish(agentSubject('momentum'), momentum(id));
  const d = await waitForDecision(bus, id);
  expect(d).toMatchObject({ status: 'completed', decision: { action: 'no_trade', reason: 'veto:risk', direction: 'bullish' } });
});

it('a winning share below min_confidence is no_trade, insufficient_confidence', async () => {
  const id = uniqueId('hedge-low');
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'hedge', timeout_seconds: 60 }));
  // bullish 2 × 0.5 = 1.0, bearish 1 × 0.9 = 0.9: share 0.526316. Risk (the veto agent) last: all three vote.
  await bus.publish(agentSubject('momentum'), momentum(id, { confidence: 0.5 }));
  await bus.publish(agentSubject('sentiment'), sentiment(id, 'bearish', 0.9));
  await bus.publish(agentSubject('risk'), risk(id));
  const d = await waitForDecision(bus, id);
  expect(d.decision).toMatchObject({ action: 'no_trade', reason: 'insufficient_confidence', direction: 'bullish', confidence: 0.526316 });
  expect(d.decision).not.toHaveProperty('position_size');
});

it('times out after timeout_seconds with the missing agents', async () => {
  const id = uniqueId('hedge-to');
  const sent = Date.now();
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'hedge' }));
  await bus.publish(agentSubject('momentum'), momentum(id));
  await bus.publish(agentSubject('sentiment'), sentiment(id, 'bullish'));
  const d = await waitForDecision(bus, id);
  expect(Date.now() - sent).toBeGreaterThanOrEqual(1900);
  expect(d).toMatchObject({
    status: 'timeout',
    decision: { action: 'timeout', reason: 'workflow_timeout', missing_signals: ['risk'] },
  });
  expect(d.decision.partial_signals.sort()).toEqual(['momentum', 'sentiment']);
  // Counted once the workflow is finalised, just after the publish.
  await waitFor(
    'the timeout counted',
    async () => (await app.metric('meta_agent_workflows_completed_total', { status: 'timeout', workflow_type: 'hedge' })) >= 1,
  );
  expect(await app.metric('meta_agent_workflows_completed_total', { status: 'timeout', workflow_type: 'hedge' })).toBe(1);
});

it('start_when false declines the trigger', async () => {
  const id = uniqueId('hedge-weak');
  await bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'hedge', strength: 0.1 }));
  await bus.publish(agentSubject('risk'), risk(id));
  await bus.publish(agentSubject('momentum'), momentum(id));
  await waitFor('the declined trigger', async () => (await app.metric('meta_agent_declined_triggers_total', { workflow_type: 'hedge' })) === 1);
  expect(await decisionsFor(bus, id)).toHaveLength(0);
});

it('an invalid file stops start-up with one line naming the type and the field (exit 1)', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, HEDGE.replace('quorum: 2', 'quorum: 0'));
  const { code, lines } = await failedStart(file);
  expect(code).toBe(1);
  expect(lines).toEqual([`meta-agent: invalid workflow file ${file}: workflow_types.hedge.quorum: must be >= 1`]);
});

it('a type in the file that a provider class serves too stops start-up with one line (exit 1)', async () => {
  const file = join(dir, 'clash.yaml');
  writeFileSync(file, HEDGE.replace('  hedge:', '  trading:'));
  const { code, lines } = await failedStart(file);
  expect(code).toBe(1);
  const errors = lines.filter((l) => /"level":"(error|critical|fatal)"/.test(l) || !l.startsWith('{'));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toContain(`two decision strategies for workflow type \\"trading\\": TradingDecisionStrategy and the workflows file ${file}`);
});
