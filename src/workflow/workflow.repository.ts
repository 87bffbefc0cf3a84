import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { redisConfig, type RedisConfig } from '../config/configuration.js';
import type { ScriptCommand } from '../redis/redis-scripts.js';
import { WorkflowKeys } from './workflow.keys.js';
import type { FinalStatus, JsonObject, WorkflowStatus } from './workflow.types.js';

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
  /** Number of signal changes: a decision is recorded only on the version it was evaluated on. */
  version: number;
  /** The recorded decision message, once finished. */
  decisionJson: string | null;
  published: boolean;
  finishedMs: number | null;
  signals: Record<string, string>;
}

export type StartResult = { kind: 'started'; earlyCount: number; workflow: StoredWorkflow } | { kind: 'duplicate'; workflow: StoredWorkflow };

export type AddSignalResult =
  /** duplicate: this message was stored already; superseded: a later revision (higher stream sequence) is stored. */
  | { kind: 'added' | 'duplicate' | 'superseded'; workflow: StoredWorkflow }
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
}

export type SweepJobKind = 'timeout' | 'check' | 'publish';

export interface SweepResult {
  jobs: SweepJob[];
  /** Due entries Redis refused to read (wrong key type, ...): looked at again in a minute. */
  broken: { corrId: string; error: string }[];
  /** Shards whose sweep failed this time. */
  errors: { shard: number; error: Error }[];
  remaining: number;
  full: boolean;
  /** Redis's clock at the sweep (ms). */
  redisNowMs: number;
}

export type RecordResult =
  | { kind: 'recorded' }
  /** A signal arrived since the evaluated snapshot: the current one, to evaluate again. */
  | { kind: 'outdated'; workflow: StoredWorkflow }
  /** Not open any more: timed out by the sweeper, decided by another caller, or gone (status ''). */
  | { kind: 'closed'; status: string };
export interface SweepJob {
  kind: SweepJobKind;
  workflow: StoredWorkflow;
}

export interface Inspection {
  workflow: StoredWorkflow | null;
  /** Signals waiting for their trigger (agent -> JSON). */
  early: Record<string, string>;
}

type Reply = (string | number | Reply)[];

/**
 * The workflow store: one method per Lua script (see `src/redis/lua/`), each an atomic step of the life
 * cycle. Script return codes are turned into typed results here and nowhere else.
 */
@Injectable()
export class WorkflowRepository {
  readonly keys: WorkflowKeys;

  constructor(
    private readonly redis: Redis,
    @Inject(redisConfig.KEY) config: RedisConfig,
  ) {
    this.keys = new WorkflowKeys(config.prefix, config.shards);
  }

  private script(name: string): ScriptCommand {
    return (this.redis as unknown as Record<string, ScriptCommand>)[name].bind(this.redis);
  }

  async start(input: {
    corrId: string;
    workflowType: string;
    timeoutMs: number;
    requiredAgents: string[];
    metadata: JsonObject;
    triggerJson: string;
    /** See `AddSignalOptions.checkMs`: applies when early signals are moved in. */
    checkMs: number;
  }): Promise<StartResult> {
    const k = this.keys.forWorkflow(input.corrId);
    const reply = (await this.script('startWorkflow')(
      k.wf,
      k.sig,
      k.early,
      k.deadlines,
      k.earlyDue,
      input.corrId,
      input.workflowType,
      input.timeoutMs,
      JSON.stringify(input.requiredAgents),
      JSON.stringify(input.metadata),
      input.triggerJson,
      input.checkMs,
    )) as Reply;
    if (reply[0] === 0) return { kind: 'duplicate', workflow: parseWorkflow(input.corrId, reply, 2) };
    const earlyCount = Number(reply[2]);
    if (earlyCount > 0) return { kind: 'started', earlyCount, workflow: parseWorkflow(input.corrId, reply, 3) };
    // Nothing but what the caller sent: the script spares the round trip of the whole hash.
    const startedMs = Number(reply[1]);
    return {
      kind: 'started',
      earlyCount,
      workflow: {
        corrId: input.corrId,
        workflowId: workflowIdOf(input.workflowType, input.corrId),
        workflowType: input.workflowType,
        status: 'in_progress',
        startedMs,
        deadlineMs: startedMs + input.timeoutMs,
        timeoutMs: input.timeoutMs,
        requiredAgents: input.requiredAgents,
        metadata: input.metadata,
        triggerJson: input.triggerJson,
        version: 0,
        decisionJson: null,
        published: false,
        finishedMs: null,
        signals: {},
      },
    };
  }

