import { BadRequestException, ConflictException, HttpException, Injectable, Logger, NotFoundException } from '@nestjs/common';
import { AuditTrail } from '../audit/audit.trail.js';
import { WorkflowRepository, type IndexPosition, type ListedWorkflow } from '../workflow/workflow.repository.js';
import { WorkflowService, type AdminRefusal, type EndNowResult } from '../workflow/workflow.service.js';
import { WorkflowStatus } from '../workflow/workflow.types.js';
import { AdminMetrics, type AdminAction, type AdminOutcome } from './admin.metrics.js';
import type { DecisionResultDto, ExtendResultDto, WorkflowListItemDto, WorkflowPageDto } from './dto/admin-responses.dto.js';
import { LIST_DEFAULT_LIMIT, type ListWorkflowsQuery } from './dto/list-workflows.query.js';
import { CursorError, decodeCursor, encodeCursor, queryFingerprint } from './list-cursor.js';
import { mergeShardPages, type Direction } from './list-page.js';
import { listPlan } from './list-plan.js';

/**
 * Entries each shard may read for one page (at least `limit`): bounds the work of a page whatever the
 * filters match, spread over the shards.
 */
const LIST_READ_BUDGET = 4000;

const iso = (ms: number) => new Date(ms).toISOString();

function present(wf: ListedWorkflow): WorkflowListItemDto {
  return {
    corr_id: wf.corrId,
    workflow_id: wf.workflowId,
    workflow_type: wf.workflowType,
    status: wf.status,
    started_at: iso(wf.startedMs),
    deadline_at: iso(wf.deadlineMs),
    finished_at: wf.finishedMs === null ? null : iso(wf.finishedMs),
    decision_published: wf.published,
    received_agents: wf.receivedAgents,
  };
}

/**
 * The admin API (issue 12, part 3): lists workflows from the indexes, and cancels, forces or extends one
 * through WorkflowService. Each action is logged (one JSON line: action, corr_id, workflow_id, outcome,
 * token name) and counted (meta_agent_admin_actions_total).
 */
@Injectable()
export class AdminService {
  private readonly logger = new Logger('Admin');

  constructor(
    private readonly repository: WorkflowRepository,
    private readonly workflows: WorkflowService,
    private readonly metrics: AdminMetrics,
    private readonly audit: AuditTrail,
  ) {}

  async list(query: ListWorkflowsQuery, token: string): Promise<WorkflowPageDto> {
    const limit = query.limit ?? LIST_DEFAULT_LIMIT;
    const plan = listPlan(query.status);
    const fingerprint = queryFingerprint(query);
    let source = 0;
    let after: IndexPosition | null = null;
    if (query.cursor !== undefined) {
      try {
        const cursor = decodeCursor(query.cursor, fingerprint);
        source = plan.findIndex((s) => s.index === cursor.index);
        if (source < 0) throw new CursorError('cursor belongs to a query with other filters (status, type): start again without it');
        after = cursor.after;
      } catch (error) {
        if (!(error instanceof CursorError)) throw error;
        this.count('list', 'invalid', token);
        throw new BadRequestException([error.message]);
      }
    }
    const items: WorkflowListItemDto[] = [];
    const budget = Math.max(limit, Math.ceil(LIST_READ_BUDGET / this.repository.keys.shards));
    while (source < plan.length && items.length < limit) {
      const { index, statuses } = plan[source];
      const wanted = limit - items.length;
      const pages = await this.repository.listIndex(index, { after, wanted, budget, statuses, type: query.type });
      const direction: Direction = index === 'recent' ? 'desc' : 'asc';
      const merged = mergeShardPages(pages, wanted, direction);
      items.push(...merged.items.map(present));
      if (merged.next) {
        after = merged.next;
        break;
      }
      source++;
      after = null;
    }
    const next = source < plan.length ? encodeCursor({ index: plan[source].index, after }, fingerprint) : null;
    this.count('list', 'ok', token);
    this.logger.debug({ msg: 'admin list', token, status: query.status ?? null, type: query.type ?? null, items: items.length, more: next !== null });
    return { items, next_cursor: next, limit };
  }

  async cancel(corrId: string, token: string): Promise<DecisionResultDto> {
    return this.endNow(corrId, 'cancel', token);
  }

