import type { EnvReader } from '../env-reader.js';
import { readAdminTokens } from './admin-tokens.js';
import { NAME_RE } from './nats-names.js';

/** The process: its name, logging, the HTTP port and its probes, shutdown, the admin API's tokens. */
export function readAppSettings(r: EnvReader) {
  const name = r.string(
    'NAME',
    'trading_decision_meta_agent',
    'Name of this orchestrator: the `orchestrator` field of decisions, metric labels, and the default consumer names.',
    NAME_RE,
    'a name of letters, digits, _ and -',
  );

  return {
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
    adminTokens: readAdminTokens(r),
  };
}

export type AppSettings = ReturnType<typeof readAppSettings>;
