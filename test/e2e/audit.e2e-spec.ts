import { parseSettings } from '../../src/config/env.schema.js';
import { AUDIT_DECIDED, AUDIT_EVENTS, auditEventsOf, type AuditEnvelope, type AuditInput } from '../../src/audit/audit.events.js';
import { defineScripts } from '../../src/redis/redis-scripts.js';
import { WorkflowRepository } from '../../src/workflow/workflow.repository.js';
import { AppProcess } from '../support/app.js';
import { asyncApiSchemas, auditEventKinds, readAsyncApi } from '../support/asyncapi.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { agentSubject, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * Issue 18, part 1 and 2: the audit trail on the built service and real servers. Every event kind a workflow
 * goes through reaches the AUDIT stream with its fields (instance, order, replica, Redis time, the input's
 * stream sequence and received time, the frozen snapshot, the decision as published, who took an admin
 * action); GET /workflows/:corr_id/history returns each instance's events in order with its decision; with
 * META_AGENT_AUDIT off nothing is emitted and no audit stream is needed. What only a fault or a race
 * produces (a revision arriving after a later one, a takeover) is made by changing Redis behind the
 * service's back, as a fault leaves it. Issue 19: every event stored fits the `audit` channel of
 * docs/asyncapi.yaml.
 */
const OPS = 'ops-5e7a9c1b3d5f7a9c';
const infra = useInfra();
let app: AppProcess;

/** An event as stored: the envelope (src/audit/audit.events.ts) and its kind's own fields. */
type AuditEvent = AuditEnvelope & { input?: AuditInput; [field: string]: any };

/**
 * The corr_id's audit events in the AUDIT stream (its subjects: `audit.<corr_id, . as ~>.<event>`, and
 * `.decided` for the events of a decision together), in stream order, each with the subject of its message.
 */
async function auditOf(corrId: string): Promise<(AuditEvent & { subject: string })[]> {
  const token = corrId.replaceAll('.', '~');
  return (await infra.bus.read('AUDIT'))
    .filter((m) => m.subject.startsWith(`audit.${token}.`))
    .flatMap((m) => auditEventsOf(m.string()).map((e) => ({ ...(e as AuditEvent), subject: m.subject })));
}

/** Waits until the corr_id has an event of each kind given (as many times as listed), then returns all its events. */
async function waitForEvents(corrId: string, kinds: string[], timeoutMs = 15000): Promise<AuditEvent[]> {
  return waitFor(
    `audit events ${kinds.join(', ')} of ${corrId}`,
    async () => {
      const events = await auditOf(corrId);
      const left = [...kinds];
      for (const e of events) {
        const i = left.indexOf(e.event);
        if (i >= 0) left.splice(i, 1);
      }
      return left.length === 0 ? events : undefined;
    },
    timeoutMs,
  );
}

const one = (events: AuditEvent[], kind: string, extra: (e: AuditEvent) => boolean = () => true) => {
  const found = events.filter((e) => e.event === kind && extra(e));
  expect(found).toHaveLength(1);
  return found[0];
};

