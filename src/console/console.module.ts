import { Module } from '@nestjs/common';
import { ConsoleController } from './console.controller.js';
import { LiveDecisionsController } from './live-decisions.controller.js';
import { LiveDecisions } from './live-decisions.js';

/**
 * The operator console (issue 18, part 4; README "Operator console"): the page at `/console` (static: it
 * calls the admin API from the browser with the token the operator gives it) and the one endpoint the API
 * lacked for it, `GET /workflows/decisions/live`. Off, like the admin API, without META_AGENT_ADMIN_TOKEN.
 */
@Module({
  controllers: [ConsoleController, LiveDecisionsController],
  providers: [LiveDecisions],
})
export class ConsoleModule {}
