import type { Redis } from 'ioredis';
import { mergeShardPages } from '../../src/admin/list-page.js';
import type { IndexPosition, ListedWorkflow, ListIndex, WorkflowRepository } from '../../src/workflow/workflow.repository.js';
import { uniqueId } from '../support/env.js';
import { isolatedRepository, scriptedRedis } from '../support/redis.js';
import { claimDue, corrIdsInShard, decided, signalJson, signalOptions, startInput } from './repository-fixtures.js';

/**
 * The admin API's Redis side against a real Redis: extend-2.lua (deadline and due entry), list-1.lua (pages
 * in index order, ties, filters, read budget) and finalize-2.lua's recent index (cancelled accepted,
 * trimmed to the retention period).
 */
let redis: Redis;

beforeAll(() => {
  redis = scriptedRedis();
});

afterAll(async () => {
  await redis.quit();
});

async function due(repo: WorkflowRepository, corrId: string): Promise<number | null> {
  const score = await redis.zscore(repo.keys.forWorkflow(corrId).deadlines, corrId);
  return score === null ? null : Number(score);
}

/** Every item of an index through pages of `wanted`, merged over the shards as the admin service does. */
async function readAll(repo: WorkflowRepository, index: ListIndex, wanted: number, budget: number, filters: { statuses?: string[]; type?: string } = {}) {
  const items: ListedWorkflow[] = [];
  let after: IndexPosition | null = null;
  let pages = 0;
  for (;;) {
    const shardPages = await repo.listIndex(index, { after, wanted, budget, statuses: filters.statuses ?? [], type: filters.type });
    const merged = mergeShardPages(shardPages, wanted, index === 'recent' ? 'desc' : 'asc');
    items.push(...merged.items);
    pages++;
    if (!merged.next) return { items, pages };
    after = merged.next;
    if (pages > 500) throw new Error('no end of pages');
  }
}

describe('extend (extend-2.lua)', () => {
  it('moves the deadline and a due entry sitting at it; clamps to started + max', async () => {
    const repo = isolatedRepository(redis);
    const id = uniqueId('ext');
    const { workflow } = await repo.start(startInput(id, { timeoutMs: 10_000 }));
    expect(await due(repo, id)).toBe(workflow.deadlineMs);

    expect(await repo.extend(id, 5_000, 60_000)).toEqual({
      kind: 'extended',
      workflowId: `trading:${id}`,
      previousDeadlineMs: workflow.deadlineMs,
      deadlineMs: workflow.deadlineMs + 5_000,
      maxDeadlineMs: workflow.startedMs + 60_000,
    });
    expect(await due(repo, id)).toBe(workflow.deadlineMs + 5_000);
    expect((await repo.inspect(id)).workflow?.deadlineMs).toBe(workflow.deadlineMs + 5_000);

    const clamped = await repo.extend(id, 1_000_000, 60_000);
    expect(clamped).toMatchObject({ deadlineMs: workflow.startedMs + 60_000, maxDeadlineMs: workflow.startedMs + 60_000 });
    expect(await due(repo, id)).toBe(workflow.startedMs + 60_000);
    // At the bound: nothing moves.
    expect(await repo.extend(id, 1_000, 60_000)).toMatchObject({ previousDeadlineMs: workflow.startedMs + 60_000, deadlineMs: workflow.startedMs + 60_000 });
  });

  it('leaves an earlier (check) entry where it is; rest-2.lua then puts it at the new deadline', async () => {
    const repo = isolatedRepository(redis);
    const id = uniqueId('extc');
    const { workflow } = await repo.start(startInput(id, { timeoutMs: 60_000 }));
    const added = await repo.addSignal(id, 'momentum', signalJson('momentum', 0.9), signalOptions(5_000, { checkMs: 1_000 }));
    if (added.kind !== 'added' || !added.workflow) throw new Error(added.kind);
    const check = await due(repo, id);
    expect(check).toBeLessThan(workflow.deadlineMs);

    expect(await repo.extend(id, 30_000, 3_600_000)).toMatchObject({ deadlineMs: workflow.deadlineMs + 30_000 });
    expect(await due(repo, id)).toBe(check);
    expect(await repo.rest(added.workflow)).toBe(true);
    expect(await due(repo, id)).toBe(workflow.deadlineMs + 30_000);
  });

  it('refuses a workflow past its deadline that the sweeper has not taken yet: its timeout is owed', async () => {
    const repo = isolatedRepository(redis);
    const id = uniqueId('owed');
    await repo.start(startInput(id, { timeoutMs: 1 }));
    await new Promise((r) => setTimeout(r, 20));
    const before = await redis.hgetall(repo.keys.forWorkflow(id).wf);
    expect(await repo.extend(id, 60_000, 3_600_000)).toEqual({ kind: 'closed', status: 'evaluating' });
    expect(await redis.hgetall(repo.keys.forWorkflow(id).wf)).toEqual(before);
  });

  it('refuses a workflow that is not open: evaluating, finished, missing; nothing changes', async () => {
    const repo = isolatedRepository(redis);
    const claimed = uniqueId('claimed');
    await repo.start(startInput(claimed, { timeoutMs: 1 }));
    await new Promise((r) => setTimeout(r, 20));
    await claimDue(repo, claimed);
    const before = await redis.hgetall(repo.keys.forWorkflow(claimed).wf);
    expect(await repo.extend(claimed, 5_000, 60_000)).toEqual({ kind: 'closed', status: 'evaluating' });
    expect(await redis.hgetall(repo.keys.forWorkflow(claimed).wf)).toEqual(before);

    const done = uniqueId('done');
    await repo.start(startInput(done));
    const cancelled = await repo.freeze({ corrId: done }, 'cancel', 10_000, 'ops');
    if (cancelled.kind !== 'frozen') throw new Error(cancelled.kind);
    expect(await repo.extend(done, 5_000, 60_000)).toEqual({ kind: 'closed', status: 'evaluating' });
    expect(await repo.finalize(cancelled.workflow, 'cancelled', '{"action":"cancelled"}', 60_000)).not.toBeNull();
    expect(await repo.extend(done, 5_000, 60_000)).toEqual({ kind: 'closed', status: 'cancelled' });
    expect(await repo.extend(uniqueId('none'), 5_000, 60_000)).toEqual({ kind: 'closed', status: '' });
  });
});

