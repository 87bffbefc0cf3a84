import { Inject, Injectable } from '@nestjs/common';
import { natsConfig, type NatsConfig } from '../config/configuration.js';
import { TransientError } from '../common/errors.js';
import { NatsConnectionService } from '../nats/nats-connection.service.js';

/**
 * Publishes a recorded decision to JetStream with `Nats-Msg-Id` = workflow_id: a retry (or a second
 * replica finishing a dead one's work) within the stream's duplicate window is stored once.
 */
@Injectable()
export class DecisionPublisher {
  constructor(
    private readonly nats: NatsConnectionService,
    @Inject(natsConfig.KEY) private readonly config: NatsConfig,
  ) {}

  /** @returns whether JetStream already had this decision (a duplicate publish). */
  async publish(decisionJson: string, workflowId: string): Promise<{ duplicate: boolean }> {
    try {
      const ack = await this.nats.jetstream.publish(this.config.subjects.decision, decisionJson, { msgID: workflowId });
      return { duplicate: ack.duplicate };
    } catch (error) {
      throw new TransientError(`decision publish failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
