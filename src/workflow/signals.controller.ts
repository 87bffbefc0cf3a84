import { Catch, Controller, UseFilters, type RpcExceptionFilter } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { throwError, type Observable } from 'rxjs';
import { BadInputError } from '../common/errors.js';
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
    await this.workflows.handleTrigger(trigger as unknown as Record<string, unknown>, ctx.getText(), ctx.getMeta());
  }

  /**
   * An agent is who its subject says (SPEC "Workflows"): the subject's last token names the agent, and a
   * signal speaking for another agent is bad input, so NATS subject permissions can keep each agent to
   * its own name (deploy/nats/).
   */
  @EventPattern<string>(AGENT_SIGNAL_PATTERN)
  async onAgentSignal(@Payload(messageValidationPipe) signal: AgentSignalDto, @Ctx() ctx: JetStreamContext): Promise<void> {
    const subject = ctx.getSubject();
    const subjectAgent = subject.slice(subject.lastIndexOf('.') + 1);
    if (signal.agent_name !== subjectAgent) {
      throw new BadInputError('agent_mismatch', `agent_name "${signal.agent_name}" is not the agent of subject ${subject} ("${subjectAgent}")`);
    }
    await this.workflows.handleSignal(signal as unknown as Record<string, unknown>, ctx.getText(), ctx.getMeta());
  }
}
