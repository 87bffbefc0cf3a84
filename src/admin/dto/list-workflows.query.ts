import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';
import { WORKFLOW_TYPE } from '../../common/names.js';
import { WorkflowStatus } from '../../workflow/workflow.types.js';

/** `open`: not finished (pending, in_progress, waiting_for_agents, evaluating); `finished`: any final status. */
export const LIST_STATUS_FILTERS = ['open', 'finished', ...Object.values(WorkflowStatus)] as const;
export type ListStatusFilter = (typeof LIST_STATUS_FILTERS)[number];

export const LIST_DEFAULT_LIMIT = 50;
export const LIST_MAX_LIMIT = 500;

/** Query of `GET /workflows`. (class-validator checks a property's decorators bottom-up: type first, then range.) */
export class ListWorkflowsQuery {
  @ApiPropertyOptional({
    enum: LIST_STATUS_FILTERS,
    description: '`open` (not finished), `finished` (any final status, published or not), or one exact status. Default: all.',
  })
  @IsOptional()
  @IsIn(LIST_STATUS_FILTERS, { message: `status must be one of: ${LIST_STATUS_FILTERS.join(', ')}` })
  status?: ListStatusFilter;

  @ApiPropertyOptional({ description: 'Only workflows of this type.', example: 'trading', pattern: WORKFLOW_TYPE.pattern })
  @IsOptional()
  @Matches(WORKFLOW_TYPE.re, { message: `type must be ${WORKFLOW_TYPE.rule}` })
  @IsString()
  type?: string;

  @ApiPropertyOptional({ description: 'Items per page.', minimum: 1, maximum: LIST_MAX_LIMIT, default: LIST_DEFAULT_LIMIT })
  @IsOptional()
  @Max(LIST_MAX_LIMIT)
  @Min(1)
  @IsInt({ message: 'limit must be an integer' })
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next_cursor` of the previous page, with the same filters.' })
  @IsOptional()
  @Length(1, 512)
  @IsString()
  cursor?: string;
}
