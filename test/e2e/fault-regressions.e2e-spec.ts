import { jetstreamManager } from '@nats-io/jetstream';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { PrivateRedis } from '../support/servers.js';
import { openBus } from '../support/nats.js';
import { agentSubject, DEFAULT_CONSUMERS, decisionsFor, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * Regression tests of the defects the fault-injection suite found (test/faults, docs/RELIABILITY.md),
 * each reproduced on its own with the built service against real servers.
 */
const infra = useInfra({ each: true });

const TRIGGER_CONSUMER = DEFAULT_CONSUMERS.trigger;

it('a dead-lettered message is terminated for good: not redelivered after the ack wait, nothing left pending', async () => {
  // Before: `term(reason)` — nats-server before 2.10 ignores a +TERM with a reason, so every dead letter came
  // back after each ack wait, forever, and filled the consumer's ack-pending window until it stalled.
  const app = await AppProcess.start({ META_AGENT_ACK_WAIT_MS: '1000' });
  try {
    await infra.bus.publish(TRIGGER_SUBJECT, 'not json at all');
    const [letter] = await infra.bus.waitFor('DEADLETTER', 1);
    expect(letter.headers?.get('Meta-Agent-Reason-Code')).toBe('invalid_json');
    // The proof, without waiting for ack waits to pass: the server took the term, so the consumer no longer
    // tracks the message (nothing pending, nothing awaiting an ack) and can never redeliver it. Had it ignored
    // the term, the message would stay ack-pending until the ack wait and come back: never idle.
    await infra.bus.waitForIdle();
    const jsm = await jetstreamManager(infra.bus.nc);
    const info = await jsm.consumers.info('SIGNALS', TRIGGER_CONSUMER);
    expect({ pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered }).toEqual({
      pending: 0,
      ackPending: 0,
      redelivered: 0,
    });
    await app.waitForLogs('"msg":"message dead-lettered"');
    expect(app.logs('"msg":"message dead-lettered"')).toHaveLength(1);
    expect(await infra.bus.count('DEADLETTER')).toBe(1);
  } finally {
    expect(await app.stop()).toBe(0);
  }
});

it('deeply nested input is bad input: dead-lettered on its first delivery as too_deep, not retried', async () => {
  // Before: the validation pipe's recursion overflowed the stack; the RangeError counted as transient, and the
  // message was retried MAX_DELIVERIES times (minutes) before being dead-lettered as max_deliveries.
  const app = await AppProcess.start();
  try {
    const id = uniqueId('deep');
    const deep = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
    await infra.bus.publish(agentSubject('momentum'), JSON.stringify(momentum(id)).replace('"analysis":', `"deep":${deep},"analysis":`));
    const [letter] = await infra.bus.waitFor('DEADLETTER', 1, 10000);
    expect(letter.headers?.get('Meta-Agent-Reason-Code')).toBe('too_deep');
    expect(letter.headers?.get('Meta-Agent-Delivery-Count')).toBe('1');
    expect(await app.metric('meta_agent_messages_settled_total', { action: 'nak' })).toBe(0);
  } finally {
    await app.stop();
  }
});

it('a forbidden key spelled with \\u escapes is dead-lettered and does not change the workflow', async () => {
  // Before: the check looked for "__proto__" in the raw text only; the escaped key passed, and the message was
  // stored as the workflow's momentum signal.
  const app = await AppProcess.start();
  try {
    const id = uniqueId('escaped');
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 10 }));
    await waitFor('the workflow', async () => (await app.get(`/workflows/${id}`)).status === 200);
    const hostile = `{"\\u005f\\u005fproto__":{"isAdmin":true},${JSON.stringify(momentum(id, { confidence: 0.95, analysis: { trend_direction: 'bearish', momentum_strength: 0.99 } })).slice(1)}`;
    await infra.bus.publish(agentSubject('momentum'), hostile);
    const [letter] = await infra.bus.waitFor('DEADLETTER', 1);
    expect(letter.headers?.get('Meta-Agent-Reason-Code')).toBe('forbidden_key');
    expect((await app.get(`/workflows/${id}`)).body.received_agents).toEqual([]);

    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await infra.bus.publish(agentSubject('risk'), risk(id));
    const d = await waitForDecision(infra.bus, id);
    expect(d.decision).toMatchObject({ action: 'trade', direction: 'bullish' });
    expect(d.source_signals.find((s) => s.agent === 'momentum')?.confidence).toBe(0.9);
  } finally {
    await app.stop();
  }
});

