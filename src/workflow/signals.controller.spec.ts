import 'reflect-metadata';
import { jest } from '@jest/globals';
import { BadInputError } from '../common/errors.js';
import type { JetStreamContext } from '../transport/jetstream/jetstream.context.js';
import type { AgentSignalDto } from './dto/signal.dto.js';
import type { WorkflowService } from './workflow.service.js';

// The metrics class pulls in the Prometheus module (CommonJS requiring ESM Nest, which jest's VM modules
// cannot load); the service is a stand-in that records what the controller hands on.
jest.unstable_mockModule('../metrics/orchestrator.metrics.js', () => ({ OrchestratorMetrics: class {} }));
jest.unstable_mockModule('./workflow.service.js', () => ({ WorkflowService: class {} }));
const { SignalsController } = await import('./signals.controller.js');

/* An agent is who its subject says (SPEC "Workflows"): the controller refuses a signal that speaks for another agent. */

function setup() {
  const handled: Record<string, unknown>[] = [];
  const service = { handleSignal: (data: Record<string, unknown>) => handled.push(data) } as unknown as WorkflowService;
  const controller = new SignalsController(service);
  const deliver = (subject: string, signal: Record<string, unknown>) => {
    const text = JSON.stringify(signal);
    // What the controller may ask of its context (the transport builds the real one).
    const meta = { sequence: 1, storedAtMs: 0, deliveryCount: 1, receivedAt: 0, hold: <T>(work: Promise<T>) => work };
    const ctx = { getSubject: () => subject, getText: () => text, getReceivedAt: () => 0, getDeliveryCount: () => 1, getMeta: () => meta };
    return controller.onAgentSignal(signal as unknown as AgentSignalDto, ctx as unknown as JetStreamContext);
  };
  return { handled, deliver };
}

describe('SignalsController: agent identity', () => {
  it("hands a signal whose agent_name is the subject's agent to the service", async () => {
    const { handled, deliver } = setup();
    await deliver('signals.enriched.risk', { corr_id: 'c-1', agent_name: 'risk', confidence: 0.5 });
    expect(handled).toEqual([{ corr_id: 'c-1', agent_name: 'risk', confidence: 0.5 }]);
  });

  it.each([
    ['another agent', 'signals.enriched.risk', 'momentum'],
    ['another case', 'signals.enriched.risk', 'Risk'],
    ['a prefix of the subject agent', 'signals.enriched.risk2', 'risk'],
    ['an agent named like a subject token', 'signals.enriched.momentum', 'enriched'],
  ])('refuses %s as bad input `agent_mismatch`, without handing it on', async (_what, subject, agent) => {
    const { handled, deliver } = setup();
    const error = await deliver(subject, { corr_id: 'c-1', agent_name: agent, confidence: 0.5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadInputError);
    expect(error).toMatchObject({ code: 'agent_mismatch', retryable: false });
    expect((error as Error).message).toContain(subject);
    expect(handled).toEqual([]);
  });

  it('takes the agent from the last token, whatever the configured subject filter', async () => {
    const { handled, deliver } = setup();
    await deliver('desk1.agents.out.macro', { corr_id: 'c-2', agent_name: 'macro' });
    expect(handled).toHaveLength(1);
  });
});
