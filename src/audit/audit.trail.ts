import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { hostname } from 'node:os';
import { appConfig, natsConfig, type AppConfig, type NatsConfig } from '../config/configuration.js';
import { describeError } from '../common/errors.js';
import { NatsConnectionService } from '../nats/nats-connection.service.js';
import type { JetStreamPublisher } from '../nats/jetstream-publisher.js';
import { utf8 } from '../nats/utf8.js';
import type { AddSignalResult, Finalized, StoredWorkflow } from '../workflow/workflow.repository.js';
import type { FinalStatus, WorkflowContext } from '../workflow/workflow.types.js';
import { AUDIT_DECIDED, AUDIT_RANK, type AuditEventKind } from './audit.events.js';
import { AuditMetrics } from './audit.metrics.js';
import { auditSubject } from './audit-subject.js';

/** What the transport told the handler about its input message (a subset of MessageMeta). */
export interface AuditInputMeta {
  sequence: number;
  storedAtMs: number;
}

/** How a frozen workflow came to be decided: frozen by this step, at its deadline by the sweeper, or taken over after a lease. */
export type FreezeOrigin = 'frozen' | 'timeout' | 'takeover';

/** An admin action as audited: what, how it ended, who (the token's name), and its details. */
export interface AuditAdminAction {
  action: 'cancel' | 'decide' | 'extend';
  outcome: string;
  token: string;
  workflow?: { workflowId: string; startedMs?: number };
  details?: Record<string, unknown>;
}

/**
 * A message: an event serialised when emitted (its subject and its JSON text), or the events of a decision
 * together (AUDIT_DECIDED); `events`: how many it holds; `tries`: batches it went in unconfirmed.
 */
interface Queued {
  subject: string;
  data: string;
  events: number;
  tries: number;
}

/** The events held for a workflow's decision (by instance), and since when. */
interface Held {
  messages: Queued[];
  sinceMs: number;
}

/** When a disconnected NATS is looked at again for the events waiting, or an unconfirmed batch sent again. */
const RETRY_MS = 250;
/** The longest a batch waits for JetStream to acknowledge its last event before it is sent again. */
const CONFIRM_TIMEOUT_MS = 2000;
/** An event in this many unconfirmed batches is given up (counted as `publish_failed`): a refusal that lasts does not hold the trail. */
const MAX_TRIES = 20;
/** On shutdown, the longest the trail waits for its events to be sent. */
const SHUTDOWN_WAIT_MS = 3000;
/**
 * The longest events are held for their workflow's decision: far longer than a decision's publish and
 * finalisation take, unless NATS or Redis fail them, and then the events go alone (as on any path that ends
 * without the decision: a failed publish releases them at once).
 */
const HOLD_MS = 5000;

const q = JSON.stringify as (value: string | null) => string;
/** A number as JSON writes it: `null` for what is not finite (as JSON.stringify would), never `NaN`. */
const n = (value: number | null | undefined): string => (typeof value === 'number' && Number.isFinite(value) ? String(value) : 'null');
/** `,"key":<json>`: a member appended to an object's text (`json`: JSON text, embedded as it is). */
const member = (key: string, json: string) => `,"${key}":${json}`;
/** The members of `fields` as object text without its braces, each preceded by a comma ('' for none). */
const membersOf = (fields: Record<string, unknown>): string => {
  const json = JSON.stringify(fields);
  return json.length > 2 ? `,${json.slice(1, -1)}` : '';
};
const rawObject = (map: Record<string, string>) => {
  let text = '';
  for (const k in map) text += `${text ? ',' : ''}${q(k)}:${map[k]}`;
  return `{${text}}`;
};
const instanceOf = (wf: { workflowId: string; startedMs: number }) => `${wf.workflowId}@${wf.startedMs}`;
/** The envelope's `workflow_id` and `instance` members of a known instance (`,"workflow_id":..,"instance":..`). */
const instanceMembers = (wf: { workflowId: string; startedMs: number }) => `,"workflow_id":${q(wf.workflowId)},"instance":${q(instanceOf(wf))}`;
const NO_INSTANCE = ',"workflow_id":null,"instance":null';

