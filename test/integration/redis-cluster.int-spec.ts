import type { Cluster } from 'ioredis';
import { isRetryable, TransientError } from '../../src/common/errors.js';
import { parseSettings } from '../../src/config/env.schema.js';
import { keySlot } from '../../src/redis/redis-client.js';
import { createRedisClient } from '../../src/redis/redis.module.js';
import { WorkflowRepository } from '../../src/workflow/workflow.repository.js';
import { uniqueId, waitFor } from '../support/env.js';
import { freeBasePort, REDIS_PORT_SPAN, RedisCluster } from '../support/clusters.js';
import { corrIdsInShard, signalJson, signalOptions, startInput } from './repository-fixtures.js';

/*
 * WorkflowRepository on a real Redis Cluster (3 primaries, 1 replica each), through the client the service
 * builds from META_AGENT_REDIS_CLUSTER_NODES: the per-shard calls (sweep, list, count, reap) across nodes, a
 * failover under it (MOVED, scripts missing on the new primary), and the replication wait routed to the node
 * that took each write.
 */
const SHARDS = 16;
let cluster: RedisCluster;
let client: Cluster;
const clients: Cluster[] = [];

function repository(over: Partial<ReturnType<typeof parseSettings>['redis']> = {}): WorkflowRepository {
  const base = parseSettings({ META_AGENT_REDIS_CLUSTER_NODES: cluster.nodes }).redis;
  const prefix = uniqueId('rc')
    .replace(/[^A-Za-z0-9_.-]/g, '')
    .slice(0, 32);
  return new WorkflowRepository(client, { ...base, prefix, shards: SHARDS, ...over });
}

/** One corr_id in each shard. */
function onePerShard(repo: WorkflowRepository): string[] {
  return Array.from({ length: SHARDS }, (_, shard) => corrIdsInShard(repo, shard, 1)[0]);
}

/** The port of the primary serving `key`'s slot now (CLUSTER SLOTS asked of a node). */
async function primaryOf(key: string): Promise<number> {
  const slot = keySlot(key);
  const { primaries } = await cluster.roles();
  const ranges = await cluster.ask<[number, number, [string, number]][]>(primaries[0], 'CLUSTER', 'SLOTS');
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  if (!range) throw new Error(`slot ${slot} not served`);
  return Number(range[2][1]);
}

beforeAll(async () => {
  cluster = await RedisCluster.start({ primaries: 3, replicasPerPrimary: 1, basePort: await freeBasePort(REDIS_PORT_SPAN) });
  client = createRedisClient(parseSettings({ META_AGENT_REDIS_CLUSTER_NODES: cluster.nodes }).redis) as Cluster;
  clients.push(client);
  await client.connect();
}, 60000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await cluster?.stopAll();
});

it('runs every script on a cluster: one workflow per shard on all 3 primaries, counted, listed, timed out by one sweep, finalised', async () => {
  const repo = repository();
  const ids = onePerShard(repo);
  // The shards are spread over the 3 primaries (the reason the per-shard calls cannot be one pipeline).
  const owners = new Set(await Promise.all(ids.map((id) => primaryOf(repo.keys.forWorkflow(id).wf))));
  expect(owners.size).toBe(3);

  await Promise.all(ids.map((id) => repo.start(startInput(id, { timeoutMs: 40 }))));
  expect((await repo.addSignal(ids[0], 'momentum', signalJson('momentum', 0.7), signalOptions())).kind).toBe('added');
  expect(await repo.countActive()).toBe(SHARDS);
  const pages = await repo.listIndex('deadlines', { after: null, wanted: 100, budget: 100, statuses: [] });
  expect(pages).toHaveLength(SHARDS);
  expect(pages.flatMap((p) => p.items.map((i) => i.corrId)).sort()).toEqual([...ids].sort());

  const swept = await waitFor('every shard timed out by the sweep', async () => {
    const result = await repo.sweep(100, 10_000);
    expect(result.errors).toEqual([]);
    return result.jobs.length > 0 ? result : undefined;
  });
  const jobs = [...swept.jobs];
  while (jobs.length < SHARDS) {
    const more = await repo.sweep(100, 10_000);
    expect(more.errors).toEqual([]);
    jobs.push(...more.jobs);
  }
  expect(jobs.map((j) => j.kind)).toEqual(Array(SHARDS).fill('timeout'));
  expect(jobs.map((j) => j.workflow.corrId).sort()).toEqual([...ids].sort());

  const finalized = await Promise.all(jobs.map((j) => repo.finalize(j.workflow, 'timeout', '{"decision":"timeout"}', 60_000)));
  expect(finalized.every((f) => f !== null)).toBe(true);
  expect(await repo.countActive()).toBe(0);
  const recent = await repo.listIndex('recent', { after: null, wanted: 100, budget: 100, statuses: [] });
  expect(recent.flatMap((p) => p.items).length).toBe(SHARDS);
  expect(await repo.reapEarly(100, Date.now())).toEqual({ buffers: 0, signals: 0 });
  await repo.ping();
});

