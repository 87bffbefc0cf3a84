import { Inject, Injectable } from '@nestjs/common';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { natsConfig, type NatsConfig } from '../config/configuration.js';
import { NatsConnectionService } from '../nats/nats-connection.service.js';
import { auditEventsOf, firstCopies, type AuditRecord } from './audit.events.js';
import { auditFilter } from './audit-subject.js';

/** The most events one history read returns (the oldest first): a bounded read whatever a corr_id holds. */
export const HISTORY_MAX_EVENTS = 2000;

/**
 * Reads the audit events of one corr_id back from the audit stream: a filtered, ordered read of its own
 * subjects (`<prefix>.<corr_id>.*`), so its cost follows the corr_id's events, not the stream's size.
 */
@Injectable()
export class AuditReader {
  constructor(
    private readonly nats: NatsConnectionService,
    @Inject(natsConfig.KEY) private readonly config: NatsConfig,
  ) {}

  get enabled(): boolean {
    return this.config.audit.enabled;
  }

  /** The corr_id's events, at most `limit`, oldest first (stream order); `truncated` when there were more. */
  async read(corrId: string, limit = HISTORY_MAX_EVENTS): Promise<{ records: AuditRecord[]; truncated: boolean }> {
    const { stream, subjectPrefix } = this.config.audit;
    const filter = auditFilter(subjectPrefix, corrId);
    let total: number;
    try {
      const info = await this.nats.manager.streams.info(stream, { subjects_filter: filter });
      total = Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return { records: [], truncated: false };
      throw error;
    }
    if (total === 0) return { records: [], truncated: false };
    const wanted = Math.min(total, limit);
    const consumer = await this.nats.jetstream.consumers.get(stream, { filter_subjects: [filter] });
    const records: AuditRecord[] = [];
    const first = firstCopies();
    const batch = await consumer.fetch({ max_messages: wanted, expires: Math.max(1000, this.config.connectTimeoutMs) });
    let read = 0;
    for await (const m of batch) {
      read++;
      try {
        const text = m.string();
        if (!first(text)) continue;
        const storedAt = new Date(Math.floor(m.info.timestampNanos / 1e6)).toISOString();
        // One event, or the events of a decision together (AUDIT_DECIDED): each its own record.
        for (const event of auditEventsOf(text)) records.push({ ...event, stream_seq: m.seq, stored_at: storedAt } as AuditRecord);
      } catch {
        // Not an audit event (something else published on the audit subjects): left out.
      }
      if (read >= wanted || records.length >= limit) break;
    }
    // `limit` counts events: a message of a decision holds several (AUDIT_DECIDED).
    return { records: records.slice(0, limit), truncated: total > read || records.length > limit };
  }
}