/**
 * The audit trail (docs/ARCHITECTURE.md, "Audit trail"): one typed method per workflow event, called by the
 * workflow layer at the step it records. Emitting never waits and never fails the caller: an event is
 * queued (O(1)); once per event-loop turn the queue is published on the audit stream's subjects, one batch
 * at a time: every event but the last as a plain publish, the last with JetStream's acknowledgement, which
 * the next batch waits for. An acknowledged last event says the stream had a leader storing what the batch
 * sent before it; a batch not acknowledged (no leader while the stream elects one, a timeout, a lost
 * connection) is sent again, whole, so an event may be stored twice, byte for byte, and the readers keep
 * the first copy (`firstCopies`). The events of a workflow's decision (the signal that made it ready, its
 * freeze, its `decision_published`) are held until the last of them and go as one message (AUDIT_DECIDED):
 * fewer messages for the client to write and for the servers to store (docs/PERFORMANCE.md); a decision
 * that is not published releases them alone. At most META_AGENT_AUDIT_BUFFER events wait (held, queued or
 * being sent); past that, while NATS is slow or away, new events are dropped and counted
 * (`meta_agent_audit_dropped_total`). No decision reads anything from here.
 *
 * With META_AGENT_AUDIT off every method returns at once.
 */
@Injectable()
export class AuditTrail implements OnApplicationShutdown {
  private readonly logger = new Logger('AuditTrail');
  readonly enabled: boolean;
  private readonly prefix: string;
  private readonly capacity: number;
  /** `"<META_AGENT_NAME>@<hostname>:<pid>"`, as JSON text. */
  private readonly replicaJson: string;
  /** The last `at` written, as JSON text, and its Date.now(): the events of one millisecond share it. */
  private atMs = -1;
  private atJson = '';
  private queue: Queued[] = [];
  private inFlight = 0;
  /** Events queued, in flight or held: what META_AGENT_AUDIT_BUFFER bounds. */
  private waiting = 0;
  /** The events of workflows being decided, by instance: sent with the decision, as one message. */
  private held = new Map<string, Held>();
  private holdTimer: ReturnType<typeof setTimeout> | undefined;
  private scheduled = false;
  private retry: ReturnType<typeof setTimeout> | undefined;
  /** A batch was written and its flush (the server has read it) is awaited. */
  private sending = false;
  private idle: (() => void)[] = [];
  private lastFailureLog = 0;
  private lastRetryLog = 0;
  /** Shut down: what is left stays unsent (counted), no further tries. */
  private closed = false;
  /** Awaits the acknowledgement of each batch's last event (made at the first batch: NATS is connected by then). */
  private publisher: Pick<JetStreamPublisher, 'publish'> | undefined;

  constructor(
    private readonly nats: NatsConnectionService,
    private readonly metrics: AuditMetrics,
    @Inject(natsConfig.KEY) config: NatsConfig,
    @Inject(appConfig.KEY) app: AppConfig,
  ) {
    this.enabled = config.audit.enabled;
    this.prefix = config.audit.subjectPrefix;
    this.capacity = config.audit.bufferSize;
    this.replicaJson = JSON.stringify(`${app.name}@${hostname()}:${process.pid}`);
  }

  /* Triggers */

  triggerAccepted(wf: StoredWorkflow, input: AuditInputMeta, earlySignals: number, readyRule: string | null): void {
    if (!this.enabled) return;
    let members: string;
    try {
      members =
        instanceMembers(wf) +
        `,"workflow_type":${q(wf.workflowType)},"required_agents":${JSON.stringify(wf.requiredAgents)},"timeout_ms":${n(wf.timeoutMs)}` +
        `,"deadline_ms":${n(wf.deadlineMs)},"ready_rule":${q(readyRule)},"metadata":${JSON.stringify(wf.metadata)},"early_signals":${n(earlySignals)}`;
    } catch (error) {
      return this.failed(error);
    }
    this.emit(wf.corrId, 'trigger_accepted', members, wf.startedMs, input, member('trigger', wf.triggerJson));
  }

