import type { Redis } from 'ioredis';
import { parseSettings } from '../../src/config/env.schema.js';
import { WorkflowRepository, type AddSignalOptions, type AddSignalResult, type StoredWorkflow } from '../../src/workflow/workflow.repository.js';
import { uniqueId, waitFor } from '../support/env.js';

/** Helpers shared by the `WorkflowRepository` integration specs (not a spec itself). */

/** Margin on every "about now + x" check: generous, for a loaded 2-core machine. */
export const SLACK_MS = 500;

export type StartInput = Parameters<WorkflowRepository['start']>[0];

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A start input with distinctive values, so that the stored fields can be told apart. */
export function startInput(corrId: string, over: Partial<StartInput> = {}): StartInput {
  return {
    corrId,
    workflowType: 'trading',
    timeoutMs: 60_000,
    requiredAgents: ['momentum', 'risk'],
    metadata: { source: 'int-test', nested: { n: 1 } },
    triggerJson: `{"corr_id":${JSON.stringify(corrId)},"side":"buy","strength":0.8}`,
    // Not before the default deadline: the due entry stays at the deadline unless a test asks for a check.
    checkMs: 60_000,
    // No readiness rule unless a test gives one: the snapshot comes back and canDecide would be asked.
    readyRule: null,
    leaseMs: LEASE_MS,
    ...over,
  };
}

/** The check delay, early-buffer lifetime and claim lease the specs use unless they say otherwise. */
export const CHECK_MS = 60_000;
export const EARLY_TTL_MS = 120_000;
export const LEASE_MS = 10_000;

let lastSequence = 0;

/**
 * Options for `addSignal`. Unless given, the stream sequence is the next of a process-wide counter (so the
 * signals of a test are in the order sent, as JetStream would number them) and `storedAtMs` is now.
 */
export function signalOptions(graceMs = 5_000, over: Partial<AddSignalOptions> = {}): AddSignalOptions {
  return { graceMs, sequence: ++lastSequence, storedAtMs: Date.now(), checkMs: CHECK_MS, earlyTtlMs: EARLY_TTL_MS, leaseMs: LEASE_MS, ...over };
}

/** A signal JSON, as an agent would send it (stored byte for byte; revisions are told apart by sequence, not bytes). */
export function signalJson(agent: string, confidence: number, extra = ''): string {
  return `{"agent_name":"${agent}","signal_type":"analysis","confidence":${confidence},"data":{"x":"${extra}"}}`;
}

/** Several repositories over different clients that share one unique key prefix (same workflows). */
export function repositoriesOnOnePrefix(clients: Redis[], shards = 4): WorkflowRepository[] {
  const prefix = uniqueId('it')
    .replace(/[^A-Za-z0-9_.-]/g, '')
    .slice(0, 32);
  const config = { ...parseSettings({}).redis, prefix, shards };
  return clients.map((client) => new WorkflowRepository(client, config));
}

/** Runs `fn` and returns its value with the wall-clock interval around it. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; before: number; after: number }> {
  const before = Date.now();
  const value = await fn();
  return { value, before, after: Date.now() };
}

/** `actual` is in [low, high], widened by SLACK_MS on both sides. */
export function expectWithin(actual: number, low: number, high: number): void {
  expect(Number.isFinite(actual)).toBe(true);
  expect(actual).toBeGreaterThanOrEqual(low - SLACK_MS);
  expect(actual).toBeLessThanOrEqual(high + SLACK_MS);
}

/** Sum of ZCARD of every shard's deadlines zset. */
export async function totalDeadlines(redis: Redis, repo: WorkflowRepository): Promise<number> {
  let total = 0;
  for (let shard = 0; shard < repo.keys.shards; shard++) total += await redis.zcard(repo.keys.deadlines(shard));
  return total;
}

/** The hash tag of a key: what is between its first '{' and the next '}'. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  if (open < 0 || close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/** Every key of a repository's prefix (SCAN, all shards). */
export async function keysOf(redis: Redis, repo: WorkflowRepository): Promise<string[]> {
  const tag0 = repo.keys.shardPrefix(0); // '{<prefix>:0}:'
  const prefix = tag0.slice(1, tag0.lastIndexOf(':', tag0.length - 3));
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found.sort();
}

/** Corr ids that all hash to `shard` (found by trying suffixes). */
export function corrIdsInShard(repo: WorkflowRepository, shard: number, count: number, base = uniqueId('c')): string[] {
  const ids: string[] = [];
  for (let i = 0; ids.length < count; i++) {
    const id = `${base}-${i}`;
    if (repo.keys.shardOf(id) === shard) ids.push(id);
  }
  return ids;
}