it('keeps working through a failover: calls on the moved slots succeed (slot map refreshed on MOVED), scripts run on the new primary', async () => {
  const repo = repository();
  const ids = onePerShard(repo);
  await Promise.all(ids.map((id) => repo.start(startInput(id))));
  const key = repo.keys.forWorkflow(ids[0]).wf;
  const old = await primaryOf(key);
  const { replicasOf } = await cluster.roles();
  const promoted = replicasOf.get(old)![0];
  // A manual failover: the replica takes over the slots, the old primary becomes its replica and answers
  // MOVED for them. The client's slot map still names the old primary.
  await cluster.ask(promoted, 'CLUSTER', 'FAILOVER');
  await waitFor('the replica promoted', async () => (await cluster.ask<unknown[]>(promoted, 'ROLE'))[0] === 'master');
  await cluster.waitHealthy();

  // Signals on every shard at once (auto-pipelined per node, several slots per node): none fails.
  const results = await Promise.all(ids.map((id) => repo.addSignal(id, 'momentum', signalJson('momentum', 0.6), signalOptions())));
  expect(results.map((r) => r.kind)).toEqual(Array(SHARDS).fill('added'));
  expect((await repo.sweep(100, 10_000)).errors).toEqual([]);
  expect(await repo.countActive()).toBe(SHARDS);
  expect(await primaryOf(key)).toBe(promoted);
});

it('waits for the replica of the primary that took the write, on that connection: a stopped replica is a TransientError there only', async () => {
  const repo = repository({ waitReplicas: 1, waitTimeoutMs: 300 });
  const ids = onePerShard(repo);
  await Promise.all(ids.map((id) => repo.start(startInput(id))));
  await repo.ping();

  const { primaries, replicasOf } = await cluster.roles();
  const stalled = primaries[0];
  const replica = replicasOf.get(stalled)![0];
  const owner = new Map(await Promise.all(ids.map(async (id) => [id, await primaryOf(repo.keys.forWorkflow(id).wf)] as const)));
  const there = ids.find((id) => owner.get(id) === stalled)!;
  const elsewhere = ids.find((id) => owner.get(id) !== stalled)!;
  expect(there).toBeDefined();
  expect(elsewhere).toBeDefined();

  const unconfirmed = signalOptions();
  cluster.node(replica).stop();
  try {
    // WAIT counts the writes of the connection it is sent on: had it gone to another connection (one
    // without these writes) or another node, the stopped replica's earlier acknowledgement would satisfy it.
    await expect(repo.addSignal(there, 'risk', signalJson('risk', 0.6), unconfirmed)).rejects.toThrow(TransientError);
    await expect(repo.addSignal(there, 'momentum', signalJson('momentum', 0.6), signalOptions())).rejects.toThrow(/0 of 1 replicas acknowledged/);
    expect((await repo.addSignal(elsewhere, 'risk', signalJson('risk', 0.6), signalOptions())).kind).toBe('added');
    await expect(repo.ping()).rejects.toThrow(TransientError);
  } finally {
    cluster.node(replica).cont();
  }
  await waitFor('the replica caught up (the probe answers)', () =>
    repo.ping().then(
      () => true,
      () => false,
    ),
  );
  // The write that was not confirmed is stored: run again, it is found (duplicate), and confirmed now.
  expect((await repo.addSignal(there, 'risk', signalJson('risk', 0.6), unconfirmed)).kind).toBe('duplicate');
});

