import { Inject, Injectable } from '@nestjs/common';
import { redisConfig, type RedisConfig } from '../config/configuration.js';
import { describeError } from '../common/errors.js';
import { connectionFor, hashTagOf, isCluster, REDIS_CLIENT, withRedirects, type RedisClient } from '../redis/redis-client.js';
import { ReplicaWait } from '../redis/replica-wait.js';
import {
  ADD_SIGNAL,
  EXTEND,
  FINALIZE,
  FREEZE,
  REST,
  START,
  type ScriptArgs,
  type ScriptName,
  type ScriptReplies,
  type ScriptReply,
} from '../redis/script-replies.js';
import { blamePart } from '../transport/jetstream/flow-control.js';
import { ScriptItemError, TurnBatches } from './turn-batches.js';
import { WorkflowKeys } from './workflow.keys.js';
import { WorkflowStatus, type FinalStatus, type JsonObject } from './workflow.types.js';

/** The dependency name the transport's probes know Redis by (FlowControl; a part is a shard's hash tag). */
export const REDIS_DEPENDENCY = 'redis';

/** SPEC: derived from the trigger (type and corr_id), so a repeated trigger can never open a second workflow. */
export function workflowIdOf(workflowType: string, corrId: string): string {
  return `${workflowType}:${corrId}`;
}

/**
 * The decision's `Nats-Msg-Id`: the workflow *instance* (its id and start time). A corr_id triggered again
 * after its workflow expired is a new instance, and its decision is not taken for a duplicate of the old one.
 */
export function decisionMessageId(workflow: { workflowId: string; startedMs: number }): string {
  return `${workflow.workflowId}@${workflow.startedMs}`;
}

/**
 * Why a workflow was frozen (status `evaluating`, see freeze in src/redis/lua/includes/common.lua), which
 * says how its decision is made, again by the sweeper should its decider die: `decide` the strategy's
 * evaluate (ready), `timeout` its onTimeout, `cancel` an operator's cancel, `force` an operator's "decide now",
 * `fail` the strategy's canDecide threw (the error is kept as `by`: the workflow fails).
 */
export type FreezeReason = 'decide' | 'timeout' | 'cancel' | 'force' | 'fail';

/** A workflow as stored in Redis. Signals and trigger stay the JSON text received. */
export interface StoredWorkflow {
  corrId: string;
  workflowId: string;
  workflowType: string;
  status: WorkflowStatus;
  startedMs: number;
  deadlineMs: number;
  timeoutMs: number;
  requiredAgents: string[];
  metadata: JsonObject;
  triggerJson: string;
  /** Number of signal changes: canDecide's answer freezes the workflow only on the version it was asked on. */
  version: number;
  /** Whether Redis judges its readiness (`readyWhen`): then canDecide is never asked. */
  hasRule: boolean;
  /** Once frozen (status evaluating): when (Redis's clock, ms), why, and who asked (an operator's token name). */
  frozenMs: number | null;
  why: FreezeReason | null;
  frozenBy: string | null;
  /** The decision message, once finished. */
  decisionJson: string | null;
  published: boolean;
  finishedMs: number | null;
  signals: Record<string, string>;
}

export type StartResult =
  /**
   * next: `decide` ready by its rule and frozen (the workflow is the frozen snapshot); `ask` no rule, so ask
   * canDecide (on the early signals, or the trigger alone); `wait` its rule is not met yet.
   */
  { kind: 'started'; earlyCount: number; workflow: StoredWorkflow; next: 'decide' | 'ask' | 'wait' } | { kind: 'duplicate'; workflow: StoredWorkflow };

/** What `start` is given: the trigger's workflow as its strategy defined it. */
export interface StartInput {
  corrId: string;
  workflowType: string;
  timeoutMs: number;
  requiredAgents: string[];
  metadata: JsonObject;
  triggerJson: string;
  /** See `AddSignalOptions.checkMs`: applies when early signals are moved in. */
  checkMs: number;
  /** The encoded readiness rule (src/workflow/readiness.ts), or null: ask canDecide. */
  readyRule: string | null;
  leaseMs: number;
}

