import { Inject, Injectable, type Provider } from '@nestjs/common';
import { getToken, makeCounterProvider, makeGaugeProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { appConfig, type AppConfig } from '../config/configuration.js';

/*
 * The template's six metrics keep their names and labels; the rest are this service's own.
 * Every label value is bounded: workflow types and agents are allow-listed, statuses, actions and
 * reasons are codes. No corr_id or workflow_id ever becomes a label.
 */
const M = {
  started: 'meta_agent_workflows_started_total',
  completed: 'meta_agent_workflows_completed_total',
  duration: 'meta_agent_workflow_duration_seconds',
  active: 'meta_agent_active_workflows',
  signals: 'meta_agent_signals_received_total',
  decisions: 'meta_agent_decisions_published_total',
  deadLetters: 'meta_agent_dead_letters_total',
  duplicates: 'meta_agent_duplicates_total',
  late: 'meta_agent_late_signals_total',
  orphaned: 'meta_agent_orphaned_signals_total',
  early: 'meta_agent_early_signals_total',
  declined: 'meta_agent_declined_triggers_total',
  latency: 'meta_agent_signal_to_decision_seconds',
  lateness: 'meta_agent_timeout_lateness_seconds',
  settled: 'meta_agent_messages_settled_total',
  sweeperErrors: 'meta_agent_sweeper_errors_total',
  dependencyUp: 'meta_agent_dependency_up',
} as const;

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export const metricProviders = [
  makeCounterProvider({ name: M.started, help: 'Total workflows started', labelNames: ['agent_name', 'workflow_type'] }),
  makeCounterProvider({ name: M.completed, help: 'Total workflows completed', labelNames: ['agent_name', 'workflow_type', 'status'] }),
  makeHistogramProvider({
    name: M.duration,
    help: 'Workflow execution time',
    labelNames: ['agent_name', 'workflow_type'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 180, 300, 600],
  }),
  makeGaugeProvider({ name: M.active, help: 'Currently active workflows', labelNames: ['agent_name'] }),
  makeCounterProvider({ name: M.signals, help: 'Signals received from agents', labelNames: ['meta_agent', 'source_agent'] }),
  makeCounterProvider({ name: M.decisions, help: 'Decisions published', labelNames: ['meta_agent', 'decision_type'] }),
  makeCounterProvider({ name: M.deadLetters, help: 'Messages sent to the dead-letter stream, by reason code', labelNames: ['reason'] }),
  makeCounterProvider({ name: M.duplicates, help: 'Repeated triggers, signals and decision publishes that changed nothing', labelNames: ['kind'] }),
  makeCounterProvider({ name: M.late, help: 'Signals for a workflow already evaluating or finished, or too old', labelNames: ['reason'] }),
  makeCounterProvider({ name: M.orphaned, help: 'Signals whose trigger never came within the grace period' }),
  makeCounterProvider({ name: M.early, help: 'Signals buffered because they arrived before their trigger' }),
  makeCounterProvider({ name: M.declined, help: 'Triggers the strategy declined to start', labelNames: ['workflow_type'] }),
  makeHistogramProvider({
    name: M.latency,
    help: 'Time from receiving the signal that completed a workflow to its decision being published',
    labelNames: ['workflow_type'],
    buckets: LATENCY_BUCKETS,
  }),
  makeHistogramProvider({
    name: M.lateness,
    help: 'Time from a workflow deadline to its timeout decision being published',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
  }),
  makeCounterProvider({ name: M.settled, help: 'Inbound messages by how they were settled', labelNames: ['consumer', 'action'] }),
  makeCounterProvider({ name: M.sweeperErrors, help: 'Sweeper iterations or jobs that failed (retried on the next sweep)' }),
  makeGaugeProvider({ name: M.dependencyUp, help: 'Whether the last background check reached the dependency (1) or not (0)', labelNames: ['dependency'] }),
];

type MetricKey = keyof typeof M;

/**
 * The metrics above by their short names, as one injected object: the recording class takes this one
 * argument, not one per metric. Fields are typed by the kind of metric.
 */
export abstract class MetricSet {
  abstract readonly started: Counter;
  abstract readonly completed: Counter;
  abstract readonly duration: Histogram;
  abstract readonly active: Gauge;
  abstract readonly signals: Counter;
  abstract readonly decisions: Counter;
  abstract readonly deadLetters: Counter;
  abstract readonly duplicates: Counter;
  abstract readonly late: Counter;
  abstract readonly orphaned: Counter;
  abstract readonly early: Counter;
  abstract readonly declined: Counter;
  abstract readonly latency: Histogram;
  abstract readonly lateness: Histogram;
  abstract readonly settled: Counter;
  abstract readonly sweeperErrors: Counter;
  abstract readonly dependencyUp: Gauge;
}

const KEYS = Object.keys(M) as MetricKey[];

/** Builds the MetricSet from the metric providers (one factory, the tokens listed once). */
export const metricSetProvider: Provider = {
  provide: MetricSet,
  useFactory: (...metrics: unknown[]) => Object.fromEntries(KEYS.map((key, i) => [key, metrics[i]])) as unknown as MetricSet,
  inject: KEYS.map((key) => getToken(M[key])),
};

/** Typed recording methods over the metrics above; the rest of the code never names a metric. */
@Injectable()
export class OrchestratorMetrics {
  private readonly name: string;
  private readonly settledChildren = new Map<string, { inc(value?: number): void }>();

  constructor(
    @Inject(appConfig.KEY) app: AppConfig,
    private readonly m: MetricSet,
  ) {
    this.name = app.name;
  }

  workflowStarted(type: string): void {
    this.m.started.inc({ agent_name: this.name, workflow_type: type });
  }

  /** Counted once per workflow, by whichever replica marked its decision published. */
  workflowFinished(type: string, status: string, action: string, durationSeconds: number): void {
    this.m.completed.inc({ agent_name: this.name, workflow_type: type, status });
    this.m.decisions.inc({ meta_agent: this.name, decision_type: action });
    this.m.duration.observe({ agent_name: this.name, workflow_type: type }, durationSeconds);
  }

  decisionLatency(type: string, seconds: number): void {
    this.m.latency.observe({ workflow_type: type }, seconds);
  }

  timeoutLateness(seconds: number): void {
    this.m.lateness.observe(Math.max(seconds, 0));
  }

  /** Active workflows across all replicas, as counted in Redis by the sweeper. */
  setActive(count: number): void {
    this.m.active.set({ agent_name: this.name }, count);
  }

  signalReceived(agent: string): void {
    this.m.signals.inc({ meta_agent: this.name, source_agent: agent });
  }

  /** `superseded`: an older revision of an agent's signal, delivered after a later one was stored. */
  duplicate(kind: 'trigger' | 'signal' | 'superseded' | 'decision'): void {
    this.m.duplicates.inc({ kind });
  }

  lateSignal(reason: 'finished' | 'stale'): void {
    this.m.late.inc({ reason });
  }

  earlySignal(): void {
    this.m.early.inc();
  }

  orphaned(count: number): void {
    if (count > 0) this.m.orphaned.inc(count);
  }

  triggerDeclined(type: string): void {
    this.m.declined.inc({ workflow_type: type });
  }

  deadLettered(code: string): void {
    this.m.deadLetters.inc({ reason: code });
  }

  /** Per message (or per batch of acks): the labelled child is looked up once, not hashed from its labels every time. */
  settled(consumer: string, action: string, count = 1): void {
    if (count === 0) return;
    const key = `${consumer}\u0000${action}`;
    let child = this.settledChildren.get(key);
    if (!child) {
      child = this.m.settled.labels({ consumer, action });
      this.settledChildren.set(key, child);
    }
    child.inc(count);
  }

  sweeperError(): void {
    this.m.sweeperErrors.inc();
  }

  dependencyUp(dependency: string, up: boolean): void {
    this.m.dependencyUp.set({ dependency }, up ? 1 : 0);
  }
}
