import { jetstreamManager } from '@nats-io/jetstream';
import { auditEventsOf } from '../../src/audit/audit.events.js';
import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra, waitForQuiet } from '../support/infra.js';
import { PrivateRedis } from '../support/servers.js';
import { agentSubject, DEFAULT_CONSUMERS, expectOneDecision, momentum, parse, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * Crashes, restarts, replicas and a Redis outage, with real processes. The fault-injection suite of
 * issue 3 goes further; these are the cases SPEC promises and issue 2 asks for.
 */
const infra = useInfra({ each: true });

it('a workflow survives a killed replica: a new process completes it from Redis', async () => {
  const id = uniqueId('restart');
  const first = await AppProcess.start();
  try {
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await waitFor('momentum stored', async () => (await first.get(`/workflows/${id}`)).body?.received_agents?.includes('momentum'));
  } finally {
    // The crash; in finally, so that a failed wait leaves no replica behind to consume the next tests' messages.
    await first.stop('SIGKILL');
  }

  await infra.bus.publish(agentSubject('risk'), risk(id));
  const second = await AppProcess.start();
  try {
    const d = await expectOneDecision(infra.bus, second, id);
    expect(d).toMatchObject({ status: 'completed', decision: { action: 'trade' } });
  } finally {
    expect(await second.stop()).toBe(0);
  }
});

it('a timeout fires on time although the replica that started the workflow is gone', async () => {
  const id = uniqueId('orphan-timeout');
  const first = await AppProcess.start();
  try {
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 1.5 }));
    await waitFor('workflow started', async () => (await first.get(`/workflows/${id}`)).status === 200);
  } finally {
    await first.stop('SIGKILL');
  }
  const second = await AppProcess.start();
  try {
    const d = await waitForDecision(infra.bus, id);
    expect(d.status).toBe('timeout');
  } finally {
    await second.stop();
  }
});

it('two replicas share the work: every workflow gets exactly one decision', async () => {
  // Both started, or neither left running (Promise.all would drop the one that did start).
  const started = await Promise.allSettled([AppProcess.start(), AppProcess.start()]);
  const replicas = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const ids = Array.from({ length: 60 }, (_, i) => uniqueId(`rep${i}`));
  try {
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    await Promise.all(
      ids.map(async (id, i) => {
        // Mixed order: some signals before their trigger, some workflows left to time out.
        if (i % 3 === 0) await infra.bus.publish(agentSubject('risk'), risk(id));
        // 8 s: the complete workflows decide long before it even on a loaded machine; the others time out.
        await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 8 }));
        await infra.bus.publish(agentSubject('momentum'), momentum(id));
        if (i % 3 === 1) await infra.bus.publish(agentSubject('risk'), risk(id));
        if (i % 5 === 0) await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 8 }));
      }),
    );
    const all = await infra.bus.waitFor('DECISIONS', ids.length, 60000);
    // Every input handled and every workflow finalised: no decision can come any more.
    await waitForQuiet(infra);
    const decisions = (await infra.bus.read('DECISIONS')).map(parse);
    expect(decisions).toHaveLength(ids.length);
    expect(new Set(decisions.map((d) => d.corr_id))).toEqual(new Set(ids));
    expect(all.length).toBe(ids.length);
    const byStatus = (s: string) => decisions.filter((d) => d.status === s).length;
    expect(byStatus('completed')).toBe(40);
    expect(byStatus('timeout')).toBe(20);
    // Both replicas did work.
    for (const r of replicas) expect(await r.metric('meta_agent_messages_settled_total')).toBeGreaterThan(0);
  } finally {
    for (const r of replicas) expect(await r.stop()).toBe(0);
  }
});

it('SIGTERM: readiness goes false, the process drains and exits 0', async () => {
  const app = await AppProcess.start();
  const exit = app.stop('SIGTERM');
  expect(await exit).toBe(0);
  expect(app.logs('"msg":"stopped"')).toHaveLength(1);
});