describe('recent index (finalize-2.lua) and list (list-1.lua)', () => {
  it('a cancelled decision is finalised like any other and enters the recent index at its finish time', async () => {
    const repo = isolatedRepository(redis);
    const id = uniqueId('cx');
    await repo.start(startInput(id));
    const cancelled = await repo.freeze({ corrId: id }, 'cancel', 10_000, 'ops');
    if (cancelled.kind !== 'frozen') throw new Error(cancelled.kind);
    const marked = await repo.finalize(cancelled.workflow, 'cancelled', '{"action":"cancelled"}', 60_000);
    expect(marked).not.toBeNull();
    const k = repo.keys.forWorkflow(id);
    expect(await redis.zscore(k.deadlines, id)).toBeNull();
    expect(Number(await redis.zscore(repo.keys.recent(k.shard), id))).toBe(marked?.finishedMs);
    expect(await repo.finalize(cancelled.workflow, 'cancelled', '{"action":"cancelled"}', 60_000)).toBeNull();
  });

  it('keeps the recent index to the retention period: older entries go when the next decision is published', async () => {
    const repo = isolatedRepository(redis, 1);
    const recent = repo.keys.recent(0);
    await redis.zadd(recent, String(Date.now() - 120_000), 'old-one', String(Date.now() - 10_000), 'young-one');
    const id = uniqueId('trim');
    const { workflow } = await repo.start(startInput(id));
    await decided(repo, workflow);
    expect((await redis.zrange(recent, '0', '-1')).sort()).toEqual([id, 'young-one'].sort());
  });

  it('pages through both indexes in order, each workflow once, ties broken by corr_id, across shards', async () => {
    const repo = isolatedRepository(redis, 4);
    // Many workflows with the same due time (one Redis millisecond is likely for several starts; force it).
    const ids = Array.from({ length: 23 }, (_, i) => `w${String(i).padStart(2, '0')}-${uniqueId('t')}`);
    for (const id of ids) await repo.start(startInput(id, { timeoutMs: 600_000 }));
    const same = Date.now() + 500_000;
    for (const id of ids.slice(0, 15)) await redis.zadd(repo.keys.forWorkflow(id).deadlines, same, id);

    for (const wanted of [1, 4, 7, 50]) {
      const { items } = await readAll(repo, 'deadlines', wanted, 1000);
      expect(items.map((i) => i.corrId).sort()).toEqual([...ids].sort());
      const positions = items.map((i) => i.position);
      for (let i = 1; i < positions.length; i++) {
        const [a, b] = [positions[i - 1], positions[i]];
        expect(a.score < b.score || (a.score === b.score && a.corrId < b.corrId)).toBe(true);
      }
    }

    // Finish 9 of them: they move to the recent index, newest first.
    for (const id of ids.slice(0, 9)) {
      await decided(repo, (await repo.inspect(id)).workflow!);
    }
    const recent = await readAll(repo, 'recent', 2, 1000);
    expect(recent.items.map((i) => i.corrId).sort()).toEqual(ids.slice(0, 9).sort());
    expect(recent.items.every((i) => i.status === 'completed' && i.published && i.finishedMs === i.position.score)).toBe(true);
    const ends = recent.items.map((i) => i.position.score);
    expect(ends).toEqual([...ends].sort((a, b) => b - a));
    expect((await readAll(repo, 'deadlines', 5, 1000)).items).toHaveLength(14);
  });

  it('filters by status and type within a read budget: short pages, yet every match once', async () => {
    const repo = isolatedRepository(redis, 2);
    const ids = corrIdsInShard(repo, 0, 30);
    for (const [i, id] of ids.entries()) await repo.start(startInput(id, { workflowType: i % 10 === 0 ? 'hedge' : 'trading', timeoutMs: 600_000 + i }));
    const { items, pages } = await readAll(repo, 'deadlines', 5, 4, { type: 'hedge' });
    expect(items.map((i) => i.corrId)).toEqual([ids[0], ids[10], ids[20]]);
    expect(items.every((i) => i.workflowType === 'hedge' && i.workflowId === `hedge:${i.corrId}`)).toBe(true);
    // Each page read at most 4 entries of the shard: 30 entries need 8 pages.
    expect(pages).toBeGreaterThanOrEqual(8);
    expect((await readAll(repo, 'deadlines', 5, 1000, { statuses: ['waiting_for_agents'] })).items).toEqual([]);
    expect((await readAll(repo, 'deadlines', 50, 1000, { statuses: ['in_progress'], type: 'trading' })).items).toHaveLength(27);
  });

  it('drops a recent entry whose workflow expired, and skips one of a newer workflow of the same corr_id', async () => {
    const repo = isolatedRepository(redis, 1);
    const recent = repo.keys.recent(0);
    const gone = uniqueId('gone');
    const again = uniqueId('again');
    await redis.zadd(recent, String(Date.now() - 1_000), gone, String(Date.now() - 2_000), again);
    await repo.start(startInput(again));
    const { items } = await readAll(repo, 'recent', 10, 100);
    expect(items).toEqual([]);
    expect(await redis.zrange(recent, '0', '-1')).toEqual([again]);
  });
});
