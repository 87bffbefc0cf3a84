import { AGENT_NAME, WORKFLOW_TYPE } from '../../common/names.js';
import { ConfigValidationError, PREFIX, type EnvReader } from '../env-reader.js';

/** Workflows: types and timeouts, concurrency, agents, the trading strategy's thresholds, the sweeper, retention. */
export function readWorkflowSettings(r: EnvReader) {
  return {
    defaultType: r.string(
      'DEFAULT_WORKFLOW_TYPE',
      'trading',
      'Workflow type of triggers without `workflow_type`; a strategy must serve it.',
      WORKFLOW_TYPE.re,
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
      AGENT_NAME.re,
      'Agents the trading strategy needs before it can decide (plus `sentiment` for CRYPTO); also accepted agents.',
    ),
    optionalAgents: r.list(
      'OPTIONAL_AGENTS',
      ['sentiment', 'correlation', 'macro'],
      AGENT_NAME.re,
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
      'Bounds the sweeper on each replica: at most this many due workflows per shard per step, and at most 4 × this many jobs (timeouts, publishes; at least 2 × REDIS_SHARDS) running at once; a step claims no more than there is room to run, and at most half of those jobs (the sweeper loops without sleeping while a shard has more due, the next claim sent as the last one comes back).',
    ),
    claimLeaseMs: r.int(
      'CLAIM_LEASE_MS',
      1500,
      100,
      600000,
      'How long a frozen workflow (being decided on its signals, timed out, or ended by an operator) is left to the replica deciding it before another replica takes it over and decides it again from the same snapshot; with the sweep interval, it bounds how late a decision can be when its decider dies (1.5 s + 0.25 s by default).',
    ),
  };
}

export type WorkflowSettings = ReturnType<typeof readWorkflowSettings>;

/** What one setting alone cannot say. */
export function checkWorkflowSettings(workflow: WorkflowSettings): void {
  if (workflow.defaultTimeoutSeconds > workflow.maxTimeoutSeconds) {
    throw new ConfigValidationError(
      `${PREFIX}DEFAULT_TIMEOUT_SECONDS`,
      `${workflow.defaultTimeoutSeconds} is above META_AGENT_MAX_TIMEOUT_SECONDS (${workflow.maxTimeoutSeconds})`,
    );
  }
}
