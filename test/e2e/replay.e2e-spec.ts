import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { AppProcess } from '../support/app.js';
import { NATS_URL, REDIS_URL, uniqueId, waitFor } from '../support/env.js';
import { openBus, type Bus } from '../support/nats.js';
import { agentSubject, decisionsFor, momentum, risk, trigger, TRIGGER_SUBJECT } from '../support/signals.js';

/* scripts/replay-dead-letters.mjs: after a fix (here: the agent is allowed), dead letters are
 * republished to their original subject and the workflow gets them. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let bus: Bus;
let redis: Redis;

beforeAll(async () => {
  bus = await openBus();
  redis = new Redis(REDIS_URL);
});

beforeEach(async () => {
  await bus.deleteStreams('SIGNALS', 'DECISIONS', 'DEADLETTER');
  await redis.flushall();
});

afterAll(async () => {
  await bus.close();
  redis.disconnect();
});

function replay(...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'replay-dead-letters.mjs'), '--nats', NATS_URL, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

it("replays an unknown agent's dead-lettered signal once the agent is allowed, and the workflow gets it", async () => {
  const id = uniqueId('replay');
  const astrology = { corr_id: id, agent_name: 'astrology', signal_type: 'analysis', confidence: 0.7, timestamp: new Date().toISOString(), stars: 'aligned' };
  const payload = JSON.stringify(astrology);

  // 1. The agent is unknown: its signal is dead-lettered (with a header of the producer's), and so is some garbage.
  let app = await AppProcess.start({ META_AGENT_AGENT_TIMEOUT_SECONDS: '0' });
  try {
    await bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 120 }));
    await waitFor('the workflow', async () => (await app.get(`/workflows/${id}`)).status === 200);
    await bus.publish(agentSubject('astrology'), payload, { 'X-Trace-Id': 'trace-42' });
    await bus.publish(agentSubject('momentum'), 'this is not json');
    const dead = await bus.waitFor('DEADLETTER', 2);
    expect(dead.map((m) => m.headers?.get('Meta-Agent-Reason-Code')).sort()).toEqual(['invalid_json', 'unknown_agent']);
    expect((await app.get(`/workflows/${id}`)).body.received_agents).toEqual([]);
  } finally {
    expect(await app.stop()).toBe(0);
  }

  // 2. The fix: the agent is allowed.
  app = await AppProcess.start({ META_AGENT_OPTIONAL_AGENTS: 'sentiment,correlation,macro,astrology', META_AGENT_AGENT_TIMEOUT_SECONDS: '0' });
  try {
    const signalsBefore = await bus.count('SIGNALS');

    // A dry run publishes nothing.
    const dry = await replay('--filter-code', 'unknown_agent', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/^would +seq \d+ .* code=unknown_agent -> signals\.enriched\.astrology/m);
    expect(dry.out).toContain('would replay 1, already replayed 0, skipped 0, failed 0, not matching 1');
    expect(await bus.count('SIGNALS')).toBe(signalsBefore);

    // The replay: only the unknown_agent one, to its original subject.
    const done = await replay('--filter-code', 'unknown_agent');
    expect(done.code).toBe(0);
    expect(done.out).toMatch(/^replayed seq \d+ .* code=unknown_agent -> signals\.enriched\.astrology \(SIGNALS seq \d+\)$/m);
    expect(done.out).toContain('replayed 1, already replayed 0, skipped 0, failed 0, not matching 1');
    const wf = await waitFor('the workflow to get the replayed signal', async () => {
      const { body } = await app.get(`/workflows/${id}`);
      return body.received_agents?.includes('astrology') ? body : undefined;
    });
    expect(wf.signals.astrology).toEqual(astrology);
    expect(await app.metric('meta_agent_signals_received_total', { source_agent: 'astrology' })).toBe(1);

    // What was published: the payload byte for byte, the producer's headers, none of the dead-letter ones.
    const replayed = (await bus.read('SIGNALS')).filter((m) => m.subject === agentSubject('astrology'));
    expect(replayed).toHaveLength(2); // the original and its replay
    const copy = replayed[1];
    expect(copy.string()).toBe(payload);
    expect(copy.headers?.get('X-Trace-Id')).toBe('trace-42');
    expect([...(copy.headers?.keys() ?? [])].filter((k) => k.toLowerCase().startsWith('meta-agent-'))).toEqual([]);
    expect(copy.headers?.get('Nats-Msg-Id')).toMatch(/^replay:DEADLETTER:\d+$/);

    // Run again with --delete: JetStream recognises the replay (no second copy), and the dead letter goes.
    const again = await replay('--filter-code', 'unknown_agent', '--delete');
    expect(again.code).toBe(0);
    expect(again.out).toContain('replayed 0, already replayed 1, skipped 0, failed 0, deleted 1, not matching 1');
    expect((await bus.read('SIGNALS')).filter((m) => m.subject === agentSubject('astrology'))).toHaveLength(2);
    const left = await bus.read('DEADLETTER');
    expect(left.map((m) => m.headers?.get('Meta-Agent-Reason-Code'))).toEqual(['invalid_json']);

    // The workflow goes on as usual with the replayed signal in it.
    await bus.publish(agentSubject('momentum'), momentum(id));
    await bus.publish(agentSubject('risk'), risk(id));
    const [decision] = await waitFor('the decision', async () => {
      const found = await decisionsFor(bus, id);
      return found.length > 0 ? found : undefined;
    });
    expect(decision.status).toBe('completed');
    expect(decision.source_signals.map((s) => s.agent).sort()).toEqual(['astrology', 'momentum', 'risk']);
  } finally {
    expect(await app.stop()).toBe(0);
  }
});

it('--since, --limit and a bad argument', async () => {
  const app = await AppProcess.start();
  try {
    for (let i = 0; i < 3; i++) await bus.publish(agentSubject('momentum'), `bad ${i}`);
    await bus.waitFor('DEADLETTER', 3);
    // Nothing since a minute from now; everything within the last hour, at most 2 of them.
    const none = await replay('--dry-run', '--since', new Date(Date.now() + 60_000).toISOString());
    expect(none.code).toBe(0);
    expect(none.out).toContain('would replay 0,');
    const two = await replay('--dry-run', '--since', '1h', '--limit', '2');
    expect(two.code).toBe(0);
    expect(two.out).toContain('would replay 2, already replayed 0, skipped 0, failed 0, not matching 0');
    expect(two.out.match(/^would +seq/gm)).toHaveLength(2);
    const bad = await replay('--limit', 'many');
    expect(bad.code).toBe(2);
    expect(bad.out).toContain('--limit "many" is not a positive whole number');
    expect(await bus.count('DEADLETTER')).toBe(3);
  } finally {
    await app.stop();
  }
});