  async addSignal(corrId: string, agent: string, signalJson: string, options: AddSignalOptions): Promise<AddSignalResult> {
    const k = this.keys.forWorkflow(corrId);
    const reply = (await this.script('addSignal')(
      k.wf,
      k.sig,
      k.early,
      k.earlyDue,
      k.deadlines,
      corrId,
      agent,
      signalJson,
      options.graceMs,
      options.sequence,
      options.storedAtMs,
      options.checkMs,
      options.earlyTtlMs,
    )) as Reply;
    switch (reply[0]) {
      case 1:
        return { kind: 'added', workflow: parseWorkflow(corrId, reply, 2) };
      case 2:
        return { kind: 'duplicate', workflow: parseWorkflow(corrId, reply, 2) };
      case 6:
        return { kind: 'superseded', workflow: parseWorkflow(corrId, reply, 2) };
      case 3:
        return { kind: 'late', status: String(reply[1]) };
      case 4:
        return { kind: 'buffered' };
      case 7:
        return { kind: 'buffer-superseded' };
      default:
        return { kind: 'orphaned' };
    }
  }

  /**
   * Records the decision evaluated on `evaluated` (by its version) and makes the workflow final, unless
   * it changed since (record-3.lua). Exactly one caller records.
   */
  async record(evaluated: StoredWorkflow, status: FinalStatus, decisionJson: string, leaseMs: number): Promise<RecordResult> {
    const k = this.keys.forWorkflow(evaluated.corrId);
    const reply = (await this.script('record')(
      k.wf,
      k.sig,
      k.deadlines,
      evaluated.corrId,
      evaluated.version,
      status,
      decisionJson,
      leaseMs,
      evaluated.startedMs,
    )) as Reply;
    switch (reply[0]) {
      case 1:
        return { kind: 'recorded' };
      case 2:
        return { kind: 'outdated', workflow: parseWorkflow(evaluated.corrId, reply, 2) };
      default:
        return { kind: 'closed', status: String(reply[1]) };
    }
  }

  /**
   * Records the timeout decision of a workflow the sweeper claimed; false when it is no longer being timed
   * out (another claimant finished it first). Any claimant may finish: the snapshot is frozen once claimed.
   */
  async finish(workflow: StoredWorkflow, status: FinalStatus, decisionJson: string, leaseMs: number): Promise<boolean> {
    const k = this.keys.forWorkflow(workflow.corrId);
    const reply = (await this.script('finish')(k.wf, k.deadlines, workflow.corrId, workflow.startedMs, status, decisionJson, leaseMs)) as Reply;
    return reply[0] === 1;
  }

  /** After a sweeper check found the workflow not ready: its due entry goes back to the deadline, unless it changed since. */
  async rest(workflow: StoredWorkflow): Promise<boolean> {
    const k = this.keys.forWorkflow(workflow.corrId);
    const reply = (await this.script('rest')(k.wf, k.deadlines, workflow.corrId, workflow.version, workflow.startedMs)) as Reply;
    return reply[0] === 1;
  }

  /** Marks the decision published; returns the workflow's start and finish times the first time only. */
  async markPublished(workflow: StoredWorkflow, retentionMs: number): Promise<{ startedMs: number; finishedMs: number } | null> {
    const k = this.keys.forWorkflow(workflow.corrId);
    const recent = this.keys.recent(k.shard);
    const reply = (await this.script('markPublished')(k.wf, k.sig, k.deadlines, workflow.corrId, retentionMs, workflow.startedMs, recent)) as Reply;
    return reply[0] === 1 ? { startedMs: Number(reply[1]), finishedMs: Number(reply[2]) } : null;
  }