/**
 * The snapshot an addSignal returned with the given kind (the test fails otherwise, and where Redis judged a
 * readiness rule and sent no snapshot).
 */
export function snapshotOf(result: AddSignalResult, kind: 'added' | 'duplicate' | 'superseded' | 'ready' = 'added'): StoredWorkflow {
  if (result.kind !== kind) throw new Error(`expected ${kind}, got ${JSON.stringify(result)}`);
  if (!('workflow' in result) || result.workflow === null) throw new Error(`${kind} without a snapshot`);
  return result.workflow;
}

/**
 * Freezes `snapshot` for its decision on its version (freeze-3.lua, why `decide`), failing the test otherwise;
 * returns the frozen snapshot.
 */
export async function frozen(repo: WorkflowRepository, snapshot: StoredWorkflow, leaseMs = LEASE_MS): Promise<StoredWorkflow> {
  const result = await repo.freeze(snapshot, 'decide', leaseMs);
  if (result.kind !== 'frozen') throw new Error(`freeze(${snapshot.corrId}): ${JSON.stringify(result)}`);
  return result.workflow;
}

/** Freezes (as `frozen`) and finalises `snapshot` (completed, `decisionJson`): the whole decision of a workflow. */
export async function decided(
  repo: WorkflowRepository,
  snapshot: StoredWorkflow,
  decisionJson = '{"action":"trade"}',
  retentionMs = 60_000,
): Promise<StoredWorkflow> {
  const workflow = await frozen(repo, snapshot);
  if (!(await repo.finalize(workflow, 'completed', decisionJson, retentionMs))) throw new Error(`finalize(${snapshot.corrId}): null`);
  return workflow;
}

/**
 * Makes `corrId` look as an older version left it after recording its decision and dying before publishing
 * it (record-3.lua, gone now): final status, `decision`, `finished`, no `published`, due at `dueMs`.
 */
export async function recordLegacy(
  redis: Redis,
  repo: WorkflowRepository,
  corrId: string,
  status: string,
  decisionJson: string,
  dueMs = Date.now() + LEASE_MS,
): Promise<number> {
  const k = repo.keys.forWorkflow(corrId);
  const finished = Date.now();
  await redis.hset(k.wf, 'status', status, 'decision', decisionJson, 'finished', finished);
  await redis.zadd(k.deadlines, dueMs, corrId);
  return finished;
}

/**
 * Gets `corrId` into `evaluating` for its timeout: the sweeper freezing it at its deadline (sweep-1.lua).
 * The workflow must be due (started with `timeoutMs: 0`) and the only due one of the repository's prefix
 * (isolatedRepository): this throws rather than claim other workflows along with it.
 * Returns the snapshot the sweep returned (status `evaluating`).
 */
export async function claimDue(repo: WorkflowRepository, corrId: string, leaseMs = 10_000): Promise<StoredWorkflow> {
  const until = Date.now() + 5_000;
  for (;;) {
    const { jobs, broken, errors } = await repo.sweep(100, leaseMs);
    if (broken.length > 0 || errors.length > 0)
      throw new Error(`claimDue(${corrId}): broken ${JSON.stringify(broken)}, errors ${errors.map((e) => e.error.message).join('; ')}`);
    const others = jobs.filter((j) => j.workflow.corrId !== corrId).map((j) => `${j.workflow.corrId} (${j.kind})`);
    if (others.length > 0) throw new Error(`claimDue(${corrId}): the sweep also took ${others.join(', ')}`);
    const job = jobs.find((j) => j.workflow.corrId === corrId);
    if (job) {
      if (job.kind !== 'timeout' || job.workflow.status !== 'evaluating') throw new Error(`claimDue(${corrId}): a ${job.kind} job, ${job.workflow.status}`);
      return job.workflow;
    }
    // Not due yet by Redis's clock (started with a timeout > 0, or the same millisecond).
    if (Date.now() > until) throw new Error(`claimDue(${corrId}): not claimed within 5 s (not due, or not open?)`);
    await sleep(5);
  }
}

/** Waits until the repository's probe (PING and, with a wait configured, the replicas' acknowledgement) answers again. */
export async function probeAnswersAgain(repo: WorkflowRepository): Promise<void> {
  await waitFor('the probe answers again', () =>
    repo.ping().then(
      () => true,
      () => false,
    ),
  );
}
