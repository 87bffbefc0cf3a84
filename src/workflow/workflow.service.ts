import { Inject, Injectable, Logger } from '@nestjs/common';
import { AuditTrail, type FreezeOrigin } from '../audit/audit.trail.js';
import { appConfig, workflowConfig, type AppConfig, type WorkflowConfig } from '../config/configuration.js';
import { BadInputError, describeError } from '../common/errors.js';
import { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import { FlowControl } from '../transport/jetstream/flow-control.js';
import type { DeliveryMeta } from '../transport/jetstream/jetstream.context.js';
import { Admission } from './admission.js';
import { DecisionPublisher } from './decision.publisher.js';
import { StrategyRegistry } from './strategies/strategy.registry.js';
import { cancelDecision, defaultTimeoutDecision, toContext, toDecisionMessage, toTriggerSignal } from './workflow-context.js';
import { encodeReadiness } from './readiness.js';
import { decisionMessageId, REDIS_DEPENDENCY, WorkflowRepository, type FreezeReason, type StoredWorkflow, type SweepJob } from './workflow.repository.js';
import { WorkflowStatus, type Decision, type FinalStatus, type JsonObject, type OrchestratedDecision, type WorkflowContext } from './workflow.types.js';

const OPEN = new Set<string>([WorkflowStatus.InProgress, WorkflowStatus.WaitingForAgents]);
/** canDecide questions of one handler on snapshots that keep changing (signals arriving meanwhile) before it leaves the workflow to later handlers. */
const MAX_FREEZE_ATTEMPTS = 5;

/** What a message handler passes on about its message (the transport's delivery info). */
export type MessageMeta = Pick<DeliveryMeta, 'sequence' | 'storedAtMs' | 'receivedAt' | 'hold'>;

type Readiness = 'decided' | 'not-ready' | 'closed' | 'changing';

/**
 * The workflow life cycle (SPEC "Workflows"). Every step is one atomic Redis script; this class only
 * decides which step comes next and runs the strategy. A workflow that can decide is first frozen (status
 * `evaluating`: by the script storing the signal that makes it ready, where the strategy declared
 * `readyWhen`; else after canDecide, by freeze-3.lua), then evaluated, published and finalised. Whatever a
 * crash interrupts after the freeze, the sweeper finishes from the same frozen snapshot once the claim
 * lease runs out (docs/ARCHITECTURE.md, "Deciding").
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
    private readonly audit: AuditTrail,
    flow: FlowControl,
    @Inject(workflowConfig.KEY) private readonly config: WorkflowConfig,
    @Inject(appConfig.KEY) private readonly app: AppConfig,
  ) {
    const known = [...config.requiredAgents, ...config.optionalAgents];
    this.knownAgents = known.length > 0 ? new Set(known) : null;
    // While Redis does not answer, the transport stops pulling and holds what failed (FlowControl); while one
    // Redis Cluster shard does not, it holds that shard's messages only (the repository blames the shard).
    flow.registerProbe(
      REDIS_DEPENDENCY,
      () => this.repository.ping(),
      (tag) => this.repository.pingShard(tag),
    );
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
      this.audit.triggerDeclined(corrId, type, text, meta);
      this.logger.debug({ msg: 'trigger declined by strategy', corr_id: corrId, workflow_type: type });
      return;
    }
    const definition = await strategy.define(trigger);
    const requested = typeof data.timeout_seconds === 'number' ? data.timeout_seconds : undefined;
    const timeoutSeconds = Math.min(requested ?? definition.timeoutSeconds ?? this.config.defaultTimeoutSeconds, this.config.maxTimeoutSeconds);
    // Back-pressure: wait for room (the message is held meanwhile, using up no delivery).
    await this.admission.enter(meta.hold);
    const readyRule = definition.readyWhen ? encodeReadiness(definition.readyWhen) : null;
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
        readyRule,
        leaseMs: this.config.claimLeaseMs,
      });
    } catch (error) {
      this.admission.abandoned();
      throw error;
    }
    if (result.kind === 'duplicate') {
      this.admission.abandoned();
      this.metrics.duplicate('trigger');
      this.audit.triggerDuplicate(result.workflow, meta);
      this.logger.debug({ msg: 'duplicate trigger', corr_id: corrId, workflow_id: result.workflow.workflowId, status: result.workflow.status });
      // A redelivery may find the work of its first delivery half done (early signals applied, canDecide
      // not asked); where Redis judges readiness, nothing is ever left half done.
      if (!result.workflow.hasRule) await this.decideIfReady(result.workflow, meta.receivedAt);
      return;
    }
    this.admission.started();
    this.metrics.workflowStarted(type);
    this.audit.triggerAccepted(result.workflow, meta, result.earlyCount, readyRule);
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
    if (result.next === 'decide') await this.decide(result.workflow, { receivedAt: meta.receivedAt });
    else if (result.next === 'ask') await this.decideIfReady(result.workflow, meta.receivedAt);
  }

  async handleSignal(data: JsonObject, text: string, meta: MessageMeta): Promise<void> {
    const corrId = String(data.corr_id);
    const agent = String(data.agent_name);
    if (this.knownAgents && !this.knownAgents.has(agent)) {
      throw new BadInputError('unknown_agent', `agent "${agent}" is not in META_AGENT_REQUIRED_AGENTS or META_AGENT_OPTIONAL_AGENTS`);
    }
    if (this.isStale(data.timestamp, meta.storedAtMs)) {
      this.metrics.lateSignal('stale');
      this.audit.signalStale(corrId, agent, text, meta);
      this.logger.warn({ msg: 'stale signal ignored', corr_id: corrId, agent, timestamp: data.timestamp });
      return;
    }
    const result = await this.repository.addSignal(corrId, agent, text, {
      graceMs: this.config.earlySignalGraceSeconds * 1000,
      sequence: meta.sequence,
      storedAtMs: meta.storedAtMs,
      checkMs: this.config.claimLeaseMs,
      earlyTtlMs: Math.max(this.config.earlySignalGraceSeconds * 2000 + 60_000, this.config.retentionSeconds * 1000),
      leaseMs: this.config.claimLeaseMs,
    });
    this.audit.signalResult(corrId, agent, text, meta, result);
    switch (result.kind) {
      case 'ready':
        this.metrics.signalReceived(agent);
        await this.decide(result.workflow, { receivedAt: meta.receivedAt });
        return;
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
    // Also after a duplicate: a redelivery may find the work of its first delivery half done. (No snapshot:
    // Redis judged readiness, and the workflow is not ready.)
    if (result.workflow) await this.decideIfReady(result.workflow, meta.receivedAt);
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
   * The slower path, for workflows without a readiness rule: asks the strategy's canDecide; if yes, freezes
   * the workflow on the version asked about (freeze-3.lua: exactly one caller freezes) and decides it.
   * Should a signal have arrived in between, the current snapshot comes back and is asked about in turn.
   * Nothing is claimed while canDecide runs, so a crash here leaves the workflow open for its next signal,
   * a redelivery, the sweeper's check, or its deadline.
   */
  private async decideIfReady(workflow: StoredWorkflow, receivedAt?: number): Promise<{ readiness: Readiness; workflow: StoredWorkflow }> {
    let current = workflow;
    for (let attempt = 1; attempt <= MAX_FREEZE_ATTEMPTS; attempt++) {
      if (!OPEN.has(current.status)) return { readiness: 'closed', workflow: current };
      const ctx = toContext(current);
      let ready: boolean;
      let failure: string | undefined;
      try {
        ready = await this.strategies.get(current.workflowType).canDecide(ctx);
      } catch (error) {
        // A throwing strategy ends the workflow as failed, whichever of its methods threw. The error is
        // frozen with the workflow (why `fail`), so that a re-run by the sweeper fails it the same way.
        ready = true;
        failure = describeError(error);
        this.logger.error({ msg: 'strategy failed', corr_id: ctx.corrId, workflow_id: ctx.workflowId, kind: 'canDecide', error: failure });
      }
      if (!ready) return { readiness: 'not-ready', workflow: current };
      const frozen = await this.repository.freeze(current, failure === undefined ? 'decide' : 'fail', this.config.claimLeaseMs, failure);
      if (frozen.kind === 'frozen') {
        await this.decide(frozen.workflow, { receivedAt, ctx });
        return { readiness: 'decided', workflow: frozen.workflow };
      }
      if (frozen.kind === 'closed') {
        this.logger.debug({ msg: 'decided elsewhere', corr_id: ctx.corrId, workflow_id: ctx.workflowId, status: frozen.status });
        return { readiness: 'closed', workflow: current };
      }
      current = frozen.workflow;
    }
    // Signals keep arriving faster than the strategy runs: the handler of the last one decides (and the
    // sweeper's check, should that handler die).
    this.logger.debug({ msg: 'workflow still changing, left to its next signal', corr_id: current.corrId, workflow_id: current.workflowId });
    return { readiness: 'changing', workflow: current };
  }

  /**
   * Decides a frozen workflow, by why it was frozen, from its frozen snapshot: evaluates (or builds the
   * timeout or cancel decision), publishes, finalises. Run by whoever froze it, and again by the sweeper
   * should that one die or stall past the claim lease: the same snapshot gives the same decision, and the
   * decision's message id makes a second publish a duplicate (beyond the duplicate window, see publish).
   *
   * `ctx`: the context already built from this snapshot; `ageMs`: for the sweeper, how long ago (Redis's
   * clock) the workflow was frozen.
   */
  private async decide(
    workflow: StoredWorkflow,
    options: { receivedAt?: number; ageMs?: number; ctx?: WorkflowContext; origin?: FreezeOrigin },
  ): Promise<{ json: string; published: boolean }> {
    const frozenMs = workflow.frozenMs ?? Date.now();
    // The context canDecide was asked on is the frozen snapshot; its status and time are the freeze's, as
    // they are for a re-run from the stored snapshot.
    const ctx = options.ctx ? { ...options.ctx, status: WorkflowStatus.Evaluating, decidedAt: new Date(frozenMs).toISOString() } : toContext(workflow);
    this.audit.frozen(workflow, ctx, options.origin ?? 'frozen', options.ageMs);
    const outcome = await this.evaluate(ctx, workflow.why ?? 'decide', workflow.frozenBy, frozenMs);
    const published = await this.publish(workflow, outcome.json, outcome.status, outcome.decision.action, options);
    // Not published: the events held for its decision_published (its freeze) go now, alone.
    if (!published) this.audit.release(workflow);
    return { json: outcome.json, published };
  }

  /**
   * Runs the strategy (its evaluate, or for a timeout its onTimeout) or builds an operator's decision, and
   * the decision message. `by`: the operator's token name for `cancel` and `force`; for `fail` (canDecide
   * threw), the error. `frozenMs`: when the workflow was frozen, the decision's `orchestrated_at` (the same
   * on every run from that snapshot).
   */
  private async evaluate(
    frozenCtx: WorkflowContext,
    why: FreezeReason,
    by: string | null,
    frozenMs: number,
  ): Promise<{ status: FinalStatus; decision: Decision; json: string }> {
    if (why === 'fail') {
      const decision: Decision = { action: 'error', reason: 'strategy_error', error: by ?? 'canDecide threw' };
      const json = JSON.stringify(toDecisionMessage(frozenCtx, this.app.name, WorkflowStatus.Failed, decision, frozenMs));
      return { status: WorkflowStatus.Failed, decision, json };
    }
    // An operator's action says who asked in the decision's metadata (and a forced evaluate sees it).
    const asked = why === 'cancel' ? { cancelled_by: by } : why === 'force' ? { forced: true, forced_by: by } : null;
    const ctx = asked ? { ...frozenCtx, metadata: { ...frozenCtx.metadata, ...asked } } : frozenCtx;
    try {
      const strategy = this.strategies.get(ctx.workflowType);
      let status: FinalStatus = WorkflowStatus.Completed;
      let decision: Decision;
      switch (why) {
        case 'timeout':
          status = WorkflowStatus.Timeout;
          decision = strategy.onTimeout ? await strategy.onTimeout(ctx) : defaultTimeoutDecision(ctx);
          break;
        case 'cancel':
          status = WorkflowStatus.Cancelled;
          decision = cancelDecision();
          break;
        default:
          decision = await strategy.evaluate(ctx);
      }
      if (typeof decision !== 'object' || decision === null || typeof decision.action !== 'string') {
        throw new Error('the strategy returned no decision object with a string "action"');
      }
      return { status, decision, json: JSON.stringify(toDecisionMessage(ctx, this.app.name, status, decision, frozenMs)) };
    } catch (error) {
      this.logger.error({ msg: 'strategy failed', corr_id: ctx.corrId, workflow_id: ctx.workflowId, kind: why, error: describeError(error) });
      const decision: Decision = { action: 'error', reason: 'strategy_error', error: describeError(error) };
      const json = JSON.stringify(toDecisionMessage(ctx, this.app.name, WorkflowStatus.Failed, decision, frozenMs));
      return { status: WorkflowStatus.Failed, decision, json };
    }
  }

  /**
   * Publishes a decision and finalises the workflow. A failure here loses nothing: the workflow stays
   * frozen, and its due entry brings it back to the sweeper after the claim lease.
   *
   * `ageMs`: how long ago (Redis's clock) the workflow was frozen, for a re-run by the sweeper. Past the
   * stream's duplicate window (less a margin) JetStream would store a second copy of a decision published
   * before, so the stream is searched for it first (DecisionPublisher.wasPublished).
   */
  private async publish(
    workflow: StoredWorkflow,
    json: string,
    status: FinalStatus,
    action: string,
    options: { receivedAt?: number; ageMs?: number },
  ): Promise<boolean> {
    const log = { corr_id: workflow.corrId, workflow_id: workflow.workflowId };
    const msgId = decisionMessageId(workflow);
    let duplicate = false;
    try {
      const margin = Math.min(this.publisher.duplicateWindowMs / 2, 30_000);
      let already = false;
      if (options.ageMs !== undefined && options.ageMs > this.publisher.duplicateWindowMs - margin) {
        already = await this.publisher.wasPublished(msgId, (workflow.frozenMs ?? workflow.finishedMs ?? workflow.startedMs) - margin);
        this.logger.warn({ msg: 'decision older than the duplicate window: searched the stream for it', ...log, found: already });
      }
      if (already) this.metrics.duplicate('decision');
      else duplicate = (await this.publisher.publish(json, msgId)).duplicate;
      if (duplicate) this.metrics.duplicate('decision');
      duplicate ||= already;
    } catch (error) {
      this.logger.warn({ msg: 'decision not published yet, left to the sweeper', ...log, error: describeError(error) });
      return false;
    }
    try {
      const finalized = await this.repository.finalize(workflow, status, json, this.config.retentionSeconds * 1000);
      this.audit.decisionPublished(workflow, json, status, duplicate, finalized);
      if (!finalized) return true;
      this.admission.finished();
      this.metrics.workflowFinished(workflow.workflowType, status, action, (finalized.finishedMs - finalized.startedMs) / 1000);
      if (options.receivedAt !== undefined) this.metrics.decisionLatency(workflow.workflowType, (performance.now() - options.receivedAt) / 1000);
      if (status === WorkflowStatus.Timeout) this.metrics.timeoutLateness((Date.now() - workflow.deadlineMs) / 1000);
      this.logger.log({ msg: 'decision published', ...log, status, action });
    } catch (error) {
      // Published: the sweeper finalises it after the lease (its publish is then a duplicate).
      this.audit.decisionPublished(workflow, json, status, duplicate, null);
      this.logger.warn({ msg: 'decision published, not finalised yet: left to the sweeper', ...log, error: describeError(error) });
    }
    return true;
  }

  /**
   * One job the sweeper found due (see sweep-1.lua). Ages are taken on its own shard's clock (`job.sweptMs`,
   * Redis's clock when that shard was swept): on a cluster each primary answers with its own time.
   */
  async runSweepJob(job: SweepJob): Promise<void> {
    const wf = job.workflow;
    const redisNowMs = job.sweptMs;
    switch (job.kind) {
      case 'publish': {
        // Recorded, not published, by an older version (which recorded before publishing).
        if (!wf.decisionJson) return;
        const message = JSON.parse(wf.decisionJson) as { status: FinalStatus; decision: { action: string } };
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
      default: {
        // Frozen: at its deadline (a timeout, frozen by this sweep), or earlier by a decider that died or
        // stalled past the lease: decided again from the same snapshot.
        const origin = job.kind === 'timeout' && wf.frozenMs === job.sweptMs ? 'timeout' : 'takeover';
        if (origin === 'takeover') {
          this.logger.warn({ msg: 'deciding a frozen workflow its decider left', corr_id: wf.corrId, workflow_id: wf.workflowId, why: job.kind });
        }
        await this.decide(wf, { ageMs: redisNowMs - (wf.frozenMs ?? redisNowMs), origin });
      }
    }
  }

  /*
   * Admin API (issue 12, part 3). An operator's cancel or forced decision freezes the workflow like a ready
   * signal does (freeze-3.lua, whatever arrived: exactly one caller freezes, whoever it is), and is then
   * decided, published and finalised the same way; so a cancel racing a signal, the sweeper, or another
   * replica's cancel or decide yields one decision, and should this replica die after the freeze the sweeper
   * finishes the operator's action (the frozen `why` and `by` say which, and who asked).
   */

  /**
   * Ends an open workflow now. `cancel`: decision `{action: "cancelled", reason: "cancelled_by_operator"}`,
   * status `cancelled`. `force`: the strategy's `evaluate` on what has arrived (status `completed`, or `failed`
   * if it throws). The decision's metadata carries who asked (`cancelled_by`, or `forced: true` and
   * `forced_by`); a forced evaluation sees them in `ctx.metadata` too.
   */
  async endNow(corrId: string, how: 'cancel' | 'force', by: string): Promise<EndNowResult> {
    const frozen = await this.repository.freeze({ corrId }, how, this.config.claimLeaseMs, by);
    if (frozen.kind !== 'frozen') {
      const status = frozen.kind === 'closed' ? frozen.status : frozen.workflow.status;
      if (status === '') return { kind: 'missing' };
      if (status === WorkflowStatus.Evaluating) return { kind: 'evaluating' };
      return { kind: 'finished', status };
    }
    const { json, published } = await this.decide(frozen.workflow, {});
    return { kind: 'done', workflow: frozen.workflow, decision: JSON.parse(json) as OrchestratedDecision, published };
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

/** What an admin action found: `evaluating`: being decided or timed out right now; `finished`: ended before. */
export type AdminRefusal = { kind: 'missing' } | { kind: 'evaluating'; workflowId?: string } | { kind: 'finished'; status: string; workflowId?: string };

/** `published`: the decision was published (else the sweeper publishes it once the claim lease runs out). */
export type EndNowResult = { kind: 'done'; workflow: StoredWorkflow; decision: OrchestratedDecision; published: boolean } | AdminRefusal;

export type ExtendNowResult =
  { kind: 'extended'; workflowId: string; previousDeadlineMs: number; deadlineMs: number; maxDeadlineMs: number; clamped: boolean } | AdminRefusal;
