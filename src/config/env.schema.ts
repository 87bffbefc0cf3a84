import { accessSync, constants, readFileSync } from 'node:fs';
import { AGENT_NAME, WORKFLOW_TYPE } from '../common/names.js';

/**
 * Every setting of the service: its environment variable, default and parser, in one table.
 * `parseSettings` validates the whole environment at start; the first invalid value throws a
 * `ConfigValidationError` whose message is one line naming the variable and the reason.
 *
 * The template's settings keep their names and defaults (`META_AGENT_` prefix). Each reader call
 * carries the setting's meaning; `describeSettings()` lists them all, and the settings table of
 * docs/OPERATIONS.md is generated from it (`npm run docs:settings`; a test keeps the two in step).
 */
export class ConfigValidationError extends Error {
  constructor(
    readonly variable: string,
    readonly reason: string,
  ) {
    super(`invalid setting ${variable}: ${reason}`);
    this.name = 'ConfigValidationError';
  }
}

const PREFIX = 'META_AGENT_';

type Env = Record<string, string | undefined>;

/** A NATS subject token, stream or consumer name: no spaces, dots or wildcards. */
const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const SUBJECT_RE = /^[^\s.*>]+(\.[^\s.*>]+)*$/;
const FILTER_RE = /^([^\s.*>]+|\*)(\.([^\s.*>]+|\*))*(\.>)?$|^>$/;
const AGENT_RE = AGENT_NAME.re;
const TYPE_RE = WORKFLOW_TYPE.re;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One setting as documented: variable, default as written in the environment, meaning. */
export interface SettingDoc {
  variable: string;
  default: string;
  doc: string;
}

class Reader {
  readonly docs: SettingDoc[] = [];

  constructor(private readonly env: Env) {}

  private note(name: string, def: unknown, doc: string): void {
    this.docs.push({ variable: PREFIX + name, default: Array.isArray(def) ? def.join(',') : String(def), doc });
  }