export type AddSignalResult =
  /**
   * Stored, and it made the workflow ready by its rule: frozen, `workflow` is the frozen snapshot. `nowMs`
   * (here and below): Redis's clock at the step.
   */
  | { kind: 'ready'; workflow: StoredWorkflow; nowMs: number }
  /**
   * duplicate: this message was stored already; superseded: a later revision (higher stream sequence) is stored.
   * `workflow`: the snapshot, to ask canDecide on; null where Redis judges readiness (its rule is not met).
   */
  | { kind: 'added' | 'duplicate' | 'superseded'; workflow: StoredWorkflow | null; nowMs: number }
  | { kind: 'late'; status: string }
  /** buffer-superseded: the early buffer holds this agent's message or a later revision already. */
  | { kind: 'buffered' | 'orphaned' | 'buffer-superseded' };

export interface AddSignalOptions {
  /** How long a signal that arrived before its trigger is kept (0: orphaned at once). */
  graceMs: number;
  /** The signal's JetStream stream sequence: a lower one never replaces a higher one. */
  sequence: number;
  /** When JetStream stored the signal (ms): the early grace counts from it. */
  storedAtMs: number;
  /** A stored signal makes the sweeper look at the workflow this long after, unless a decision came first. */
  checkMs: number;
  /** Safety-net lifetime of an early buffer (the reaper deletes it first). */
  earlyTtlMs: number;
  /** The claim lease of a workflow this signal makes ready (frozen). */
  leaseMs: number;
}

export type SweepJobKind = FreezeReason | 'check' | 'publish';

export interface SweepResult {
  jobs: SweepJob[];
  /** Due entries Redis refused to read (wrong key type, ...): looked at again in a minute; or whose snapshot is unreadable: after the lease. */
  broken: { corrId: string; error: string }[];
  /** Shards whose sweep failed this time. */
  errors: { shard: number; error: Error }[];
  remaining: number;
  full: boolean;
  /** Redis's clock at the sweep (ms) of the last shard that answered; each job carries its own shard's (`sweptMs`), on a cluster another primary's clock. */
  redisNowMs: number;
}

export type FreezeResult =
  /** Frozen: `workflow` is the frozen snapshot (status evaluating). */
  | { kind: 'frozen'; workflow: StoredWorkflow }
  /** A signal arrived since the snapshot canDecide was asked on: the current one, to ask again. */
  | { kind: 'outdated'; workflow: StoredWorkflow }
  /** Not open any more: frozen or final already (by the sweeper, another caller), or gone (status ''). */
  | { kind: 'closed'; status: string };

/** What finalising a workflow returns the first time (null after: another claimant finalised it). */
export type Finalized = { startedMs: number; finishedMs: number } | null;

/** The probe's WAIT (health, FlowControl) waits at most this long: it runs inside their 1-2 s timeouts. */
const PROBE_WAIT_MS = 500;
/** At most this many messages (triggers, signals, finalisations) per batched script call: a script blocks Redis while it runs. */
const MAX_BATCH = 256;
export interface SweepJob {
  kind: SweepJobKind;
  workflow: StoredWorkflow;
  /** Redis's clock when its shard was swept (a workflow frozen by this sweep has it as `frozenMs`). */
  sweptMs: number;
}

export interface Inspection {
  workflow: StoredWorkflow | null;
  /** Signals waiting for their trigger (agent -> JSON). */
  early: Record<string, string>;
}

type Reply = ScriptReply;

/** The scripts as the client's commands (src/redis/script-replies.ts declares them on ioredis's command map). */
type ScriptCommands = { [N in ScriptName]: (...keysAndArgs: ScriptArgs) => Promise<ScriptReplies[N]> };

