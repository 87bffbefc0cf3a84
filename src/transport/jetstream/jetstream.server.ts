import { Inject, Injectable, Logger } from '@nestjs/common';
import { CustomTransportStrategy, Server, type MessageHandler } from '@nestjs/microservices';
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isObservable, lastValueFrom } from 'rxjs';
import { natsConfig, type NatsConfig } from '../../config/configuration.js';
import { describeError, isRetryable, PoisonMessageError } from '../../common/errors.js';
import { OrchestratorMetrics } from '../../metrics/orchestrator.metrics.js';
import { NatsConnectionService } from '../../nats/nats-connection.service.js';
import { DeadLetterPublisher } from './dead-letter.publisher.js';
import { FlowControl } from './flow-control.js';
import { JetStreamContext, type DeliveryMeta } from './jetstream.context.js';
import { decodePayload } from './payload.js';
import { provisionJetStream, type ConsumerRoute } from './provisioning.js';
import { settle, type Outcome } from './settlement.js';

import { AGENT_SIGNAL_PATTERN, TRIGGER_PATTERN } from './patterns.js';

export { AGENT_SIGNAL_PATTERN, TRIGGER_PATTERN };

const RESUBSCRIBE_DELAY_MS = 1000;
/** Pull requests wait at most this long for messages before the loop asks again. */
const FETCH_EXPIRES_MS = 5000;

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
  constructor(
    readonly limit: number,
    private readonly byteBudget: number,
  ) {}

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
 * The JetStream transport: durable pull consumers shared by all replicas, pulled in batches no larger
 * than the room left (at most `maxInFlight` messages and `maxPullBytes` bytes per consumer), and
 * settlement (ack / nak with delay / dead-letter + term) only after the handler returned or threw — see
 * settlement.ts. A route pulls only while FlowControl lets it (back-pressure, a dependency outage): what
 * is not pulled waits in the stream, where it uses up no delivery.
 */
@Injectable()
export class JetStreamServer extends Server implements CustomTransportStrategy {
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

  constructor(
    private readonly nats: NatsConnectionService,
    private readonly deadLetters: DeadLetterPublisher,
    private readonly metrics: OrchestratorMetrics,
    private readonly flow: FlowControl,
    @Inject(natsConfig.KEY) private readonly config: NatsConfig,
  ) {
    super();
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
      const routes = this.routes();
      for (const route of routes) {
        const handler = this.getHandlerByPattern(route.pattern);
        if (!handler) throw new Error(`no @EventPattern('${route.pattern}') handler is registered`);
        if (handler.next) throw new Error(`more than one handler for pattern '${route.pattern}'`);
        this.handlers.set(route.pattern, handler);
      }
      await provisionJetStream(this.nats.manager, this.config, routes);
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
          await provisionJetStream(this.nats.manager, this.config, [route]);
          consumer = await this.nats.jetstream.consumers.get(route.stream, route.durable);
        }
        const batch = await consumer.fetch({ max_messages: room, expires: FETCH_EXPIRES_MS });
        this.batches.add(batch);
        try {
          for await (const msg of batch) {
            if (this.closing) {
              // Pulled but not started: hand it straight back so another replica takes it now.
              msg.nak();
              continue;
            }
            const size = msg.data.length;
            slots.take(size);
            const task = this.process(route, msg).finally(() => {
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
        this.log.warn({ msg: 'pulling failed, trying again', consumer: route.durable, error: describeError(error) });
        await sleep(RESUBSCRIBE_DELAY_MS);
      }
    }
  }

  private async process(route: ConsumerRoute, msg: JsMsg): Promise<void> {
    const receivedAt = performance.now();
    // The delivery info is parsed from the reply subject on each access of msg.info: read it once.
    const info = msg.info;
    let outcome: Outcome;
    if (info.deliveryCount > this.config.maxDeliveries) {
      // Delivered again and again without being settled: its handler crashed or hung the replicas that
      // ran it. It is not run once more.
      await this.settleMessage(route, msg, { ok: false, error: new PoisonMessageError(info.deliveryCount, this.config.maxDeliveries) }, info.deliveryCount);
      return;
    }
    const meta: DeliveryMeta = {
      sequence: info.streamSequence,
      storedAtMs: Math.floor(info.timestampNanos / 1e6),
      deliveryCount: info.deliveryCount,
      receivedAt,
      hold: (work) => this.hold(msg, work),
    };
    for (;;) {
      try {
        const payload = decodePayload(msg.data, this.config.maxMessageBytes);
        const handler = this.handlers.get(route.pattern)!;
        const result: unknown = await handler(payload.value, new JetStreamContext(msg, payload.text, meta));
        if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
        outcome = { ok: true };
      } catch (error) {
        outcome = { ok: false, error };
        // A dependency that is down fails every message alike: hold this one (no delivery used up) and run
        // it again once the dependency answers, instead of naking it until it is dead-lettered.
        if (isRetryable(error) && !this.closing && !(await this.flow.dependenciesUp())) {
          await this.hold(msg, this.flow.waitOpen(route.pattern));
          if (!this.closing) continue;
        }
      }
      break;
    }
    await this.settleMessage(route, msg, outcome, info.deliveryCount);
  }

  /** Keeps `msg` from being redelivered while `work` runs: an in-progress ack every third of the ack wait. */
  private async hold<T>(msg: JsMsg, work: Promise<T>): Promise<T> {
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

  private async settleMessage(route: ConsumerRoute, msg: JsMsg, outcome: Outcome, deliveryCount: number): Promise<void> {
    const s = settle(outcome, () => deliveryCount, this.config);
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
    this.flow.stop();
    for (const batch of this.batches) batch.stop();
    for (const slots of this.slots.values()) slots.close();
    await Promise.allSettled(this.loops);
    // The loops start nothing once closing; wait for what they had started, then send its acks.
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    this.flushAcks();
  }

  on(): never {
    throw new Error('JetStreamServer has no events to listen to; see its status in /health');
  }

  unwrap<T>(): T {
    return this.nats.connection as T;
  }
}