  /**
   * One sweeper step over every shard, in one round trip. `remaining` is the number of unfinished or
   * unpublished workflows. A shard whose script fails is reported in `errors`: the jobs the other shards
   * handed out (already claimed) still run.
   */
  async sweep(limit: number, leaseMs: number): Promise<SweepResult> {
    const pipeline = this.redis.pipeline() as unknown as Record<string, ScriptCommand> & { exec(): Promise<[Error | null, unknown][]> };
    for (let shard = 0; shard < this.keys.shards; shard++) {
      void pipeline.sweep(this.keys.deadlines(shard), this.keys.shardPrefix(shard), limit, leaseMs);
    }
    const results = await pipeline.exec();
    const out: SweepResult = { jobs: [], broken: [], errors: [], remaining: 0, full: false, redisNowMs: 0 };
    for (const [shard, [error, value]] of results.entries()) {
      if (error) {
        out.errors.push({ shard, error });
        continue;
      }
      const reply = value as Reply;
      out.remaining += Number(reply[0]);
      // Due entries read, not jobs: stale entries removed from a full batch still mean more may be due.
      if (Number(reply[1]) >= limit) out.full = true;
      out.redisNowMs = Number(reply[2]);
      for (let i = 3; i < reply.length; i++) {
        const job = reply[i] as Reply;
        if (job[1] === 'broken') out.broken.push({ corrId: String(job[0]), error: String(job[2]) });
        else out.jobs.push({ kind: job[1] as SweepJobKind, workflow: parseWorkflow(String(job[0]), job, 2) });
      }
    }
    return out;
  }

  /**
   * Deletes early-signal buffers past their grace period whose due time is below `watermarkMs` (JetStream's
   * time up to which every trigger was processed); returns the number of signals orphaned.
   */
  async reapEarly(limit: number, watermarkMs: number): Promise<{ buffers: number; signals: number }> {
    const pipeline = this.redis.pipeline() as unknown as Record<string, ScriptCommand> & { exec(): Promise<[Error | null, unknown][]> };
    for (let shard = 0; shard < this.keys.shards; shard++) {
      void pipeline.reapEarly(this.keys.earlyDue(shard), this.keys.shardPrefix(shard), limit, Math.floor(watermarkMs));
    }
    let buffers = 0;
    let signals = 0;
    for (const [error, value] of await pipeline.exec()) {
      if (error) throw error;
      buffers += Number((value as Reply)[0]);
      signals += Number((value as Reply)[1]);
    }
    return { buffers, signals };
  }

  async inspect(corrId: string): Promise<Inspection> {
    const k = this.keys.forWorkflow(corrId);
    const [wf, sig, early] = await Promise.all([this.redis.hgetall(k.wf), this.redis.hgetall(k.sig), this.redis.hgetall(k.early)]);
    // The buffer also holds each signal's stream sequence (q:<agent>): only the signals are shown.
    const signals = Object.fromEntries(Object.entries(early).filter(([field]) => !field.startsWith('q:')));
    return { workflow: Object.keys(wf).length > 0 ? toStoredWorkflow(corrId, wf, sig) : null, early: signals };
  }

  /** Unfinished or unpublished workflows, over all shards (what `meta_agent_active_workflows` reports). */
  async countActive(): Promise<number> {
    const pipeline = this.redis.pipeline();
    for (let shard = 0; shard < this.keys.shards; shard++) pipeline.zcard(this.keys.deadlines(shard));
    let total = 0;
    for (const [error, value] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      total += Number(value);
    }
    return total;
  }

  async ping(): Promise<void> {
    await this.redis.ping();
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
    const pipeline = this.redis.pipeline() as unknown as Record<string, ScriptCommand> & { exec(): Promise<[Error | null, unknown][]> };
    const recent = index === 'recent';
    for (let shard = 0; shard < this.keys.shards; shard++) {
      void pipeline.list(
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
      );
    }
    const pages: ShardPage[] = [];
    for (const [error, value] of await pipeline.exec()) {
      if (error) throw error;
      const reply = value as Reply;
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
    const reply = (await this.script('extend')(k.wf, k.deadlines, corrId, Math.round(extensionMs), Math.round(maxTimeoutMs))) as Reply;
    if (reply[0] !== 1) return { kind: 'closed', status: String(reply[1]) };
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

/** Reads `wf fields..., '|', sig fields...` (two HGETALL lists) from `reply[from]` on. */
function parseWorkflow(corrId: string, reply: Reply, from: number): StoredWorkflow {
  const wf: Record<string, string> = {};
  const sig: Record<string, string> = {};
  let i = from;
  for (; i < reply.length && reply[i] !== '|'; i += 2) wf[String(reply[i])] = String(reply[i + 1]);
  for (i += 1; i < reply.length; i += 2) sig[String(reply[i])] = String(reply[i + 1]);
  return toStoredWorkflow(corrId, wf, sig);
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
    decisionJson: wf.decision ?? null,
    published: wf.published === '1',
    finishedMs: wf.finished ? Number(wf.finished) : null,
    signals: sig,
  };
}