/**
 * The workflow store: one method per Lua script (see `src/redis/lua/`), each an atomic step of the life
 * cycle. Script return codes are turned into typed results here and nowhere else.
 */
@Injectable()
export class WorkflowRepository {
  readonly keys: WorkflowKeys;
  /** Replication before acknowledgement (META_AGENT_REDIS_WAIT_REPLICAS / _WAIT_AOF); null: off. */
  readonly replicaWait: ReplicaWait | null;
  /**
   * Triggers, signals and finalisations reach Redis in one script call per shard and event-loop turn
   * (turn-batches.ts), each with its own result; all go through `run`.
   */
  private readonly starting: TurnBatches<StartResult>;
  private readonly adding: TurnBatches<AddSignalResult>;
  private readonly finalizing: TurnBatches<Finalized>;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: RedisClient,
    @Inject(redisConfig.KEY) config: RedisConfig,
  ) {
    this.keys = new WorkflowKeys(config.prefix, config.shards);
    this.replicaWait =
      config.waitReplicas > 0 || config.waitAof
        ? new ReplicaWait(redis, { replicas: config.waitReplicas, timeoutMs: config.waitTimeoutMs, aof: config.waitAof })
        : null;
    const batched =
      (name: 'startWorkflows' | 'addSignals' | 'finalize', keys: (shard: number) => string[]) => (shard: number, head: ScriptArgs, args: ScriptArgs) =>
        this.run(name, true, [...keys(shard), this.keys.shardPrefix(shard), ...head, ...args]);
    const indexes = (shard: number) => [this.keys.deadlines(shard), this.keys.earlyDue(shard)];
    this.starting = new TurnBatches('start-workflows-2.lua', MAX_BATCH, batched('startWorkflows', indexes));
    this.adding = new TurnBatches('add-signals-2.lua', MAX_BATCH, batched('addSignals', indexes));
    this.finalizing = new TurnBatches(
      'finalize-2.lua',
      MAX_BATCH,
      batched('finalize', (shard) => [this.keys.deadlines(shard), this.keys.recent(shard)]),
    );
  }

  /**
   * Runs one script (its first key names its slot: every key of a call shares one hash tag). On a cluster a
   * redirect (a failover, a resharding) refreshes the slot map and runs it again. `write`: the caller acks
   * or publishes on its effect, so with a replication wait it returns only once the replicas confirmed it
   * (a shortfall throws a TransientError; the effect stays, and a repeat of the script finds it).
   */
  private async run<N extends ScriptName>(name: N, write: boolean, keysAndArgs: ScriptArgs): Promise<ScriptReplies[N]> {
    const scripts: ScriptCommands = this.redis;
    try {
      const reply = await withRedirects(this.redis, () => scripts[name].apply(this.redis, keysAndArgs));
      if (write && this.replicaWait) await this.replicaWait.after(String(keysAndArgs[0]));
      return reply;
    } catch (error) {
      // On a cluster, a failure is the shard's: its primary may be failing over while the others answer.
      throw isCluster(this.redis) ? blamePart(error, REDIS_DEPENDENCY, hashTagOf(String(keysAndArgs[0]))) : error;
    }
  }

  /**
   * Opens a workflow for a trigger (start-workflows-2.lua), or finds it exists (a duplicate). The triggers of
   * one event-loop turn go to Redis together, one script call per shard, each with its own result.
   */
  start(input: StartInput): Promise<StartResult> {
    const args = [
      input.corrId,
      input.workflowType,
      input.timeoutMs,
      JSON.stringify(input.requiredAgents),
      JSON.stringify(input.metadata),
      input.triggerJson,
      input.readyRule ?? '',
    ];
    return this.starting.add(this.keys.shardOf(input.corrId), [input.checkMs, input.leaseMs], args, (item) => startResult(input, item));
  }

  /**
   * Stores a signal (add-signals-2.lua), or buffers it until its trigger. The signals of one event-loop turn
   * go to Redis together, one script call per shard, each with its own result.
   */
  addSignal(corrId: string, agent: string, signalJson: string, options: AddSignalOptions): Promise<AddSignalResult> {
    const head = [options.graceMs, options.checkMs, options.earlyTtlMs, options.leaseMs];
    const args = [corrId, agent, signalJson, options.sequence, options.storedAtMs];
    return this.adding.add(this.keys.shardOf(corrId), head, args, (item) => addSignalResult(corrId, item));
  }

  /**
   * Freezes an open workflow for its decision (freeze-3.lua). With `version`, only if it is still the
   * snapshot the caller asked canDecide on; without, whatever arrived (an operator's cancel or forced
   * decision) and the frozen snapshot comes back. Exactly one caller freezes.
   */
  async freeze(seen: StoredWorkflow | { corrId: string }, why: Exclude<FreezeReason, 'timeout'>, leaseMs: number, by = ''): Promise<FreezeResult> {
    const known = 'version' in seen ? seen : null;
    const k = this.keys.forWorkflow(seen.corrId);
    // Stored as `by`, which a snapshot sends NUL-separated (append_snapshot): a strategy's error may hold one.
    if (by.includes('\0')) by = by.replaceAll('\0', '\uFFFD');
    const reply = await this.run('freeze', true, [k.wf, k.sig, k.deadlines, seen.corrId, known?.version ?? '', why, leaseMs, known?.startedMs ?? '', by]);
    switch (reply[0]) {
      case FREEZE.frozen: {
        // With a version the frozen snapshot is the caller's (the script spares sending it back).
        const frozenMs = Number(reply[1]);
        const workflow = known ? { ...known, status: WorkflowStatus.Evaluating, frozenMs, why, frozenBy: by || null } : parseWorkflow(seen.corrId, reply, 2);
        return { kind: 'frozen', workflow };
      }
      case FREEZE.outdated:
        return { kind: 'outdated', workflow: parseWorkflow(seen.corrId, reply, 2) };
      default:
        return { kind: 'closed', status: String(reply[1]) };
    }
  }

  /**
   * Ends a workflow whose decision was published (finalize-2.lua): final status and decision stored,
   * `published` set, keys kept for the retention period. Returns its start and finish times the first time
   * only. The calls of one event-loop turn go to Redis together, one script call per shard.
   */
  finalize(workflow: StoredWorkflow, status: FinalStatus, decisionJson: string, retentionMs: number): Promise<Finalized> {
    const args = [workflow.corrId, workflow.startedMs, status, decisionJson];
    return this.finalizing.add(this.keys.shardOf(workflow.corrId), [retentionMs], args, (item) =>
      item[0] === FINALIZE.finalized ? { startedMs: Number(item[1]), finishedMs: Number(item[2]) } : null,
    );
  }

  /** After a sweeper check found the workflow not ready: its due entry goes back to the deadline, unless it changed since. */
  async rest(workflow: StoredWorkflow): Promise<boolean> {
    const k = this.keys.forWorkflow(workflow.corrId);
    const reply = await this.run('rest', true, [k.wf, k.deadlines, workflow.corrId, workflow.version, workflow.startedMs]);
    return reply[0] === REST.rested;
  }

  /**
   * The same script on every shard, one call each, issued together: the client's auto-pipelining sends the
   * calls of one turn to each node in one write (a standalone Redis: one round trip, as one pipeline did; a
   * cluster: one per node, where one pipeline across nodes is refused). Settled per shard.
   */
  private perShard<N extends ScriptName>(
    name: N,
    write: boolean,
    keysAndArgs: (shard: number) => ScriptArgs,
  ): Promise<PromiseSettledResult<ScriptReplies[N]>[]> {
    const calls: Promise<ScriptReplies[N]>[] = [];
    for (let shard = 0; shard < this.keys.shards; shard++) calls.push(this.run(name, write, keysAndArgs(shard)));
    return Promise.allSettled(calls);
  }

  /**
   * One sweeper step over every shard, in one round trip per node. `remaining` is the number of unfinished
   * or unpublished workflows. A shard whose script fails is reported in `errors`: the jobs the other shards
   * handed out (already claimed) still run.
   */
  async sweep(limit: number, leaseMs: number): Promise<SweepResult> {
    const results = await this.perShard('sweep', true, (shard) => [this.keys.deadlines(shard), this.keys.shardPrefix(shard), limit, leaseMs]);
    const out: SweepResult = { jobs: [], broken: [], errors: [], remaining: 0, full: false, redisNowMs: 0 };
    for (const [shard, result] of results.entries()) {
      if (result.status === 'rejected') {
        out.errors.push({ shard, error: result.reason instanceof Error ? result.reason : new Error(String(result.reason)) });
        continue;
      }
      const reply = result.value;
      out.remaining += Number(reply[0]);
      // Due entries read, not jobs: stale entries removed from a full batch still mean more may be due.
      if (Number(reply[1]) >= limit) out.full = true;
      const sweptMs = Number(reply[2]);
      out.redisNowMs = sweptMs;
      for (let i = 3; i < reply.length; i++) {
        const job = reply[i] as Reply;
        if (job[1] === 'broken') {
          out.broken.push({ corrId: String(job[0]), error: String(job[2]) });
          continue;
        }
        try {
          out.jobs.push({ kind: job[1] as SweepJobKind, workflow: parseWorkflow(String(job[0]), job, 2), sweptMs });
        } catch (error) {
          // A snapshot that cannot be read: this job alone (claimed, it comes back after its lease).
          out.broken.push({ corrId: String(job[0]), error: describeError(error) });
        }
      }
    }
    return out;
  }

  /**
   * Deletes early-signal buffers past their grace period whose due time is below `watermarkMs` (JetStream's
   * time up to which every trigger was processed); returns the number of signals orphaned.
   */
  async reapEarly(limit: number, watermarkMs: number): Promise<{ buffers: number; signals: number }> {
    const results = await this.perShard('reapEarly', true, (shard) => [
      this.keys.earlyDue(shard),
      this.keys.shardPrefix(shard),
      limit,
      Math.floor(watermarkMs),
    ]);
    let buffers = 0;
    let signals = 0;
    for (const result of results) {
      if (result.status === 'rejected') throw result.reason;
      buffers += Number(result.value[0]);
      signals += Number(result.value[1]);
    }
    return { buffers, signals };
  }

  async inspect(corrId: string): Promise<Inspection> {
    const k = this.keys.forWorkflow(corrId);
    const read = (key: string) => withRedirects(this.redis, () => this.redis.hgetall(key));
    const [wf, sig, early] = await Promise.all([read(k.wf), read(k.sig), read(k.early)]);
    // The buffer also holds each signal's stream sequence (q:<agent>): only the signals are shown.
    const signals = Object.fromEntries(Object.entries(early).filter(([field]) => !field.startsWith('q:')));
    return { workflow: Object.keys(wf).length > 0 ? toStoredWorkflow(corrId, wf, sig) : null, early: signals };
  }

  /** Unfinished or unpublished workflows, over all shards (what `meta_agent_active_workflows` reports). */
  async countActive(): Promise<number> {
    const counts: Promise<number>[] = [];
    for (let shard = 0; shard < this.keys.shards; shard++) {
      const key = this.keys.deadlines(shard);
      counts.push(withRedirects(this.redis, () => this.redis.zcard(key)));
    }
    return (await Promise.all(counts)).reduce((total, n) => total + n, 0);
  }

  /**
   * Whether Redis can take work (health, readiness, and the transport's probe after a transient failure):
   * it answers PING; a cluster has every primary answering with `cluster_state:ok`; with a replication wait,
   * every primary's replicas have confirmed its writes so far (else messages whose WAIT fell short are held
   * until they have, instead of being retried and using up their deliveries).
   */
  /**
   * Whether one shard (its hash tag, as blamed by `run`) can take work: the primary of its slot answers, and,
   * with a replication wait, its replicas have confirmed its writes so far (the transport's probe of a shard
   * it holds messages for, while the other shards' messages go on).
   */
  async pingShard(tag: string): Promise<void> {
    await withRedirects(this.redis, () => this.redis.exists(tag));
    if (!this.replicaWait) return;
    const connection = connectionFor(this.redis, tag);
    if (!connection) throw new Error(`no primary known for the slot of ${tag}`);
    await this.replicaWait.waitOn(connection, Math.min(this.replicaWait.options.timeoutMs, PROBE_WAIT_MS));
  }

  async ping(): Promise<void> {
    if (isCluster(this.redis)) {
      const nodes = this.redis.nodes('master');
      if (nodes.length === 0) throw new Error('no Redis Cluster primary known');
      await Promise.all(
        nodes.map(async (node) => {
          const info = await node.cluster('INFO');
          if (!/^cluster_state:ok\s*$/m.test(info))
            throw new Error(
              `Redis Cluster node ${node.options.host}:${node.options.port} reports ${/^cluster_state:\S+/m.exec(info)?.[0] ?? 'no cluster_state'}`,
            );
        }),
      );
    } else {
      await this.redis.ping();
    }
    if (this.replicaWait) await this.replicaWait.check(Math.min(this.replicaWait.options.timeoutMs, PROBE_WAIT_MS));
  }

  /*
   * Admin API (issue 12, part 3): listing from the indexes, and moving a deadline.
   */

  /**
   * One page of an index (`deadlines`: unfinished or unpublished; `recent`: finished and published) on every
   * shard, in one round trip (list-1.lua). Each shard reads after `after` in the index's order and stops at
   * `wanted` matches or `budget` entries read; the caller merges the shards by position.
   */
  async listIndex(index: ListIndex, query: ListIndexQuery): Promise<ShardPage[]> {
    const recent = index === 'recent';
    const results = await this.perShard('list', false, (shard) => [
      recent ? this.keys.recent(shard) : this.keys.deadlines(shard),
      this.keys.shardPrefix(shard),
      recent ? 'desc' : 'asc',
      query.after ? String(query.after.score) : '',
      query.after?.corrId ?? '',
      query.wanted,
      query.budget,
      query.statuses.join(','),
      query.type ?? '',
      recent ? '1' : '0',
    ]);
    const pages: ShardPage[] = [];
    for (const result of results) {
      if (result.status === 'rejected') throw result.reason;
      const reply = result.value;
      const items: ListedWorkflow[] = [];
      for (let i = 3; i < reply.length; i++) {
        const [corrId, score, status, type, started, deadline, finished, published, agents] = reply[i] as Reply;
        items.push({
          corrId: String(corrId),
          position: { score: Number(score), corrId: String(corrId) },
          workflowId: workflowIdOf(String(type), String(corrId)),
          workflowType: String(type),
          status: String(status) as WorkflowStatus,
          startedMs: Number(started),
          deadlineMs: Number(deadline),
          finishedMs: finished ? Number(finished) : null,
          published: published === '1',
          receivedAgents: (agents as string[]).map(String),
        });
      }
      pages.push({ exhausted: reply[0] === 1, last: reply[1] === '' ? null : { score: Number(reply[1]), corrId: String(reply[2]) }, items });
    }
    return pages;
  }

  /** Moves an open workflow's deadline `extensionMs` later, at most to started + `maxTimeoutMs` (extend-2.lua). */
  async extend(corrId: string, extensionMs: number, maxTimeoutMs: number): Promise<ExtendResult> {
    const k = this.keys.forWorkflow(corrId);
    const reply = await this.run('extend', true, [k.wf, k.deadlines, corrId, Math.round(extensionMs), Math.round(maxTimeoutMs)]);
    if (reply[0] !== EXTEND.extended) return { kind: 'closed', status: String(reply[1]) };
    return {
      kind: 'extended',
      workflowId: workflowIdOf(String(reply[4]), corrId),
      previousDeadlineMs: Number(reply[1]),
      deadlineMs: Number(reply[2]),
      maxDeadlineMs: Number(reply[3]),
    };
  }
}

