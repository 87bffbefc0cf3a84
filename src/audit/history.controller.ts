import { BadRequestException, Controller, Get, NotFoundException, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../common/admin-token.guard.js';
import { CORR_ID } from '../common/names.js';
import { buildHistory } from './audit-history.js';
import { AuditReader, HISTORY_MAX_EVENTS } from './audit.reader.js';
import { HistoryDto } from './history.dto.js';

/** The audit trail of one corr_id (README "Audit trail"): admin only, like every /workflows route. */
@ApiTags('admin')
@ApiBearerAuth()
@Controller('workflows')
@AdminOnly()
export class HistoryController {
  constructor(private readonly reader: AuditReader) {}

  @Get(':corrId/history')
  @ApiOperation({
    summary: 'The audit events of each instance of a corr_id, in order, with its decision',
    description: `Read from the audit stream (kept META_AGENT_AUDIT_MAX_AGE_SECONDS), at most ${HISTORY_MAX_EVENTS} events. 404 when it holds none (or the audit trail is off).`,
  })
  @ApiParam({ name: 'corrId', description: `The corr_id: ${CORR_ID.rule}`, example: 'c-42' })
  @ApiOkResponse({ type: HistoryDto })
  @ApiResponse({ status: 400, description: 'A malformed corr_id.' })
  @ApiResponse({ status: 401, description: 'No valid admin bearer token (404 instead when META_AGENT_ADMIN_TOKEN is not set).' })
  @ApiResponse({ status: 404, description: 'No audit event for this corr_id.' })
  async history(@Param('corrId') corrId: string): Promise<HistoryDto> {
    if (!CORR_ID.re.test(corrId)) throw new BadRequestException(`corr_id must be ${CORR_ID.rule}`);
    const { records, truncated } = this.reader.enabled ? await this.reader.read(corrId) : { records: [], truncated: false };
    if (records.length === 0) {
      throw new NotFoundException({ statusCode: 404, message: 'no audit events for this corr_id', corr_id: corrId, audit: this.reader.enabled });
    }
    return { ...buildHistory(corrId, records), truncated } as unknown as HistoryDto;
  }
}
