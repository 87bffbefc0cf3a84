import { Inject, Injectable, Logger } from '@nestjs/common';
import { appConfig, workflowConfig, type AppConfig, type WorkflowConfig } from '../config/configuration.js';
import { BadInputError, describeError } from '../common/errors.js';
import { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import { FlowControl } from '../transport/jetstream/flow-control.js';
import type { DeliveryMeta } from '../transport/jetstream/jetstream.context.js';
import { Admission } from './admission.js';
import { DecisionPublisher } from './decision.publisher.js';
import { StrategyRegistry } from './strategies/strategy.registry.js';
import { defaultTimeoutDecision, toContext, toDecisionMessage, toTriggerSignal } from './workflow-context.js';
import { decisionMessageId, WorkflowRepository, type StoredWorkflow, type SweepJob } from './workflow.repository.js';
import { WorkflowStatus, type Decision, type FinalStatus, type JsonObject, type OrchestratedDecision, type WorkflowContext } from './workflow.types.js';

const OPEN = new Set<string>([WorkflowStatus.InProgress, WorkflowStatus.WaitingForAgents]);
/** Evaluations of one handler on snapshots that keep changing (signals arriving meanwhile) before it leaves the workflow to later handlers. */
const MAX_RECORD_ATTEMPTS = 5;

/** What a message handler passes on about its message (the transport's delivery info). */
export type MessageMeta = Pick<DeliveryMeta, 'sequence' | 'storedAtMs' | 'receivedAt' | 'hold'>;

type Readiness = 'decided' | 'not-ready' | 'closed' | 'changing';

/**
 * The workflow life cycle (SPEC "Workflows"). Every step is one atomic Redis script; this class only
 * decides which step comes next and runs the strategy. A message handler returns once its effect is
 * stored, so the transport can ack; whatever a crash interrupts later (an evaluation, a publish) is
 * finished by the sweeper from what Redis recorded.
 */
@Injectable()
export class WorkflowService {
  private readonly logger = new Logger('WorkflowService');
  private readonly knownAgents: Set<string> | null;

  constructor(
    private readonly repository: WorkflowRepository,
    private readonly strategies: StrategyRegistry,
    private readonly publisher: DecisionPublisher,
    private readonly metrics: OrchestratorMetrics,
    private readonly admission: Admission,
    flow: FlowControl,
    @Inject(workflowConfig.KEY) private readonly config: WorkflowConfig,
    @Inject(appConfig.KEY) private readonly app: AppConfig,
  ) {
    const known = [...config.requiredAgents, ...config.optionalAgents];
    this.knownAgents = known.length > 0 ? new Set(known) : null;
    // While Redis does not answer, the transport stops pulling and holds what failed (FlowControl).
    flow.registerProbe('redis', () => this.repository.ping());
  }

  /** Called by the sweeper with the count it read from Redis. */
  setActiveCount(count: number): void {
    this.admission.setCount(count);
    this.metrics.setActive(count);
  }

  async handleTrigger(data: JsonObject, text: string, meta: MessageMeta): Promise<void> {
    const corrId = String(data.corr_id);
    const type = typeof data.workflow_type === 'string' ? data.workflow_type : this.config.defaultType;
    const strategy = this.strategies.get(type);
    const trigger = toTriggerSignal(data);
    if (!(await strategy.shouldStart(trigger))) {
      this.metrics.triggerDeclined(type);
      this.logger.debug({ msg: 'trigger declined by strategy', corr_id: corrId, workflow_type: type });
      return;
    }
    const definition = await strategy.define(trigger);
    const requested = typeof data.timeout_seconds === 'number' ? data.timeout_seconds : undefined;
    const timeoutSeconds = Math.min(requested ?? definition.timeoutSeconds ?? this.config.defaultTimeoutSeconds, this.config.maxTimeoutSeconds);
    // Back-pressure: wait for room (the message is held meanwhile, using up no delivery).
    await this.admission.enter(meta.hold);
    let result;
    try {
      result = await this.repository.start({
        corrId,
        workflowType: type,
        timeoutMs: Math.round(timeoutSeconds * 1000),
        requiredAgents: definition.requiredAgents,
        metadata: definition.metadata ?? {},
        triggerJson: text,
        checkMs: this.config.claimLeaseMs,
      });
    } catch (error) {
      this.admission.abandoned();
      throw error;
    }
    if (result.kind === 'duplicate') {
      this.admission.abandoned();
      this.metrics.duplicate('trigger');
      this.logger.debug({ msg: 'duplicate trigger', corr_id: corrId, workflow_id: result.workflow.workflowId, status: result.workflow.status });
      // A redelivery may find the work of its first delivery half done (early signals applied, not evaluated).
      await this.decideIfReady(result.workflow, meta.receivedAt);
      return;
    }
    this.admission.started();
    this.metrics.workflowStarted(type);
    this.logger.log({
      msg: 'workflow started',
      corr_id: corrId,
      workflow_id: result.workflow.workflowId,
      workflow_type: type,
      required_agents: definition.requiredAgents,
      timeout_seconds: timeoutSeconds,
      early_signals: result.earlyCount,
    });
    // Early signals may complete it, and a strategy may decide on the trigger alone.
    await this.decideIfReady(result.workflow, meta.receivedAt);
  }

  async handleSignal(data: JsonObject, text: string, meta: MessageMeta): Promise<void> {
    const corrId = String(data.corr_id);
    const agent = String(data.agent_name);
    if (this.knownAgents && !this.knownAgents.has(agent)) {
      throw new BadInputError('unknown_agent', `agent "${agent}" is not in META_AGENT_REQUIRED_AGENTS or META_AGENT_OPTIONAL_AGENTS`);
    }
    if (this.isStale(data.timestamp, meta.storedAtMs)) {
      this.metrics.lateSignal('stale');
      this.logger.warn({ msg: 'stale signal ignored', corr_id: corrId, agent, timestamp: data.timestamp });
      return;
    }
    const result = await this.repository.addSignal(corrId, agent, text, {
      graceMs: this.config.earlySignalGraceSeconds * 1000,
      sequence: meta.sequence,
      storedAtMs: meta.storedAtMs,
      checkMs: this.config.claimLeaseMs,
      earlyTtlMs: Math.max(this.config.earlySignalGraceSeconds * 2000 + 60_000, this.config.retentionSeconds * 1000),
    });
    switch (result.kind) {
      case 'buffer-superseded':
        this.metrics.duplicate('superseded');
        this.logger.debug({ msg: 'early signal not stored: a later revision (or this one) is buffered', corr_id: corrId, agent });
        return;
      case 'buffered':
        this.metrics.signalReceived(agent);
        this.metrics.earlySignal();
        this.logger.debug({ msg: 'signal buffered until its trigger', corr_id: corrId, agent });
        return;
      case 'orphaned':
        this.metrics.orphaned(1);
        return;
      case 'late':
        this.metrics.lateSignal('finished');
        this.logger.debug({ msg: 'late signal ignored', corr_id: corrId, agent, status: result.status });
        return;
      case 'duplicate':
        this.metrics.duplicate('signal');
        break;
      case 'superseded':
        // An older revision delivered again after a later one was stored: it changes nothing.
        this.metrics.duplicate('superseded');
        this.logger.debug({ msg: 'signal superseded by a later revision, not stored', corr_id: corrId, agent, seq: meta.sequence });
        break;
      case 'added':
        this.metrics.signalReceived(agent);
        break;
    }
    // Also after a duplicate: a redelivery may find the work of its first delivery half done.
    await this.decideIfReady(result.workflow, meta.receivedAt);
  }

  /**
   * A signal that was already older than AGENT_TIMEOUT_SECONDS (by its own timestamp) when JetStream stored
   * it is not used; 0 turns this off. Judged by JetStream's time, not by when a replica got to it: a
   * backlog built up during an outage is not stale.
   */
  private isStale(timestamp: unknown, storedAtMs: number): boolean {
    if (this.config.agentTimeoutSeconds <= 0 || typeof timestamp !== 'string') return false;
    const at = Date.parse(timestamp);
    return Number.isFinite(at) && storedAtMs - at > this.config.agentTimeoutSeconds * 1000;
  }

  /**
   * Asks the strategy whether it can decide; if so, evaluates and records the decision on the version it
   * evaluated (record-3.lua: exactly one caller records). Should a signal have arrived in between, the
   * current snapshot comes back and is evaluated in turn: a decision is always the strategy's answer to
   * the signals stored with it. Nothing is claimed while the strategy runs, so a crash here leaves the
   * workflow open for its next signal, a redelivery, or its deadline.
   */
  private async decideIfReady(workflow: StoredWorkflow, receivedAt?: number): Promise<{ readiness: Readiness; workflow: StoredWorkflow }> {
    let current = workflow;
    for (let attempt = 1; attempt <= MAX_RECORD_ATTEMPTS; attempt++) {
      if (!OPEN.has(current.status)) return { readiness: 'closed', workflow: current };
      const ctx = toContext(current);
      let ready: boolean;
      let failure: unknown;
      try {
        ready = await this.strategies.get(current.workflowType).canDecide(ctx);
      } catch (error) {
        // A throwing strategy ends the workflow as failed, whichever of its methods threw.
        ready = true;
        failure = error;
      }
      if (!ready) return { readiness: 'not-ready', workflow: current };
      const outcome = await this.evaluate(ctx, 'evaluate', failure);
      const recorded = await this.repository.record(current, outcome.status, outcome.json, this.config.claimLeaseMs);
      if (recorded.kind === 'recorded') {
        await this.publish(current, outcome.json, outcome.status, outcome.decision.action, { receivedAt });
        return { readiness: 'decided', workflow: current };
      }
      if (recorded.kind === 'closed') {
        this.logger.debug({ msg: 'decided elsewhere', corr_id: ctx.corrId, workflow_id: ctx.workflowId, status: recorded.status });
        return { readiness: 'closed', workflow: current };
      }
      current = recorded.workflow;
    }
    // Signals keep arriving faster than the strategy runs: the handler of the last one decides (and the
    // sweeper's check, should that handler die).
    this.logger.debug({ msg: 'workflow still changing, left to its next signal', corr_id: current.corrId, workflow_id: current.workflowId });
    return { readiness: 'changing', workflow: current };
  }

  /**
   * Runs the strategy (or, for a timeout, its onTimeout) and builds the decision message. `failure`: the
   * strategy already threw (in canDecide), so the workflow ends as failed without evaluating.
   */
  private async evaluate(
    ctx: WorkflowContext,
    kind: 'evaluate' | 'timeout',
    failure?: unknown,
  ): Promise<{ status: FinalStatus; decision: Decision; json: string }> {
    try {
      if (failure !== undefined) throw failure;
      const strategy = this.strategies.get(ctx.workflowType);
      const timeout = kind === 'timeout';
      const decision = timeout ? (strategy.onTimeout ? await strategy.onTimeout(ctx) : defaultTimeoutDecision(ctx)) : await strategy.evaluate(ctx);
      if (typeof decision !== 'object' || decision === null || typeof decision.action !== 'string') {
        throw new Error('the strategy returned no decision object with a string "action"');
      }
      const status = timeout ? WorkflowStatus.Timeout : WorkflowStatus.Completed;
      return { status, decision, json: JSON.stringify(toDecisionMessage(ctx, this.app.name, status, decision)) };
    } catch (error) {
      this.logger.error({ msg: 'strategy failed', corr_id: ctx.corrId, workflow_id: ctx.workflowId, kind, error: describeError(error) });
      const decision: Decision = { action: 'error', reason: 'strategy_error', error: describeError(error) };
      return { status: WorkflowStatus.Failed, decision, json: JSON.stringify(toDecisionMessage(ctx, this.app.name, WorkflowStatus.Failed, decision)) };
    }
  }

  /** Times out a workflow the sweeper claimed: the timeout decision, recorded by the first claimant to finish, then published. */
  private async timeOut(workflow: StoredWorkflow): Promise<void> {
    const ctx = toContext(workflow);
    const outcome = await this.evaluate(ctx, 'timeout');
    if (!(await this.repository.finish(workflow, outcome.status, outcome.json, this.config.claimLeaseMs))) {
      this.logger.debug({ msg: 'timed out by another claimant first', corr_id: ctx.corrId, workflow_id: ctx.workflowId });
      return;
    }
    await this.publish(workflow, outcome.json, outcome.status, outcome.decision.action, {});
  }

  /**
   * Publishes a recorded decision and marks it published. A failure here loses nothing: the decision is
   * in Redis and its due-index entry brings it back to the sweeper after the claim lease.
   *
   * `age`: how long ago (Redis's clock) the decision was recorded, for a re-publish by the sweeper. Past the
   * stream's duplicate window (less a margin) JetStream would store a second copy of a decision published
   * before, so the stream is searched for it first (DecisionPublisher.wasPublished).
   */
  private async publish(
    workflow: StoredWorkflow,
    json: string,
    status: string,
    action: string,
    options: { receivedAt?: number; ageMs?: number },
  ): Promise<void> {
    const log = { corr_id: workflow.corrId, workflow_id: workflow.workflowId };
    const msgId = decisionMessageId(workflow);
    try {
      const margin = Math.min(this.publisher.duplicateWindowMs / 2, 30_000);
      let already = false;
      if (options.ageMs !== undefined && options.ageMs > this.publisher.duplicateWindowMs - margin) {
        already = await this.publisher.wasPublished(msgId, (workflow.finishedMs ?? workflow.startedMs) - margin);
        this.logger.warn({ msg: 'decision older than the duplicate window: searched the stream for it', ...log, found: already });
      }
      if (already) this.metrics.duplicate('decision');
      else {
        const { duplicate } = await this.publisher.publish(json, msgId);
        if (duplicate) this.metrics.duplicate('decision');
      }
      const marked = await this.repository.markPublished(workflow, this.config.retentionSeconds * 1000);
      if (!marked) return;
      this.admission.finished();
      this.metrics.workflowFinished(workflow.workflowType, status, action, (marked.finishedMs - marked.startedMs) / 1000);
      if (options.receivedAt !== undefined) this.metrics.decisionLatency(workflow.workflowType, (performance.now() - options.receivedAt) / 1000);
      if (status === WorkflowStatus.Timeout) this.metrics.timeoutLateness((Date.now() - workflow.deadlineMs) / 1000);
      this.logger.log({ msg: 'decision published', ...log, status, action });
    } catch (error) {
      this.logger.warn({ msg: 'decision recorded, publish deferred to the sweeper', ...log, error: describeError(error) });
    }
  }

  /** One job the sweeper found due (see sweep-1.lua). `redisNowMs`: Redis's clock at the sweep. */
  async runSweepJob(job: SweepJob, redisNowMs: number): Promise<void> {
    const wf = job.workflow;
    switch (job.kind) {
      case 'publish': {
        if (!wf.decisionJson) return;
        const message = JSON.parse(wf.decisionJson) as { status: string; decision: { action: string } };
        this.logger.warn({ msg: 'publishing a decision left unpublished', corr_id: wf.corrId, workflow_id: wf.workflowId });
        await this.publish(wf, wf.decisionJson, message.status, message.decision.action, { ageMs: redisNowMs - (wf.finishedMs ?? redisNowMs) });
        return;
      }
      case 'check': {
        // A signal was stored and no decision followed: the handler that stored it died, or lost the reply.
        const { readiness, workflow } = await this.decideIfReady(wf);
        if (readiness === 'decided') this.logger.warn({ msg: 'decided a ready workflow its handler had left', corr_id: wf.corrId, workflow_id: wf.workflowId });
        if (readiness === 'not-ready') await this.repository.rest(workflow);
        return;
      }
      case 'timeout':
        await this.timeOut(wf);
    }
  }

  /*
   * Admin API (issue 12, part 3). Both actions below end the workflow through the same record -> publish ->
   * mark-published path as a decision on signals (record-3.lua: exactly one caller records, whoever it is),
   * so a cancel racing a signal, the sweeper or another replica's cancel or decide yields one decision.
   */

  /**
   * Ends an open workflow now. `cancel`: decision `{action: "cancelled", reason: "cancelled_by_operator"}`,
   * status `cancelled`. `force`: the strategy's `evaluate` on what has arrived (status `completed`, or `failed`
   * if it throws). The decision's metadata carries who asked (`cancelled_by`, or `forced: true` and
   * `forced_by`); a forced evaluation sees them in `ctx.metadata` too.
   */
  async endNow(corrId: string, how: 'cancel' | 'force', by: string): Promise<EndNowResult> {
    let current = (await this.repository.inspect(corrId)).workflow;
    for (let attempt = 1; attempt <= MAX_ADMIN_ATTEMPTS; attempt++) {
      if (!current) return { kind: 'missing' };
      if (current.status === WorkflowStatus.Evaluating) return { kind: 'evaluating', workflowId: current.workflowId };
      if (!OPEN.has(current.status)) return { kind: 'finished', status: current.status, workflowId: current.workflowId };
      const base = toContext(current);
      const extra = how === 'cancel' ? { cancelled_by: by } : { forced: true, forced_by: by };
      const ctx: WorkflowContext = { ...base, metadata: { ...base.metadata, ...extra } };
      let status: FinalStatus;
      let decision: Decision;
      let json: string;
      if (how === 'cancel') {
        status = WorkflowStatus.Cancelled;
        decision = { action: 'cancelled', reason: 'cancelled_by_operator' };
        json = JSON.stringify(toDecisionMessage(ctx, this.app.name, status, decision));
      } else {
        ({ status, decision, json } = await this.evaluate(ctx, 'evaluate'));
      }
      const recorded = await this.repository.record(current, status, json, this.config.claimLeaseMs);
      if (recorded.kind === 'recorded') {
        await this.publish(current, json, status, decision.action, {});
        const published = (await this.repository.inspect(corrId)).workflow;
        return {
          kind: 'done',
          workflow: current,
          decision: JSON.parse(json) as OrchestratedDecision,
          published: published?.startedMs === current.startedMs && published.published,
        };
      }
      // A signal came in since the snapshot (evaluate again on the new one), or someone else ended it.
      current = recorded.kind === 'outdated' ? recorded.workflow : (await this.repository.inspect(corrId)).workflow;
    }
    return { kind: 'busy' };
  }

  /**
   * Moves an open workflow's deadline `seconds` later, at most to its start + META_AGENT_MAX_TIMEOUT_SECONDS
   * (a longer extension is clamped: the result says so).
   */
  async extend(corrId: string, seconds: number): Promise<ExtendNowResult> {
    const result = await this.repository.extend(corrId, seconds * 1000, this.config.maxTimeoutSeconds * 1000);
    if (result.kind === 'extended') {
      const clamped = result.deadlineMs - result.previousDeadlineMs < Math.round(seconds * 1000);
      return { ...result, clamped };
    }
    if (result.status === '') return { kind: 'missing' };
    if (result.status === WorkflowStatus.Evaluating) return { kind: 'evaluating' };
    return { kind: 'finished', status: result.status };
  }
}

/** Snapshots an admin action evaluates before giving up on a workflow whose signals keep changing it. */
const MAX_ADMIN_ATTEMPTS = 10;

/** What an admin action found: `evaluating`: being decided or timed out right now; `finished`: ended before. */
export type AdminRefusal = { kind: 'missing' } | { kind: 'evaluating'; workflowId?: string } | { kind: 'finished'; status: string; workflowId?: string };

export type EndNowResult =
  | { kind: 'done'; workflow: StoredWorkflow; decision: OrchestratedDecision; published: boolean }
  /** Signals kept changing the workflow through every attempt: try again. */
  | { kind: 'busy' }
  | AdminRefusal;

export type ExtendNowResult =
  { kind: 'extended'; workflowId: string; previousDeadlineMs: number; deadlineMs: number; maxDeadlineMs: number; clamped: boolean } | AdminRefusal;