/** Admin API: the indexes a list reads. */
export type ListIndex = 'deadlines' | 'recent';

/** A place in an index: entries are ordered by score, then corr_id (both shards and pages use it). */
export interface IndexPosition {
  score: number;
  corrId: string;
}

export interface ListIndexQuery {
  after: IndexPosition | null;
  wanted: number;
  budget: number;
  /** Statuses to keep (empty: any). */
  statuses: string[];
  type?: string;
}

/** A workflow as the admin list shows it (no trigger, signals or decision: GET /workflows/:corr_id has them). */
export interface ListedWorkflow {
  corrId: string;
  position: IndexPosition;
  workflowId: string;
  workflowType: string;
  status: WorkflowStatus;
  startedMs: number;
  deadlineMs: number;
  finishedMs: number | null;
  published: boolean;
  receivedAgents: string[];
}

export interface ShardPage {
  /** Nothing after `last` in this shard's index. */
  exhausted: boolean;
  /** The last entry read (null: none). */
  last: IndexPosition | null;
  items: ListedWorkflow[];
}

export type ExtendResult =
  | { kind: 'extended'; workflowId: string; previousDeadlineMs: number; deadlineMs: number; maxDeadlineMs: number }
  /** Not open: `evaluating` (being decided or timed out now), a final status, or '' (missing). */
  | { kind: 'closed'; status: string };

