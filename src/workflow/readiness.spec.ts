import { encodeReadiness, isReady } from './readiness.js';
import { strategyHarness } from './strategies/testing.js';

describe('readiness rules (judged by Redis as signals are stored; the Lua side is in test/integration)', () => {
  it('all: every agent listed must have answered', () => {
    expect(isReady({ all: ['risk', 'momentum'] }, ['risk'])).toBe(false);
    expect(isReady({ all: ['risk', 'momentum'] }, ['momentum', 'risk'])).toBe(true);
  });

  it('atLeast: counted among any agent, or among the agents listed', () => {
    expect(isReady({ atLeast: 2 }, ['a'])).toBe(false);
    expect(isReady({ atLeast: 2 }, ['a', 'x'])).toBe(true);
    expect(isReady({ atLeast: 2, among: ['a', 'b', 'c'] }, ['a', 'x'])).toBe(false);
    expect(isReady({ atLeast: 2, among: ['a', 'b', 'c'] }, ['a', 'c'])).toBe(true);
    // An empty list counts any agent, as its encoding does.
    expect(isReady({ atLeast: 1, among: [] }, ['x'])).toBe(true);
  });

  it('no condition: ready on the trigger alone', () => {
    expect(isReady({}, [])).toBe(true);
  });

  it('is encoded in a few bytes, de-duplicated', () => {
    expect(encodeReadiness({ all: ['momentum', 'risk'], atLeast: 2 })).toBe('2|momentum,risk|');
    expect(encodeReadiness({ all: ['risk'], atLeast: 2, among: ['risk', 'momentum', 'risk'] })).toBe('2|risk|risk,momentum');
    expect(encodeReadiness({})).toBe('0||');
  });

  it('refuses what Redis could not judge: agent names outside the signal pattern, counts that are not whole', () => {
    expect(() => encodeReadiness({ all: ['risk,momentum'] })).toThrow(/readyWhen.all: "risk,momentum" is not an agent name/);
    expect(() => encodeReadiness({ among: ['a|b'] })).toThrow(/readyWhen.among/);
    expect(() => encodeReadiness({ atLeast: 1.5 })).toThrow(/readyWhen.atLeast must be a whole number/);
    expect(() => encodeReadiness({ atLeast: -1 })).toThrow(/readyWhen.atLeast/);
  });

  it('strategyHarness refuses a strategy whose readyWhen and canDecide disagree', async () => {
    const strategy = {
      shouldStart: () => true,
      define: () => ({ requiredAgents: ['a', 'b'], readyWhen: { all: ['a', 'b'] } }),
      canDecide: (ctx: { receivedSignals: Record<string, unknown> }) => 'a' in ctx.receivedSignals,
      evaluate: () => ({ action: 'x' }),
    };
    const h = strategyHarness(strategy, { workflowType: 'pair' });
    expect(await h.canDecide({ signals: [] })).toBe(false);
    await expect(h.canDecide({ signals: [{ agent_name: 'a' }] })).rejects.toThrow(
      /readyWhen .* and canDecide disagree with signals from \[a\]: canDecide says true/,
    );
    await expect(h.run({ signals: [{ agent_name: 'a' }, { agent_name: 'b' }] })).rejects.toThrow(/disagree/);
  });
});
