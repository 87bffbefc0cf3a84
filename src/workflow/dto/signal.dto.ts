import { IsNumber, IsObject, IsOptional, IsPositive, IsString, Length, Matches, Max, Min } from 'class-validator';

import { IsTimestamp } from './is-timestamp.js';

/** SPEC: 1 to 128 characters of A-Z a-z 0-9 . _ : - (anything else is bad input). */
export const CORR_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const CORR_ID_MESSAGE = 'corr_id must be 1 to 128 characters of A-Z a-z 0-9 . _ : -';
const FINITE = { allowNaN: false, allowInfinity: false };

/**
 * A trigger on `signals.normalized`. Only `corr_id` is required: a trigger without `side` or `strength`
 * is valid and declined by the trading strategy, as in the template. Present fields must have their type.
 * Unknown fields are kept (the whole object is the trigger's data).
 */
export class TriggerDto {
  @IsString()
  @Matches(CORR_ID_RE, { message: CORR_ID_MESSAGE })
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
  @Matches(/^[a-z0-9_-]{1,64}$/, { message: 'workflow_type must be 1 to 64 characters of a-z 0-9 _ -' })
  workflow_type?: string;

  @IsOptional()
  @IsNumber(FINITE)
  @IsPositive()
  timeout_seconds?: number;
}

/** An agent's signal on `signals.enriched.<agent>`; payload fields (`analysis`, `sentiment_score`, ...) are kept. */
export class AgentSignalDto {
  @IsString()
  @Matches(CORR_ID_RE, { message: CORR_ID_MESSAGE })
  corr_id!: string;

  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,64}$/, { message: 'agent_name must be 1 to 64 characters of A-Z a-z 0-9 _ -' })
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
