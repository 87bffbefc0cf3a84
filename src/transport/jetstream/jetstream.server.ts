import { Inject, Injectable, Logger } from '@nestjs/common';
import { CustomTransportStrategy, Server, type MessageHandler } from '@nestjs/microservices';
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { isObservable, lastValueFrom, type Subscription } from 'rxjs';
import { natsConfig, type NatsConfig } from '../../config/configuration.js';
import { BackpressureError, DeliveryLimitError, describeError, isRetryable, PoisonMessageError } from '../../common/errors.js';
import { OrchestratorMetrics } from '../../metrics/orchestrator.metrics.js';
import { NatsConnectionService, type NatsConnectionChange } from '../../nats/nats-connection.service.js';
import { DeadLetterPublisher } from './dead-letter.publisher.js';
import { ALL_ROUTES, FlowControl } from './flow-control.js';
import { IsolationGate, POISON_STRIKES, type SuspectLedger } from './isolation.js';
import { JetStreamContext, type DeliveryMeta } from './jetstream.context.js';
import { decodePayload } from './payload.js';
import { MAX_DELIVER_BACKSTOP, provisionAtStart, provisionJetStream, type ConsumerRoute } from './provisioning.js';
import { settle, type Outcome } from './settlement.js';
import { consumerGoneReason, type JetStreamEvents, type JetStreamStatus } from './transport-status.js';

import { AGENT_SIGNAL_PATTERN, TRIGGER_PATTERN } from './patterns.js';

export { AGENT_SIGNAL_PATTERN, TRIGGER_PATTERN };
export type { JetStreamEvents, JetStreamStatus };

const RESUBSCRIBE_DELAY_MS = 1000;
/** Pull requests wait at most this long for messages before the loop asks again. */
const FETCH_EXPIRES_MS = 5000;
/**
 * The server sends a heartbeat this often while a pull waits; two missed end the pull with an error and the
 * loop pulls again. On a cluster, a pull left on a node that died or lost the consumer's leadership is
 * noticed after 2 s, not after the client's default (half the expiry, so 5 s).
 */
const FETCH_HEARTBEAT_MS = 1000;
/**
 * Messages held for one part of a dependency (a Redis Cluster shard failing over) give their slot to the
 * others' messages, up to this many times the consumer's slots; past it, a held message keeps its slot. The
 * consumer's max_ack_pending (16 × MAX_IN_FLIGHT, at least 1000) leaves room for 4 replicas each holding
 * that many plus its slots.
 */
const LENT_PER_SLOT = 3;

/**
 * What one consumer may hold in flight: at most `limit` messages, and no new pull while the messages in
 * flight hold `byteBudget` bytes or more (the nats.js client does not let a pull carry both a message and a
 * byte limit, so bytes are bounded here: by the budget plus one pull's worth).
 */
class Slots {
  private used = 0;
  private bytes = 0;
  private wake: (() => void) | undefined;
  private want = 0;
  private closed = false;
  /** Slots lent by held messages (see LENT_PER_SLOT). */
  private lent = 0;
  constructor(
    readonly limit: number,
    private readonly byteBudget: number,
  ) {}

  /** A held message gives its slot to others; false when too many already have (it keeps it). */
  lend(bytes: number): boolean {
    if (this.lent >= this.limit * LENT_PER_SLOT) return false;
    this.lent++;
    this.release(bytes);
    return true;
  }

  /** The held message runs again: it takes a slot back (beyond the limit for a while if need be). */
  giveBack(bytes: number): void {
    this.lent--;
    this.take(bytes);
  }

  private ready(): boolean {
    return this.limit - this.used >= this.want && this.bytes < this.byteBudget;
  }

  /** Waits until at least `min` slots are free and the bytes in flight are under the budget; returns the free slots (0 once closed). */
  async room(min: number): Promise<number> {
    this.want = min;
    while (!this.closed && !this.ready()) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.closed ? 0 : this.limit - this.used;
  }

