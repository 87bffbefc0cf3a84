/*
 * The audit trail's event schema (docs/ARCHITECTURE.md, "Audit trail"). One JetStream message per event, on
 * `<prefix>.<corr_id token>.<event>` (audit-subject.ts), its payload one JSON object: the envelope below plus
 * the event's own fields; but the events of a workflow's decision go together in one (AUDIT_DECIDED). Inputs
 * (triggers, signals) and decisions are embedded verbatim, as received or published, so that an event can be
 * read, and a workflow re-evaluated, without anything else.
 */

/** Every kind of audit event; also the last token of its subject (sent alone: AUDIT_DECIDED). */
export const AUDIT_EVENTS = [
  'trigger_accepted',
  'trigger_declined',
  'trigger_duplicate',
  'signal_stored',
  'signal_duplicate',
  'signal_superseded',
  'signal_late',
  'signal_stale',
  'signal_early',
  'signal_early_superseded',
  'signal_orphaned',
  'admin_action',
  'frozen',
  'timeout',
  'takeover',
  'decision_published',
] as const;
export type AuditEventKind = (typeof AUDIT_EVENTS)[number];

/**
 * Where an event sorts among the events of the same instance and the same millisecond: a step's cause
 * before its effect (the signal that froze a workflow, then the freeze, then its decision).
 */
export const AUDIT_RANK: Record<AuditEventKind, number> = {
  trigger_accepted: 0,
  trigger_declined: 0,
  trigger_duplicate: 0,
  signal_stored: 1,
  signal_duplicate: 1,
  signal_superseded: 1,
  signal_late: 1,
  signal_stale: 1,
  signal_early: 1,
  signal_early_superseded: 1,
  signal_orphaned: 1,
  admin_action: 2,
  frozen: 3,
  timeout: 3,
  takeover: 4,
  decision_published: 5,
};

/**
 * The last subject token of a message that holds the events of a workflow's decision together, as a JSON
 * array in the order emitted: the signal that made it ready (where one did), its freeze (`frozen`, `timeout`
 * or `takeover`) and its `decision_published`, as the replica that decided it emitted them (AuditTrail:
 * one message where there were up to three). Every other message holds one event, on its kind's token.
 */
export const AUDIT_DECIDED = 'decided';

/**
 * The events of one audit message's text: one event, or the array of a `decided` message. Throws on what is
 * not JSON; an element that is not an object is left out.
 */
export function auditEventsOf(text: string): Record<string, unknown>[] {
  const parsed = JSON.parse(text) as unknown;
  const all = Array.isArray(parsed) ? (parsed as unknown[]) : [parsed];
  return all.filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && !Array.isArray(e));
}

/** The fields every event has. */
export interface AuditEnvelope {
  /** Schema version of the payload. */
  v: 1;
  event: AuditEventKind;
  corr_id: string;
  /** `<workflow_type>:<corr_id>`, where the step knows it (a signal's does not: it names no type). */
  workflow_id: string | null;
  /**
   * The workflow instance, `<workflow_id>@<started ms>` (the decision's `Nats-Msg-Id`), where the step
   * knows it; null otherwise (signals stored by a script that answers only "stored", late, stale, early
   * signals, an extend): the history assigns those by time (audit-history.ts).
   */
  instance: string | null;
  /** Redis's clock (ms) at this step, where the step has it (the script's `now`, the freeze, the finish). */
  redis_ms: number | null;
  /**
   * The sort key within an instance: [ms, rank, input sequence]. ms: `redis_ms` when the step has it, else
   * JetStream's stored time of the input (early signals), else the replica's clock; rank: AUDIT_RANK; input
   * sequence: the SIGNALS stream sequence of the trigger or signal (0 for other events).
   */
  order: [number, number, number];
  /** The replica's clock when the event was emitted (ISO 8601). */
  at: string;
  /** Who emitted it: `<META_AGENT_NAME>@<hostname>:<pid>`. */
  replica: string;
}

/** The input message of a trigger or signal event: its SIGNALS stream sequence and JetStream's stored time. */
export interface AuditInput {
  seq: number;
  received_ms: number;
}

/** An event as read back from the stream (the payload, and where the stream has it). */
export type AuditRecord = AuditEnvelope &
  Record<string, unknown> & {
    /** The AUDIT stream's sequence of the event and JetStream's stored time (ISO 8601). */
    stream_seq: number;
    stored_at: string;
  };

/**
 * A reader's test for copies: the trail sends a batch again when JetStream did not acknowledge it (its
 * last event), so an event may be stored twice, byte for byte (docs/ARCHITECTURE.md, "What a crash can
 * lose"). Returns true for the first time a text is seen, false for a copy of it. Two distinct events are
 * equal only if one replica recorded the same outcome of the same input (its stream sequence; for an admin
 * action, the same request by the same token) within one millisecond (`at`): a reader cannot tell such a
 * pair from a copy, and keeps one.
 */
export function firstCopies(): (text: string) => boolean {
  const seen = new Set<string>();
  return (text) => {
    if (seen.has(text)) return false;
    seen.add(text);
    return true;
  };
}
