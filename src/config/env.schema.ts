/**
 * Every setting of the service: its environment variable, default and parser, in one table.
 * `parseSettings` validates the whole environment at start; the first invalid value throws a
 * `ConfigValidationError` whose message is one line naming the variable and the reason.
 *
 * The template's settings keep their names and defaults (`META_AGENT_` prefix). What the README
 * and docs/OPERATIONS.md say about each one is generated from the `doc` field here.
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
const AGENT_RE = /^[A-Za-z0-9_-]{1,64}$/;
const TYPE_RE = /^[a-z0-9_-]{1,64}$/;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

class Reader {
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const value = this.env[PREFIX + name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  private fail(name: string, reason: string): never {
    throw new ConfigValidationError(PREFIX + name, reason);
  }

  string(name: string, def: string, pattern?: RegExp, what = 'a valid value'): string {
    const v = this.raw(name) ?? def;
    if (pattern && !pattern.test(v)) this.fail(name, `"${v}" is not ${what}`);
    return v;
  }

  url(name: string, def: string, protocols: string[]): string {
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

  int(name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!/^-?\d+$/.test(v)) this.fail(name, `"${v}" is not a whole number`);
    const n = Number(v);
    if (n < min || n > max) this.fail(name, `${n} is outside ${min}..${max}`);
    return n;
  }

  float(name: string, def: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) this.fail(name, `"${v}" is not a number`);
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) this.fail(name, `${n} is outside ${min}..${max}`);
    return n;
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return def;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    this.fail(name, `"${v}" is not a boolean (true/false)`);
  }

  /** A list, written `a,b,c` or as a JSON array `["a","b"]` (pydantic's form, as the template used). */
  list(name: string, def: string[], pattern: RegExp): string[] {
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
      items = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
    }
    for (const item of items) {
      if (typeof item !== 'string' || !pattern.test(item)) this.fail(name, `"${String(item)}" is not a valid name`);
    }
    return [...new Set(items as string[])];
  }

  logLevel(name: string, def: LogLevel): LogLevel {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return def;
    const alias: Record<string, LogLevel> = { warn: 'warning', fatal: 'critical', verbose: 'trace' };
    const level = (alias[v] ?? v) as LogLevel;
    if (!LOG_LEVELS.includes(level)) this.fail(name, `"${v}" is not one of ${LOG_LEVELS.join(', ')}`);
    return level;
  }
}

