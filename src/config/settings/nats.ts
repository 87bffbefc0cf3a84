import { ConfigValidationError, PREFIX, type EnvReader } from '../env-reader.js';
import { readAuditSettings } from './audit.js';
import { FILTER_RE, NAME_RE, SUBJECT_RE } from './nats-names.js';

/**
 * NATS and JetStream: the connection (URLs, authentication, TLS), the streams, subjects and durable consumers,
 * how messages are pulled, retried and dead-lettered, and (`audit`) the audit trail's stream. `name` is the
 * orchestrator's (META_AGENT_NAME): the consumers are named after it by default.
 */
export function readNatsSettings(r: EnvReader, name: string) {
  return {
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
    audit: readAuditSettings(r),
  };
}

export type NatsSettings = ReturnType<typeof readNatsSettings>;

/** What one setting alone cannot say. */
export function checkNatsSettings(nats: NatsSettings): void {
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
  if (nats.consumers.trigger === nats.consumers.agents) {
    throw new ConfigValidationError(`${PREFIX}ENRICHED_CONSUMER`, 'must differ from META_AGENT_TRIGGER_CONSUMER');
  }
}
