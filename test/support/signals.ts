import type { JsMsg } from '@nats-io/jetstream';
import { parseSettings } from '../../src/config/env.schema.js';
import type { AppProcess } from './app.js';
import type { Bus } from './nats.js';
import { waitFor } from './env.js';

/** Builders for the wire format (SPEC "Wire format"), with sensible trading values. */
export const now = () => new Date().toISOString();

export function trigger(corrId: string, extra: Record<string, unknown> = {}) {
  return { corr_id: corrId, instrument: 'EURUSD', side: 'buy', strength: 0.8, price: 1.0845, normalized_at: now(), ...extra };
}

export function momentum(corrId: string, extra: Record<string, unknown> = {}) {
  return {
    corr_id: corrId,
    agent_name: 'momentum',
    signal_type: 'analysis',
    confidence: 0.9,
    timestamp: now(),
    analysis: { trend_direction: 'bullish', momentum_strength: 0.8 },
    ...extra,
  };
}

export function risk(corrId: string, extra: Record<string, unknown> = {}) {
  return {
    corr_id: corrId,
    agent_name: 'risk',
    signal_type: 'analysis',
    confidence: 0.8,
    timestamp: now(),
    analysis: { risk_level: 'low', max_position_size: 100000 },
    ...extra,
  };
}

export const TRIGGER_SUBJECT = 'signals.normalized';
export const agentSubject = (agent: string) => `signals.enriched.${agent}`;
/** The service's durable consumers on `SIGNALS` under default settings (`trigger`, `agents`), from the config schema. */
export const DEFAULT_CONSUMERS = parseSettings({}).nats.consumers;

export interface DecisionMessage {
  corr_id: string;
  workflow_id: string;
  orchestrator: string;
  workflow_type: string;
  status: string;
  decision: Record<string, any>;
  source_signals: { agent: string; confidence: number; timestamp: string | null }[];
  orchestrated_at: string;
  metadata: Record<string, unknown>;
}

export function parse(m: JsMsg): DecisionMessage {
  return JSON.parse(m.string()) as DecisionMessage;
}

/** Decisions for one corr_id in the DECISIONS stream. */
export async function decisionsFor(bus: Bus, corrId: string): Promise<DecisionMessage[]> {
  return (await bus.read('DECISIONS')).map(parse).filter((d) => d.corr_id === corrId);
}

/** Waits for the first decision of a corr_id in the DECISIONS stream. */
export async function waitForDecision(bus: Bus, corrId: string, timeoutMs = 30000): Promise<DecisionMessage> {
  const [decision] = await waitFor(
    `the decision of ${corrId}`,
    async () => {
      const found = await decisionsFor(bus, corrId);
      return found.length > 0 ? found : undefined;
    },
    timeoutMs,
  );
  return decision;
}

/**
 * Waits for the decision of a corr_id and proves it stays the only one, without waiting for time: once the
 * workflow is finalised (its decision marked published, so it has left the due index and no sweeper job can
 * take it again) and the service's consumers are idle (every input published before has been handled to its
 * end, redeliveries included), nothing is left that could publish a second decision, and the stream must
 * hold exactly one. `token`: the admin token to read the workflow with (default: the service's).
 */
export async function expectOneDecision(bus: Bus, app: AppProcess, corrId: string, token?: string): Promise<DecisionMessage> {
  const decision = await waitForDecision(bus, corrId);
  await waitFor(
    `the workflow of ${corrId} to be finalised`,
    async () => (await app.get(`/workflows/${corrId}`, token)).body?.decision_published === true,
    30000,
  );
  await bus.waitForIdle();
  expect(await decisionsFor(bus, corrId)).toEqual([decision]);
  return decision;
}

/** A workflows file with a second workflow type, `hedge` (for type filters), with a long timeout so that nothing times out under a test. */
export const HEDGE_WORKFLOWS_FILE = [
  'workflow_types:',
  '  hedge:',
  '    required_agents: [risk, momentum]',
  '    timeout_seconds: 300',
  '    vote: { field: analysis.trend_direction, weights: { momentum: 1 } }',
  '',
].join('\n');