/** A workflow just started, as start-workflows-2.lua stores it (no signal, no version counted yet). */
export function newWorkflow(input: {
  corrId: string;
  workflowType: string;
  startedMs: number;
  timeoutMs: number;
  requiredAgents: string[];
  metadata: JsonObject;
  triggerJson: string;
  hasRule: boolean;
}): StoredWorkflow {
  return {
    corrId: input.corrId,
    workflowId: workflowIdOf(input.workflowType, input.corrId),
    workflowType: input.workflowType,
    status: WorkflowStatus.InProgress,
    startedMs: input.startedMs,
    deadlineMs: input.startedMs + input.timeoutMs,
    timeoutMs: input.timeoutMs,
    requiredAgents: input.requiredAgents,
    metadata: input.metadata,
    triggerJson: input.triggerJson,
    version: 0,
    hasRule: input.hasRule,
    frozenMs: null,
    why: null,
    frozenBy: null,
    decisionJson: null,
    published: false,
    finishedMs: null,
    signals: {},
  };
}

/** One trigger's item of a start-workflows-2.lua reply. */
function startResult(input: StartInput, item: Reply): StartResult {
  const code = item[0];
  if (code === START.duplicate) return { kind: 'duplicate', workflow: parseWorkflow(input.corrId, item, 2) };
  if (code === START.failed) throw new ScriptItemError('start-workflows-2.lua', String(item[1]));
  const earlyCount = Number(item[2]);
  if (code === START.ready) return { kind: 'started', earlyCount, workflow: parseWorkflow(input.corrId, item, 3), next: 'decide' };
  if (code !== START.started) throw unknownCode('start-workflows-2.lua', code);
  if (item.length > 3) return { kind: 'started', earlyCount, workflow: parseWorkflow(input.corrId, item, 3), next: 'ask' };
  // Nothing but what the caller sent: the script spares the round trip of the whole hash (with a rule and
  // early signals the snapshot built here lacks them, but nobody asks canDecide on it).
  return {
    kind: 'started',
    earlyCount,
    next: input.readyRule === null ? 'ask' : 'wait',
    // Without a rule and with early signals the script returns the snapshot (above): here no `ver` was
    // counted, or a rule keeps none.
    workflow: newWorkflow({ ...input, startedMs: Number(item[1]), hasRule: input.readyRule !== null }),
  };
}