export function parseSettings(env: Env) {
  const r = new Reader(env);
  const name = r.string('NAME', 'trading_decision_meta_agent', NAME_RE, 'a name of letters, digits, _ and -');

  const app = {
    name,
    logLevel: r.logLevel('LOG_LEVEL', 'info'),
    httpPort: r.int('METRICS_PORT', 9090, 1, 65535),
    healthCheckIntervalMs: r.int('HEALTH_CHECK_INTERVAL', 30, 1, 3600) * 1000,
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 25000, 1000, 600000),
  };

  const nats = {
    servers: r.url('NATS_URL', 'nats://localhost:4222', ['nats:', 'tls:', 'ws:', 'wss:']),
    connectTimeoutMs: r.int('NATS_CONNECT_TIMEOUT_MS', 5000, 100, 120000),
    provision: r.bool('PROVISION', true),
    streams: {
      signals: r.string('SIGNALS_STREAM', 'SIGNALS', NAME_RE, 'a stream name'),
      decisions: r.string('DECISIONS_STREAM', 'DECISIONS', NAME_RE, 'a stream name'),
      deadLetter: r.string('DEADLETTER_STREAM', 'DEADLETTER', NAME_RE, 'a stream name'),
    },
    subjects: {
      signals: r.string('SIGNALS_SUBJECTS', 'signals.>', FILTER_RE, 'a subject filter'),
      trigger: r.string('TRIGGER_SUBJECT', 'signals.normalized', SUBJECT_RE, 'a subject'),
      agents: r.string('AGENT_SUBJECT', 'signals.enriched.*', FILTER_RE, 'a subject filter'),
      decision: r.string('DECISION_SUBJECT', 'orchestrated.decision', SUBJECT_RE, 'a subject'),
      decisions: r.string('DECISIONS_SUBJECTS', 'orchestrated.>', FILTER_RE, 'a subject filter'),
      deadLetter: r.string('DEADLETTER_SUBJECT', 'deadletter.signals', SUBJECT_RE, 'a subject'),
      deadLetters: r.string('DEADLETTER_SUBJECTS', 'deadletter.>', FILTER_RE, 'a subject filter'),
    },
    consumers: {
      trigger: r.string('TRIGGER_CONSUMER', `${name}-trigger-consumer`, NAME_RE, 'a consumer name'),
      agents: r.string('ENRICHED_CONSUMER', `${name}-enriched-consumer`, NAME_RE, 'a consumer name'),
    },
    maxDeliveries: r.int('MAX_DELIVERIES', 20, 1, 10000),
    maxMessageBytes: r.int('MAX_MESSAGE_BYTES', 256 * 1024, 64, 64 * 1024 * 1024),
    maxInFlight: r.int('MAX_IN_FLIGHT', 64, 1, 10000),
    ackWaitMs: r.int('ACK_WAIT_MS', 30000, 1000, 3600000),
    nakDelayMs: r.int('NAK_DELAY_MS', 500, 0, 600000),
    nakMaxDelayMs: r.int('NAK_MAX_DELAY_MS', 30000, 0, 3600000),
    duplicateWindowMs: r.int('DUPLICATE_WINDOW_MS', 120000, 1000, 86400000),
  };

  const redis = {
    url: r.url('REDIS_URL', 'redis://localhost:6379', ['redis:', 'rediss:']),
    prefix: r.string('REDIS_PREFIX', 'ma', /^[A-Za-z0-9_.-]{1,32}$/, 'a prefix of letters, digits, _ . -'),
    shards: r.int('REDIS_SHARDS', 16, 1, 1024),
    commandTimeoutMs: r.int('REDIS_COMMAND_TIMEOUT_MS', 5000, 50, 120000),
  };

  const requiredAgents = r.list('REQUIRED_AGENTS', ['momentum', 'risk'], AGENT_RE);
  const workflow = {
    defaultType: r.string('DEFAULT_WORKFLOW_TYPE', 'trading', TYPE_RE, 'a workflow type ([a-z0-9_-])'),
    defaultTimeoutSeconds: r.int('DEFAULT_TIMEOUT_SECONDS', 300, 1, 7 * 86400),
    maxTimeoutSeconds: r.int('MAX_TIMEOUT_SECONDS', 3600, 1, 7 * 86400),
    maxConcurrentWorkflows: r.int('MAX_CONCURRENT_WORKFLOWS', 100, 1, 100_000_000),
    cleanupIntervalMs: r.int('WORKFLOW_CLEANUP_INTERVAL', 60, 1, 86400) * 1000,
    requiredAgents,
    optionalAgents: r.list('OPTIONAL_AGENTS', ['sentiment', 'correlation', 'macro'], AGENT_RE),
    agentTimeoutSeconds: r.int('AGENT_TIMEOUT_SECONDS', 60, 0, 7 * 86400),
    minConfidenceThreshold: r.float('MIN_CONFIDENCE_THRESHOLD', 0.5, 0, 1),
    minAgentsRequired: r.int('MIN_AGENTS_REQUIRED', 2, 0, 1000),
    earlySignalGraceSeconds: r.int('EARLY_SIGNAL_GRACE_SECONDS', 30, 0, 86400),
    retentionSeconds: r.int('RETENTION_SECONDS', 86400, 1, 30 * 86400),
    sweepIntervalMs: r.int('SWEEP_INTERVAL_MS', 250, 10, 60000),
    sweepBatch: r.int('SWEEP_BATCH', 500, 1, 100000),
    claimLeaseMs: r.int('CLAIM_LEASE_MS', 2000, 100, 600000),
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
  if (nats.consumers.trigger === nats.consumers.agents) {
    throw new ConfigValidationError(`${PREFIX}ENRICHED_CONSUMER`, 'must differ from META_AGENT_TRIGGER_CONSUMER');
  }

  return { app, nats, redis, workflow };
}

export type Settings = ReturnType<typeof parseSettings>;

/** Replaces the password (or token) of a URL list with `***`, for logs and /health. */
export function redactUrl(urls: string): string {
  return urls
    .split(',')
    .map((u) => u.replace(/\/\/([^:@/]*)(:[^@/]*)?@/, (_m, user: string, pass?: string) => `//${pass ? `${user}:***` : '***'}@`))
    .join(',');
}
