import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { auditEventsOf, firstCopies, type AuditRecord } from '../audit.events.js';
import { auditFilter } from '../audit-subject.js';

/** Pull size of the replay's read of the audit stream. */
const BATCH = 1000;

/**
 * Every audit event stored since `sinceMs` up to the end of the stream as it is now (one corr_id's, with
 * `corrId`), read with an ordered consumer (reading changes nothing).
 */
export async function readAuditSince(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  prefix: string,
  sinceMs: number,
  corrId?: string,
): Promise<AuditRecord[]> {
  const filter = corrId ? auditFilter(prefix, corrId) : `${prefix}.>`;
  const info = await jsm.streams.info(stream, corrId ? { subjects_filter: filter } : undefined);
  const last = info.state.last_seq;
  const out: AuditRecord[] = [];
  if (info.state.messages === 0) return out;
  const consumer = await js.consumers.get(stream, {
    filter_subjects: [filter],
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: new Date(Math.max(0, sinceMs)).toISOString(),
  });
  const first = firstCopies();
  for (;;) {
    const batch = await consumer.fetch({ max_messages: BATCH, expires: 2000 });
    let got = 0;
    let done = false;
    for await (const m of batch) {
      got++;
      try {
        const text = m.string();
        if (first(text)) {
          const storedAt = new Date(Math.floor(m.info.timestampNanos / 1e6)).toISOString();
          // One event, or the events of a decision together (AUDIT_DECIDED).
          for (const event of auditEventsOf(text)) out.push({ ...event, stream_seq: m.seq, stored_at: storedAt } as AuditRecord);
        }
      } catch {
        // not an audit event
      }
      if (m.seq >= last || m.info.pending === 0) done = true;
    }
    if (done || got === 0) break;
  }
  return out;
}