it('SIGTERM under load: nothing pulled is lost or decided twice; what was on the wire waits for the ack wait', async () => {
  // What the replica had received is settled (acked once its effect is stored, or handed back); messages
  // the server had already sent when the subscription ended never reach it and are redelivered after
  // ACK_WAIT_MS (docs/OPERATIONS.md "Shutdown"): at most the MAX_IN_FLIGHT pulled ahead per consumer.
  const ids = Array.from({ length: 400 }, (_, i) => uniqueId(`drain${i}`));
  const env = { META_AGENT_ACK_WAIT_MS: '2000', META_AGENT_MAX_IN_FLIGHT: '32', META_AGENT_MAX_CONCURRENT_WORKFLOWS: '100000' };
  const first = await AppProcess.start(env);
  let second: AppProcess | undefined;
  try {
    await Promise.all(
      ids.map(async (id) => {
        await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
        await infra.bus.publish(agentSubject('momentum'), momentum(id));
        await infra.bus.publish(agentSubject('risk'), risk(id));
      }),
    );
    await infra.bus.waitFor('DECISIONS', 1, 20000);
    expect(await first.stop('SIGTERM')).toBe(0);
    const jsm = await jetstreamManager(infra.bus.nc);
    for (const consumer of [DEFAULT_CONSUMERS.trigger, DEFAULT_CONSUMERS.agents]) {
      const ackPending = (await jsm.consumers.info('SIGNALS', consumer)).num_ack_pending;
      expect({ consumer, withinPullAhead: ackPending <= 32 }).toEqual({ consumer, withinPullAhead: true });
    }
    second = await AppProcess.start(env);
    await infra.bus.waitFor('DECISIONS', ids.length, 60000);
    // What was on the wire to the first replica comes back after the ack wait: wait until it has been handled
    // too (no message pending or awaiting an ack) and every workflow is finalised. Nothing else may come.
    await waitForQuiet(infra);
    // Stopped, its output is complete: every "decision published" line it printed is counted below.
    expect(await second.stop()).toBe(0);
    const decisions = (await infra.bus.read('DECISIONS')).map(parse);
    expect(decisions).toHaveLength(ids.length);
    expect(new Set(decisions.map((d) => d.corr_id))).toEqual(new Set(ids));
    expect(decisions.filter((d) => d.status !== 'completed')).toEqual([]);
    // The stream drops a repeated decision by its id, so count what the two replicas published: each
    // workflow's decision once, and the stop really came in the middle (both replicas decided some).
    const published = [first, second].map((app) => app.logs('"msg":"decision published"').length);
    expect(published.every((n) => n > 0)).toBe(true);
    expect(published[0] + published[1]).toBe(ids.length);
    // And a SIGTERM loses no audit event (docs/ARCHITECTURE.md, "What a crash can lose"): every workflow's
    // acceptance and finalised decision are recorded, those of the messages the first replica finished while
    // it stopped included.
    const audit = (await infra.bus.read('AUDIT')).flatMap((m) => auditEventsOf(m.string()) as { event: string; corr_id: string; finalized?: boolean }[]);
    for (const kind of ['trigger_accepted', 'decision_published']) {
      const recorded = new Set(audit.filter((e) => e.event === kind && e.finalized !== false).map((e) => e.corr_id));
      expect({ kind, missing: ids.filter((id) => !recorded.has(id)) }).toEqual({ kind, missing: [] });
    }
  } finally {
    if (first.child.exitCode === null) await first.stop();
    if (second) await second.stop();
  }
});

describe('Redis outage', () => {
  let redis: PrivateRedis;

  beforeAll(async () => {
    redis = await PrivateRedis.create();
    await redis.start();
  });

  afterAll(async () => {
    await redis.dispose();
  });

  it('readiness is false while Redis is down, true after; a trigger sent meanwhile is held, not naked, and not lost', async () => {
    const app = await AppProcess.start({
      META_AGENT_REDIS_URL: redis.url,
      META_AGENT_REDIS_COMMAND_TIMEOUT_MS: '500',
      META_AGENT_HEALTH_CHECK_INTERVAL: '1',
    });
    try {
      await redis.stop();
      await waitFor('readiness to fail', async () => (await app.get('/health/ready')).status === 503);
      const ready = await app.get('/health/ready');
      expect(ready.body.error).toHaveProperty('redis');
      expect((await app.get('/health')).body).toMatchObject({ status: 'unhealthy', redis_connected: false, nats_connected: true });
      // The background monitor (META_AGENT_HEALTH_CHECK_INTERVAL) notices without being asked.
      await waitFor(
        'the dependency gauge',
        async () => (await app.metric('meta_agent_dependency_up', { dependency: 'redis' })) === 0 && app.logs('redis unreachable').length > 0,
      );

      const id = uniqueId('outage');
      await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 1 }));
      // The failed trigger is held (in-progress acks) and pulling stops until Redis answers: no delivery used up.
      await waitFor('the trigger held', async () => app.logs('redis unreachable: holding messages').length > 0);

      await redis.start();
      await waitFor('readiness to come back', async () => (await app.get('/health/ready')).status === 200, 20000);
      await waitFor('the monitor to see Redis back', async () => app.logs('redis reachable again').length > 0);
      const d = await waitForDecision(infra.bus, id, 20000);
      expect(d.status).toBe('timeout');
      expect(await infra.bus.count('DEADLETTER')).toBe(0);
      expect(await app.metric('meta_agent_messages_settled_total', { action: 'nak' })).toBe(0);
    } finally {
      expect(await app.stop()).toBe(0);
    }
  });
});