/** One signal's item of an add-signals-2.lua reply. */
function addSignalResult(corrId: string, item: Reply): AddSignalResult {
  const snapshot = (): StoredWorkflow | null => (item.length > 2 ? parseWorkflow(corrId, item, 2) : null);
  switch (item[0]) {
    case ADD_SIGNAL.ready:
      return { kind: 'ready', workflow: parseWorkflow(corrId, item, 2), nowMs: Number(item[1]) };
    case ADD_SIGNAL.added:
      return { kind: 'added', workflow: snapshot(), nowMs: Number(item[1]) };
    case ADD_SIGNAL.duplicate:
      return { kind: 'duplicate', workflow: snapshot(), nowMs: Number(item[1]) };
    case ADD_SIGNAL.superseded:
      return { kind: 'superseded', workflow: snapshot(), nowMs: Number(item[1]) };
    case ADD_SIGNAL.late:
      return { kind: 'late', status: String(item[1]) };
    case ADD_SIGNAL.buffered:
      return { kind: 'buffered' };
    case ADD_SIGNAL.bufferSuperseded:
      return { kind: 'buffer-superseded' };
    case ADD_SIGNAL.orphaned:
      return { kind: 'orphaned' };
    case ADD_SIGNAL.failed:
      throw new ScriptItemError('add-signals-2.lua', String(item[1]));
    default:
      throw unknownCode('add-signals-2.lua', item[0]);
  }
}

