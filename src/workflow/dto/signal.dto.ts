import { IsNumber, IsObject, IsOptional, IsPositive, IsString, Length, Matches, Max, Min } from 'class-validator';

import { AGENT_NAME, CORR_ID, WORKFLOW_TYPE } from '../../common/names.js';
import { IsTimestamp } from './is-timestamp.js';

const CORR_ID_MESSAGE = `corr_id must be ${CORR_ID.rule}`;
const FINITE = { allowNaN: false, allowInfinity: false };

/**
 * A trigger on `signals.normalized`. Only `corr_id` is required: a trigger without `side` or `strength`
 * is valid and declined by the trading strategy, as in the template. Present fields must have their type.
 * Unknown fields are kept (the whole object is the trigger's data).
 */
export class TriggerDto {
  @IsString()
  @Matches(CORR_ID.re, { message: CORR_ID_MESSAGE })
  corr_id!: string;

  @IsOptional()
  @IsString()
  @Length(1, 64)
  instrument?: string;

  @IsOptional()
  @IsString()
  @Length(1, 32)
  side?: string;

  @IsOptional()
  @IsNumber(FINITE)
  @Min(0)
  strength?: number;

  @IsOptional()
  @IsNumber(FINITE)
  @Min(0)
  price?: number;

  @IsOptional()
  @IsTimestamp()
  normalized_at?: string;

  @IsOptional()
  @IsString()
  @Matches(WORKFLOW_TYPE.re, { message: `workflow_type must be ${WORKFLOW_TYPE.rule}` })
  workflow_type?: string;

  @IsOptional()
  @IsNumber(FINITE)
  @IsPositive()
  timeout_seconds?: number;
}

/** An agent's signal on `signals.enriched.<agent>`; payload fields (`analysis`, `sentiment_score`, ...) are kept. */
export class AgentSignalDto {
  @IsString()
  @Matches(CORR_ID.re, { message: CORR_ID_MESSAGE })
  corr_id!: string;

  @IsString()
  @Matches(AGENT_NAME.re, { message: `agent_name must be ${AGENT_NAME.rule}` })
  agent_name!: string;

  @IsOptional()
  @IsString()
  @Length(1, 64)
  signal_type?: string;

  @IsOptional()
  @IsNumber(FINITE)
  @Min(0)
  @Max(1)
  confidence?: number;

  @IsOptional()
  @IsTimestamp()
  timestamp?: string;

  @IsOptional()
  @IsObject()
  metadata?: Record<string, unknown>;
}
