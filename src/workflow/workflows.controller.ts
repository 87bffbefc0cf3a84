import { BadRequestException, Controller, Get, NotFoundException, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../common/admin-token.guard.js';
import { CORR_ID } from '../common/names.js';
import { WorkflowRepository, type StoredWorkflow } from './workflow.repository.js';

function parse(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return json;
  }
}

function present(wf: StoredWorkflow) {
  const received = Object.keys(wf.signals);
  return {
    corr_id: wf.corrId,
    workflow_id: wf.workflowId,
    workflow_type: wf.workflowType,
    status: wf.status,
    required_agents: wf.requiredAgents,
    received_agents: received,
    missing_agents: wf.requiredAgents.filter((a) => !received.includes(a)),
    started_at: new Date(wf.startedMs).toISOString(),
    deadline_at: new Date(wf.deadlineMs).toISOString(),
    timeout_seconds: wf.timeoutMs / 1000,
    // Frozen (status evaluating): when, for what (decide, timeout, cancel, force), and by which operator.
    frozen_at: wf.frozenMs ? new Date(wf.frozenMs).toISOString() : null,
    frozen_for: wf.why,
    frozen_by: wf.why === 'fail' ? null : wf.frozenBy,
    ...(wf.why === 'fail' && { strategy_error: wf.frozenBy }),
    finished_at: wf.finishedMs ? new Date(wf.finishedMs).toISOString() : null,
    decision_published: wf.published,
    metadata: wf.metadata,
    trigger: parse(wf.triggerJson),
    signals: Object.fromEntries(Object.entries(wf.signals).map(([agent, json]) => [agent, parse(json)])),
    decision: wf.decisionJson ? parse(wf.decisionJson) : null,
  };
}

/** Operators' view of one workflow, straight from Redis. It holds trading data: admin only (bearer token). */
@ApiTags('admin')
@ApiBearerAuth()
@Controller('workflows')
@AdminOnly()
export class WorkflowsController {
  constructor(private readonly repository: WorkflowRepository) {}

  @Get(':corrId')
  @ApiOperation({ summary: 'The stored state of one workflow: trigger, signals, decision (trading data: admin token)' })
  @ApiParam({ name: 'corrId', description: `The corr_id: ${CORR_ID.rule}` })
  @ApiResponse({ status: 200, description: 'The workflow as stored in Redis.' })
  @ApiResponse({ status: 400, description: 'A malformed corr_id.' })
  @ApiResponse({ status: 401, description: 'No valid admin bearer token (404 instead when META_AGENT_ADMIN_TOKEN is not set).' })
  @ApiResponse({ status: 404, description: 'No workflow for this corr_id; lists the signals buffered for it, if any.' })
  async get(@Param('corrId') corrId: string) {
    if (!CORR_ID.re.test(corrId)) throw new BadRequestException(`corr_id must be ${CORR_ID.rule}`);
    const { workflow, early } = await this.repository.inspect(corrId);
    if (!workflow) {
      throw new NotFoundException({ statusCode: 404, message: 'no workflow for this corr_id', corr_id: corrId, buffered_signals: Object.keys(early) });
    }
    return present(workflow);
  }
}
