/**
 * Every Redis key name of the service is built here (the Lua scripts build the per-workflow names of
 * sweep jobs from the shard prefix this class hands them, and nothing else).
 *
 * A workflow's keys and its shard's indexes share one hash tag, `{<prefix>:<shard>}`, so every script
 * touches one Redis Cluster slot; the shard is a hash of the corr_id, which spreads workflows over
 * `shards` slots. Changing the shard count moves every key: do it only on an empty Redis.
 *
 *   {ma:3}:wf:<corr_id>      hash  the workflow (status, timestamps, agents, metadata, trigger, decision)
 *   {ma:3}:sig:<corr_id>     hash  agent -> latest signal JSON
 *   {ma:3}:early:<corr_id>   hash  agent -> signal JSON that arrived before the trigger
 *   {ma:3}:deadlines         zset  corr_id -> ms when the sweeper must look at it (unfinished, or unpublished)
 *   {ma:3}:early-due         zset  corr_id -> ms when its early-signal buffer expires
 *   {ma:3}:recent            zset  corr_id -> finished ms, for finished and published workflows (admin API
 *                                  list; added by finalize-2.lua, trimmed to the retention period)
 *   ma:suspect:<stream>:<seq> hash  a redelivered message's runs alone not ended (`run`) and failed attempts
 *                                  (`fail`): the transport's poison isolation (src/workflow/suspect-ledger.ts)
 */
export interface WorkflowKeySet {
  shard: number;
  wf: string;
  sig: string;
  early: string;
  deadlines: string;
  earlyDue: string;
}

export class WorkflowKeys {
  constructor(
    private readonly prefix: string,
    readonly shards: number,
  ) {}

  /** FNV-1a over the corr_id's UTF-16 code units (corr_ids are ASCII): stable across processes and versions. */
  shardOf(corrId: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < corrId.length; i++) {
      h ^= corrId.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    return (h >>> 0) % this.shards;
  }

  /** The prefix of every key in a shard, hash tag included. */
  shardPrefix(shard: number): string {
    return `{${this.prefix}:${shard}}:`;
  }

  deadlines(shard: number): string {
    return `${this.shardPrefix(shard)}deadlines`;
  }

  earlyDue(shard: number): string {
    return `${this.shardPrefix(shard)}early-due`;
  }

  /** Finished and published workflows of a shard, by finish time (the admin API's list). */
  recent(shard: number): string {
    return `${this.shardPrefix(shard)}recent`;
  }

  /** A message's suspect-ledger record: no hash tag, single-key commands only, spread over the cluster. */
  suspect(stream: string, sequence: number): string {
    return `${this.prefix}:suspect:${stream}:${sequence}`;
  }

  forWorkflow(corrId: string): WorkflowKeySet {
    const shard = this.shardOf(corrId);
    const p = this.shardPrefix(shard);
    return {
      shard,
      wf: `${p}wf:${corrId}`,
      sig: `${p}sig:${corrId}`,
      early: `${p}early:${corrId}`,
      deadlines: `${p}deadlines`,
      earlyDue: `${p}early-due`,
    };
  }
}
