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

export type StartResult =
  | { kind: 'started'; earlyCount: number; workflow: StoredWorkflow }
  | { kind: 'duplicate'; workflow: StoredWorkflow };

export type AddSignalResult =
  | { kind: 'added' | 'duplicate'; workflow: StoredWorkflow }
  | { kind: 'late'; status: string }
  | { kind: 'buffered' | 'orphaned' };

export type SweepJobKind = 'timeout' | 'publish';

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
  }): Promise<StartResult> {
    const k = this.keys.forWorkflow(input.corrId);
    const reply = (await this.script('startWorkflow')(
      k.wf, k.sig, k.early, k.deadlines, k.earlyDue,
      input.corrId, input.workflowType, input.timeoutMs,
      JSON.stringify(input.requiredAgents), JSON.stringify(input.metadata), input.triggerJson,
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

  async addSignal(corrId: string, agent: string, signalJson: string, graceMs: number): Promise<AddSignalResult> {
    const k = this.keys.forWorkflow(corrId);
    const reply = (await this.script('addSignal')(k.wf, k.sig, k.early, k.earlyDue, corrId, agent, signalJson, graceMs)) as Reply;
    switch (reply[0]) {
      case 1:
        return { kind: 'added', workflow: parseWorkflow(corrId, reply, 2) };
      case 2:
        return { kind: 'duplicate', workflow: parseWorkflow(corrId, reply, 2) };
      case 3:
        return { kind: 'late', status: String(reply[1]) };
      case 4:
        return { kind: 'buffered' };
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
      k.wf, k.sig, k.deadlines,
      evaluated.corrId, evaluated.version, status, decisionJson, leaseMs, evaluated.startedMs,
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

  /** Records the decision of a workflow the sweeper claimed (timeout); false when the claim was lost (its lease ran out and another replica took over). */
  async finish(corrId: string, token: string, status: FinalStatus, decisionJson: string, leaseMs: number): Promise<boolean> {
    const k = this.keys.forWorkflow(corrId);
    const reply = (await this.script('finish')(k.wf, k.deadlines, corrId, token, status, decisionJson, leaseMs)) as Reply;
    return reply[0] === 1;
  }

  /** Marks the decision published; returns the workflow's start and finish times the first time only. */
  async markPublished(corrId: string, retentionMs: number): Promise<{ startedMs: number; finishedMs: number } | null> {
    const k = this.keys.forWorkflow(corrId);
    const reply = (await this.script('markPublished')(k.wf, k.sig, k.deadlines, corrId, retentionMs)) as Reply;
    return reply[0] === 1 ? { startedMs: Number(reply[1]), finishedMs: Number(reply[2]) } : null;
  }

  /** One sweeper step over every shard, in one round trip. `remaining` is the number of unfinished or unpublished workflows. */
  async sweep(limit: number, leaseMs: number, token: string): Promise<{ jobs: SweepJob[]; remaining: number; full: boolean }> {
    const pipeline = this.redis.pipeline() as unknown as Record<string, ScriptCommand> & { exec(): Promise<[Error | null, unknown][]> };
    for (let shard = 0; shard < this.keys.shards; shard++) {
      void pipeline.sweep(this.keys.deadlines(shard), this.keys.shardPrefix(shard), limit, leaseMs, token);
    }
    const results = await pipeline.exec();
    const jobs: SweepJob[] = [];
    let remaining = 0;
    let full = false;
    for (const [error, value] of results) {
      if (error) throw error;
      const reply = value as Reply;
      remaining += Number(reply[0]);
      // Due entries read, not jobs: stale entries removed from a full batch still mean more may be due.
      if (Number(reply[1]) >= limit) full = true;
      for (let i = 2; i < reply.length; i++) {
        const job = reply[i] as Reply;
        jobs.push({ kind: job[1] as SweepJobKind, workflow: parseWorkflow(String(job[0]), job, 2) });
      }
    }
    return { jobs, remaining, full };
  }

  /** Deletes early-signal buffers past their grace period; returns the number of signals orphaned. */
  async reapEarly(limit: number): Promise<{ buffers: number; signals: number }> {
    const pipeline = this.redis.pipeline() as unknown as Record<string, ScriptCommand> & { exec(): Promise<[Error | null, unknown][]> };
    for (let shard = 0; shard < this.keys.shards; shard++) {
      void pipeline.reapEarly(this.keys.earlyDue(shard), this.keys.shardPrefix(shard), limit);
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
    return { workflow: Object.keys(wf).length > 0 ? toStoredWorkflow(corrId, wf, sig) : null, early };
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
}

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
