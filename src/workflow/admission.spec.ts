import type { WorkflowConfig } from '../config/configuration.js';
import { FlowControl } from '../transport/jetstream/flow-control.js';
import { TRIGGER_PATTERN } from '../transport/jetstream/patterns.js';
import { Admission } from './admission.js';

const tick = () => new Promise((r) => setTimeout(r, 0));

function setUp(limit: number) {
  const flow = new FlowControl();
  const held: string[] = [];
  const admission = new Admission(flow, { maxConcurrentWorkflows: limit } as WorkflowConfig);
  const hold = <T>(work: Promise<T>) => {
    held.push('held');
    return work;
  };
  return { flow, admission, hold, held };
}

describe('Admission (back-pressure)', () => {
  it('admits up to the limit, then holds the next trigger and stops the trigger consumer pulling; a finished workflow lets one in at once', async () => {
    const t = setUp(2);
    await t.admission.enter(t.hold);
    t.admission.started();
    await t.admission.enter(t.hold);
    t.admission.started();
    expect(t.flow.isOpen(TRIGGER_PATTERN)).toBe(false);
    let third = false;
    const waiting = t.admission.enter(t.hold).then(() => (third = true));
    await tick();
    expect(third).toBe(false);
    // The waiting trigger's message is held (in-progress acks), not naked.
    expect(t.held).toHaveLength(1);
    t.admission.finished();
    await waiting;
    expect(third).toBe(true);
    expect(t.admission.active).toBe(2);
  });

  it('a duplicate or failed start gives its place back', async () => {
    const t = setUp(1);
    await t.admission.enter(t.hold);
    expect(t.flow.isOpen(TRIGGER_PATTERN)).toBe(false);
    t.admission.abandoned();
    expect(t.admission.active).toBe(0);
    expect(t.flow.isOpen(TRIGGER_PATTERN)).toBe(true);
  });

  it("the sweeper's count replaces the estimate, keeping admissions whose start has not answered yet", async () => {
    const t = setUp(10);
    await t.admission.enter(t.hold); // starting, not yet in Redis
    t.admission.setCount(9);
    expect(t.admission.active).toBe(10);
    expect(t.flow.isOpen(TRIGGER_PATTERN)).toBe(false);
    t.admission.started();
    t.admission.setCount(3);
    expect(t.admission.active).toBe(3);
    expect(t.flow.isOpen(TRIGGER_PATTERN)).toBe(true);
  });
});

describe('Admission at shutdown', () => {
  it('a trigger waiting for room is let go when the transport closes: a retryable error, so it goes back to the stream', async () => {
    const t = setUp(1);
    await t.admission.enter(t.hold);
    const waiting = t.admission.enter(t.hold);
    t.flow.stop();
    await expect(waiting).rejects.toMatchObject({ retryable: true });
  });
});