  triggerDeclined(corrId: string, workflowType: string, triggerJson: string, input: AuditInputMeta): void {
    if (!this.enabled) return;
    this.emit(corrId, 'trigger_declined', `${NO_INSTANCE},"workflow_type":${q(workflowType)}`, null, input, member('trigger', triggerJson));
  }

  /** A trigger for a workflow that exists (a redelivery, or the trigger published again). */
  triggerDuplicate(wf: StoredWorkflow, input: AuditInputMeta): void {
    if (!this.enabled) return;
    this.emit(wf.corrId, 'trigger_duplicate', `${instanceMembers(wf)},"workflow_type":${q(wf.workflowType)},"status":${q(wf.status)}`, null, input);
  }

  /* Signals */

  /** A signal that was already older than AGENT_TIMEOUT_SECONDS when JetStream stored it: not used. */
  signalStale(corrId: string, agent: string, signalJson: string, input: AuditInputMeta): void {
    if (!this.enabled) return;
    this.emit(corrId, 'signal_stale', `${NO_INSTANCE},"agent":${q(agent)}`, null, input, member('signal', signalJson));
  }

  /** What storing a signal came to (add-signals-2.lua). */
  signalResult(corrId: string, agent: string, signalJson: string, input: AuditInputMeta, result: AddSignalResult): void {
    if (!this.enabled) return;
    let kind: AuditEventKind;
    let extra = '';
    let redisMs: number | null = null;
    let instance = NO_INSTANCE;
    switch (result.kind) {
      case 'ready':
      case 'added':
        kind = 'signal_stored';
        break;
      case 'duplicate':
        kind = 'signal_duplicate';
        break;
      case 'superseded':
        kind = 'signal_superseded';
        break;
      case 'late':
        kind = 'signal_late';
        extra = `,"status":${q(result.status)}`;
        break;
      case 'buffered':
        kind = 'signal_early';
        break;
      case 'buffer-superseded':
        kind = 'signal_early_superseded';
        break;
      default:
        kind = 'signal_orphaned';
    }
    if ('nowMs' in result) {
      redisMs = result.nowMs;
      if (result.workflow) instance = instanceMembers(result.workflow);
      if (result.kind === 'ready') extra += ',"made_ready":true';
    }
    const event = this.event(corrId, kind, `${instance},"agent":${q(agent)}${extra}`, redisMs, input, member('signal', signalJson));
    // The signal that made it ready goes with the workflow's decision, which follows at once.
    if (result.kind === 'ready') this.hold(result.workflow, event);
    else this.send(event);
  }

  /* Deciding */

  /**
   * A workflow frozen for its decision, with the exact snapshot the strategy is given: the trigger and
   * signals as stored, and the rest of the context (`toContext`: required agents, metadata, times). `origin`:
   * `timeout` when the sweeper froze it at its deadline, `takeover` when a replica decides again a workflow
   * whose decider left (its lease ran out) — the snapshot is the same as at its freeze.
   */
  frozen(wf: StoredWorkflow, ctx: WorkflowContext, origin: FreezeOrigin, ageMs?: number): void {
    if (!this.enabled) return;
    const { receivedSignals: _signals, trigger: _trigger, ...context } = ctx;
    const takeover = origin === 'takeover';
    let members: string;
    try {
      members =
        `${instanceMembers(wf)},"why":${q(wf.why)},"by":${q(wf.frozenBy)},"frozen_ms":${n(wf.frozenMs)}` +
        `${ageMs !== undefined ? `,"age_ms":${n(ageMs)}` : ''},"context":${JSON.stringify(context)}`;
    } catch (error) {
      // A strategy may have put something unserialisable in the context it was given: this event only.
      return this.failed(error);
    }
    const event = this.event(
      wf.corrId,
      origin,
      members,
      takeover ? null : wf.frozenMs,
      null,
      `,"snapshot":{"trigger":${wf.triggerJson},"signals":${rawObject(wf.signals)}}`,
      takeover ? (wf.frozenMs ?? undefined) : undefined,
    );
    this.hold(wf, event);
  }

