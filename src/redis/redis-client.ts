import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';

/**
 * The service's Redis client: a standalone (or Sentinel) `Redis`, or a `Cluster` when
 * META_AGENT_REDIS_CLUSTER_NODES is set. Both have the same command API (ioredis's `Commander`), scripts
 * included (`defineCommand`). Injected with `@Inject(REDIS_CLIENT)`.
 */
export type RedisClient = Redis | Cluster;

export const REDIS_CLIENT = Symbol('REDIS_CLIENT');

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

/** Where the hash tag of `key` is (the first non-empty `{...}`, without its braces), or null: the whole key counts. */
function tagOf(key: string): { start: number; end: number } | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? { start: open + 1, end: close } : null;
}

/** The part of `key` its slot is computed from, braces included (`{ma:3}`), or the whole key. */
export function hashTagOf(key: string): string {
  const tag = tagOf(key);
  return tag ? key.slice(tag.start - 1, tag.end + 1) : key;
}

/** Redis Cluster's CRC16 (XMODEM) of a key's hash tag, mod 16384: the slot `CLUSTER KEYSLOT` answers. */
export function keySlot(key: string): number {
  const tag = tagOf(key);
  if (tag) key = key.slice(tag.start, tag.end);
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/** `host:port` of a node connection, as the cluster's slot map names it. */
export function nodeKeyOf(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

/**
 * The connection that takes the writes to `key`: the client itself, or, on a cluster, the connection to
 * the primary that serves the key's slot now (the slot map ioredis keeps). Undefined while the slot has no
 * known primary (a failover in progress).
 */
export function connectionFor(client: RedisClient, key: string): Redis | undefined {
  if (!isCluster(client)) return client;
  const primary = client.slots[keySlot(key)]?.[0];
  if (primary === undefined) return undefined;
  return client.nodes('master').find((node) => nodeKeyOf(node) === primary);
}

/** The primaries' connections (one: the client itself, when not a cluster). */
export function primaries(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/** A redirect or a cluster in transition: the command did not run, and may once the slot map is right. */
const REDIRECT_RE = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /;
const REDIRECT_RETRIES = 3;

export function isRedirect(error: unknown): boolean {
  return error instanceof Error && REDIRECT_RE.test(error.message);
}

/** Asks the cluster for its slot map again (resolves when done, or failed: the retry will tell). */
function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise((resolve) => cluster.refreshSlotsCache(() => resolve()));
}

/**
 * Runs `command` (a script call, a read) and, on a cluster, runs it again when it failed with MOVED, ASK,
 * TRYAGAIN or CLUSTERDOWN, after refreshing the slot map: ioredis follows a redirect by itself only when
 * every command of an (auto-)pipeline got the same one, so commands for several slots of one node, batched
 * after a failover or during a resharding, would otherwise keep failing until something refreshed the map.
 * A redirected command did not run, so running it again is safe; the scripts are idempotent anyway.
 */
export async function withRedirects<T>(client: RedisClient, command: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await command();
    } catch (error) {
      if (attempt >= REDIRECT_RETRIES || !isCluster(client) || !isRedirect(error)) throw error;
      await refreshSlots(client);
      if (attempt > 0) await sleep(50 * attempt);
    }
  }
}