it('keeps working through a live resharding: a shard half migrated fails only transiently (TRYAGAIN), and once the slot is moved (MOVED) every call succeeds, nothing lost or doubled', async () => {
  const repo = repository();
  const ids = corrIdsInShard(repo, 0, 6);
  await Promise.all(ids.map((id) => repo.start(startInput(id))));
  const slot = keySlot(repo.keys.shardPrefix(0));
  const source = await primaryOf(repo.keys.forWorkflow(ids[0]).wf);
  const { primaries } = await cluster.roles();
  const target = primaries.find((p) => p !== source)!;
  const idOf = async (port: number) => String(await cluster.ask(port, 'CLUSTER', 'MYID'));
  const [sourceId, targetId] = [await idOf(source), await idOf(target)];

  // What `redis-cli --cluster reshard` does, stopped half way: the slot importing on the target, migrating on
  // the source, the hashes of half the workflows moved (the shard's indexes stay behind).
  await cluster.ask(target, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId);
  await cluster.ask(source, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId);
  const movedKeys = ids.slice(0, 3).map((id) => repo.keys.forWorkflow(id).wf);
  await cluster.ask(source, 'MIGRATE', '127.0.0.1', target, '', 0, 5000, 'KEYS', ...movedKeys);

  // A script's keys are partly on each node (or partly missing on the source): Redis answers TRYAGAIN, the
  // client retries (withRedirects) and then fails the call as a transient error: never a wrong answer.
  const options = ids.map(() => signalOptions());
  const first = await Promise.allSettled(ids.map((id, i) => repo.addSignal(id, 'momentum', signalJson('momentum', 0.6), options[i])));
  for (const result of first) {
    if (result.status === 'fulfilled') expect(result.value.kind).toBe('added');
    else expect([isRetryable(result.reason), String(result.reason)]).toEqual([true, expect.stringContaining('TRYAGAIN')]);
  }
  expect(first.filter((r) => r.status === 'rejected').length).toBeGreaterThan(0);

  // The rest of the keys, then the slot assigned to the target on every primary: the client is told MOVED.
  for (;;) {
    const keys = await cluster.ask<string[]>(source, 'CLUSTER', 'GETKEYSINSLOT', slot, 100);
    if (keys.length === 0) break;
    await cluster.ask(source, 'MIGRATE', '127.0.0.1', target, '', 0, 5000, 'KEYS', ...keys);
  }
  for (const port of primaries) await cluster.ask(port, 'CLUSTER', 'SETSLOT', slot, 'NODE', targetId);
  await cluster.waitHealthy();
  expect(await primaryOf(repo.keys.forWorkflow(ids[0]).wf)).toBe(target);

  // Retried (as the transport would): the calls that failed now succeed, the ones that worked are duplicates.
  const again = await Promise.all(ids.map((id, i) => repo.addSignal(id, 'momentum', signalJson('momentum', 0.6), options[i])));
  expect(again.map((r) => r.kind)).toEqual(first.map((r) => (r.status === 'fulfilled' ? 'duplicate' : 'added')));
  expect((await repo.sweep(100, 10_000)).errors).toEqual([]);
  const pages = await repo.listIndex('deadlines', { after: null, wanted: 100, budget: 100, statuses: [] });
  expect(
    pages
      .flatMap((p) => p.items.map((i) => i.corrId))
      .filter((id) => ids.includes(id))
      .sort(),
  ).toEqual([...ids].sort());
  for (const id of ids) expect(Object.keys(await client.hgetall(repo.keys.forWorkflow(id).sig))).toEqual(['momentum']);
});