async function post(path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(app.url(path), {
    method: 'POST',
    headers: { authorization: `Bearer ${OPS}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const REPLICA = /^audit-e2e@[^:]+:\d+$/;

describe('audit trail on (the default)', () => {
  beforeAll(async () => {
    app = await AppProcess.start({ META_AGENT_NAME: 'audit-e2e', META_AGENT_ADMIN_TOKEN: `ops:${OPS}`, META_AGENT_SWEEP_INTERVAL_MS: '100' });
  });
  afterAll(async () => {
    expect(await app.stop()).toBe(0);
  });

  it('records a decided workflow: trigger, signals with their input, the frozen snapshot, the decision as published; then a duplicate trigger and a late signal', async () => {
    // A `.` in the corr_id: its subject token is written with `~`.
    const id = `${uniqueId('au')}.eu:1`;
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
    await waitForEvents(id, ['trigger_accepted']);
    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await infra.bus.publish(agentSubject('risk'), risk(id));
    const decision = await waitForDecision(infra.bus, id);
    let events = await waitForEvents(id, ['trigger_accepted', 'signal_stored', 'signal_stored', 'frozen', 'decision_published']);

    const accepted = one(events, 'trigger_accepted');
    expect(accepted.workflow_id).toBe(`trading:${id}`);
    const started = Number(accepted.instance?.split('@').pop());
    expect(accepted.instance).toBe(`trading:${id}@${started}`);
    expect(accepted.redis_ms).toBe(started);
    expect(accepted.trigger).toMatchObject({ corr_id: id, instrument: 'EURUSD' });
    expect(accepted).toMatchObject({ workflow_type: 'trading', required_agents: ['momentum', 'risk'], timeout_ms: 120_000, deadline_ms: started + 120_000 });
    expect(accepted.replica).toMatch(REPLICA);
    expect(accepted.input?.seq).toBeGreaterThan(0);

    const stored = events.filter((e) => e.event === 'signal_stored');
    expect(stored.map((e) => e.agent).sort()).toEqual(['momentum', 'risk']);
    for (const s of stored) {
      expect(s.input?.seq).toBeGreaterThan(accepted.input!.seq);
      expect(s.input?.received_ms).toBeGreaterThan(0);
      expect(s.redis_ms).toBeGreaterThanOrEqual(started);
      expect(s.signal).toMatchObject({ corr_id: id, agent_name: s.agent });
      // The signal that made it ready went with the freeze and the decision, in one message.
      expect(s.subject).toBe(`audit.${id.replace('.', '~')}.${s.made_ready === true ? AUDIT_DECIDED : 'signal_stored'}`);
    }
    expect(stored.filter((s) => s.made_ready === true)).toHaveLength(1);

    const frozen = one(events, 'frozen');
    expect(frozen).toMatchObject({ instance: accepted.instance, why: 'decide', by: null });
    expect(frozen.frozen_ms).toBe(frozen.redis_ms);
    expect(Object.keys(frozen.snapshot.signals).sort()).toEqual(['momentum', 'risk']);
    expect(frozen.snapshot.trigger).toEqual(accepted.trigger);
    expect(frozen.context).toMatchObject({
      corrId: id,
      workflowId: `trading:${id}`,
      requiredAgents: ['momentum', 'risk'],
      decidedAt: decision.orchestrated_at,
    });

    const published = one(events, 'decision_published');
    expect(published).toMatchObject({ instance: accepted.instance, status: decision.status, duplicate: false, finalized: true });
    expect(published.decision).toEqual(decision);
    expect(published.redis_ms).toBeGreaterThanOrEqual(frozen.redis_ms!);
    expect([frozen.subject, published.subject]).toEqual([`audit.${id.replace('.', '~')}.${AUDIT_DECIDED}`, `audit.${id.replace('.', '~')}.${AUDIT_DECIDED}`]);

    // The same trigger again, and a signal after the decision.
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
    await infra.bus.publish(agentSubject('momentum'), momentum(id, { confidence: 0.5 }));
    events = await waitForEvents(id, ['trigger_duplicate', 'signal_late']);
    expect(one(events, 'trigger_duplicate')).toMatchObject({ instance: accepted.instance, status: 'completed' });
    expect(one(events, 'signal_late')).toMatchObject({ agent: 'momentum', status: 'completed', signal: { confidence: 0.5 } });

    // The history: one instance, its events in order, its decision.
    const history = await app.get(`/workflows/${id}/history`, OPS);
    expect(history.status).toBe(200);
    expect(history.body.instances).toHaveLength(1);
    const [instance] = history.body.instances;
    expect(instance).toMatchObject({ instance: accepted.instance, workflow_id: `trading:${id}`, status: decision.status, decision });
    const kinds = instance.events.map((e: AuditEvent) => e.event);
    expect(kinds.slice(0, 5)).toEqual(['trigger_accepted', 'signal_stored', 'signal_stored', 'frozen', 'decision_published']);
    expect(kinds.slice(5).sort()).toEqual(['signal_late', 'trigger_duplicate']);
    expect(instance.events.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(history.body.unassigned).toEqual([]);
  });

  it('records a declined trigger, a stale signal, early signals, a timeout, and admin actions with the token name', async () => {
    const declined = uniqueId('ad');
    const early = uniqueId('ae');
    const timedOut = uniqueId('at');
    const cancelled = uniqueId('ac');
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(declined, { strength: 0.1 }));
    await infra.bus.publish(agentSubject('risk'), risk(early));
    await waitForEvents(early, ['signal_early']);
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(early, { timeout_seconds: 300 }));
    await waitForEvents(early, ['trigger_accepted']);
    await infra.bus.publish(agentSubject('momentum'), momentum(early, { timestamp: new Date(Date.now() - 3_600_000).toISOString() }));
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(timedOut, { timeout_seconds: 1 }));
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(cancelled, { timeout_seconds: 300 }));
    await waitForEvents(cancelled, ['trigger_accepted']);
    expect((await post(`/workflows/${cancelled}/extend`, { seconds: 60 })).status).toBe(200);
    expect((await post(`/workflows/${cancelled}/cancel`)).status).toBe(200);
    expect((await post(`/workflows/${cancelled}/cancel`)).status).toBe(409);

    const d = await waitForEvents(declined, ['trigger_declined']);
    expect(one(d, 'trigger_declined')).toMatchObject({ instance: null, workflow_type: 'trading', trigger: { strength: 0.1 } });

    const e = await waitForEvents(early, ['signal_early', 'trigger_accepted', 'signal_stale']);
    const buffered = one(e, 'signal_early');
    expect(buffered).toMatchObject({ agent: 'risk', instance: null, redis_ms: null });
    expect(buffered.order[0]).toBe(buffered.input!.received_ms);
    expect(one(e, 'trigger_accepted')).toMatchObject({ early_signals: 1 });
    expect(one(e, 'signal_stale')).toMatchObject({ agent: 'momentum', signal: { agent_name: 'momentum' } });
    const earlyHistory = await app.get(`/workflows/${early}/history`, OPS);
    expect(earlyHistory.body.instances[0].events.map((x: AuditEvent) => x.event)).toEqual(['signal_early', 'trigger_accepted', 'signal_stale']);

    const t = await waitForEvents(timedOut, ['timeout', 'decision_published']);
    const timeout = one(t, 'timeout');
    expect(timeout).toMatchObject({ why: 'timeout', snapshot: { signals: {} } });
    expect(timeout.redis_ms).toBeGreaterThanOrEqual(one(t, 'trigger_accepted').redis_ms! + 1000);
    expect(one(t, 'decision_published')).toMatchObject({ status: 'timeout', decision: { status: 'timeout', decision: { action: 'timeout' } } });

    const c = await waitForEvents(cancelled, ['admin_action', 'admin_action', 'admin_action', 'frozen', 'decision_published']);
    const actions = c.filter((x) => x.event === 'admin_action');
    expect(actions.map((x) => [x.action, x.outcome, x.token])).toEqual([
      ['extend', 'ok', 'ops'],
      ['cancel', 'ok', 'ops'],
      ['cancel', 'conflict', 'ops'],
    ]);
    expect(actions[0]).toMatchObject({ clamped: false, requested_seconds: 60 });
    expect(actions[0].deadline_ms - actions[0].previous_deadline_ms).toBe(60_000);
    expect(one(c, 'frozen')).toMatchObject({ why: 'cancel', by: 'ops' });
    expect(one(c, 'decision_published')).toMatchObject({ status: 'cancelled', decision: { metadata: { cancelled_by: 'ops' } } });
    const history = await app.get(`/workflows/${cancelled}/history`, OPS);
    expect(history.body.instances[0].events.map((x: AuditEvent) => x.event)).toEqual([
      'trigger_accepted',
      'admin_action',
      'admin_action',
      'frozen',
      'decision_published',
      'admin_action',
    ]);
    expect(await app.metric('meta_agent_audit_published_total')).toBeGreaterThan(0);
    expect(await app.metric('meta_agent_audit_dropped_total')).toBe(0);
  });

  it('GET /workflows/:corr_id/history: admin token, 404 for a corr_id without events, 400 for a malformed one, in the OpenAPI document', async () => {
    expect((await app.get(`/workflows/${uniqueId('none')}/history`, OPS)).status).toBe(404);
    expect((await app.get('/workflows/bad%20id/history', OPS)).status).toBe(400);
    expect((await app.get('/workflows/x/history', null)).status).toBe(401);
    expect((await app.get('/workflows/x/history', 'wrong-token-0123456789')).status).toBe(401);
    const doc = await app.get('/openapi.json', null);
    expect(doc.body.paths['/workflows/{corrId}/history'].get.responses['200']).toBeDefined();
  });
});

describe('what a fault or a race leaves behind', () => {
  beforeAll(async () => {
    app = await AppProcess.start({ META_AGENT_NAME: 'audit-e2e', META_AGENT_SWEEP_INTERVAL_MS: '100' });
  });
  afterAll(async () => {
    expect(await app.stop()).toBe(0);
  });

  it('records a signal sent twice, a revision older than the one stored (in the workflow and in the early buffer), and a takeover', async () => {
    defineScripts(infra.redis);
    const repository = new WorkflowRepository(infra.redis, parseSettings({}).redis);
    const id = uniqueId('ar');
    const k = repository.keys.forWorkflow(id);
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 300 }));
    const accepted = one(await waitForEvents(id, ['trigger_accepted']), 'trigger_accepted');
    // The same bytes twice (an agent's retry): the second only moves the stored sequence.
    const signal = momentum(id);
    await infra.bus.publish(agentSubject('momentum'), signal);
    await infra.bus.publish(agentSubject('momentum'), signal);
    await waitForEvents(id, ['signal_stored', 'signal_duplicate']);
    // A later revision of risk stored (its sequence above anything the stream will hand out here): the one
    // published now is an older revision delivered late.
    await infra.redis.hset(k.wf, 'q:risk', 1_000_000_000);
    await infra.bus.publish(agentSubject('risk'), risk(id));
    await waitForEvents(id, ['signal_superseded']);
    // Frozen by a replica that died before deciding: another's sweeper takes it over once the lease runs out.
    expect((await repository.freeze({ corrId: id }, 'decide', 300)).kind).toBe('frozen');
    const events = await waitForEvents(id, ['takeover', 'decision_published']);
    expect(one(events, 'signal_duplicate')).toMatchObject({ agent: 'momentum', signal });
    expect(one(events, 'signal_superseded')).toMatchObject({ agent: 'risk', input: { seq: expect.any(Number) } });
    const takeover = one(events, 'takeover');
    expect(takeover).toMatchObject({ instance: accepted.instance, why: 'decide', redis_ms: null, snapshot: { signals: { momentum: signal } } });
    expect(takeover.age_ms).toBeGreaterThanOrEqual(300);
    expect(one(events, 'decision_published')).toMatchObject({ instance: accepted.instance, finalized: true });

    const early = uniqueId('aes');
    await infra.redis.hset(repository.keys.forWorkflow(early).early, 'q:risk', 1_000_000_000);
    await infra.bus.publish(agentSubject('risk'), risk(early));
    expect(one(await waitForEvents(early, ['signal_early_superseded']), 'signal_early_superseded')).toMatchObject({ agent: 'risk', instance: null });
  });
});

describe('signals orphaned on arrival (early-signal grace 0)', () => {
  it('records each as signal_orphaned, in no instance', async () => {
    const orphan = await AppProcess.start({ META_AGENT_EARLY_SIGNAL_GRACE_SECONDS: '0', META_AGENT_ADMIN_TOKEN: `ops:${OPS}` });
    try {
      const id = uniqueId('ao');
      await infra.bus.publish(agentSubject('risk'), risk(id));
      const events = await waitForEvents(id, ['signal_orphaned']);
      expect(one(events, 'signal_orphaned')).toMatchObject({ agent: 'risk', instance: null, signal: { corr_id: id } });
      const history = await orphan.get(`/workflows/${id}/history`, OPS);
      expect(history.body).toMatchObject({ instances: [], unassigned: [{ event: 'signal_orphaned' }] });
    } finally {
      expect(await orphan.stop()).toBe(0);
    }
  });
});

describe('every event stored, against docs/asyncapi.yaml', () => {
  const { document } = readAsyncApi();
  const auditEvent = asyncApiSchemas(document)('AuditEvent');
  const auditDecided = asyncApiSchemas(document)('AuditDecided');
  const { members } = auditEventKinds(document);

  it('fits the schema of its kind and names no member the document does not; every kind occurs', async () => {
    const messages = await infra.bus.read('AUDIT');
    const kinds = new Set<string>();
    let decided = 0;
    for (const m of messages) {
      const where = `${m.subject} (stream seq ${m.seq})`;
      const payload = JSON.parse(m.string()) as unknown;
      if (m.subject.endsWith(`.${AUDIT_DECIDED}`)) {
        decided++;
        expect({ where, errors: auditDecided(payload) ? [] : auditDecided.errors }).toEqual({ where, errors: [] });
        const events = payload as Record<string, unknown>[];
        expect({ where, last: events.at(-1)?.event, instances: new Set(events.map((e) => e.instance)).size }).toEqual({
          where,
          last: 'decision_published',
          instances: 1,
        });
      }
      for (const event of auditEventsOf(m.string())) {
        const kind = String(event.event);
        kinds.add(kind);
        expect({ where, errors: auditEvent(event) ? [] : auditEvent.errors }).toEqual({ where, errors: [] });
        expect({ where, undocumented: Object.keys(event).filter((key) => !members(kind).has(key)) }).toEqual({ where, undocumented: [] });
        const token = String(event.corr_id).replaceAll('.', '~');
        expect(m.subject).toBe(Array.isArray(payload) ? `audit.${token}.${AUDIT_DECIDED}` : `audit.${token}.${kind}`);
      }
    }
    // A decision of the replica that froze it goes with its freeze: the tests above decided many.
    expect(decided).toBeGreaterThan(0);
    // The tests above produced every kind the code knows, so every schema met a real event.
    expect([...kinds].sort()).toEqual([...AUDIT_EVENTS].sort());
    expect(messages.length).toBeGreaterThan(AUDIT_EVENTS.length);

    // And a real event broken is refused: without its corr_id, or of a kind the document does not know.
    const accepted = messages.flatMap((m) => auditEventsOf(m.string())).find((e) => e.event === 'trigger_accepted')!;
    expect(auditEvent(accepted)).toBe(true);
    const { corr_id: _dropped, ...withoutCorrId } = accepted;
    expect(auditEvent(withoutCorrId)).toBe(false);
    expect(auditEvent({ ...accepted, event: 'trigger_vanished' })).toBe(false);
  });
});

describe('audit trail off (META_AGENT_AUDIT=false)', () => {
  it('emits nothing and needs no audit stream, and the workflow is decided as usual', async () => {
    await infra.bus.deleteStreams('AUDIT');
    const off = await AppProcess.start({ META_AGENT_AUDIT: 'false', META_AGENT_ADMIN_TOKEN: `ops:${OPS}` });
    const id = uniqueId('af');
    try {
      await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
      await infra.bus.publish(agentSubject('momentum'), momentum(id));
      await infra.bus.publish(agentSubject('risk'), risk(id));
      expect((await waitForDecision(infra.bus, id)).status).toBe('completed');
      expect(await off.metric('meta_agent_audit_published_total')).toBe(0);
      expect((await off.get(`/workflows/${id}/history`, OPS)).status).toBe(404);
    } finally {
      // A clean stop flushes whatever the trail holds: nothing may reach NATS, not even a stream.
      expect(await off.stop()).toBe(0);
    }
    expect(await infra.bus.count('AUDIT')).toBe(0);
    const info = JSON.parse((await infra.bus.nc.request('$JS.API.STREAM.INFO.AUDIT')).string()) as { error?: { code: number } };
    expect(info.error?.code).toBe(404);
  });
});
