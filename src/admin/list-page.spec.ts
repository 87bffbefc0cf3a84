import type { IndexPosition, ListedWorkflow, ShardPage } from '../workflow/workflow.repository.js';
import { comparePositions, mergeShardPages } from './list-page.js';

const item = (score: number, corrId: string): ListedWorkflow => ({
  corrId,
  position: { score, corrId },
  workflowId: `trading:${corrId}`,
  workflowType: 'trading',
  status: 'in_progress',
  startedMs: 0,
  deadlineMs: score,
  finishedMs: null,
  published: false,
  receivedAgents: [],
});
const page = (items: ListedWorkflow[], exhausted: boolean, last?: IndexPosition): ShardPage => ({
  exhausted,
  last: last ?? items.at(-1)?.position ?? null,
  items,
});
const ids = (items: ListedWorkflow[]) => items.map((i) => i.corrId);

describe('comparePositions', () => {
  it('orders by score, then corr_id; desc reverses both', () => {
    expect(comparePositions({ score: 1, corrId: 'b' }, { score: 2, corrId: 'a' }, 'asc')).toBeLessThan(0);
    expect(comparePositions({ score: 2, corrId: 'a' }, { score: 2, corrId: 'b' }, 'asc')).toBeLessThan(0);
    expect(comparePositions({ score: 2, corrId: 'a' }, { score: 2, corrId: 'a' }, 'asc')).toBe(0);
    expect(comparePositions({ score: 2, corrId: 'a' }, { score: 2, corrId: 'b' }, 'desc')).toBeGreaterThan(0);
    expect(comparePositions({ score: 3, corrId: 'a' }, { score: 2, corrId: 'z' }, 'desc')).toBeLessThan(0);
  });
});

describe('mergeShardPages', () => {
  it('all shards done: every item in order, no next page', () => {
    const out = mergeShardPages([page([item(1, 'a'), item(5, 'e')], true), page([item(3, 'c')], true), page([], true)], 10, 'asc');
    expect(ids(out.items)).toEqual(['a', 'c', 'e']);
    expect(out.next).toBeNull();
  });

  it('more items than wanted: the first ones, and the next page starts after the last one given', () => {
    const out = mergeShardPages([page([item(1, 'a'), item(5, 'e')], true), page([item(3, 'c'), item(3, 'd')], true)], 2, 'asc');
    expect(ids(out.items)).toEqual(['a', 'c']);
    expect(out.next).toEqual({ score: 3, corrId: 'c' });
  });

  it('a shard that stopped early bounds what is certain: later items of other shards wait for the next page', () => {
    // Shard 0 stopped after 2 items (wanted reached) at score 4; shard 1 is done but holds an item at 6.
    const out = mergeShardPages([page([item(2, 'b'), item(4, 'd')], false), page([item(1, 'a'), item(6, 'f')], true)], 2, 'asc');
    expect(ids(out.items)).toEqual(['a', 'b']);
    expect(out.next).toEqual({ score: 2, corrId: 'b' });
    const wide = mergeShardPages([page([item(2, 'b'), item(4, 'd')], false), page([item(1, 'a'), item(6, 'f')], true)], 5, 'asc');
    expect(ids(wide.items)).toEqual(['a', 'b', 'd']);
    expect(wide.next).toEqual({ score: 4, corrId: 'd' });
  });

  it('a shard that ran out of read budget with few matches: the page is short and resumes at the frontier', () => {
    const out = mergeShardPages([page([], false, { score: 9, corrId: 'i' }), page([item(3, 'c')], false, { score: 7, corrId: 'g' })], 5, 'asc');
    expect(ids(out.items)).toEqual(['c']);
    expect(out.next).toEqual({ score: 7, corrId: 'g' });
    const empty = mergeShardPages([page([], false, { score: 9, corrId: 'i' })], 5, 'asc');
    expect(empty).toEqual({ items: [], next: { score: 9, corrId: 'i' } });
  });

  it('descending (the recent index, newest first)', () => {
    const out = mergeShardPages([page([item(9, 'a'), item(4, 'x')], true), page([item(7, 'b'), item(7, 'a')], false)], 3, 'desc');
    expect(ids(out.items)).toEqual(['a', 'b', 'a']);
    expect(out.items.map((i) => i.position.score)).toEqual([9, 7, 7]);
    expect(out.next).toEqual({ score: 7, corrId: 'a' });
  });
});
