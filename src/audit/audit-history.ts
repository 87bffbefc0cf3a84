import type { AuditRecord } from './audit.events.js';

/** One workflow instance of a corr_id, its events in order. */
export interface InstanceHistory {
  /** `<workflow_id>@<started ms>`: the decision's Nats-Msg-Id. */
  instance: string;
  workflow_id: string;
  started_at: string;
  /** The final status and decision message, once a decision was published (null before). */
  status: string | null;
  decision: Record<string, unknown> | null;
  /** Each event with `seq`: its place in the instance, from 1. */
  events: (AuditRecord & { seq: number })[];
}

export interface CorrIdHistory {
  corr_id: string;
  /** Oldest first. */
  instances: InstanceHistory[];
  /** Events of no instance: a declined trigger, an orphaned signal, early signals whose trigger never came. */
  unassigned: AuditRecord[];
}

const EARLY = new Set(['signal_early', 'signal_early_superseded']);

/** By the event's sort key (audit.events.ts `order`), then by where the audit stream stored it. */
function compare(a: AuditRecord, b: AuditRecord): number {
  for (let i = 0; i < 3; i++) {
    const d = (a.order?.[i] ?? 0) - (b.order?.[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.stream_seq - b.stream_seq;
}

function startedOf(instance: string): number {
  return Number(instance.slice(instance.lastIndexOf('@') + 1));
}

/**
 * Groups the events of one corr_id into its workflow instances and orders each instance's events.
 *
 * An event that names its instance goes there. One that does not (a signal stored by a script that
 * answered only "stored", a late or stale signal, an extend) goes to the latest instance started at or
 * before its sort time; an early signal to the first instance started at or after it. That is exact for a
 * corr_id's instances, which cannot overlap: a corr_id opens a new instance only once the previous one has
 * ended and expired (RETENTION_SECONDS after its end), and the signals in between are late or early.
 */
export function buildHistory(corrId: string, records: AuditRecord[]): CorrIdHistory {
  const starts = new Map<string, string>();
  for (const r of records) if (r.instance && r.workflow_id) starts.set(r.instance, r.workflow_id);
  const ordered = [...starts.keys()].sort((a, b) => startedOf(a) - startedOf(b));
  const buckets = new Map<string, AuditRecord[]>(ordered.map((i) => [i, []]));
  const unassigned: AuditRecord[] = [];
  for (const r of records) {
    let target = r.instance;
    if (!target && r.event !== 'trigger_declined' && r.event !== 'signal_orphaned') {
      const t = r.order?.[0] ?? 0;
      target = EARLY.has(r.event) ? (ordered.find((i) => startedOf(i) >= t) ?? null) : (ordered.findLast((i) => startedOf(i) <= t) ?? null);
    }
    if (target) buckets.get(target)?.push(r);
    else unassigned.push(r);
  }
  const instances = ordered.map((instance): InstanceHistory => {
    const events = (buckets.get(instance) ?? []).sort(compare).map((e, i) => ({ ...e, seq: i + 1 }));
    const published = events.find((e) => e.event === 'decision_published');
    const decision = ((published as Record<string, unknown> | undefined)?.decision as Record<string, unknown> | undefined) ?? null;
    return {
      instance,
      workflow_id: starts.get(instance) ?? '',
      started_at: new Date(startedOf(instance)).toISOString(),
      status: typeof decision?.status === 'string' ? decision.status : null,
      decision,
      events,
    };
  });
  return { corr_id: corrId, instances, unassigned: unassigned.sort(compare) };
}