describe('start-up', () => {
  it('fails fast with a clear message when NATS cannot be reached', async () => {
    const dead = await freePort();
    const app = AppProcess.spawn({ META_AGENT_NATS_URL: `nats://127.0.0.1:${dead}`, META_AGENT_NATS_CONNECT_TIMEOUT_MS: '1000' }, await freePort());
    expect(await app.exited()).toBe(1);
    expect(app.logs('cannot connect to NATS JetStream at nats://127.0.0.1:')).toHaveLength(1);
    // Fast, by the service's own log times (not counting the time Node takes to load on a loaded machine).
    expect(app.msToLog('cannot connect to NATS JetStream')).toBeLessThan(15000);
  });

  it('fails fast with a clear message when Redis cannot be reached', async () => {
    const dead = await freePort();
    const app = AppProcess.spawn({ META_AGENT_REDIS_URL: `redis://127.0.0.1:${dead}`, META_AGENT_REDIS_COMMAND_TIMEOUT_MS: '500' }, await freePort());
    expect(await app.exited()).toBe(1);
    expect(app.logs('cannot connect to Redis at redis://127.0.0.1:')).toHaveLength(1);
  });

  it('an invalid setting stops start-up with one line naming the variable', async () => {
    const app = AppProcess.spawn({ META_AGENT_MIN_CONFIDENCE_THRESHOLD: 'lots' }, await freePort());
    expect(await app.exited()).toBe(1);
    expect(app.lines).toEqual(['meta-agent: invalid setting META_AGENT_MIN_CONFIDENCE_THRESHOLD: "lots" is not a number']);
  });

  it('with provisioning off, missing streams stop start-up with a clear message', async () => {
    const app = AppProcess.spawn({ META_AGENT_PROVISION: 'false' }, await freePort());
    expect(await app.exited()).toBe(1);
    expect(app.logs('stream SIGNALS does not exist and META_AGENT_PROVISION is off')).toHaveLength(1);
  });
});

describe('a message that keeps failing', () => {
  it('is dead-lettered on its MAX_DELIVERIES-th delivery with the last error, not retried forever', async () => {
    // A strategy bug on one input (shouldStart throws) while Redis is fine: retried, then dead-lettered.
    const app = await AppProcess.start({ META_AGENT_MAX_DELIVERIES: '3', META_AGENT_NAK_DELAY_MS: '100' }, 'test/fixtures/extended-app.mjs');
    try {
      const id = uniqueId('maxdel');
      await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { workflow_type: 'flaky-start' }));
      const [letter] = await infra.bus.waitFor('DEADLETTER', 1, 20000);
      expect(letter.headers?.get('Meta-Agent-Reason-Code')).toBe('max_deliveries');
      expect(letter.headers?.get('Meta-Agent-Delivery-Count')).toBe('3');
      expect(letter.headers?.get('Meta-Agent-Reason')).toMatch(/^max_deliveries: failed 3 times, last error: .*pricing service unavailable/);
      expect(JSON.parse(letter.string()).corr_id).toBe(id);
    } finally {
      await app.stop();
    }
  });
});

it('a deleted consumer is provisioned again and consuming resumes', async () => {
  const app = await AppProcess.start();
  try {
    const jsm = await (await import('@nats-io/jetstream')).jetstreamManager(infra.bus.nc);
    await jsm.consumers.delete('SIGNALS', DEFAULT_CONSUMERS.trigger);
    await waitFor(
      'the consumer to come back',
      async () => {
        try {
          return (await jsm.consumers.info('SIGNALS', DEFAULT_CONSUMERS.trigger)) !== undefined;
        } catch {
          return false;
        }
      },
      20000,
    );
    const id = uniqueId('resub');
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await infra.bus.publish(agentSubject('risk'), risk(id));
    const d = await waitForDecision(infra.bus, id);
    expect(d.status).toBe('completed');
    // Noticed and said once each: gone (deleted under its pull, or found missing when provisioned again), then back.
    expect(app.logs('consumer gone')).toHaveLength(1);
    await app.waitForLogs('consumer back: consuming again');
  } finally {
    expect(await app.stop()).toBe(0);
  }
});
