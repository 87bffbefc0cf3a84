import { BaseRpcContext } from '@nestjs/microservices';
import type { JsMsg } from '@nats-io/jetstream';

type Args = [JsMsg, string, number];

/**
 * What a handler can ask about the message it is given (`@Ctx() ctx: JetStreamContext`).
 * Handlers never ack: the transport settles after the handler returns or throws.
 */
export class JetStreamContext extends BaseRpcContext<Args> {
  constructor(msg: JsMsg, text: string, receivedAt: number) {
    super([msg, text, receivedAt]);
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

  /** `performance.now()` when the transport received the message (for latency metrics). */
  getReceivedAt(): number {
    return this.args[2];
  }

  getDeliveryCount(): number {
    return this.args[0].info.deliveryCount;
  }
}
