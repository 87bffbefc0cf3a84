import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { WorkflowStatus } from '../../workflow/workflow.types.js';

/*
 * Reply shapes of the admin API, for the OpenAPI document (the controller returns plain objects of these shapes).
 */

const STATUSES = Object.values(WorkflowStatus);

export class WorkflowListItemDto {
  @ApiProperty({ example: 'c-42' }) corr_id!: string;
  @ApiProperty({ example: 'trading:c-42' }) workflow_id!: string;
  @ApiProperty({ example: 'trading' }) workflow_type!: string;
  @ApiProperty({ enum: STATUSES }) status!: string;
  @ApiProperty({ format: 'date-time' }) started_at!: string;
  @ApiProperty({ format: 'date-time' }) deadline_at!: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) finished_at!: string | null;
  @ApiProperty({ description: 'The decision is on the decisions stream.' }) decision_published!: boolean;
  @ApiProperty({ type: [String], description: 'Agents whose signal the workflow holds.', example: ['momentum'] }) received_agents!: string[];
}

export class WorkflowPageDto {
  @ApiProperty({ type: [WorkflowListItemDto] }) items!: WorkflowListItemDto[];
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'Pass as `cursor` (same filters) for the next page; null at the end. A page may hold fewer than `limit` items (even none) while a cursor follows: each page reads a bounded part of the indexes.',
  })
  next_cursor!: string | null;
  @ApiProperty() limit!: number;
}

export class DecisionResultDto {
  @ApiProperty() corr_id!: string;
  @ApiProperty() workflow_id!: string;
  @ApiProperty({ enum: ['cancel', 'decide'] }) action!: string;
  @ApiProperty({ enum: [WorkflowStatus.Cancelled, WorkflowStatus.Completed, WorkflowStatus.Failed], description: 'The final status of the decision.' })
  status!: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description:
      'The decision message as built and published on the decisions subject (orchestrated_signal + workflow_type, status); when not published yet, the sweeper publishes it, built again from the same frozen snapshot.',
  })
  decision!: Record<string, unknown>;
  @ApiProperty({ description: 'false: not published yet (NATS was unavailable); the workflow stays frozen and the sweeper publishes it.' })
  decision_published!: boolean;
}

export class ExtendResultDto {
  @ApiProperty() corr_id!: string;
  @ApiProperty() workflow_id!: string;
  @ApiProperty({ format: 'date-time' }) previous_deadline_at!: string;
  @ApiProperty({ format: 'date-time' }) deadline_at!: string;
  @ApiProperty({ format: 'date-time', description: 'started_at + META_AGENT_MAX_TIMEOUT_SECONDS' }) max_deadline_at!: string;
  @ApiProperty({ description: 'How far the deadline moved (less than asked when clamped).' }) extended_by_seconds!: number;
  @ApiProperty({ description: 'The extension asked for went past max_deadline_at and was cut to it.' }) clamped!: boolean;
}

export class AdminErrorDto {
  @ApiProperty({ example: 409 }) statusCode!: number;
  @ApiProperty({
    description: 'What went wrong (a list of messages for a refused body or query).',
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
  })
  message!: string | string[];
  @ApiPropertyOptional() corr_id?: string;
  @ApiPropertyOptional({ description: 'The status that made the action impossible (409).' }) status?: string;
}