  /**
   * A decision published (or found published: `duplicate`). `finalized`: this replica finalised the
   * workflow (its finish time, Redis's clock), or null: another claimant did, or finalising failed (the
   * sweeper finishes it).
   */
  decisionPublished(wf: StoredWorkflow, decisionJson: string, status: FinalStatus, duplicate: boolean, finalized: Finalized): void {
    if (!this.enabled) return;
    const event = this.event(
      wf.corrId,
      'decision_published',
      `${instanceMembers(wf)},"status":${q(status)},"duplicate":${duplicate},"finalized":${finalized !== null}`,
      finalized?.finishedMs ?? null,
      null,
      member('decision', decisionJson),
      // Not finalised here: sorted by its freeze (Redis's clock), after it by rank.
      finalized ? undefined : (wf.frozenMs ?? undefined),
    );
    const instance = instanceOf(wf);
    const held = this.held.get(instance);
    if (!held) return this.send(event);
    this.held.delete(instance);
    if (!event) return this.sendAll(held.messages);
    // Concatenated, not joined: V8 keeps `+` results as ropes of the event texts, flattened once when the
    // message is encoded (a join copies them into a new string first).
    let data = '[';
    for (const m of held.messages) data += m.data + ',';
    this.send({ subject: auditSubject(this.prefix, wf.corrId, AUDIT_DECIDED), data: data + event.data + ']', events: held.messages.length + 1, tries: 0 });
  }

  /**
   * Sends alone, now, the events held for a workflow's decision: the decision was not published (it is
   * decided again later, from the same snapshot, by whoever claims it next).
   */
  release(wf: { workflowId: string; startedMs: number }): void {
    const instance = instanceOf(wf);
    const held = this.held.get(instance);
    if (!held) return;
    this.held.delete(instance);
    this.sendAll(held.messages);
  }

  adminAction(corrId: string, a: AuditAdminAction, redisMs: number | null = null): void {
    if (!this.enabled) return;
    const known = a.workflow;
    let fields: string;
    try {
      fields = membersOf({
        workflow_id: known?.workflowId ?? null,
        instance: known?.startedMs !== undefined ? instanceOf({ workflowId: known.workflowId, startedMs: known.startedMs }) : null,
        action: a.action,
        outcome: a.outcome,
        token: a.token,
        ...a.details,
      });
    } catch (error) {
      return this.failed(error);
    }
    this.emit(corrId, 'admin_action', fields, redisMs, null);
  }

