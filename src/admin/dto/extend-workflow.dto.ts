import { ApiProperty } from '@nestjs/swagger';
import { IsInt, Max, Min } from 'class-validator';

/** The largest META_AGENT_MAX_TIMEOUT_SECONDS accepted (src/config/settings/workflow.ts): no extension can go further. */
export const EXTEND_MAX_SECONDS = 7 * 86400;

/** Body of `POST /workflows/:corr_id/extend`. */
export class ExtendWorkflowDto {
  @ApiProperty({
    description:
      'Seconds to move the deadline by (later). The new deadline is at most started_at + META_AGENT_MAX_TIMEOUT_SECONDS: a longer extension is clamped to it, and the reply says so (`clamped`).',
    minimum: 1,
    maximum: EXTEND_MAX_SECONDS,
    example: 30,
  })
  // class-validator checks the decorators bottom-up: the type first, then the range.
  @Max(EXTEND_MAX_SECONDS)
  @Min(1)
  @IsInt({ message: 'seconds must be an integer' })
  seconds!: number;
}
