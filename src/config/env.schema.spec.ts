import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigValidationError } from './env-reader.js';
import { parseSettings } from './env.schema.js';

function failure(env: Record<string, string>): ConfigValidationError {
  try {
    parseSettings(env);
  } catch (error) {
    if (error instanceof ConfigValidationError) return error;
    throw error;
  }
  throw new Error('expected a ConfigValidationError');
}

describe('parseSettings', () => {
  it('gives the template defaults with an empty environment', () => {
    const s = parseSettings({});
    expect(s.app).toMatchObject({ name: 'trading_decision_meta_agent', logLevel: 'info', httpPort: 9090, healthCheckIntervalMs: 30000 });
    expect(s.nats.servers).toBe('nats://localhost:4222');
    expect(s.redis.url).toBe('redis://localhost:6379');
    expect(s.workflow).toMatchObject({
      defaultTimeoutSeconds: 300,
      maxConcurrentWorkflows: 100,
      cleanupIntervalMs: 60000,
      requiredAgents: ['momentum', 'risk'],
      optionalAgents: ['sentiment', 'correlation', 'macro'],
      agentTimeoutSeconds: 60,
      minConfidenceThreshold: 0.5,
      minAgentsRequired: 2,
      sweepIntervalMs: 250,
      earlySignalGraceSeconds: 30,
      retentionSeconds: 86400,
      defaultType: 'trading',
    });
  });

  it('names the consumers after META_AGENT_NAME, as the template did', () => {
    const s = parseSettings({ META_AGENT_NAME: 'fx_meta' });
    expect(s.nats.consumers).toEqual({ trigger: 'fx_meta-trigger-consumer', agents: 'fx_meta-enriched-consumer' });
  });

  it('reads lists as comma-separated or JSON arrays, without duplicates', () => {
    expect(parseSettings({ META_AGENT_REQUIRED_AGENTS: 'momentum, risk ,momentum' }).workflow.requiredAgents).toEqual(['momentum', 'risk']);
    expect(parseSettings({ META_AGENT_OPTIONAL_AGENTS: '["news","macro"]' }).workflow.optionalAgents).toEqual(['news', 'macro']);
  });

  it('accepts the template log levels in any case, and aliases', () => {
    expect(parseSettings({ META_AGENT_LOG_LEVEL: 'DEBUG' }).app.logLevel).toBe('debug');
    expect(parseSettings({ META_AGENT_LOG_LEVEL: 'warn' }).app.logLevel).toBe('warning');
    expect(parseSettings({ META_AGENT_LOG_LEVEL: 'CRITICAL' }).app.logLevel).toBe('critical');
  });

  it('converts seconds settings to milliseconds where the code wants them', () => {
    const s = parseSettings({ META_AGENT_WORKFLOW_CLEANUP_INTERVAL: '5', META_AGENT_HEALTH_CHECK_INTERVAL: '7' });
    expect(s.workflow.cleanupIntervalMs).toBe(5000);
    expect(s.app.healthCheckIntervalMs).toBe(7000);
  });

  it.each([
    ['META_AGENT_METRICS_PORT', 'abc', /not a whole number/],
    ['META_AGENT_METRICS_PORT', '70000', /outside 1..65535/],
    ['META_AGENT_MAX_CONCURRENT_WORKFLOWS', '0', /outside/],
    ['META_AGENT_DEFAULT_TIMEOUT_SECONDS', '1.5', /not a whole number/],
    ['META_AGENT_MIN_CONFIDENCE_THRESHOLD', '1.2', /outside 0..1/],
    ['META_AGENT_MIN_CONFIDENCE_THRESHOLD', 'high', /not a number/],
    ['META_AGENT_LOG_LEVEL', 'loud', /not one of/],
    ['META_AGENT_NATS_URL', 'http://x:4222', /protocol/],
    ['META_AGENT_NATS_URL', 'not a url', /not a URL/],
    ['META_AGENT_REDIS_URL', 'nats://x', /protocol/],
    ['META_AGENT_PROVISION', 'maybe', /not a boolean/],
    ['META_AGENT_REQUIRED_AGENTS', 'momentum,ri sk', /not a valid name/],
    ['META_AGENT_OPTIONAL_AGENTS', '["a",', /JSON array/],
    ['META_AGENT_NAME', 'has space', /name/],
    ['META_AGENT_TRIGGER_SUBJECT', 'signals.*', /not a subject/],
    ['META_AGENT_AGENT_SUBJECT', 'signals..x', /subject filter/],
    ['META_AGENT_DEFAULT_WORKFLOW_TYPE', 'Trading!', /workflow type/],
    ['META_AGENT_SWEEP_INTERVAL_MS', '5', /outside/],
  ])('rejects %s=%s with one line naming the variable', (variable, value, reason) => {
    const error = failure({ [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(reason);
    expect(error.message.startsWith(`invalid setting ${variable}:`)).toBe(true);
    expect(error.message).not.toContain('\n');
  });

  it('rejects a default timeout above the maximum', () => {
    const error = failure({ META_AGENT_DEFAULT_TIMEOUT_SECONDS: '600', META_AGENT_MAX_TIMEOUT_SECONDS: '300' });
    expect(error.variable).toBe('META_AGENT_DEFAULT_TIMEOUT_SECONDS');
  });

  it('rejects two consumers with one name', () => {
    expect(failure({ META_AGENT_TRIGGER_CONSUMER: 'c', META_AGENT_ENRICHED_CONSUMER: 'c' }).variable).toBe('META_AGENT_ENRICHED_CONSUMER');
  });

  it('treats an empty variable as unset', () => {
    expect(parseSettings({ META_AGENT_METRICS_PORT: '' }).app.httpPort).toBe(9090);
  });

  it('never echoes a password from a URL', () => {
    const error = failure({ META_AGENT_REDIS_URL: 'nats://user:s3cret@host:6379' });
    expect(error.message).not.toContain('s3cret');
  });
});

describe('credentials and connection settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'settings-'));
  const file = join(dir, 'pw');
  writeFileSync(file, 'from-file\n');

  it('reads a secret from the variable or from <NAME>_FILE, trimmed', () => {
    expect(parseSettings({ META_AGENT_REDIS_PASSWORD: 'pw' }).redis.password).toBe('pw');
    expect(parseSettings({ META_AGENT_REDIS_PASSWORD_FILE: file }).redis.password).toBe('from-file');
  });

  it('refuses both, and an unreadable file, naming the _FILE variable and not the secret', () => {
    const both = failure({ META_AGENT_NATS_PASSWORD: 'pw', META_AGENT_NATS_PASSWORD_FILE: file, META_AGENT_NATS_USER: 'u' });
    expect(both.variable).toBe('META_AGENT_NATS_PASSWORD_FILE');
    const missing = failure({ META_AGENT_NATS_TOKEN_FILE: join(dir, 'nope') });
    expect(missing.variable).toBe('META_AGENT_NATS_TOKEN_FILE');
    expect(missing.message).toMatch(/ENOENT/);
  });

  it('allows one NATS authentication method', () => {
    expect(failure({ META_AGENT_NATS_TOKEN: 't', META_AGENT_NATS_USER: 'u', META_AGENT_NATS_PASSWORD: 'p' }).message).toMatch(/choose one/);
    expect(failure({ META_AGENT_NATS_USER: 'u' }).variable).toBe('META_AGENT_NATS_USER');
  });

  it('checks TLS files exist and come in pairs', () => {
    expect(failure({ META_AGENT_NATS_TLS_CA_FILE: join(dir, 'ca.pem') }).variable).toBe('META_AGENT_NATS_TLS_CA_FILE');
    expect(failure({ META_AGENT_REDIS_TLS_CERT_FILE: file }).variable).toBe('META_AGENT_REDIS_TLS_CERT_FILE');
    expect(parseSettings({ META_AGENT_REDIS_TLS_CA_FILE: file }).redis.tls.caFile).toBe(file);
  });

  it('parses Sentinel addresses', () => {
    const redis = parseSettings({ META_AGENT_REDIS_SENTINELS: 's1:26379, 10.0.0.2:26380', META_AGENT_REDIS_SENTINEL_MASTER: 'orders' }).redis;
    expect(redis.sentinels).toEqual([
      { host: 's1', port: 26379 },
      { host: '10.0.0.2', port: 26380 },
    ]);
    expect(redis.sentinelMaster).toBe('orders');
    expect(failure({ META_AGENT_REDIS_SENTINELS: 's1' }).variable).toBe('META_AGENT_REDIS_SENTINELS');
  });

  it('parses Redis Cluster seed nodes, exclusive with Sentinels', () => {
    expect(parseSettings({}).redis.clusterNodes).toEqual([]);
    expect(parseSettings({ META_AGENT_REDIS_CLUSTER_NODES: 'r1:7000, 10.0.0.3:7001,[::1]:7002' }).redis.clusterNodes).toEqual([
      { host: 'r1', port: 7000 },
      { host: '10.0.0.3', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(failure({ META_AGENT_REDIS_CLUSTER_NODES: 'r1' }).variable).toBe('META_AGENT_REDIS_CLUSTER_NODES');
    expect(failure({ META_AGENT_REDIS_CLUSTER_NODES: 'r1:70000' }).variable).toBe('META_AGENT_REDIS_CLUSTER_NODES');
    const both = failure({ META_AGENT_REDIS_CLUSTER_NODES: 'r1:7000', META_AGENT_REDIS_SENTINELS: 's1:26379' });
    expect(both.variable).toBe('META_AGENT_REDIS_CLUSTER_NODES');
    expect(both.message).toMatch(/not both/);
  });

  it('reads the replication wait: off by default, bounded, its timeout below the command timeout', () => {
    expect(parseSettings({}).redis).toMatchObject({ waitReplicas: 0, waitTimeoutMs: 1000, waitAof: false });
    expect(
      parseSettings({ META_AGENT_REDIS_WAIT_REPLICAS: '2', META_AGENT_REDIS_WAIT_TIMEOUT_MS: '250', META_AGENT_REDIS_WAIT_AOF: 'true' }).redis,
    ).toMatchObject({
      waitReplicas: 2,
      waitTimeoutMs: 250,
      waitAof: true,
    });
    expect(failure({ META_AGENT_REDIS_WAIT_REPLICAS: '-1' }).variable).toBe('META_AGENT_REDIS_WAIT_REPLICAS');
    expect(failure({ META_AGENT_REDIS_WAIT_REPLICAS: '17' }).variable).toBe('META_AGENT_REDIS_WAIT_REPLICAS');
    expect(failure({ META_AGENT_REDIS_WAIT_TIMEOUT_MS: '0' }).variable).toBe('META_AGENT_REDIS_WAIT_TIMEOUT_MS');
    expect(failure({ META_AGENT_REDIS_WAIT_AOF: 'maybe' }).variable).toBe('META_AGENT_REDIS_WAIT_AOF');
    const slow = failure({ META_AGENT_REDIS_WAIT_REPLICAS: '1', META_AGENT_REDIS_WAIT_TIMEOUT_MS: '5000', META_AGENT_REDIS_COMMAND_TIMEOUT_MS: '5000' });
    expect(slow.variable).toBe('META_AGENT_REDIS_WAIT_TIMEOUT_MS');
    expect(slow.message).toMatch(/not below META_AGENT_REDIS_COMMAND_TIMEOUT_MS/);
    // Without a wait the timeout does not matter.
    expect(parseSettings({ META_AGENT_REDIS_WAIT_TIMEOUT_MS: '9000' }).redis.waitTimeoutMs).toBe(9000);
  });

  it('reads the stream replicas (1..5, default 1)', () => {
    expect(parseSettings({}).nats.streamReplicas).toBe(1);
    expect(parseSettings({ META_AGENT_STREAM_REPLICAS: '3' }).nats.streamReplicas).toBe(3);
    expect(failure({ META_AGENT_STREAM_REPLICAS: '0' }).variable).toBe('META_AGENT_STREAM_REPLICAS');
    expect(failure({ META_AGENT_STREAM_REPLICAS: '6' }).variable).toBe('META_AGENT_STREAM_REPLICAS');
    expect(parseSettings({}).nats.audit.streamReplicas).toBe(0);
    expect(parseSettings({ META_AGENT_AUDIT_STREAM_REPLICAS: '1' }).nats.audit.streamReplicas).toBe(1);
    expect(failure({ META_AGENT_AUDIT_STREAM_REPLICAS: '6' }).variable).toBe('META_AGENT_AUDIT_STREAM_REPLICAS');
  });
});
