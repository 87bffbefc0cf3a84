import { Controller, Get, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AdminTokenName } from '../admin/admin-token.decorator.js';
import { AdminOnly } from '../common/admin-token.guard.js';
import { LIVE_HEARTBEAT_MS, LIVE_MAX_BUFFERED_BYTES, LIVE_MAX_STREAMS, LiveDecisions } from './live-decisions.js';

/** Decisions as they are published (the operator console's live view): admin only, like every /workflows route. */
@ApiTags('admin')
@ApiBearerAuth()
@Controller('workflows/decisions')
@AdminOnly()
export class LiveDecisionsController {
  constructor(private readonly live: LiveDecisions) {}

  @Get('live')
  @ApiOperation({
    summary: 'Decisions as they are published (Server-Sent Events)',
    description:
      `A text/event-stream of the decisions every replica publishes from now on (a core NATS subscription on the decision subject, per client, ended when the client goes; nothing is replayed). ` +
      `Events: \`ready\` once subscribed; \`decision\` with the message as published in \`data\` and its Nats-Msg-Id (the instance) as \`id\`; ` +
      `\`dropped\` {count} when decisions were skipped because the client did not read them (more than ${LIVE_MAX_BUFFERED_BYTES} bytes waiting); a comment every ${LIVE_HEARTBEAT_MS / 1000} s. ` +
      `At most ${LIVE_MAX_STREAMS} streams per replica. Send the bearer token as a header (a browser: fetch() and a reader, not EventSource).`,
  })
  @ApiProduces('text/event-stream')
  @ApiOkResponse({ description: 'The stream (never ends by itself while the service runs).', content: { 'text/event-stream': { schema: { type: 'string' } } } })
  @ApiResponse({ status: 401, description: 'No valid admin bearer token (404 instead when META_AGENT_ADMIN_TOKEN is not set).' })
  @ApiResponse({ status: 503, description: `${LIVE_MAX_STREAMS} streams are open on this replica already, or it is stopping.` })
  async stream(@Res() res: Response, @AdminTokenName() token: string): Promise<void> {
    const refusal = this.live.refusal();
    if (refusal) throw new ServiceUnavailableException(refusal);
    await this.live.serve(res, token);
  }
}
