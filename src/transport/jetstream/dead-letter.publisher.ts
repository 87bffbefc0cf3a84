import { Inject, Injectable } from '@nestjs/common';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { JsMsg } from '@nats-io/jetstream';
import { natsConfig, type NatsConfig } from '../../config/configuration.js';
import { NatsConnectionService } from '../../nats/nats-connection.service.js';

/** Header names on dead-lettered messages (the original headers are kept as they were). */
export const DeadLetterHeaders = {
  Reason: 'Meta-Agent-Reason',
  Code: 'Meta-Agent-Reason-Code',
  OriginalSubject: 'Meta-Agent-Original-Subject',
  OriginalStream: 'Meta-Agent-Original-Stream',
  OriginalSequence: 'Meta-Agent-Original-Sequence',
  DeliveryCount: 'Meta-Agent-Delivery-Count',
} as const;

/**
 * Copies a message to the dead-letter subject: payload byte for byte, original headers, plus the
 * reason and where it came from. `Nats-Msg-Id` is the original stream position, so a retried
 * dead-lettering is stored once.
 */
@Injectable()
export class DeadLetterPublisher {
  constructor(
    private readonly nats: NatsConnectionService,
    @Inject(natsConfig.KEY) private readonly config: NatsConfig,
  ) {}

  async publish(msg: JsMsg, code: string, reason: string): Promise<void> {
    const h = natsHeaders();
    if (msg.headers) {
      for (const [key, values] of msg.headers) {
        if (key === 'Nats-Msg-Id' || key.startsWith('Nats-Expected')) continue;
        for (const v of values) h.append(key, v);
      }
    }
    const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ').slice(0, 1000);
    h.set(DeadLetterHeaders.Reason, oneLine(reason));
    h.set(DeadLetterHeaders.Code, code);
    h.set(DeadLetterHeaders.OriginalSubject, msg.subject);
    h.set(DeadLetterHeaders.OriginalStream, msg.info.stream);
    h.set(DeadLetterHeaders.OriginalSequence, String(msg.info.streamSequence));
    h.set(DeadLetterHeaders.DeliveryCount, String(msg.info.deliveryCount));
    await this.nats.jetstream.publish(this.config.subjects.deadLetter, msg.data, {
      headers: h,
      msgID: `${msg.info.stream}:${msg.info.streamSequence}`,
    });
  }
}
