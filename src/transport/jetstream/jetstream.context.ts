import { BaseRpcContext } from '@nestjs/microservices';
import type { JsMsg } from '@nats-io/jetstream';

/** What the transport knows of a delivered message, read once from its delivery info. */
export interface DeliveryMeta {
  /** The message's JetStream stream sequence: the order in which JetStream stored messages. */
  sequence: number;
  /** When JetStream stored the message (ms since the epoch, the server's clock). */
  storedAtMs: number;
  deliveryCount: number;
  /** `performance.now()` when the transport received the message (for latency metrics). */
  receivedAt: number;
  /**
   * Waits for `work` while keeping the message from being redelivered (in-progress acks, which use up no
   * delivery): for a handler that must wait its turn (back-pressure), not for slow work of its own.
   */
  hold<T>(work: Promise<T>): Promise<T>;
}

type Args = [JsMsg, string, DeliveryMeta];

/**
 * What a handler can ask about the message it is given (`@Ctx() ctx: JetStreamContext`).
 * Handlers never ack: the transport settles after the handler returns or throws.
 */
export class JetStreamContext extends BaseRpcContext<Args> {
  constructor(msg: JsMsg, text: string, meta: DeliveryMeta) {
    super([msg, text, meta]);
  }

  getMessage(): JsMsg {
    return this.args[0];
  }

  getSubject(): string {
    return this.args[0].subject;
  }

  /** The payload as received, UTF-8 text. */
  getText(): string {
    return this.args[1];
  }

  getMeta(): DeliveryMeta {
    return this.args[2];
  }

  /** `performance.now()` when the transport received the message (for latency metrics). */
  getReceivedAt(): number {
    return this.args[2].receivedAt;
  }

  getDeliveryCount(): number {
    return this.args[2].deliveryCount;
  }
}
