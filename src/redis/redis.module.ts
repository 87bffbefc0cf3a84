import { Global, Inject, Injectable, Logger, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { redisConfig, type RedisConfig } from '../config/configuration.js';
import { redactUrl } from '../config/env-reader.js';
import { isCluster, primaries, REDIS_CLIENT, type RedisClient } from './redis-client.js';
import { defineScripts } from './redis-scripts.js';

/** The longest start-up waits for a Redis that answers without error but is not ready (loading its data). */
const STARTUP_WAIT_MS = 60_000;

/** Redis's `hash-max-listpack-value` this service is measured and recommended with (docs/OPERATIONS.md, "Redis"). */
export const RECOMMENDED_HASH_MAX_LISTPACK_VALUE = 4096;

/**
 * Owns the Redis connection (a standalone, Sentinel or Cluster client): connects at start (failing start-up
 * with a clear message if Redis does not answer), logs the topology it found, and closes last on shutdown,
 * after the transport stopped consuming.
 */
@Injectable()
export class RedisLifecycle implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Redis');

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: RedisClient,
    @Inject(redisConfig.KEY) private readonly config: RedisConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    // The socket error says why (ECONNREFUSED, WRONGPASS, a TLS failure); connect() itself often only
    // says the connection closed. Through Sentinel, the client asks the Sentinels again and again while
    // none names the master (wrong master name, Sentinel password or address): once the command timeout
    // has passed with errors reported, start-up fails, and what the Sentinels answered is the reason given.
    // A Redis that answers but is still loading its data reports no error: it is waited for, up to
    // STARTUP_WAIT_MS.
    let lastError: Error | undefined;
    let sentinelError: Error | undefined;
    const remember = (error: Error) => (lastError = error);
    const rememberSentinel = (error: Error) => (sentinelError = error);
    this.redis.on('error', remember);
    this.redis.on('sentinelError', rememberSentinel);
    const ms = this.config.commandTimeoutMs;
    try {
      const connected = this.redis.connect().then(() => true);
      const started = Date.now();
      while (!(await Promise.race([connected, sleep(ms, false, { ref: false })]))) {
        const waited = Date.now() - started;
        if (sentinelError || lastError || waited >= STARTUP_WAIT_MS) throw new Error(`not connected after ${waited} ms`);
      }
      await this.redis.ping();
    } catch (error) {
      this.redis.disconnect();
      const cause = sentinelError ?? lastError;
      const reason = cause && cause !== error ? `${cause.message} (${(error as Error).message})` : (error as Error).message;
      throw new Error(`cannot connect to Redis at ${this.where()}: ${reason}`, { cause: error });
    } finally {
      this.redis.off('error', remember);
      this.redis.off('sentinelError', rememberSentinel);
    }
    try {
      await this.checkTopology();
      await this.checkWaitAof();
    } catch (error) {
      this.redis.disconnect();
      throw error;
    }
    await this.adviseHashEncoding();
    this.redis.on('error', (error: Error) => this.logger.warn({ msg: 'redis connection error', error: error.message }));
    this.logger.log({ msg: 'connected', url: this.where() });
  }

  /**
   * Logs the topology found (standalone, Sentinel, or a cluster with its primaries and replicas). A
   * standalone client on a node of a cluster stops start-up: its keys of other slots would fail one by one
   * (MOVED); the cluster client (META_AGENT_REDIS_CLUSTER_NODES) is what serves a cluster. A Redis that does
   * not allow INFO (an ACL without it) cannot be checked; that is logged, and start-up goes on.
   */
  private async checkTopology(): Promise<void> {
    const wait = this.config.waitReplicas > 0 ? { wait_replicas: this.config.waitReplicas } : {};
    if (isCluster(this.redis)) {
      const masters = this.redis.nodes('master');
      if (masters.length === 0) throw new Error(`Redis Cluster at ${this.where()} has no primary serving slots`);
      // As the cluster sees itself (CLUSTER NODES), not the client's pool, which learns replicas late.
      const [info, nodes] = await Promise.all([masters[0].cluster('INFO'), masters[0].cluster('NODES') as Promise<string>]);
      const { primaries, replicas } = countClusterNodes(nodes);
      const state = /^cluster_state:(\S+)/m.exec(info)?.[1] ?? 'unknown';
      this.logger.log({
        msg: `Redis topology: cluster with ${primaries.length} primaries and ${replicas} replicas (cluster_state:${state})`,
        primaries,
        ...wait,
      });
      return;
    }
    let info: string;
    try {
      info = await this.redis.info();
    } catch (error) {
      this.logger.warn({ msg: 'cannot read the Redis topology (INFO failed)', error: (error as Error).message });
      return;
    }
    if (/^cluster_enabled:1\s*$/m.test(info)) {
      throw new Error(
        `Redis at ${this.where()} runs in cluster mode (INFO cluster: cluster_enabled:1): set META_AGENT_REDIS_CLUSTER_NODES to its nodes (host:port,...) to use a Redis Cluster`,
      );
    }
    const replicas = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0);
    const kind = this.config.sentinels.length > 0 ? `sentinel master ${this.config.sentinelMaster}` : 'standalone';
    this.logger.log({ msg: `Redis topology: ${kind} with ${replicas} connected replicas`, ...wait });
  }

  /** META_AGENT_REDIS_WAIT_AOF needs WAITAOF (Redis 7.2+, Valkey 8) on every primary: else start-up stops. */
  private async checkWaitAof(): Promise<void> {
    if (!this.config.waitAof) return;
    for (const node of primaries(this.redis)) {
      const reply = (await node.call('COMMAND', 'INFO', 'WAITAOF')) as unknown[];
      if (!Array.isArray(reply) || !Array.isArray(reply[0])) {
        throw new Error(
          `META_AGENT_REDIS_WAIT_AOF is set but Redis at ${node.options.host}:${node.options.port} has no WAITAOF command (Redis 7.2+ or Valkey 8 needed): unset it or upgrade Redis`,
        );
      }
    }
  }

  /**
   * A workflow's hashes hold values longer than Redis's default `hash-max-listpack-value` (64 bytes: the
   * trigger, the signals), so by default Redis keeps them as hash tables, about 80 bytes per field; with 4096
   * they stay compact listpacks, about a third less memory per workflow (docs/OPERATIONS.md, "Redis"). A
   * Redis setting, not the service's to change: an info line says so when it is lower. Redis that refuses
   * CONFIG GET (managed services, ACLs) is not asked twice.
   */
  private async adviseHashEncoding(): Promise<void> {
    try {
      const reply = (await this.redis.config('GET', 'hash-max-listpack-value')) as string[];
      const value = Number(reply[1]);
      if (Number.isFinite(value) && value < RECOMMENDED_HASH_MAX_LISTPACK_VALUE) {
        this.logger.log({
          msg: `Redis hash-max-listpack-value is ${value}: workflows take about a third more memory than with ${RECOMMENDED_HASH_MAX_LISTPACK_VALUE} (docs/OPERATIONS.md, "Redis")`,
        });
      }
    } catch {
      /* CONFIG not allowed: nothing to advise on */
    }
  }

  private where(): string {
    const { sentinels, sentinelMaster, url, clusterNodes } = this.config;
    if (clusterNodes.length > 0) return `cluster via ${clusterNodes.map((s) => `${s.host}:${s.port}`).join(',')}`;
    if (sentinels.length === 0) return redactUrl(url);
    return `sentinel master ${sentinelMaster} via ${sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  }

  async onApplicationShutdown(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

/**
 * Primaries serving slots and replicas, both not failed, from a `CLUSTER NODES` reply
 * (`<id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> [slots...]`).
 */
export function countClusterNodes(reply: string): { primaries: string[]; replicas: number } {
  const primaries: string[] = [];
  let replicas = 0;
  for (const line of reply.split('\n')) {
    const fields = line.trim().split(' ');
    if (fields.length < 8) continue;
    const flags = fields[2].split(',');
    if (flags.includes('fail') || flags.includes('noaddr')) continue;
    if (flags.includes('master') && fields.length > 8) primaries.push(fields[1].split('@')[0]);
    else if (flags.includes('slave')) replicas++;
  }
  return { primaries: primaries.sort(), replicas };
}

/** Connection options beyond the URL: credentials, TLS files, Sentinel. (A cluster takes the URL's credentials too.) */
export function redisConnectionOptions(config: RedisConfig): RedisOptions {
  const options: RedisOptions = {};
  if (config.username) options.username = config.username;
  if (config.password) options.password = config.password;
  const { caFile, certFile, keyFile } = config.tls;
  if (caFile || certFile || config.url.startsWith('rediss:')) {
    options.tls = {
      ca: caFile ? readFileSync(caFile) : undefined,
      cert: certFile ? readFileSync(certFile) : undefined,
      key: keyFile ? readFileSync(keyFile) : undefined,
    };
  }
  if (config.sentinels.length > 0) {
    Object.assign(options, {
      sentinels: config.sentinels,
      name: config.sentinelMaster,
      sentinelPassword: config.sentinelPassword,
      sentinelTLS: options.tls,
      enableTLSForSentinelMode: options.tls !== undefined,
    });
  }
  return options;
}

/** A cluster client has no URL: the credentials written in REDIS_URL go in its nodes' options. */
function urlCredentials(url: string): Pick<RedisOptions, 'username' | 'password'> {
  const parsed = new URL(url.split(',')[0].trim());
  const out: Pick<RedisOptions, 'username' | 'password'> = {};
  if (parsed.username) out.username = decodeURIComponent(parsed.username);
  if (parsed.password) out.password = decodeURIComponent(parsed.password);
  return out;
}

function createCluster(config: RedisConfig): Cluster {
  const cluster = new Cluster(config.clusterNodes, {
    lazyConnect: true,
    // Per node: one connection, auto-pipelined, so the per-shard calls of a sweep go to each node in one
    // write, and a WAIT sent on a node's connection follows the writes it must cover.
    enableAutoPipelining: true,
    scaleReads: 'master',
    clusterRetryStrategy: (attempt: number) => Math.min(attempt * 50, 200),
    redisOptions: {
      ...urlCredentials(config.url),
      ...redisConnectionOptions(config),
      maxRetriesPerRequest: 1,
      commandTimeout: config.commandTimeoutMs,
      connectTimeout: config.commandTimeoutMs,
    },
  });
  defineScripts(cluster);
  return cluster;
}

/** The client the settings ask for (lazy: `connect()` it), the scripts defined on it. */
export function createRedisClient(config: RedisConfig): RedisClient {
  if (config.clusterNodes.length > 0) return createCluster(config);
  const redis = new Redis(config.url, {
    ...redisConnectionOptions(config),
    lazyConnect: true,
    // Fail a command fast while Redis is away: the message is naked and retried, never held in memory.
    maxRetriesPerRequest: 1,
    commandTimeout: config.commandTimeoutMs,
    connectTimeout: config.commandTimeoutMs,
    // Reconnect quickly and keep trying every 200 ms: work (timeouts included) resumes within that of Redis
    // being back, instead of up to a second later (docs/RELIABILITY.md).
    retryStrategy: (attempt: number) => Math.min(attempt * 50, 200),
    enableAutoPipelining: true,
  });
  defineScripts(redis);
  return redis;
}

@Global()
@Module({
  providers: [{ provide: REDIS_CLIENT, useFactory: createRedisClient, inject: [redisConfig.KEY] }, RedisLifecycle],
  exports: [REDIS_CLIENT],
})
export class RedisModule {}