function unknownCode(script: string, code: unknown): Error {
  return new Error(`${script} answered an unknown code ${String(code)}`);
}

/** Reads a snapshot, `wf` and `sig` at `reply[from]` and `reply[from + 1]` (common.lua's `append_snapshot`). */
function parseWorkflow(corrId: string, reply: Reply, from: number): StoredWorkflow {
  return toStoredWorkflow(corrId, hashOf(reply[from], corrId), hashOf(reply[from + 1], corrId));
}

/** A hash as a snapshot sends it: its HGETALL list joined with NUL (`field\0value\0...`, '' for none). */
function hashOf(joined: Reply[number] | undefined, corrId: string): Record<string, string> {
  const hash: Record<string, string> = {};
  if (typeof joined !== 'string') throw new Error(`a snapshot of ${corrId} is not a string (${typeof joined})`);
  if (joined === '') return hash;
  const parts = joined.split('\0');
  // No stored field or value holds a NUL (append_snapshot says why); an odd count says one did.
  if (parts.length % 2 !== 0) throw new Error(`a snapshot of ${corrId} holds a NUL in a field or value`);
  for (let i = 0; i < parts.length; i += 2) hash[parts[i]] = parts[i + 1];
  return hash;
}

function toStoredWorkflow(corrId: string, wf: Record<string, string>, sig: Record<string, string>): StoredWorkflow {
  const startedMs = Number(wf.started);
  const deadlineMs = Number(wf.deadline);
  return {
    corrId,
    workflowId: workflowIdOf(wf.type, corrId),
    workflowType: wf.type,
    status: wf.status as WorkflowStatus,
    startedMs,
    deadlineMs,
    timeoutMs: deadlineMs - startedMs,
    requiredAgents: JSON.parse(wf.agents ?? '[]') as string[],
    metadata: JSON.parse(wf.meta ?? '{}') as JsonObject,
    triggerJson: wf.trigger ?? '{}',
    version: Number(wf.ver ?? 0),
    hasRule: wf.rdy !== undefined,
    frozenMs: wf.frozen ? Number(wf.frozen) : null,
    // A workflow claimed by an older version, which froze only for timeouts, has no `why`.
    why: (wf.why as FreezeReason | undefined) ?? (wf.status === 'evaluating' ? 'timeout' : null),
    frozenBy: wf.by ?? null,
    decisionJson: wf.decision ?? null,
    published: wf.published === '1',
    finishedMs: wf.finished ? Number(wf.finished) : null,
    signals: sig,
  };
}
