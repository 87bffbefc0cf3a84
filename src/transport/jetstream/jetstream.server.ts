import { Inject, Injectable, Logger } from '@nestjs/common';
import { CustomTransportStrategy, Server, type MessageHandler } from '@nestjs/microservices';
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isObservable, lastValueFrom } from 'rxjs';
import { natsConfig, type NatsConfig } from '../../config/configuration.js';
import { describeError } from '../../common/errors.js';
import { OrchestratorMetrics } from '../../metrics/orchestrator.metrics.js';
import { NatsConnectionService } from '../../nats/nats-connection.service.js';
import { DeadLetterPublisher } from './dead-letter.publisher.js';
import { JetStreamContext } from './jetstream.context.js';
import { decodePayload } from './payload.js';
import { provisionJetStream, type ConsumerRoute } from './provisioning.js';
import { settle, type Outcome } from './settlement.js';

/** Handler patterns: `@EventPattern(TRIGGER_PATTERN)` gets the trigger consumer's messages, and so on. */
export const TRIGGER_PATTERN = 'signals.normalized';
export const AGENT_SIGNAL_PATTERN = 'signals.enriched.*';

const RESUBSCRIBE_DELAY_MS = 1000;

/** A counting semaphore: at most `limit` messages of one consumer in flight. */
class Slots {
  private used = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async acquire(): Promise<void> {
    if (this.used < this.limit) {
      this.used++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.used--;
  }
}

/**
 * The JetStream transport: durable pull consumers shared by all replicas, a bounded number of messages
 * in flight per consumer, and settlement (ack / nak with delay / dead-letter + term) only after the
 * handler returned or threw — see settlement.ts.
 */
@Injectable()
export class JetStreamServer extends Server implements CustomTransportStrategy {
  private readonly log = new Logger('JetStreamServer');
  private readonly subscriptions = new Set<ConsumerMessages>();
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

  /** Provisions (or checks) streams and consumers, then starts consuming; a failure rejects start-up. */
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
        const first = await this.subscribe(route);
        this.loops.push(this.consumeLoop(route, first));
        this.log.log({ msg: 'consuming', stream: route.stream, consumer: route.durable, filter: route.filterSubject });
      }
      callback();
    } catch (error) {
      callback(error);
    }
  }

  private async subscribe(route: ConsumerRoute): Promise<ConsumerMessages> {
    const consumer = await this.nats.jetstream.consumers.get(route.stream, route.durable);
    // Missing stream or consumer ends the subscription (instead of waiting for them to come back), so
    // that the loop below can provision them again.
    const messages = await consumer.consume({ max_messages: this.config.maxInFlight, abort_on_missing_resource: true });
    this.subscriptions.add(messages);
    void this.watch(route, messages);
    return messages;
  }

  private async watch(route: ConsumerRoute, messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type === 'heartbeats_missed' || status.type === 'consumer_deleted' || status.type === 'consumer_not_found' || status.type === 'stream_not_found') {
        this.log.warn({ msg: `consumer ${status.type.replace(/_/g, ' ')}`, consumer: route.durable });
      }
    }
  }

  /**
   * Feeds one consumer's messages to the handler, at most `maxInFlight` at once. Should the
   * subscription end while the service is not closing (consumer deleted, stream recreated), it
   * subscribes again after a pause: a replica never silently stops consuming.
   */
  private async consumeLoop(route: ConsumerRoute, first: ConsumerMessages): Promise<void> {
    const slots = new Slots(this.config.maxInFlight);
    let messages: ConsumerMessages | undefined = first;
    while (!this.closing) {
      try {
        if (!messages) {
          // A subscription that ended may mean the consumer or stream is gone: put them back first.
          await provisionJetStream(this.nats.manager, this.config, [route]);
          messages = await this.subscribe(route);
          if (this.closing) messages.stop();
        }
        for await (const msg of messages) {
          if (this.closing) {
            // Pulled but not started: hand it straight back so another replica takes it now.
            msg.nak();
            continue;
          }
          await slots.acquire();
          if (this.closing) {
            // close() began while this one waited for a slot: hand it back too, not start it.
            slots.release();
            msg.nak();
            continue;
          }
          const task = this.process(route, msg).finally(() => {
            slots.release();
            this.inFlight.delete(task);
          });
          this.inFlight.add(task);
        }
      } catch (error) {
        if (!this.closing) this.log.error({ msg: 'consumer subscription failed', consumer: route.durable, error: describeError(error) });
      }
      if (messages) this.subscriptions.delete(messages);
      messages = undefined;
      if (!this.closing) {
        this.log.warn({ msg: 'consumer subscription ended, subscribing again', consumer: route.durable });
        await sleep(RESUBSCRIBE_DELAY_MS);
      }
    }
  }

  private async process(route: ConsumerRoute, msg: JsMsg): Promise<void> {
    const receivedAt = performance.now();
    let outcome: Outcome;
    try {
      const payload = decodePayload(msg.data, this.config.maxMessageBytes);
      const handler = this.handlers.get(route.pattern)!;
      const result: unknown = await handler(payload.value, new JetStreamContext(msg, payload.text, receivedAt));
      if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
      outcome = { ok: true };
    } catch (error) {
      outcome = { ok: false, error };
    }
    await this.settleMessage(route, msg, outcome);
  }

  private async settleMessage(route: ConsumerRoute, msg: JsMsg, outcome: Outcome): Promise<void> {
    // msg.info parses the reply subject on each access: read only on the unhappy paths.
    const s = settle(outcome, () => msg.info.deliveryCount, this.config);
    if (s.action === 'ack') {
      // Counted when sent (flushAcks).
      this.ackSoon(route.durable, msg);
      return;
    }
    const where = () => ({ consumer: route.durable, subject: msg.subject, seq: msg.info.streamSequence, deliveries: msg.info.deliveryCount });
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
    for (const sub of this.subscriptions) sub.stop();
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