describe('NATS away', () => {
  let dir: string;
  let port: number;
  let server: ChildProcess | undefined;

  const startNats = async () => {
    server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
    await waitFor('nats-server', async () => {
      const bus = await openBus(`nats://127.0.0.1:${port}`);
      await bus.close();
      return true;
    });
  };
  const killNats = async () => {
    const s = server;
    server = undefined;
    if (!s || s.exitCode !== null) return;
    const exited = new Promise((r) => s.once('exit', r));
    s.kill('SIGKILL');
    await exited;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nats-away-'));
    port = await freePort();
    await startNats();
  });

  afterAll(async () => {
    await killNats();
    rmSync(dir, { recursive: true, force: true });
  });

  it('timeouts are decided on time while decisions cannot be published, and published once NATS is back', async () => {
    // Before: the sweeper awaited each job's publish; with NATS away a publish hangs for the NATS timeout,
    // and every deadline behind it waited too (the fault suite measured timeouts 2.8 s late).
    const url = `nats://127.0.0.1:${port}`;
    const app = await AppProcess.start({ META_AGENT_NATS_URL: url, META_AGENT_NATS_CONNECT_TIMEOUT_MS: '10000' });
    let bus = await openBus(url);
    try {
      const [a, b] = [uniqueId('away-a'), uniqueId('away-b')];
      // Deadlines far enough out for NATS to be stopped before them on a loaded machine (b's must come while
      // NATS is away), and b's 1.5 s after a's.
      await bus.publish(TRIGGER_SUBJECT, trigger(a, { timeout_seconds: 2 }));
      await bus.publish(TRIGGER_SUBJECT, trigger(b, { timeout_seconds: 3.5 }));
      await waitFor('both workflows', async () => (await app.get(`/workflows/${a}`)).status === 200 && (await app.get(`/workflows/${b}`)).status === 200);
      await bus.close();
      await killNats();

      // a times out first; its publish hangs. b's deadline passes while it does: b is frozen for its
      // timeout on time (its decision waits for NATS, the workflow for its publish).
      const wf = await waitFor(
        'b to time out',
        async () => {
          const { body } = await app.get(`/workflows/${b}`);
          return body?.frozen_for === 'timeout' ? body : undefined;
        },
        20000,
      );
      expect(wf.status).toBe('evaluating');
      expect(Date.parse(wf.frozen_at) - Date.parse(wf.deadline_at)).toBeLessThan(1000);
      expect(wf.decision_published).toBe(false);

      await startNats();
      bus = await openBus(url);
      for (const id of [a, b]) {
        await waitFor(`the decision of ${id}`, async () => (await app.get(`/workflows/${id}`)).body?.decision_published === true, 30000);
        const decisions = await decisionsFor(bus, id);
        expect(decisions.map((d) => d.status)).toEqual(['timeout']);
      }
    } finally {
      await bus.close().catch(() => undefined);
      expect(await app.stop()).toBe(0);
    }
  });
});

describe('Redis away', () => {
  it('the client keeps trying to reconnect every 250 ms at most, so work resumes right after Redis is back', async () => {
    // Before: the reconnect back-off grew to 1 s, so after an outage the service could stay away from Redis for
    // up to a second more; the fault suite saw a timeout 2.0 s late after a 1.06 s Redis restart.
    const redis = await PrivateRedis.create();
    await redis.start();
    const app = await AppProcess.start({ META_AGENT_REDIS_URL: redis.url, META_AGENT_REDIS_COMMAND_TIMEOUT_MS: '500' });
    const port = redis.port;
    try {
      await redis.stop();
      // Stand in for Redis while it is away: accept each connection attempt, note when, and drop it.
      const attempts: number[] = [];
      const standIn = createServer((socket) => {
        attempts.push(Date.now());
        socket.destroy();
      });
      await new Promise<void>((resolve) => standIn.listen(port, '127.0.0.1', resolve));
      const since = Date.now();
      // Past the first 1.5 s (the back-off reaches its cap), wait for ten attempts rather than for a time.
      const late = () => attempts.filter((t) => t - since > 1500);
      await waitFor('ten reconnect attempts past the first 1.5 s', async () => late().length >= 10, 30000);
      await new Promise((resolve) => standIn.close(resolve));
      const sorted = late()
        .slice(1)
        .map((t, i) => t - late()[i])
        .sort((a, b) => a - b);
      // Every 250 ms at most (and some slack): the typical gap. A single gap may be longer on a loaded machine
      // (the process not scheduled for a moment), but never the old 1 s back-off.
      expect(sorted[Math.floor(sorted.length / 2)]).toBeLessThanOrEqual(250 + 100);
      expect(sorted[sorted.length - 1]).toBeLessThan(1000);

      await redis.start();
      await waitFor('readiness', async () => (await app.get('/health/ready')).status === 200, 5000);
    } finally {
      expect(await app.stop()).toBe(0);
      await redis.dispose();
    }
  });
});
