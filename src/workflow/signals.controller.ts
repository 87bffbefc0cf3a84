import { Catch, Controller, UseFilters, type RpcExceptionFilter } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { throwError, type Observable } from 'rxjs';
import { AGENT_SIGNAL_PATTERN, TRIGGER_PATTERN } from '../transport/jetstream/jetstream.server.js';
import { JetStreamContext } from '../transport/jetstream/jetstream.context.js';
import { AgentSignalDto, TriggerDto } from './dto/signal.dto.js';
import { messageValidationPipe } from './dto/validation.pipe.js';
import { WorkflowService } from './workflow.service.js';

/**
 * Nest's default RPC filter replaces unknown errors with a generic object; the transport's settlement
 * needs the original error (its code and whether it is retryable), so it is passed through as it is.
 */
@Catch()
export class PassThroughRpcFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown): Observable<never> {
    return throwError(() => exception);
  }
}

/** Thin: validate, hand to the service, return. It never acks; the transport settles. */
@Controller()
@UseFilters(PassThroughRpcFilter)
export class SignalsController {
  constructor(private readonly workflows: WorkflowService) {}

  @EventPattern<string>(TRIGGER_PATTERN)
  async onTrigger(@Payload(messageValidationPipe) trigger: TriggerDto, @Ctx() ctx: JetStreamContext): Promise<void> {
    await this.workflows.handleTrigger(trigger as unknown as Record<string, unknown>, ctx.getText());
  }

  @EventPattern<string>(AGENT_SIGNAL_PATTERN)
  async onAgentSignal(@Payload(messageValidationPipe) signal: AgentSignalDto, @Ctx() ctx: JetStreamContext): Promise<void> {
    await this.workflows.handleSignal(signal as unknown as Record<string, unknown>, ctx.getText(), ctx.getReceivedAt());
  }
}
