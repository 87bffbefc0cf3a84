import { Inject, Injectable, Logger } from '@nestjs/common';
import { DeliverPolicy } from '@nats-io/jetstream';
import { natsConfig, type NatsConfig } from '../config/configuration.js';
import { TransientError } from '../common/errors.js';
import { NatsConnectionService } from '../nats/nats-connection.service.js';
import { JetStreamPublisher } from '../nats/jetstream-publisher.js';

/** Pull size of the verification scan (headers only). */
const SCAN_BATCH = 1000;

/**
 * Publishes a recorded decision to JetStream with `Nats-Msg-Id` = the workflow instance's id (workflow_id
 * and its start time): a re-publish of the same decision within the stream's duplicate window is stored
 * once, and a new workflow of the same corr_id (after the old one expired) is never mistaken for it.
 *
 * Beyond the window the stream cannot tell: `wasPublished` scans it for the id before such a decision is
 * published again (see WorkflowService.publish and docs/ARCHITECTURE.md, "Decision identity").
 */
@Injectable()
export class DecisionPublisher {
  private readonly logger = new Logger('DecisionPublisher');
  /** Verification requests waiting for the next scan (one scan serves every request made meanwhile). */
  private waiting: { msgId: string; sinceMs: number; resolve: (found: boolean) => void; reject: (error: unknown) => void }[] = [];
  private scanning: Promise<void> | undefined;
  /** Publishes with one wildcard inbox instead of the client's per-request path (docs/PERFORMANCE.md). */
  private jsPublisher: JetStreamPublisher | undefined;

  constructor(
    private readonly nats: NatsConnectionService,
    @Inject(natsConfig.KEY) private readonly config: NatsConfig,
  ) {}

  /** How long JetStream de-duplicates a re-published decision. */
  get duplicateWindowMs(): number {
    return this.config.duplicateWindowMs;
  }

  /** @returns whether JetStream already had this decision (a duplicate publish). */
  async publish(decisionJson: string, msgId: string): Promise<{ duplicate: boolean }> {
    // While disconnected the client would queue the publish and send it whenever it reconnects, possibly
    // long after another replica re-published the decision: refuse instead (the sweeper publishes later).
    if (!this.nats.isConnected()) throw new TransientError('decision publish deferred: NATS is disconnected');
    try {
      this.jsPublisher ??= new JetStreamPublisher(this.nats.connection, { timeoutMs: this.config.connectTimeoutMs });
      const ack = await this.jsPublisher.publish(this.config.subjects.decision, decisionJson, msgId);
      return { duplicate: ack.duplicate };
    } catch (error) {
      throw new TransientError(`decision publish failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Whether the decisions stream holds a message with this `Nats-Msg-Id`, stored since `sinceMs`. Requests
   * made while a scan runs are served by the next one, from the earliest `sinceMs` among them.
   */
  wasPublished(msgId: string, sinceMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ msgId, sinceMs, resolve, reject });
      this.scanning ??= this.scanLoop();
    });
  }

  private async scanLoop(): Promise<void> {
    while (this.waiting.length > 0) {
      const requests = this.waiting;
      this.waiting = [];
      try {
        const found = await this.scan(new Set(requests.map((r) => r.msgId)), Math.min(...requests.map((r) => r.sinceMs)));
        for (const r of requests) r.resolve(found.has(r.msgId));
      } catch (error) {
        for (const r of requests) r.reject(new TransientError(`decision stream scan failed: ${(error as Error).message}`, { cause: error }));
      }
    }
    this.scanning = undefined;
  }

  /** Reads the headers of every decision stored since `sinceMs` up to the stream's end now; returns the ids found among `ids`. */
  private async scan(ids: Set<string>, sinceMs: number): Promise<Set<string>> {
    const stream = this.config.streams.decisions;
    const last = (await this.nats.manager.streams.info(stream)).state.last_seq;
    const found = new Set<string>();
    const consumer = await this.nats.jetstream.consumers.get(stream, {
      filter_subjects: [this.config.subjects.decision],
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(Math.max(0, sinceMs)).toISOString(),
      headers_only: true,
    });
    let scanned = 0;
    try {
      for (;;) {
        const batch = await consumer.fetch({ max_messages: SCAN_BATCH, expires: 2000 });
        let got = 0;
        let done = false;
        for await (const m of batch) {
          got++;
          scanned++;
          const id = m.headers?.get('Nats-Msg-Id');
          if (id && ids.has(id)) found.add(id);
          if (m.seq >= last) done = true;
        }
        if (done || got === 0 || found.size === ids.size) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    this.logger.log({ msg: 'decisions stream scanned for decisions older than the duplicate window', scanned, looked_for: ids.size, found: found.size });
    return found;
  }
}
