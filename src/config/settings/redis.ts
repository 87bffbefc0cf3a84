import { ConfigValidationError, PREFIX, type EnvReader } from '../env-reader.js';

/** Redis: the connection (URL, credentials, TLS, Sentinel or Cluster), key layout, timeouts, replication waits. */
export function readRedisSettings(r: EnvReader) {
  return {
    url: r.url('REDIS_URL', 'redis://localhost:6379', ['redis:', 'rediss:'], 'Redis URL (`rediss://` for TLS; user and password in the URL).'),
    username: r.optional('REDIS_USERNAME', 'Redis ACL user (Redis 6+); or put it in the URL.'),
    password: r.secret('REDIS_PASSWORD', 'Redis password (AUTH); or put it in the URL.'),
    tls: {
      caFile: r.file('REDIS_TLS_CA_FILE', 'CA certificate(s) to verify Redis (implies TLS, as does a `rediss://` URL).'),
      certFile: r.file('REDIS_TLS_CERT_FILE', 'Client certificate for Redis mutual TLS (with META_AGENT_REDIS_TLS_KEY_FILE).'),
      keyFile: r.file('REDIS_TLS_KEY_FILE', 'Client key for Redis mutual TLS.'),
    },
    sentinels: r.hostPorts(
      'REDIS_SENTINELS',
      'Redis Sentinel addresses (`host:port,...`); when set, the master is found through them and REDIS_URL only supplies credentials and database.',
    ),
    clusterNodes: r.hostPorts(
      'REDIS_CLUSTER_NODES',
      'Redis Cluster seed nodes (`host:port,...`; a few are enough, the client discovers the rest); when set, the service uses a cluster client and REDIS_URL only supplies credentials and TLS. Not with REDIS_SENTINELS.',
    ),
    sentinelMaster: r.string('REDIS_SENTINEL_MASTER', 'mymaster', 'Name of the master group the Sentinels watch.', /^[A-Za-z0-9_.-]{1,64}$/, 'a master name'),
    sentinelPassword: r.secret('REDIS_SENTINEL_PASSWORD', 'Password of the Sentinels themselves (when they require one).'),
    prefix: r.string(
      'REDIS_PREFIX',
      'ma',
      'Key prefix (inside the hash tag), so several orchestrators can share one Redis.',
      /^[A-Za-z0-9_.-]{1,32}$/,
      'a prefix of letters, digits, _ . -',
    ),
    shards: r.int('REDIS_SHARDS', 16, 1, 1024, 'Number of shards (hash tags) workflows are spread over; change only on an empty Redis.'),
    commandTimeoutMs: r.int(
      'REDIS_COMMAND_TIMEOUT_MS',
      5000,
      50,
      120000,
      'A Redis command failing after this is a transient error: the message is retried. At start, the connect fails after this when Redis or the Sentinels report errors; a Redis still loading its data is waited for up to 60 s.',
    ),
    waitReplicas: r.int(
      'REDIS_WAIT_REPLICAS',
      0,
      0,
      16,
      'When above 0, every state write an ack or a decision depends on is followed by `WAIT <n> <REDIS_WAIT_TIMEOUT_MS>` on the connection (the cluster node) that took it, one WAIT per connection per event-loop turn; fewer confirmations are a transient error (the message is retried, held while the replicas are behind). 0: no WAIT.',
    ),
    waitTimeoutMs: r.int(
      'REDIS_WAIT_TIMEOUT_MS',
      1000,
      1,
      60000,
      'How long a WAIT (or WAITAOF) waits for the replicas; must be below REDIS_COMMAND_TIMEOUT_MS.',
    ),
    waitAof: r.bool(
      'REDIS_WAIT_AOF',
      false,
      "Wait with `WAITAOF 1 <REDIS_WAIT_REPLICAS> <timeout>` instead of WAIT: the writes fsynced to the local AOF and to that many replicas' (with 0 replicas: the local fsync only); Redis 7.2+ or Valkey 8 with appendonly on. Start-up stops if the server lacks WAITAOF.",
    ),
  };
}

export type RedisSettings = ReturnType<typeof readRedisSettings>;

/** What one setting alone cannot say. */
export function checkRedisSettings(redis: RedisSettings): void {
  if (Boolean(redis.tls.certFile) !== Boolean(redis.tls.keyFile))
    throw new ConfigValidationError(`${PREFIX}REDIS_TLS_CERT_FILE`, 'the client certificate and key files go together');
  if (redis.clusterNodes.length > 0 && redis.sentinels.length > 0) {
    throw new ConfigValidationError(`${PREFIX}REDIS_CLUSTER_NODES`, 'set either META_AGENT_REDIS_CLUSTER_NODES or META_AGENT_REDIS_SENTINELS, not both');
  }
  if ((redis.waitReplicas > 0 || redis.waitAof) && redis.waitTimeoutMs >= redis.commandTimeoutMs) {
    throw new ConfigValidationError(
      `${PREFIX}REDIS_WAIT_TIMEOUT_MS`,
      `${redis.waitTimeoutMs} is not below META_AGENT_REDIS_COMMAND_TIMEOUT_MS (${redis.commandTimeoutMs})`,
    );
  }
}
