import type { IndexPosition, ListedWorkflow, ShardPage } from '../workflow/workflow.repository.js';

/** Index order: ascending (score, corr_id) for the due index, descending for the recent index. */
export type Direction = 'asc' | 'desc';

export function comparePositions(a: IndexPosition, b: IndexPosition, direction: Direction): number {
  const byScore = a.score - b.score;
  const order = byScore !== 0 ? byScore : a.corrId < b.corrId ? -1 : a.corrId > b.corrId ? 1 : 0;
  return direction === 'asc' ? order : -order;
}

/**
 * Merges the pages every shard read from one index (each in index order, after the same position) into
 * the next `wanted` items in index order, and the position the following page starts after (null: the
 * index is done).
 *
 * A shard that stopped early (wanted reached, or its read budget) has read everything up to its last
 * position only, so only items up to the smallest such position (the frontier) are certain to be complete
 * across shards; later items are dropped and read again by the next page. When fewer than `wanted` items
 * are certain, the next page starts at the frontier: everything before it was read and did not match.
 */
export function mergeShardPages(pages: ShardPage[], wanted: number, direction: Direction): { items: ListedWorkflow[]; next: IndexPosition | null } {
  const cmp = (a: IndexPosition, b: IndexPosition) => comparePositions(a, b, direction);
  let frontier: IndexPosition | null = null;
  for (const page of pages) {
    if (page.exhausted || !page.last) continue;
    if (!frontier || cmp(page.last, frontier) < 0) frontier = page.last;
  }
  const certain = pages
    .flatMap((p) => p.items)
    .filter((item) => !frontier || cmp(item.position, frontier) <= 0)
    .sort((a, b) => cmp(a.position, b.position));
  const items = certain.slice(0, wanted);
  if (certain.length > wanted) return { items, next: items[items.length - 1].position };
  return { items, next: frontier };
}
