import type { DecisionStrategy } from '../../workflow/strategies/decision-strategy.interface.js';
import type { WorkflowContext } from '../../workflow/workflow.types.js';
import type { AuditRecord } from '../audit.events.js';
import { buildHistory } from '../audit-history.js';
import { changedFields, replayInstance, type ReplaySettings } from './replay-simulation.js';

/*
 * One recorded life replayed offline with a small strategy (decides once agents a and b have answered, by
 * rule; its decision names the confidence of a): what a changed setting or rule does to it, and that the
 * recorded moments are kept when nothing changed.
 */

const SETTINGS: ReplaySettings = {
  defaultType: 'vote',
  defaultTimeoutSeconds: 10,
  maxTimeoutSeconds: 3600,
  requiredAgents: ['a', 'b'],
  optionalAgents: [],
  agentTimeoutSeconds: 0,
  earlySignalGraceSeconds: 30,
};

function strategy(needs: string[] = ['a', 'b']): DecisionStrategy {
  return {
    shouldStart: () => true,
    define: () => ({ requiredAgents: needs, readyWhen: { all: needs } }),
    canDecide: (ctx: WorkflowContext) => needs.every((a) => a in ctx.receivedSignals),
    evaluate: (ctx: WorkflowContext) => ({ action: 'go', confidence: ctx.receivedSignals.a?.confidence ?? null }),
  };
}

let seq = 0;
const STARTED = 1_000_000;
const instance = 'vote:c1@' + STARTED;
function event(kind: string, ms: number, fields: Record<string, unknown> = {}, inputSeq = 0): AuditRecord {
  return {
    v: 1,
    event: kind,
    corr_id: 'c1',
    workflow_id: 'vote:c1',
    instance,
    redis_ms: ms,
    order: [ms, 0, inputSeq],
    at: '',
    replica: 'r',
    stream_seq: ++seq,
    stored_at: '',
    ...fields,
  } as AuditRecord;
}
const signal = (agent: string, ms: number, inputSeq: number, confidence: number, kind = 'signal_stored') =>
  event(kind, ms, { agent, input: { seq: inputSeq, received_ms: ms - 1 }, signal: { corr_id: 'c1', agent_name: agent, confidence } }, inputSeq);

/** A workflow decided at 1,000,300 ms by b's signal after a's two revisions; a late signal after it. */
function recorded(): AuditRecord[] {
  const decision = {
    corr_id: 'c1',
    workflow_id: 'vote:c1',
    orchestrator: 'o',
    decision: { action: 'go', confidence: 0.6 },
    source_signals: [
      { agent: 'a', confidence: 0.6, timestamp: null },
      { agent: 'b', confidence: 0.9, timestamp: null },
    ],
    orchestrated_at: new Date(STARTED + 300).toISOString(),
    metadata: {},
    workflow_type: 'vote',
    status: 'completed',
  };
  return [
    event('trigger_accepted', STARTED, { trigger: { corr_id: 'c1' }, deadline_ms: STARTED + 10_000, input: { seq: 1, received_ms: STARTED - 1 } }, 1),
    signal('a', STARTED + 100, 2, 0.4),
    signal('a', STARTED + 200, 3, 0.6),
    signal('b', STARTED + 300, 4, 0.9),
    event('frozen', STARTED + 300, { why: 'decide', by: null, frozen_ms: STARTED + 300, snapshot: { signals: {} } }),
    event('decision_published', STARTED + 305, { decision }),
    signal('a', STARTED + 400, 5, 0.99, 'signal_late'),
  ];
}

const run = (records: AuditRecord[], s: DecisionStrategy = strategy(), settings = SETTINGS) =>
  replayInstance(buildHistory('c1', records).instances[0], () => s, settings, 'o');

describe('replayInstance', () => {
  it('reproduces the recorded decision: the latest revision of each agent, decided by the signal that completed it, at its moment', async () => {
    const records = recorded();
    const out = await run(records);
    const recordedDecision = records.find((e) => e.event === 'decision_published')!.decision as never;
    expect(out.decision).toEqual(recordedDecision);
    expect(changedFields(recordedDecision, out.decision)).toEqual([]);
  });

  it('a rule that needs another agent: the late signal still does not count, the workflow times out at its deadline', async () => {
    const out = await run(recorded(), strategy(['a', 'b', 'c']));
    expect(out.decision).toMatchObject({ status: 'timeout', decision: { action: 'timeout', missing_signals: ['c'] } });
    expect(out.decision?.orchestrated_at).toBe(new Date(STARTED + 10_000).toISOString());
  });

  it('a rule that needs only a: decided on its first revision, earlier', async () => {
    const out = await run(recorded(), strategy(['a']));
    expect(out.decision).toMatchObject({ status: 'completed', decision: { confidence: 0.4 } });
    expect(out.decision?.orchestrated_at).toBe(new Date(STARTED + 100).toISOString());
  });

  it('a shorter timeout: signals after the new deadline are not taken', async () => {
    const out = await run([...recorded()].map((e) => (e.event === 'trigger_accepted' ? { ...e, trigger: { corr_id: 'c1', timeout_seconds: 0.25 } } : e)));
    expect(out.decision).toMatchObject({ status: 'timeout', decision: { partial_signals: ['a'] } });
    const changed = changedFields(recorded().find((e) => e.event === 'decision_published')!.decision as never, out.decision);
    expect(changed).toEqual(expect.arrayContaining(['status', 'action', 'decided_at']));
  });

  it('an agent no longer accepted is left out, as the service would dead-letter it', async () => {
    const out = await run(recorded(), strategy(), { ...SETTINGS, requiredAgents: ['a'], optionalAgents: [] });
    expect(out.decision).toMatchObject({ status: 'timeout' });
  });
});
