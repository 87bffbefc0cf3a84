import type { AuditRecord } from './audit.events.js';
import { buildHistory } from './audit-history.js';
import { corrIdOfToken, corrIdToken } from './audit-subject.js';

/*
 * The history of a corr_id from its audit events: instances apart, events without an instance assigned by
 * time, each instance's events ordered by (ms, rank, input sequence) whatever order the stream holds them in.
 */

let streamSeq = 0;
function rec(event: string, ms: number, rank: number, fields: Partial<AuditRecord> = {}, inputSeq = 0): AuditRecord {
  return {
    v: 1,
    event,
    corr_id: 'c1',
    workflow_id: null,
    instance: null,
    redis_ms: ms,
    order: [ms, rank, inputSeq],
    at: new Date(ms).toISOString(),
    replica: 'r',
    stream_seq: ++streamSeq,
    stored_at: new Date(ms).toISOString(),
    ...fields,
  } as AuditRecord;
}

const A = { workflow_id: 'trading:c1', instance: 'trading:c1@1000' };
const B = { workflow_id: 'trading:c1', instance: 'trading:c1@500000' };

describe('buildHistory', () => {
  it('orders each instance by (ms, rank, input sequence), assigns events without an instance by time, and keeps orphans apart', () => {
    const decision = { status: 'completed', decision: { action: 'trade' } };
    // Stream order differs from the causal order: two replicas published out of step.
    const records = [
      rec('decision_published', 2_000, 5, { ...A, decision } as never),
      rec('frozen', 2_000, 3, A),
      rec('signal_stored', 2_000, 1, {}, 12),
      rec('signal_stored', 1_500, 1, {}, 11),
      rec('signal_early', 900, 1, {}, 9),
      rec('trigger_accepted', 1_000, 0, A, 10),
      rec('signal_late', 3_000, 1, {}, 13),
      rec('trigger_accepted', 500_000, 0, B, 20),
      rec('signal_stored', 500_001, 1, {}, 21),
      rec('signal_orphaned', 400_000, 1, {}, 15),
      rec('trigger_declined', 450_000, 0, {}, 16),
    ];
    const h = buildHistory('c1', records);
    expect(h.instances.map((i) => i.instance)).toEqual([A.instance, B.instance]);
    const [a, b] = h.instances;
    expect(a.events.map((e) => [e.seq, e.event, e.order[2]])).toEqual([
      [1, 'signal_early', 9],
      [2, 'trigger_accepted', 10],
      [3, 'signal_stored', 11],
      [4, 'signal_stored', 12],
      [5, 'frozen', 0],
      [6, 'decision_published', 0],
      [7, 'signal_late', 13],
    ]);
    expect(a).toMatchObject({ status: 'completed', decision, started_at: new Date(1000).toISOString(), workflow_id: 'trading:c1' });
    expect(b.events.map((e) => e.event)).toEqual(['trigger_accepted', 'signal_stored']);
    expect(b).toMatchObject({ status: null, decision: null });
    expect(h.unassigned.map((e) => e.event)).toEqual(['signal_orphaned', 'trigger_declined']);
  });

  it('an early signal whose trigger never came stays unassigned', () => {
    const h = buildHistory('c1', [rec('signal_early', 9_000, 1)]);
    expect(h).toEqual({ corr_id: 'c1', instances: [], unassigned: [expect.objectContaining({ event: 'signal_early' })] });
  });
});

describe('audit subjects', () => {
  it('write a corr_id as one subject token, one-to-one', () => {
    for (const id of ['c-1', 'a.b.c', 'x:y_z-1.2', '.', 'A9']) {
      expect(corrIdToken(id)).not.toMatch(/[.*>\s]/);
      expect(corrIdOfToken(corrIdToken(id))).toBe(id);
    }
    expect(corrIdToken('a.b')).not.toBe(corrIdToken('a-b'));
  });
});