  /**
   * Resolves once every event emitted so far is sent and read by the server, or dropped (tests, shutdown);
   * events held for a decision are sent at once, alone.
   */
  flushed(): Promise<void> {
    this.releaseHeld(Infinity);
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /**
   * Sends what is left, waiting (bounded) for JetStream to acknowledge it. `onApplicationShutdown`, not
   * `before...`: Nest closes the consumers (their in-flight messages finish, emitting events) and the HTTP
   * server between the two, and drains the NATS connection in the global NatsModule's `onApplicationShutdown`,
   * which runs after this non-global module's.
   */
  async onApplicationShutdown(): Promise<void> {
    if (!this.enabled) return;
    // No pause before a try now: what is left goes at once.
    clearTimeout(this.retry);
    this.retry = undefined;
    this.releaseHeld(Infinity);
    this.flush();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.flushed(), new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_WAIT_MS)))]);
    clearTimeout(timer);
    this.closed = true;
    clearTimeout(this.retry);
    this.retry = undefined;
    clearTimeout(this.holdTimer);
    const lost = this.queue.reduce((sum, m) => sum + m.events, 0) + [...this.held.values()].reduce((sum, h) => sum + h.messages.length, 0);
    if (lost > 0) {
      this.metrics.lost('publish_failed', lost);
      this.logger.warn({ msg: 'audit events not sent before shutdown', events: lost });
    }
  }

  /**
   * Serialises one event and queues it (`event`, then `send`).
   */
  private emit(corrId: string, kind: AuditEventKind, members: string, redisMs: number | null, input: AuditInputMeta | null, tail = '', sortMs?: number): void {
    this.send(this.event(corrId, kind, members, redisMs, input, tail, sortMs));
  }

  /**
   * Serialises one event, admitted within the buffer's bound (else dropped and counted: null). `members`: the
   * envelope's `workflow_id` and `instance`, then the event's own fields, as object members (`,"k":v...`);
   * `tail`: raw members embedded last (inputs and decisions as received, never parsed again). `redisMs`:
   * Redis's clock at the step, if it has it; `sortMs`: the time to sort by when it has not (default:
   * JetStream's stored time of an early signal, else the replica's clock). The text is built here, once,
   * without an intermediate object (the trail's cost is per event, several per workflow: docs/PERFORMANCE.md).
   */
  private event(
    corrId: string,
    kind: AuditEventKind,
    members: string,
    redisMs: number | null,
    input: AuditInputMeta | null,
    tail = '',
    sortMs?: number,
  ): Queued | null {
    if (this.waiting >= this.capacity) {
      this.metrics.lost('buffer_full');
      return null;
    }
    this.waiting++;
    const now = Date.now();
    if (now !== this.atMs) {
      this.atMs = now;
      this.atJson = `"${new Date(now).toISOString()}"`;
    }
    const ms = redisMs ?? sortMs ?? (kind === 'signal_early' || kind === 'signal_early_superseded' ? (input?.storedAtMs ?? now) : now);
    const inputMember = input ? `,"input":{"seq":${n(input.sequence)},"received_ms":${n(input.storedAtMs)}}` : '';
    return {
      subject: auditSubject(this.prefix, corrId, kind),
      data:
        `{"v":1,"event":"${kind}","corr_id":${q(corrId)}${members},"redis_ms":${n(redisMs)}` +
        `,"order":[${n(ms)},${AUDIT_RANK[kind]},${n(input?.sequence ?? 0)}],"at":${this.atJson},"replica":${this.replicaJson}${inputMember}${tail}}`,
      events: 1,
      tries: 0,
    };
  }

  /** Queues a message (null: an event not admitted); the queue goes at the end of the event-loop turn. */
  private send(message: Queued | null): void {
    if (!message) return;
    this.queue.push(message);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private sendAll(messages: Queued[]): void {
    for (const m of messages) this.send(m);
  }

  /** Holds an event for the decision of its workflow (`decisionPublished` sends them together). */
  private hold(wf: { workflowId: string; startedMs: number }, event: Queued | null): void {
    if (!event) return;
    const instance = instanceOf(wf);
    const held = this.held.get(instance);
    if (held) {
      held.messages.push(event);
      return;
    }
    this.held.set(instance, { messages: [event], sinceMs: Date.now() });
    this.releaseLater();
  }

  /** Sends alone the events held since `sinceMs` or before (Infinity: all); looks again later at the rest. */
  private releaseHeld(sinceMs: number): void {
    // A Map iterates in insertion order: the oldest first.
    for (const [instance, held] of this.held) {
      if (held.sinceMs > sinceMs) break;
      this.held.delete(instance);
      this.sendAll(held.messages);
    }
    this.releaseLater();
  }

  /** A timer (one at a time) for the oldest events held: they go alone HOLD_MS after they were held. */
  private releaseLater(): void {
    if (this.holdTimer !== undefined || this.closed) return;
    const oldest = this.held.values().next().value;
    if (!oldest) return;
    this.holdTimer = setTimeout(
      () => {
        this.holdTimer = undefined;
        this.releaseHeld(Date.now() - HOLD_MS);
      },
      Math.max(0, oldest.sinceMs + HOLD_MS - Date.now()),
    ).unref();
  }

  /**
   * Publishes what is queued (once per event-loop turn), every event but the last plainly and the last with
   * JetStream's acknowledgement, then waits for that acknowledgement before the next batch goes: while NATS
   * is slow events wait in the bounded queue instead of piling up in the client, and past the bound they
   * are dropped and counted. One acknowledgement per batch, not per event: plain publishes cost the client
   * and the server about half (docs/PERFORMANCE.md, "Audit trail (issue 18)"). A batch not acknowledged
   * goes again after RETRY_MS, before what was queued since (docs/ARCHITECTURE.md, "What a crash can lose").
   */
  private flush(): void {
    this.scheduled = false;
    // A batch awaiting its acknowledgement, or a pause before the next try: the timer or the batch's end sends.
    if (this.sending || this.retry !== undefined || this.queue.length === 0) return;
    if (!this.nats.isConnected()) {
      // Kept (up to the buffer's bound) until NATS is back.
      this.later();
      return;
    }
    const batch = this.queue;
    this.queue = [];
    const nc = this.nats.connection;
    const sent: Queued[] = [];
    let events = 0;
    for (let i = 0; i < batch.length - 1; i++) {
      const m = batch[i];
      try {
        nc.publish(m.subject, utf8(m.data));
        sent.push(m);
        events += m.events;
      } catch (error) {
        // Closed or draining connection: this message only.
        this.dropped(error, m.events);
      }
    }
    const last = batch[batch.length - 1];
    sent.push(last);
    events += last.events;
    this.inFlight = events;
    this.sending = true;
    this.publisher ??= this.nats.acknowledgedPublisher(CONFIRM_TIMEOUT_MS);
    this.publisher
      .publish(last.subject, last.data)
      .then(
        () => {
          this.waiting -= events;
          this.metrics.stored(events);
        },
        (error: unknown) => this.unconfirmed(sent, error),
      )
      .finally(() => {
        this.inFlight = 0;
        this.sending = false;
        if (this.queue.length > 0) this.flush();
        else this.settled();
      });
  }

  /**
   * A batch whose last event JetStream did not acknowledge: what the servers read may not be stored (no
   * leader while the stream elects one, the connection lost), so the whole batch goes again, first, after a
   * pause. A message already in MAX_TRIES such batches is given up, its events counted.
   */
  private unconfirmed(sent: Queued[], error: unknown): void {
    const again: Queued[] = [];
    let events = 0;
    let givenUp = 0;
    for (const m of sent) {
      if (++m.tries < MAX_TRIES) {
        again.push(m);
        events += m.events;
      } else givenUp += m.events;
    }
    if (givenUp > 0) this.dropped(error, givenUp);
    // Within the buffer's bound: these were counted in it while in flight, and event() admitted the rest beside them.
    this.queue = again.concat(this.queue);
    const now = Date.now();
    if (now - this.lastRetryLog >= 60_000) {
      this.lastRetryLog = now;
      this.logger.warn({ msg: 'audit batch not acknowledged by JetStream, sending it again', events, error: describeError(error) });
    }
    this.later();
  }

  /** The next try in RETRY_MS (one pending at a time). */
  private later(): void {
    if (this.closed) return;
    this.retry ??= setTimeout(() => {
      this.retry = undefined;
      this.flush();
    }, RETRY_MS).unref();
  }

  private settled(): void {
    if (this.queue.length === 0 && this.inFlight === 0 && this.idle.length > 0) {
      const waiting = this.idle;
      this.idle = [];
      for (const resolve of waiting) resolve();
    }
  }

  /** Events admitted that will not be sent: out of the buffer's bound, and counted. */
  private dropped(error: unknown, events: number): void {
    this.waiting -= events;
    this.failed(error, events);
  }

  private failed(error: unknown, n = 1): void {
    this.metrics.lost('publish_failed', n);
    // One line a minute at most: an absent stream fails every event.
    const now = Date.now();
    if (now - this.lastFailureLog >= 60_000) {
      this.lastFailureLog = now;
      this.logger.warn({ msg: 'audit event not stored (counted in meta_agent_audit_dropped_total)', error: describeError(error) });
    }
  }
}
