import { BadRequestException, Body, Controller, Get, HttpCode, Param, Post, Query, UsePipes } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../common/admin-token.guard.js';
import { CORR_ID } from '../common/names.js';
import { AdminTokenName } from './admin-token.decorator.js';
import type { AdminAction } from './admin.metrics.js';
import { AdminService } from './admin.service.js';
import { AdminErrorDto, DecisionResultDto, ExtendResultDto, WorkflowPageDto } from './dto/admin-responses.dto.js';
import { ExtendWorkflowDto } from './dto/extend-workflow.dto.js';
import { HttpValidationPipe } from './dto/http-validation.pipe.js';
import { ListWorkflowsQuery } from './dto/list-workflows.query.js';

const CORR_ID_PARAM = { name: 'corrId', description: `The corr_id: ${CORR_ID.rule}`, example: 'c-42' };
const UNAUTHORISED = { status: 401, description: 'No valid admin bearer token (404 instead when META_AGENT_ADMIN_TOKEN is not set).' };
const NOT_FOUND = { status: 404, description: 'No workflow for this corr_id (none, or expired after the retention period).', type: AdminErrorDto };
const CONFLICT = {
  status: 409,
  description: 'The workflow is finished (any final status) or being decided or timed out right now (`evaluating`): nothing changed.',
  type: AdminErrorDto,
};

/**
 * The admin API (issue 12, part 3; README "Admin API"): list workflows, and cancel, force or extend one.
 * Behind the admin bearer token like every admin endpoint; the token's name is "who asked".
 */
@ApiTags('admin')
@ApiBearerAuth()
@ApiResponse(UNAUTHORISED)
@Controller('workflows')
@AdminOnly()
@UsePipes(HttpValidationPipe)
export class AdminController {
  constructor(private readonly admin: AdminService) {}

  @Get()
  @ApiOperation({
    summary: 'Open and recently finished workflows, from the indexes (no scan of all keys)',
    description:
      'Open (and frozen but unpublished) workflows first, soonest due first; then finished ones kept for META_AGENT_RETENTION_SECONDS, newest first. Follow `next_cursor` until null.',
  })
  @ApiOkResponse({ type: WorkflowPageDto })
  @ApiResponse({ status: 400, description: 'A bad filter, limit or cursor.', type: AdminErrorDto })
  list(@Query() query: ListWorkflowsQuery, @AdminTokenName() token: string): Promise<WorkflowPageDto> {
    return this.admin.list(query, token);
  }

  @Post(':corrId/cancel')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Cancel an open workflow',
    description:
      'Records and publishes, exactly once, the decision {action: "cancelled", reason: "cancelled_by_operator"} with status `cancelled`; metadata.cancelled_by names the token.',
  })
  @ApiParam(CORR_ID_PARAM)
  @ApiOkResponse({ type: DecisionResultDto })
  @ApiResponse(NOT_FOUND)
  @ApiResponse(CONFLICT)
  cancel(@Param('corrId') corrId: string, @AdminTokenName() token: string): Promise<DecisionResultDto> {
    this.checkCorrId('cancel', corrId, token);
    return this.admin.cancel(corrId, token);
  }

  @Post(':corrId/decide')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Decide an open workflow now',
    description:
      "Runs the strategy's evaluate on the signals received so far and publishes its decision exactly once (status `completed`, or `failed` if the strategy throws); metadata.forced is true and metadata.forced_by names the token.",
  })
  @ApiParam(CORR_ID_PARAM)
  @ApiOkResponse({ type: DecisionResultDto })
  @ApiResponse(NOT_FOUND)
  @ApiResponse(CONFLICT)
  decide(@Param('corrId') corrId: string, @AdminTokenName() token: string): Promise<DecisionResultDto> {
    this.checkCorrId('decide', corrId, token);
    return this.admin.decide(corrId, token);
  }

  @Post(':corrId/extend')
  @HttpCode(200)
  @ApiOperation({
    summary: "Move an open workflow's deadline later",
    description: 'By `seconds`, up to started_at + META_AGENT_MAX_TIMEOUT_SECONDS: a longer extension is clamped to that bound (`clamped: true`).',
  })
  @ApiParam(CORR_ID_PARAM)
  @ApiBody({ type: ExtendWorkflowDto })
  @ApiOkResponse({ type: ExtendResultDto })
  @ApiResponse({ status: 400, description: 'A body without a whole number of seconds from 1 to 604800.', type: AdminErrorDto })
  @ApiResponse(NOT_FOUND)
  @ApiResponse(CONFLICT)
  extend(@Param('corrId') corrId: string, @Body() body: ExtendWorkflowDto, @AdminTokenName() token: string): Promise<ExtendResultDto> {
    this.checkCorrId('extend', corrId, token);
    return this.admin.extend(corrId, body.seconds, token);
  }

  private checkCorrId(action: AdminAction, corrId: string, token: string): void {
    if (CORR_ID.re.test(corrId)) return;
    this.admin.invalid(action, token);
    throw new BadRequestException([`corr_id must be ${CORR_ID.rule}`]);
  }
}
