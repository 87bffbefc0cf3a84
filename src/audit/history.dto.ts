import { ApiProperty } from '@nestjs/swagger';
import { AUDIT_EVENTS } from './audit.events.js';

/* Reply shape of GET /workflows/:corr_id/history, for the OpenAPI document (the controller returns plain objects). */

export class AuditEventDto {
  @ApiProperty({ description: 'Place of the event in its instance, from 1 (after ordering by `order`).' }) seq!: number;
  @ApiProperty({ enum: AUDIT_EVENTS }) event!: string;
  @ApiProperty() corr_id!: string;
  @ApiProperty({ type: String, nullable: true, example: 'trading:c-42' }) workflow_id!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'The instance the step named (null: assigned by time).', example: 'trading:c-42@1765100000000' })
  instance!: string | null;
  @ApiProperty({ type: Number, nullable: true, description: "Redis's clock (ms) at the step, where the step has it." }) redis_ms!: number | null;
  @ApiProperty({ type: [Number], description: '[ms, rank, input sequence]: the sort key (docs/ARCHITECTURE.md, "Audit trail").' }) order!: number[];
  @ApiProperty({ format: 'date-time', description: "The emitting replica's clock." }) at!: string;
  @ApiProperty({ example: 'trading_decision_meta_agent@host-1:4242' }) replica!: string;
  @ApiProperty({ description: "The audit stream's sequence of the event." }) stream_seq!: number;
  @ApiProperty({ format: 'date-time', description: 'When JetStream stored the event.' }) stored_at!: string;
}

export class InstanceHistoryDto {
  @ApiProperty({ example: 'trading:c-42@1765100000000', description: "`<workflow_id>@<started ms>`: the decision's Nats-Msg-Id." }) instance!: string;
  @ApiProperty({ example: 'trading:c-42' }) workflow_id!: string;
  @ApiProperty({ format: 'date-time' }) started_at!: string;
  @ApiProperty({ type: String, nullable: true, description: 'Final status, once its decision was published.' }) status!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true, description: 'The decision message as published.' })
  decision!: Record<string, unknown> | null;
  @ApiProperty({
    type: [AuditEventDto],
    description:
      'In order. Each event has, besides these fields, its own: `input` {seq, received_ms} and `trigger`/`signal` (as received) for inputs; `why`, `by`, `context` and `snapshot` {trigger, signals} for frozen, timeout and takeover; `decision` for decision_published; `action`, `outcome`, `token` for admin_action.',
  })
  events!: AuditEventDto[];
}

export class HistoryDto {
  @ApiProperty() corr_id!: string;
  @ApiProperty({ type: [InstanceHistoryDto], description: 'Oldest first.' }) instances!: InstanceHistoryDto[];
  @ApiProperty({ type: [AuditEventDto], description: 'Events of no instance: declined triggers, orphaned signals, early signals whose trigger never came.' })
  unassigned!: AuditEventDto[];
  @ApiProperty({ description: 'More events than one read returns (2000): the oldest are shown.' }) truncated!: boolean;
}
