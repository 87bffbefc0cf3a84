import { AGENT_NAME } from '../common/names.js';

/**
 * When a workflow can decide, declared instead of computed: Redis judges it in the script that stores each
 * signal (add-signals-2.lua, `is_ready` in src/redis/lua/includes/common.lua), so a signal that does not make
 * the workflow ready costs one short round trip, and the one that does freezes it and gets the snapshot.
 * A strategy declares it in `define()` (`WorkflowDefinition.readyWhen`); its `canDecide` must say the same
 * (the trading strategy's and the workflows file's are written with `isReady`; `strategyHarness` checks).
 */
export interface ReadinessRule {
  /** Agents that must all have answered. */
  all?: string[];
  /** At least this many agents must have answered (default 0) ... */
  atLeast?: number;
  /** ... counted among these (default, or empty: any agent). */
  among?: string[];
}

/** Whether the agents that answered satisfy the rule (the same test as the Lua `is_ready`). */
export function isReady(rule: ReadinessRule, answered: Iterable<string>): boolean {
  const agents = answered instanceof Set ? (answered as Set<string>) : new Set(answered);
  if (!(rule.all ?? []).every((agent) => agents.has(agent))) return false;
  const atLeast = rule.atLeast ?? 0;
  if (atLeast <= 0) return true;
  if (rule.among === undefined || rule.among.length === 0) return agents.size >= atLeast;
  let count = 0;
  for (const agent of new Set(rule.among)) if (agents.has(agent)) count++;
  return count >= atLeast;
}

/**
 * The rule as the workflow hash keeps it (`rdy`): `<at least>|<all, comma-separated>|<among, comma-separated>`,
 * a few bytes per workflow. Throws on a rule Redis could not judge (an agent name outside the signal
 * DTO's pattern could never answer; a count that is not a whole number).
 */
export function encodeReadiness(rule: ReadinessRule): string {
  const atLeast = rule.atLeast ?? 0;
  if (!Number.isSafeInteger(atLeast) || atLeast < 0) throw new Error(`readyWhen.atLeast must be a whole number >= 0, got ${String(rule.atLeast)}`);
  const list = (name: string, agents: string[] | undefined): string => {
    for (const agent of agents ?? []) {
      if (typeof agent !== 'string' || !AGENT_NAME.re.test(agent))
        throw new Error(`readyWhen.${name}: "${String(agent)}" is not an agent name (${AGENT_NAME.re})`);
    }
    return [...new Set(agents ?? [])].join(',');
  };
  return `${atLeast}|${list('all', rule.all)}|${list('among', rule.among)}`;
}
