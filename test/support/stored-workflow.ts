import { newWorkflow, type StoredWorkflow } from '../../src/workflow/workflow.repository.js';

/**
 * A workflow as the repository returns it, for unit specs with a scripted repository: corr_id `c1`, type
 * `vote`, open, started at 1,000 ms with a 60 s timeout, waiting for agents `a` and `b`; `agents` get
 * signals (confidence 0.5, 0.6, ...). Anything else through `over`.
 */
export function storedWorkflow(agents: string[] = [], over: Partial<StoredWorkflow> = {}): StoredWorkflow {
  const signal = (agent: string, i: number) =>
    JSON.stringify({ corr_id: 'c1', agent_name: agent, confidence: 0.5 + i / 10, timestamp: '2026-11-26T10:00:00Z' });
  return {
    ...newWorkflow({
      corrId: 'c1',
      workflowType: 'vote',
      startedMs: 1_000,
      timeoutMs: 60_000,
      requiredAgents: ['a', 'b'],
      metadata: {},
      triggerJson: JSON.stringify({ corr_id: 'c1' }),
      hasRule: false,
    }),
    status: 'waiting_for_agents',
    signals: Object.fromEntries(agents.map((a, i) => [a, signal(a, i)])),
    ...over,
  };
}
