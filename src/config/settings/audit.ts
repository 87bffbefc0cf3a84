import type { EnvReader } from '../env-reader.js';
import { NAME_RE, SUBJECT_RE } from './nats-names.js';

/** The audit trail (src/audit/): whether it is on, its stream and subjects, retention, and the send buffer. */
export function readAuditSettings(r: EnvReader) {
  return {
    enabled: r.bool(
      'AUDIT',
      true,
      'Audit trail: every workflow event (trigger, signal, freeze with its snapshot, decision, timeout, admin action) is published to the audit stream, fire-and-forget (README "Audit trail"). Off: nothing is emitted and no audit stream is needed.',
    ),
    stream: r.string('AUDIT_STREAM', 'AUDIT', 'Stream of the audit trail.', NAME_RE, 'a stream name'),
    subjectPrefix: r.string(
      'AUDIT_SUBJECT_PREFIX',
      'audit',
      'Audit events are published on `<prefix>.<corr_id>.<event>` (a `.` in the corr_id written `~`); the audit stream captures `<prefix>.>`.',
      SUBJECT_RE,
      'a subject',
    ),
    maxAgeSeconds: r.int(
      'AUDIT_MAX_AGE_SECONDS',
      30 * 86400,
      0,
      3650 * 86400,
      'Max age of audit events when the audit stream is provisioned (0: keep forever); how far back history and replay reach.',
    ),
    streamReplicas: r.int(
      'AUDIT_STREAM_REPLICAS',
      0,
      0,
      5,
      'Replicas of the audit stream when provisioned; 0: as META_AGENT_STREAM_REPLICAS. On a NATS cluster each event is stored that many times (docs/PERFORMANCE.md, "Issue 20": R3 cost the NATS servers about 0.15 ms of CPU per workflow more than R1); fewer replicas than the other streams trade that for the availability of the trail: while the server holding it is away, history is unreadable and new events are not stored (docs/OPERATIONS.md, "Stream replicas"; no decision depends on them).',
    ),
    bufferSize: r.int(
      'AUDIT_BUFFER',
      10000,
      1,
      1_000_000,
      'Audit events waiting to be sent per replica (queued, or written and not yet read by the server); past it (NATS slow or away) new events are dropped and counted (`meta_agent_audit_dropped_total`), never waited for.',
    ),
  };
}