  private raw(name: string): string | undefined {
    const value = this.env[PREFIX + name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  private fail(name: string, reason: string): never {
    throw new ConfigValidationError(PREFIX + name, reason);
  }

  string(name: string, def: string, doc: string, pattern?: RegExp, what = 'a valid value'): string {
    this.note(name, def, doc);
    const v = this.raw(name) ?? def;
    if (pattern && !pattern.test(v)) this.fail(name, `"${v}" is not ${what}`);
    return v;
  }

  url(name: string, def: string, protocols: string[], doc: string): string {
    this.note(name, def, doc);
    const v = this.raw(name) ?? def;
    for (const part of v.split(',')) {
      let parsed: URL;
      try {
        parsed = new URL(part.trim());
      } catch {
        this.fail(name, `"${redactUrl(part)}" is not a URL`);
      }
      if (!protocols.includes(parsed.protocol)) {
        this.fail(name, `protocol must be one of ${protocols.join(', ')}, got ${parsed.protocol}`);
      }
    }
    return v;
  }

  int(name: string, def: number, min: number, max: number, doc: string): number {
    this.note(name, def, doc);
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!/^-?\d+$/.test(v)) this.fail(name, `"${v}" is not a whole number`);
    const n = Number(v);
    if (n < min || n > max) this.fail(name, `${n} is outside ${min}..${max}`);
    return n;
  }

  float(name: string, def: number, min: number, max: number, doc: string): number {
    this.note(name, def, doc);
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) this.fail(name, `"${v}" is not a number`);
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) this.fail(name, `${n} is outside ${min}..${max}`);
    return n;
  }

  /** A value that may be absent (no default). */
  optional(name: string, doc: string, pattern?: RegExp, what = 'a valid value'): string | undefined {
    this.note(name, '', doc);
    const v = this.raw(name);
    if (v !== undefined && pattern && !pattern.test(v)) this.fail(name, `is not ${what}`);
    return v;
  }

  /**
   * A credential, from `<NAME>` or from the file `<NAME>_FILE` names (Kubernetes secrets mounted as
   * files); never both. Its value is never put in an error message.
   */
  secret(name: string, doc: string): string | undefined {
    this.note(name, '', `${doc} Secret: never logged.`);
    this.note(`${name}_FILE`, '', `A file holding ${PREFIX}${name} (instead of the variable).`);
    const direct = this.env[PREFIX + name];
    const file = this.raw(`${name}_FILE`);
    if (direct !== undefined && direct !== '' && file !== undefined)
      this.fail(`${name}_FILE`, `set either ${PREFIX}${name} or ${PREFIX}${name}_FILE, not both`);
    if (file === undefined) return direct === '' ? undefined : direct;
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (error) {
      this.fail(`${name}_FILE`, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }

  /** A path to a readable file (certificates, credentials), or absent. */
  file(name: string, doc: string): string | undefined {
    this.note(name, '', doc);
    const v = this.raw(name);
    if (v === undefined) return undefined;
    try {
      accessSync(v, constants.R_OK);
    } catch (error) {
      this.fail(name, `cannot read ${v}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    return v;
  }

  /** `host:port` pairs, comma-separated. */
  hostPorts(name: string, doc: string): { host: string; port: number }[] {
    this.note(name, '', doc);
    const v = this.raw(name);
    if (v === undefined) return [];
    return v.split(',').map((part) => {
      const m = /^\s*([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\s*$/.exec(part);
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) this.fail(name, `"${part.trim()}" is not host:port`);
      return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
    });
  }

  bool(name: string, def: boolean, doc: string): boolean {
    this.note(name, def, doc);
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return def;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    this.fail(name, `"${v}" is not a boolean (true/false)`);
  }

  /** A list, written `a,b,c` or as a JSON array `["a","b"]` (pydantic's form, as the template used). */
  list(name: string, def: string[], pattern: RegExp, doc: string): string[] {
    this.note(name, def, doc);
    const v = this.raw(name);
    if (v === undefined) return def;
    let items: unknown[];
    if (v.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(v);
        if (!Array.isArray(parsed)) throw new Error('not an array');
        items = parsed;
      } catch {
        this.fail(name, 'is not a JSON array of strings');
      }
    } else {
      items = v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    }
    for (const item of items) {
      if (typeof item !== 'string' || !pattern.test(item)) this.fail(name, `"${String(item)}" is not a valid name`);
    }
    return [...new Set(items as string[])];
  }

  logLevel(name: string, def: LogLevel, doc: string): LogLevel {
    this.note(name, def.toUpperCase(), doc);
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return def;
    const alias: Record<string, LogLevel> = { warn: 'warning', fatal: 'critical', verbose: 'trace' };
    const level = (alias[v] ?? v) as LogLevel;
    if (!LOG_LEVELS.includes(level)) this.fail(name, `"${v}" is not one of ${LOG_LEVELS.join(', ')}`);
    return level;
  }
}

export function parseSettings(env: Env) {
  return read(new Reader(env));
}

/** Every setting with its default and meaning, in the order of the code (docs are generated from it). */
export function describeSettings(): SettingDoc[] {
  const reader = new Reader({});
  read(reader);
  return reader.docs;
}

function read(r: Reader) {
  const name = r.string(
    'NAME',
    'trading_decision_meta_agent',
    'Name of this orchestrator: the `orchestrator` field of decisions, metric labels, and the default consumer names.',
    NAME_RE,
    'a name of letters, digits, _ and -',
  );

  const app = {
    name,
    logLevel: r.logLevel('LOG_LEVEL', 'info', 'TRACE, DEBUG, INFO, WARNING, ERROR or CRITICAL (JSON log lines at or above it).'),
    httpPort: r.int(
      'METRICS_PORT',
      9090,
      1,
      65535,
      'The one HTTP port: /health, /health/live, /health/ready, /metrics, /openapi.json, and the admin API under /workflows.',
    ),
    healthCheckIntervalMs:
      r.int(
        'HEALTH_CHECK_INTERVAL',
        30,
        1,
        3600,
        'Seconds between background checks of NATS and Redis (`meta_agent_dependency_up`, a log line on each change).',
      ) * 1000,
    shutdownTimeoutMs: r.int(
      'SHUTDOWN_TIMEOUT_MS',
      25000,
      1000,
      600000,
      "On SIGTERM, the longest the drain may take before the process exits anyway (keep below the pod's grace period).",
    ),
    adminTokens: parseAdminTokens(
      r.secret(
        'ADMIN_TOKEN',
        'Bearer token(s) of the admin endpoints (`/workflows`: list, inspect, cancel, decide, extend): one token, or `name:token,name2:token2` (the name is logged with each admin request). Tokens: 16 to 512 characters of `A-Z a-z 0-9 - . _ ~ + /`. Unset: the admin endpoints are off (404).',
      ),
    ),
  };

  const nats = {
    servers: r.url('NATS_URL', 'nats://localhost:4222', ['nats:', 'tls:', 'ws:', 'wss:'], 'NATS server URL(s), comma-separated.'),
    connectTimeoutMs: r.int('NATS_CONNECT_TIMEOUT_MS', 5000, 100, 120000, 'How long start-up waits for NATS before failing; also the JetStream API timeout.'),
    pingIntervalMs: r.int(
      'NATS_PING_INTERVAL_MS',
      20000,
      500,
      600000,
      'How often the client pings its NATS server; after 2 unanswered pings it takes the server for gone and reconnects to another (a node of a cluster that hangs without closing its sockets). 2000 on a cluster: a stuck node costs seconds, not minutes.',
    ),
    auth: {
      user: r.optional('NATS_USER', 'NATS user name (with META_AGENT_NATS_PASSWORD); or put both in the URL.'),
      pass: r.secret('NATS_PASSWORD', 'NATS password.'),
      token: r.secret('NATS_TOKEN', 'NATS authentication token.'),
      nkeySeed: r.secret('NATS_NKEY_SEED', 'NATS NKey seed (`SU...`) for NKey authentication.'),
      credsFile: r.file('NATS_CREDS_FILE', 'NATS `.creds` file (JWT + NKey seed), for decentralized auth.'),
    },
    tls: {
      caFile: r.file('NATS_TLS_CA_FILE', 'CA certificate(s) to verify the NATS server (implies TLS).'),
      certFile: r.file('NATS_TLS_CERT_FILE', 'Client certificate for NATS mutual TLS (with META_AGENT_NATS_TLS_KEY_FILE).'),
      keyFile: r.file('NATS_TLS_KEY_FILE', 'Client key for NATS mutual TLS.'),
    },
    provision: r.bool('PROVISION', true, 'Create missing streams and consumers at start; when false, only check that they exist (start-up fails if not).'),
    streams: {
      signals: r.string('SIGNALS_STREAM', 'SIGNALS', 'Stream of triggers and agent signals (input).', NAME_RE, 'a stream name'),
      decisions: r.string('DECISIONS_STREAM', 'DECISIONS', 'Stream of published decisions.', NAME_RE, 'a stream name'),
      deadLetter: r.string('DEADLETTER_STREAM', 'DEADLETTER', 'Stream of dead-lettered messages.', NAME_RE, 'a stream name'),
    },
    streamMaxAgeSeconds: r.int(
      'STREAM_MAX_AGE_SECONDS',
      7 * 86400,
      0,
      365 * 86400,
      'Max age of messages in the streams this service provisions (0: keep forever).',
    ),
    subjects: {
      signals: r.string('SIGNALS_SUBJECTS', 'signals.>', 'Subjects the signals stream captures.', FILTER_RE, 'a subject filter'),
      trigger: r.string('TRIGGER_SUBJECT', 'signals.normalized', "Subject of triggers (the trigger consumer's filter).", SUBJECT_RE, 'a subject'),
      agents: r.string(
        'AGENT_SUBJECT',
        'signals.enriched.*',
        "Subject filter of agent signals (the enriched consumer's filter).",
        FILTER_RE,
        'a subject filter',
      ),
      decision: r.string('DECISION_SUBJECT', 'orchestrated.decision', 'Subject decisions are published on.', SUBJECT_RE, 'a subject'),
      decisions: r.string('DECISIONS_SUBJECTS', 'orchestrated.>', 'Subjects the decisions stream captures.', FILTER_RE, 'a subject filter'),
      deadLetter: r.string('DEADLETTER_SUBJECT', 'deadletter.signals', 'Subject bad input is dead-lettered to.', SUBJECT_RE, 'a subject'),
      deadLetters: r.string('DEADLETTER_SUBJECTS', 'deadletter.>', 'Subjects the dead-letter stream captures.', FILTER_RE, 'a subject filter'),
    },
    consumers: {
      trigger: r.string(
        'TRIGGER_CONSUMER',
        `${name}-trigger-consumer`,
        'Durable consumer of triggers, shared by all replicas (default: `<NAME>-trigger-consumer`).',
        NAME_RE,
        'a consumer name',
      ),
      agents: r.string(
        'ENRICHED_CONSUMER',
        `${name}-enriched-consumer`,
        'Durable consumer of agent signals, shared by all replicas (default: `<NAME>-enriched-consumer`).',
        NAME_RE,
        'a consumer name',
      ),
    },
    maxDeliveries: r.int(
      'MAX_DELIVERIES',
      20,
      1,
      10000,
      'A message whose handler failed (transiently) this many times is dead-lettered instead of retried. Deliveries lost because a replica died under a message do not count: a message redelivered after going unsettled runs alone, and one whose replica died or hung while it ran alone twice (or this many times, if fewer) is dead-lettered (`poison`) before it runs again. Provisioned consumers get max_deliver = this + 10 as a backstop.',
    ),
    maxMessageBytes: r.int('MAX_MESSAGE_BYTES', 256 * 1024, 64, 64 * 1024 * 1024, 'Larger payloads are bad input (dead-lettered as `payload_too_large`).'),
    maxInFlight: r.int('MAX_IN_FLIGHT', 64, 1, 10000, 'Messages processed at once per consumer and replica (and pulled ahead).'),
    maxPullBytes: r.int(
      'MAX_PULL_BYTES',
      4 * 1024 * 1024,
      1024,
      1024 * 1024 * 1024,
      'No new pull while the messages in flight of a consumer (per replica) hold this many bytes: with MAX_IN_FLIGHT it bounds the memory a burst of large messages can take (to this plus one pull of MAX_IN_FLIGHT messages).',
    ),
    ackWaitMs: r.int('ACK_WAIT_MS', 30000, 1000, 3600000, 'Consumer ack wait when provisioning: an unsettled message is redelivered after it.'),
    nakDelayMs: r.int('NAK_DELAY_MS', 500, 0, 600000, 'First retry delay after a transient failure; doubles per delivery.'),
    nakMaxDelayMs: r.int('NAK_MAX_DELAY_MS', 30000, 0, 3600000, 'Cap of the retry delay.'),
    streamReplicas: r.int(
      'STREAM_REPLICAS',
      1,
      1,
      5,
      'Replicas (num_replicas) of the streams this service provisions (a NATS cluster of at least that many JetStream servers). An existing stream with fewer is raised to it when provisioning, and stops start-up otherwise.',
    ),
    duplicateWindowMs: r.int(
      'DUPLICATE_WINDOW_MS',
      120000,
      1000,
      86400000,
      'JetStream de-duplication window of the decisions and dead-letter streams (Nats-Msg-Id).',
    ),
    audit: {
      enabled: r.bool(
        'AUDIT',
        true,
        'Audit trail: every workflow event (trigger, signal, freeze with its snapshot, decision, timeout, admin action) is published to the audit stream, fire-and-forget (README "Audit trail"). Off: nothing is emitted and no audit stream is needed.',
      ),
      stream: r.string('AUDIT_STREAM', 'AUDIT', 'Stream of the audit trail.', NAME_RE, 'a stream name'),
      subjectPrefix: r.string(
        'AUDIT_SUBJECT_PREFIX',
        'audit',
        'Audit events are published on `<prefix>.<corr_id>.<event>` (a `.` in the corr_id written `~`); the audit stream captures `<prefix>.>`.',
        SUBJECT_RE,
        'a subject',
      ),
      maxAgeSeconds: r.int(
        'AUDIT_MAX_AGE_SECONDS',
        30 * 86400,
        0,
        3650 * 86400,
        'Max age of audit events when the audit stream is provisioned (0: keep forever); how far back history and replay reach.',
      ),
      bufferSize: r.int(
        'AUDIT_BUFFER',
        10000,
        1,
        1_000_000,
        'Audit events waiting to be sent per replica (queued, or written and not yet read by the server); past it (NATS slow or away) new events are dropped and counted (`meta_agent_audit_dropped_total`), never waited for.',
      ),
    },
  };

  const redis = {
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

  const workflow = {
    defaultType: r.string(
      'DEFAULT_WORKFLOW_TYPE',
      'trading',
      'Workflow type of triggers without `workflow_type`; a strategy must serve it.',
      TYPE_RE,
      'a workflow type ([a-z0-9_-])',
    ),
    workflowsFile: r.file(
      'WORKFLOWS_FILE',
      'A YAML (or `.json`) file of workflow types defined without code (README "Adding a workflow type"), checked at start against `workflows.schema.json`: an invalid file, or a type also served by a provider class, stops start-up.',
    ),
    defaultTimeoutSeconds: r.int(
      'DEFAULT_TIMEOUT_SECONDS',
      300,
      1,
      7 * 86400,
      'Timeout of workflows whose strategy sets none (trading sets 120/180/300 by instrument).',
    ),
    maxTimeoutSeconds: r.int('MAX_TIMEOUT_SECONDS', 3600, 1, 7 * 86400, "Upper bound of any workflow timeout, including a trigger's `timeout_seconds`."),
    maxConcurrentWorkflows: r.int(
      'MAX_CONCURRENT_WORKFLOWS',
      100,
      1,
      100_000_000,
      'Above this many active workflows (all replicas, counted in Redis) replicas stop pulling triggers, and those already pulled wait (held, not naked) until a workflow ends.',
    ),
    cleanupIntervalMs:
      r.int(
        'WORKFLOW_CLEANUP_INTERVAL',
        60,
        1,
        86400,
        'Seconds between passes that delete early-signal buffers whose trigger never came (counted as orphaned).',
      ) * 1000,
    requiredAgents: r.list(
      'REQUIRED_AGENTS',
      ['momentum', 'risk'],
      AGENT_RE,
      'Agents the trading strategy needs before it can decide (plus `sentiment` for CRYPTO); also accepted agents.',
    ),
    optionalAgents: r.list(
      'OPTIONAL_AGENTS',
      ['sentiment', 'correlation', 'macro'],
      AGENT_RE,
      'Further accepted agents. A signal from an agent in neither list is bad input (both empty: any agent).',
    ),
    agentTimeoutSeconds: r.int(
      'AGENT_TIMEOUT_SECONDS',
      60,
      0,
      7 * 86400,
      'A signal whose `timestamp` is older than this on arrival is stale: acked, counted late, not used (0: off).',
    ),
    minConfidenceThreshold: r.float(
      'MIN_CONFIDENCE_THRESHOLD',
      0.5,
      0,
      1,
      'A trade whose final confidence is below it becomes `no_trade`, reason `insufficient_confidence`.',
    ),
    minAgentsRequired: r.int('MIN_AGENTS_REQUIRED', 2, 0, 1000, 'The trading strategy decides only with signals from at least this many agents.'),
    earlySignalGraceSeconds: r.int(
      'EARLY_SIGNAL_GRACE_SECONDS',
      30,
      0,
      86400,
      'How long a signal that arrived before its trigger is kept for it (0: such signals are orphaned at once).',
    ),
    retentionSeconds: r.int(
      'RETENTION_SECONDS',
      86400,
      1,
      30 * 86400,
      'How long a finished workflow stays in Redis (inspection, and de-duplication of repeated triggers).',
    ),
    sweepIntervalMs: r.int('SWEEP_INTERVAL_MS', 250, 10, 60000, 'Sweeper period: timeouts fire within about this long after their deadline.'),
    sweepBatch: r.int(
      'SWEEP_BATCH',
      500,
      1,
      100000,
      'Bounds the sweeper on each replica: at most this many due workflows per shard per step, and at most 4 × this many jobs (timeouts, publishes; at least 2 × REDIS_SHARDS) running at once; a step claims no more than there is room to run (the sweeper loops without sleeping while a shard has more due).',
    ),
    claimLeaseMs: r.int(
      'CLAIM_LEASE_MS',
      1500,
      100,
      600000,
      'How long a frozen workflow (being decided on its signals, timed out, or ended by an operator) is left to the replica deciding it before another replica takes it over and decides it again from the same snapshot; with the sweep interval, it bounds how late a decision can be when its decider dies (1.5 s + 0.25 s by default).',
    ),
  };
  if (workflow.defaultTimeoutSeconds > workflow.maxTimeoutSeconds) {
    throw new ConfigValidationError(
      `${PREFIX}DEFAULT_TIMEOUT_SECONDS`,
      `${workflow.defaultTimeoutSeconds} is above META_AGENT_MAX_TIMEOUT_SECONDS (${workflow.maxTimeoutSeconds})`,
    );
  }
  if (nats.nakMaxDelayMs < nats.nakDelayMs) {
    throw new ConfigValidationError(`${PREFIX}NAK_MAX_DELAY_MS`, `is below META_AGENT_NAK_DELAY_MS (${nats.nakDelayMs})`);
  }
  const methods = [
    nats.auth.token && 'META_AGENT_NATS_TOKEN',
    nats.auth.nkeySeed && 'META_AGENT_NATS_NKEY_SEED',
    nats.auth.credsFile && 'META_AGENT_NATS_CREDS_FILE',
    (nats.auth.user || nats.auth.pass) && 'META_AGENT_NATS_USER/PASSWORD',
  ].filter(Boolean);
  if (methods.length > 1) throw new ConfigValidationError(`${PREFIX}NATS_TOKEN`, `choose one NATS authentication method, not ${methods.join(' and ')}`);
  if (Boolean(nats.auth.user) !== Boolean(nats.auth.pass))
    throw new ConfigValidationError(`${PREFIX}NATS_USER`, 'META_AGENT_NATS_USER and META_AGENT_NATS_PASSWORD go together');
  if (Boolean(nats.tls.certFile) !== Boolean(nats.tls.keyFile))
    throw new ConfigValidationError(`${PREFIX}NATS_TLS_CERT_FILE`, 'the client certificate and key files go together');
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
  if (nats.consumers.trigger === nats.consumers.agents) {
    throw new ConfigValidationError(`${PREFIX}ENRICHED_CONSUMER`, 'must differ from META_AGENT_TRIGGER_CONSUMER');
  }

  return { app, nats, redis, workflow };
}

export type Settings = ReturnType<typeof parseSettings>;

/** One admin bearer token and the name it is known by in logs. */
export interface AdminToken {
  name: string;
  token: string;
}

/** An RFC 6750 bearer token (`b64token`), long enough not to be guessed. */
const ADMIN_TOKEN_RE = /^[A-Za-z0-9\-._~+/]{16,512}=*$/;
const ADMIN_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * `META_AGENT_ADMIN_TOKEN`: one token (named `admin`), or `name:token` entries separated by commas or
 * newlines (a mounted file may hold one per line). No error message ever contains a token.
 */
export function parseAdminTokens(value: string | undefined): AdminToken[] {
  if (value === undefined) return [];
  const fail = (reason: string): never => {
    throw new ConfigValidationError(`${PREFIX}ADMIN_TOKEN`, reason);
  };
  const entries = value
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const tokens = entries.map((entry, i): AdminToken => {
    const colon = entry.indexOf(':');
    const name =
      colon < 0 ? (entries.length === 1 ? 'admin' : fail(`entry ${i + 1} has no name (write name:token when there are several)`)) : entry.slice(0, colon);
    const token = colon < 0 ? entry : entry.slice(colon + 1);
    if (!ADMIN_NAME_RE.test(name)) fail(`entry ${i + 1}: the name must be 1 to 64 characters of A-Z a-z 0-9 _ . -`);
    if (!ADMIN_TOKEN_RE.test(token)) fail(`entry ${i + 1} (${name}): a token must be 16 to 512 characters of A-Z a-z 0-9 - . _ ~ + / (then = padding)`);
    return { name, token };
  });
  if (new Set(tokens.map((t) => t.name)).size !== tokens.length) fail('two tokens have the same name');
  if (new Set(tokens.map((t) => t.token)).size !== tokens.length) fail('two names have the same token');
  return tokens;
}

/** Replaces the password (or token) of a URL list with `***`, for logs and /health. */
export function redactUrl(urls: string): string {
  return urls
    .split(',')
    .map((u) => u.replace(/\/\/([^:@/]*)(:[^@/]*)?@/, (_m, user: string, pass?: string) => `//${pass ? `${user}:***` : '***'}@`))
    .join(',');
}