  take(bytes: number): void {
    this.used++;
    this.bytes += bytes;
  }

  release(bytes: number): void {
    this.used--;
    this.bytes -= bytes;
    if (this.wake && this.ready()) this.wakeUp();
  }

  /** Ends a waiting `room()` and every later one (closing). */
  close(): void {
    this.closed = true;
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * A message's place at the isolation gate: shared (a first delivery) or alone (a suspect); `in` while it holds
 * it, since `since` (performance.now()).
 */
interface Place {
  alone: boolean;
  in: boolean;
  since: number;
  /** Its consumer's slots and its size in them. */
  slots: Slots;
  bytes: number;
}

/** How a delivery came out, with what the ledger knows of it. */
interface Handled {
  outcome: Outcome;
  /** A suspect's run alone was marked in the ledger and not yet unmarked. */
  armed: boolean;
}

/**
 * The JetStream transport: durable pull consumers shared by all replicas, pulled in batches no larger
 * than the room left (at most `maxInFlight` messages and `maxPullBytes` bytes per consumer), and
 * settlement (ack / nak with delay / dead-letter + term) only after the handler returned or threw — see
 * settlement.ts. A route pulls only while FlowControl lets it (back-pressure, a dependency outage): what
 * is not pulled waits in the stream, where it uses up no delivery.
 *
 * Like Nest's NATS transport it reports the connection as its `status` (connected, disconnected, reconnecting)
 * and as events (`on('disconnect' | 'reconnect' | 'connect', cb)`), and a pull loop whose consumer is gone as
 * `consumer_gone` / `consumer_back` (transport-status.ts); health turns them into readiness.
 */
@Injectable()
export class JetStreamServer extends Server<JetStreamEvents, JetStreamStatus> implements CustomTransportStrategy {
  private readonly log = new Logger('JetStreamServer');
  private readonly batches = new Set<{ stop(): void }>();
  private readonly slots = new Map<string, Slots>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly loops: Promise<void>[] = [];
  /** Handlers by route pattern, looked up once at listen (Nest normalises patterns on every lookup). */
  private readonly handlers = new Map<string, MessageHandler>();
  private closing = false;
  /**
   * Acks held until the event loop's current turn ends, by consumer: sent together, they leave in one
   * socket write instead of one each (the client flushes once per microtask checkpoint, and the handlers
   * of one batch of pulled messages finish in different checkpoints).
   */
  private readonly pendingAcks = new Map<string, JsMsg[]>();
  private ackFlush: NodeJS.Immediate | undefined;
  /** Suspects (messages delivered again after going unsettled) run alone: isolation.ts. */
  private readonly gate = new IsolationGate((isolating) => this.isolating(isolating));
  /** The first deliveries holding a shared place: those running past the ack wait are let go while a suspect waits. */
  private readonly sharedPlaces = new Set<Place>();
  private evictTimer: NodeJS.Timeout | undefined;
  private ledger: SuspectLedger | undefined;
  /** The listeners of `on()`. */
  private readonly statusEvents = new EventEmitter();
  private connectionChanges: Subscription | undefined;
  private connected = false;
  /** Consumers (durable names) a pull loop found gone, and why. */
  private readonly goneConsumers = new Map<string, string>();

  constructor(
    private readonly nats: NatsConnectionService,
    private readonly deadLetters: DeadLetterPublisher,
    private readonly metrics: OrchestratorMetrics,
    private readonly flow: FlowControl,
    @Inject(natsConfig.KEY) private readonly config: NatsConfig,
  ) {
    super();
  }

  /** Where suspects' runs and failed attempts are counted (the workflow layer registers its Redis ledger). */
  useSuspectLedger(ledger: SuspectLedger): void {
    this.ledger = ledger;
  }

  routes(): ConsumerRoute[] {
    const { streams, consumers, subjects } = this.config;
    return [
      { pattern: TRIGGER_PATTERN, stream: streams.signals, durable: consumers.trigger, filterSubject: subjects.trigger },
      { pattern: AGENT_SIGNAL_PATTERN, stream: streams.signals, durable: consumers.agents, filterSubject: subjects.agents },
    ];
  }

  /** Provisions (or checks) streams and consumers, then starts pulling; a failure rejects start-up. */
  async listen(callback: (error?: unknown) => void): Promise<void> {
    try {
      this.watchConnection();
      const routes = this.routes();
      for (const route of routes) {
        const handler = this.getHandlerByPattern(route.pattern);
        if (!handler) throw new Error(`no @EventPattern('${route.pattern}') handler is registered`);
        if (handler.next) throw new Error(`more than one handler for pattern '${route.pattern}'`);
        this.handlers.set(route.pattern, handler);
      }
      await provisionAtStart(this.nats.manager, this.config, routes, (error) =>
        this.log.warn({ msg: 'JetStream not ready for provisioning yet, trying again', error: describeError(error) }),
      );
      for (const route of routes) {
        const consumer = await this.nats.jetstream.consumers.get(route.stream, route.durable);
        this.loops.push(this.pullLoop(route, consumer));
        this.log.log({ msg: 'consuming', stream: route.stream, consumer: route.durable, filter: route.filterSubject });
      }
      callback();
    } catch (error) {
      callback(error);
    }
  }

  /**
   * Feeds one consumer's messages to the handler, at most `maxInFlight` at once: it pulls a batch as large
   * as the room left once half the slots are free, and only while the route is open. Should pulling fail
   * while the service is not closing (consumer deleted, stream recreated, NATS away), it provisions and
   * looks the consumer up again after a pause: a replica never silently stops consuming.
   */
  private async pullLoop(route: ConsumerRoute, first: Consumer): Promise<void> {
    const slots = new Slots(this.config.maxInFlight, this.config.maxPullBytes);
    this.slots.set(route.pattern, slots);
    let consumer: Consumer | undefined = first;
    const half = Math.max(1, Math.ceil(slots.limit / 2));
    while (!this.closing) {
      try {
        await this.flow.waitOpen(route.pattern);
        const room = await slots.room(half);
        if (this.closing) break;
        if (!consumer) {
          // A failed pull may mean the consumer or stream is gone: put them back first.
          const created = await provisionJetStream(this.nats.manager, this.config, [route]);
          consumer = await this.nats.jetstream.consumers.get(route.stream, route.durable);
          this.consumerFound(route, created.includes(route.durable));
        }
        const batch = await consumer.fetch({ max_messages: room, expires: FETCH_EXPIRES_MS, idle_heartbeat: FETCH_HEARTBEAT_MS });
        this.batches.add(batch);
        // close() may have stopped the pulls while this one was being asked for: it would wait out its expiry.
        if (this.closing) batch.stop();
        try {
          for await (const msg of batch) {
            if (this.closing) {
              // Pulled but not started: hand it straight back so another replica takes it now.
              msg.nak();
              continue;
            }
            const size = msg.data.length;
            slots.take(size);
            const task = this.process(route, msg, slots, size).finally(() => {
              slots.release(size);
              this.inFlight.delete(task);
            });
            this.inFlight.add(task);
          }
        } finally {
          this.batches.delete(batch);
        }
      } catch (error) {
        if (this.closing) break;
        consumer = undefined;
        this.pullFailed(route, error);
        await sleep(RESUBSCRIBE_DELAY_MS);
      }
    }
  }

  /**
   * Runs one delivered message and settles it. A first delivery runs beside the others. A message delivered
   * again after going unsettled is a suspect (isolation.ts): it waits until it can run alone, its run is
   * marked in the ledger, and one whose earlier runs alone never ended POISON_STRIKES times is dead-lettered
   * (`poison`) without running again; a suspect still running after the ack wait leaves the gate to the
   * others, its mark left standing (a hang is a strike too).
   */
  private async process(route: ConsumerRoute, msg: JsMsg, slots: Slots, bytes: number): Promise<void> {
    const receivedAt = performance.now();
    // The delivery info is parsed from the reply subject on each access of msg.info: read it once.
    const info = msg.info;
    const ledger = this.ledger;
    const deliveries = info.deliveryCount;
    const limit = ledger ? this.config.maxDeliveries + MAX_DELIVER_BACKSTOP - 1 : this.config.maxDeliveries;
    if (deliveries > limit) {
      // Without a ledger, delivered again and again without being settled: its handler crashed or hung the
      // replicas that ran it. With one, the server's last delivery (max_deliver): a backstop that isolation
      // should never let a message reach. Either way it is not run once more.
      const error = new DeliveryLimitError(deliveries, limit);
      await this.settleMessage(route, msg, { outcome: { ok: false, error }, armed: false }, deliveries);
      return;
    }
    const place: Place = { alone: ledger !== undefined && deliveries > 1, in: false, since: receivedAt, slots, bytes };
    if (!place.alone && this.gate.tryShared()) {
      place.in = true;
      this.sharedPlaces.add(place);
    } else {
      await this.keepAlive(msg, this.enter(place));
    }
    try {
      if (this.closing && place.alone) {
        // Not started: back to the stream for another replica.
        msg.nak();
        return;
      }
      const meta: DeliveryMeta = {
        sequence: info.streamSequence,
        storedAtMs: Math.floor(info.timestampNanos / 1e6),
        deliveryCount: deliveries,
        receivedAt,
        hold: (work) => this.hold(msg, place, work),
      };
      const handled = place.alone ? await this.runAlone(route, msg, meta, place, ledger!) : { outcome: await this.run(route, msg, meta, place), armed: false };
      await this.settleMessage(route, msg, handled, deliveries);
    } finally {
      this.leave(place);
    }
  }

  /** Runs the handler until it returns or throws; while a dependency is down, holds the message and runs it again once it is back. */
  private async run(route: ConsumerRoute, msg: JsMsg, meta: DeliveryMeta, place: Place): Promise<Outcome> {
    for (;;) {
      try {
        const payload = decodePayload(msg.data, this.config.maxMessageBytes);
        const handler = this.handlers.get(route.pattern)!;
        const result: unknown = await handler(payload.value, new JetStreamContext(msg, payload.text, meta));
        if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
        return { ok: true };
      } catch (error) {
        // A dependency that is down fails every message alike: hold this one (no delivery used up) and run
        // it again once the dependency answers, instead of naking it until it is dead-lettered.
        if (await this.heldForOutage(route, msg, place, error)) continue;
        return { ok: false, error };
      }
    }
  }

  /**
   * After a failure: true when it was an outage, the message was held until what failed it answers again, and
   * it should run again. Held for one part only (a Redis Cluster shard whose primary fails over), its slot goes
   * to the other parts' messages meanwhile, so they do not wait behind it.
   */
  private async heldForOutage(route: ConsumerRoute, msg: JsMsg, place: Place, error: unknown): Promise<boolean> {
    if (!isRetryable(error) || this.closing) return false;
    const outage = await this.flow.outage(route.pattern, error);
    if (!outage) return false;
    const lent = outage.part !== null && place.slots.lend(place.bytes);
    try {
      await this.hold(msg, place, outage.over);
    } finally {
      if (lent) place.slots.giveBack(place.bytes);
    }
    return !this.closing;
  }

  /** A suspect's run alone: marked in the ledger; convicted there if its earlier runs alone never ended POISON_STRIKES times. */
  private async runAlone(route: ConsumerRoute, msg: JsMsg, meta: DeliveryMeta, place: Place, ledger: SuspectLedger): Promise<Handled> {
    const { stream, streamSequence: seq } = msg.info;
    let unfinished: number;
    for (;;) {
      try {
        unfinished = await ledger.arm(stream, seq);
        break;
      } catch (error) {
        if (await this.heldForOutage(route, msg, place, error)) continue;
        return { outcome: { ok: false, error }, armed: false };
      }
    }
    const strikes = Math.min(POISON_STRIKES, this.config.maxDeliveries);
    if (unfinished >= strikes) {
      return { outcome: { ok: false, error: new PoisonMessageError(meta.deliveryCount, unfinished) }, armed: true };
    }
    const run = this.run(route, msg, meta, place);
    // A run alone that outlasts the ack wait has hung (or is too slow to tell apart): the others may go on;
    // the mark stays, and the message is redelivered (no in-progress acks are sent for it) as a suspect again.
    // Time spent parked (waiting for room or for Redis, in-progress acks sent) does not count.
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<'tick'>((resolve) => (timer = setTimeout(() => resolve('tick'), this.config.ackWaitMs)));
      const first = await Promise.race([run, tick]);
      clearTimeout(timer);
      if (first !== 'tick') break;
      if (place.in) {
        this.log.warn({ msg: 'suspect message still running alone after the ack wait: the others go on, it keeps its mark', subject: msg.subject, seq });
        this.leave(place);
        break;
      }
    }
    return { outcome: await run, armed: true };
  }

  private enter(place: Place): Promise<void> {
    const entered = place.alone ? this.gate.enterAlone() : this.gate.enterShared();
    return entered.then(() => {
      place.in = true;
      place.since = performance.now();
      if (!place.alone) this.sharedPlaces.add(place);
    });
  }

  private leave(place: Place): void {
    if (!place.in) return;
    place.in = false;
    if (place.alone) {
      this.gate.leaveAlone();
    } else {
      this.sharedPlaces.delete(place);
      this.gate.leaveShared();
    }
  }

  /**
   * While a suspect waits or runs, pulling stops, and a first delivery still running past the ack wait gives
   * up its place: it has hung (or will be redelivered as a suspect anyway), and a suspect must not wait for it.
   */
  private isolating(on: boolean): void {
    if (!on) {
      clearInterval(this.evictTimer);
      this.evictTimer = undefined;
      this.flow.resume(ALL_ROUTES, 'isolating_suspect', true);
      return;
    }
    this.flow.pause(ALL_ROUTES, 'isolating_suspect', true);
    this.evictTimer ??= setInterval(
      () => {
        const before = performance.now() - this.config.ackWaitMs;
        for (const place of this.sharedPlaces) {
          if (place.since >= before) continue;
          this.log.warn({ msg: 'a message still running after the ack wait gives up its place to a waiting suspect' });
          this.leave(place);
        }
      },
      Math.max(100, Math.floor(this.config.ackWaitMs / 4)),
    );
    this.evictTimer.unref();
  }

  /**
   * Keeps `msg` from being redelivered while `work` runs (in-progress acks), its place at the gate given up
   * meanwhile: a message waiting for room or for Redis runs no code, and nobody must wait for it.
   */
  private async hold<T>(msg: JsMsg, place: Place, work: Promise<T>): Promise<T> {
    const wasIn = place.in;
    this.leave(place);
    try {
      return await this.keepAlive(msg, work);
    } finally {
      if (wasIn) await this.keepAlive(msg, this.enter(place));
    }
  }

  /** Keeps `msg` from being redelivered while `work` runs: an in-progress ack every third of the ack wait. */
  private async keepAlive<T>(msg: JsMsg, work: Promise<T>): Promise<T> {
    const timer = setInterval(
      () => {
        try {
          msg.working();
        } catch {
          /* NATS away: the message will be redelivered, which is harmless */
        }
      },
      Math.max(500, Math.floor(this.config.ackWaitMs / 3)),
    );
    try {
      return await work;
    } finally {
      clearInterval(timer);
    }
  }

  /**
   * Settles by the one policy (settlement.ts). A failed attempt is counted in the ledger, so MAX_DELIVERIES
   * counts failures, not deliveries: the deliveries that replicas dying under a message cost it do not count
   * against it. Without the ledger (or while it does not answer) the delivery count stands in.
   */
  private async settleMessage(route: ConsumerRoute, msg: JsMsg, handled: Handled, deliveryCount: number): Promise<void> {
    const { outcome } = handled;
    const ledger = this.ledger;
    let attempts = () => deliveryCount;
    let recorded = deliveryCount > 1 || handled.armed;
    if (ledger && !outcome.ok && isRetryable(outcome.error)) {
      const { stream, streamSequence } = msg.info;
      // Back-pressure and a hand-back on shutdown are no failures of the message: not counted.
      const failed = !(outcome.error instanceof BackpressureError) && !this.closing;
      try {
        if (handled.armed) await ledger.disarm(stream, streamSequence);
        if (failed) {
          const failures = await ledger.recordFailure(stream, streamSequence);
          attempts = () => failures;
          recorded = true;
        }
      } catch (error) {
        this.log.warn({ msg: 'could not count the failed attempt; the delivery count stands in', subject: msg.subject, error: describeError(error) });
      }
    }
    const s = settle(outcome, attempts, this.config);
    if (ledger && recorded && s.action !== 'nak') {
      const { stream, streamSequence } = msg.info;
      await ledger
        .forget(stream, streamSequence)
        .catch((error: unknown) =>
          this.log.warn({ msg: 'could not drop the settled message from the suspect ledger (it expires)', error: describeError(error) }),
        );
    }
    if (s.action === 'ack') {
      // Counted when sent (flushAcks).
      this.ackSoon(route.durable, msg);
      return;
    }
    const where = () => ({ consumer: route.durable, subject: msg.subject, seq: msg.info.streamSequence, deliveries: deliveryCount });
    switch (s.action) {
      case 'nak':
        this.log.warn({ msg: 'message will be retried', ...where(), delay_ms: s.delayMs, reason: s.reason });
        msg.nak(s.delayMs);
        break;
      case 'dead-letter':
        try {
          await this.deadLetters.publish(msg, s.code, s.reason);
        } catch (error) {
          // Could not dead-letter it (NATS trouble): keep it, try again later.
          this.log.error({ msg: 'dead-letter publish failed, message kept', ...where(), error: describeError(error) });
          msg.nak(this.config.nakMaxDelayMs);
          this.metrics.settled(route.durable, 'nak');
          return;
        }
        this.log.warn({ msg: 'message dead-lettered', ...where(), reason: s.reason });
        this.metrics.deadLettered(s.code);
        // No reason argument: nats-server before 2.10 ignores a `+TERM <reason>` ack, and the message would come
        // back after every ack wait. The reason is in the dead letter's headers.
        msg.term();
        break;
    }
    this.metrics.settled(route.durable, s.action);
  }

  private ackSoon(consumer: string, msg: JsMsg): void {
    let batch = this.pendingAcks.get(consumer);
    if (!batch) {
      batch = [];
      this.pendingAcks.set(consumer, batch);
    }
    batch.push(msg);
    this.ackFlush ??= setImmediate(() => this.flushAcks());
  }

  /** Sends the held acks. An ack that cannot be sent (connection closed) only means a redelivery, which is harmless. */
  private flushAcks(): void {
    if (this.ackFlush) clearImmediate(this.ackFlush);
    this.ackFlush = undefined;
    for (const [consumer, batch] of this.pendingAcks) {
      if (batch.length === 0) continue;
      this.pendingAcks.set(consumer, []);
      let failed = 0;
      let lastError: unknown;
      for (const msg of batch) {
        try {
          msg.ack();
        } catch (error) {
          failed++;
          lastError = error;
        }
      }
      this.metrics.settled(consumer, 'ack', batch.length - failed);
      if (failed > 0) {
        this.metrics.settled(consumer, 'ack_failed', failed);
        this.log.warn({ msg: 'acks not sent, the messages will be redelivered', consumer, count: failed, error: describeError(lastError) });
      }
    }
  }

  /** Stops pulling, lets in-flight messages finish and settle. NATS itself is drained after this. */
  async close(): Promise<void> {
    this.closing = true;
    this.connectionChanges?.unsubscribe();
    clearInterval(this.evictTimer);
    this.flow.stop();
    for (const batch of this.batches) batch.stop();
    for (const slots of this.slots.values()) slots.close();
    await Promise.allSettled(this.loops);
    // The loops start nothing once closing; wait for what they had started, then send its acks.
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    this.flushAcks();
  }

  /** Calls `callback` on each `event` (JetStreamEvents: connect, disconnect, reconnect, consumer_gone, consumer_back). */
  on<EventKey extends keyof JetStreamEvents = keyof JetStreamEvents, EventCallback extends JetStreamEvents[EventKey] = JetStreamEvents[EventKey]>(
    event: EventKey,
    callback: EventCallback,
  ): void {
    this.statusEvents.on(event, callback as (...args: unknown[]) => void);
  }

  private emit<EventKey extends keyof JetStreamEvents>(event: EventKey, ...args: Parameters<JetStreamEvents[EventKey]>): void {
    this.statusEvents.emit(event, ...args);
  }

  /**
   * From listen on, the connection's changes become the transport's status and events (the connection itself
   * is made and watched by NatsConnectionService, shared with the publishers).
   */
  private watchConnection(): void {
    this.connectionChanges?.unsubscribe();
    // Subscribed first, then the current state read: a change after this is not missed.
    this.connectionChanges = this.nats.connectionChanges.subscribe((change) => this.connectionChanged(change));
    this.connected = this.nats.isConnected();
    this._status$.next(this.connected ? 'connected' : 'disconnected');
    if (this.connected) this.emit('connect', this.nats.serverUrl());
  }

  private connectionChanged({ type, server }: NatsConnectionChange): void {
    if (type === 'reconnecting') {
      this._status$.next('reconnecting');
      return;
    }
    const connected = type === 'reconnect';
    this._status$.next(connected ? 'connected' : 'disconnected');
    if (connected === this.connected) return;
    this.connected = connected;
    this.emit(connected ? 'reconnect' : 'disconnect', server);
  }

  /** After a failed pull or look-up: the consumer may be gone (said once per episode), or pulling failed otherwise. */
  private pullFailed(route: ConsumerRoute, error: unknown): void {
    const reason = consumerGoneReason(error);
    if (reason === undefined) {
      this.log.warn({ msg: 'pulling failed, trying again', consumer: route.durable, error: describeError(error) });
      return;
    }
    if (this.goneConsumers.has(route.durable)) return;
    this.goneConsumers.set(route.durable, reason);
    this.log.warn({
      msg: `consumer gone: ${this.config.provision ? 'provisioning it again' : 'waiting for it (META_AGENT_PROVISION is off)'}`,
      consumer: route.durable,
      stream: route.stream,
      reason,
    });
    this.emit('consumer_gone', route.durable, reason);
  }

  /** The pull loop has its consumer again; `created`: provisioning had to create it, so it was gone (unnoticed until now). */
  private consumerFound(route: ConsumerRoute, created: boolean): void {
    if (created && !this.goneConsumers.has(route.durable)) {
      this.goneConsumers.set(route.durable, 'found missing');
      this.log.warn({ msg: 'consumer gone: found missing, provisioned again', consumer: route.durable, stream: route.stream });
      this.emit('consumer_gone', route.durable, 'found missing');
    }
    if (!this.goneConsumers.delete(route.durable)) return;
    this.log.log({ msg: 'consumer back: consuming again', consumer: route.durable, stream: route.stream });
    this.emit('consumer_back', route.durable);
  }

  unwrap<T>(): T {
    return this.nats.connection as T;
  }
}