  async decide(corrId: string, token: string): Promise<DecisionResultDto> {
    return this.endNow(corrId, 'decide', token);
  }

  async extend(corrId: string, seconds: number, token: string): Promise<ExtendResultDto> {
    const result = await this.workflows.extend(corrId, seconds);
    if (result.kind !== 'extended') throw this.refuse('extend', corrId, result, token);
    const reply: ExtendResultDto = {
      corr_id: corrId,
      workflow_id: result.workflowId,
      previous_deadline_at: iso(result.previousDeadlineMs),
      deadline_at: iso(result.deadlineMs),
      max_deadline_at: iso(result.maxDeadlineMs),
      extended_by_seconds: (result.deadlineMs - result.previousDeadlineMs) / 1000,
      clamped: result.clamped,
    };
    const outcome = result.clamped ? 'clamped' : 'ok';
    this.count('extend', outcome, token);
    this.audit.adminAction(corrId, {
      action: 'extend',
      outcome,
      token,
      workflow: { workflowId: result.workflowId },
      details: { requested_seconds: seconds, previous_deadline_ms: result.previousDeadlineMs, deadline_ms: result.deadlineMs, clamped: result.clamped },
    });
    this.logger.log({
      msg: 'admin action',
      action: 'extend',
      corr_id: corrId,
      workflow_id: result.workflowId,
      outcome,
      token,
      requested_seconds: seconds,
      extended_by_seconds: reply.extended_by_seconds,
      deadline_at: reply.deadline_at,
    });
    return reply;
  }

  private async endNow(corrId: string, action: 'cancel' | 'decide', token: string): Promise<DecisionResultDto> {
    const result: EndNowResult = await this.workflows.endNow(corrId, action === 'cancel' ? 'cancel' : 'force', token);
    if (result.kind !== 'done') throw this.refuse(action, corrId, result, token);
    this.count(action, 'ok', token);
    // Sorted by the freeze it made (Redis's clock), before it by rank.
    this.audit.adminAction(corrId, { action, outcome: 'ok', token, workflow: result.workflow }, result.workflow.frozenMs);
    this.logger.log({
      msg: 'admin action',
      action,
      corr_id: corrId,
      workflow_id: result.workflow.workflowId,
      outcome: 'ok',
      token,
      status: result.decision.status,
      decision_action: result.decision.decision.action,
      published: result.published,
    });
    return {
      corr_id: corrId,
      workflow_id: result.workflow.workflowId,
      action,
      status: result.decision.status,
      decision: result.decision as unknown as Record<string, unknown>,
      decision_published: result.published,
    };
  }

  /** The HTTP error of an action that could not be done, logged and counted. */
  private refuse(action: AdminAction, corrId: string, result: AdminRefusal, token: string): HttpException {
    let outcome: AdminOutcome;
    let error: HttpException;
    switch (result.kind) {
      case 'missing':
        outcome = 'not_found';
        error = new NotFoundException({ statusCode: 404, message: 'no workflow for this corr_id', corr_id: corrId });
        break;
      case 'evaluating':
        outcome = 'conflict';
        error = new ConflictException({
          statusCode: 409,
          message: 'the workflow is being decided or timed out right now',
          corr_id: corrId,
          status: WorkflowStatus.Evaluating,
        });
        break;
      case 'finished':
        outcome = 'conflict';
        error = new ConflictException({ statusCode: 409, message: `the workflow is finished (${result.status})`, corr_id: corrId, status: result.status });
        break;
    }
    this.count(action, outcome, token);
    if (action !== 'list') this.audit.adminAction(corrId, { action, outcome, token, details: { status: 'status' in result ? result.status : null } });
    this.logger.log({
      msg: 'admin action',
      action,
      corr_id: corrId,
      workflow_id: 'workflowId' in result ? (result.workflowId ?? null) : null,
      outcome,
      token,
      status: 'status' in result ? result.status : null,
    });
    return error;
  }

  /** A refused request (bad corr_id): counted with its action. */
  invalid(action: AdminAction, token: string): void {
    this.count(action, 'invalid', token);
  }

  private count(action: AdminAction, outcome: AdminOutcome, token: string): void {
    this.metrics.action(action, outcome, token);
  }
}
