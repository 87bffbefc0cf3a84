import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DiscoveryModule } from '@nestjs/core';
import { workflowConfig } from '../../config/configuration.js';
import { BadInputError } from '../../common/errors.js';
import { DecisionStrategyProvider } from './decision-strategy.decorator.js';
import type { DecisionStrategy } from './decision-strategy.interface.js';
import { PROGRAMMATIC_STRATEGIES, StrategyRegistry, type ProgrammaticStrategy } from './strategy.registry.js';

class Base implements DecisionStrategy {
  shouldStart() {
    return true;
  }
  define() {
    return { requiredAgents: ['a'] };
  }
  canDecide() {
    return true;
  }
  evaluate() {
    return { action: 'x' };
  }
}

@DecisionStrategyProvider('trading')
@Injectable()
class TradingA extends Base {}
@DecisionStrategyProvider('trading')
@Injectable()
class TradingB extends Base {}
@DecisionStrategyProvider('rebalance')
@Injectable()
class Rebalance extends Base {}
@DecisionStrategyProvider('Bad Type')
@Injectable()
class BadType extends Base {}
@Injectable()
class NotAStrategy {}

async function build(...providers: (new () => unknown)[]) {
  @Module({ imports: [DiscoveryModule], providers: [...providers, StrategyRegistry, { provide: workflowConfig.KEY, useValue: { defaultType: 'trading' } }] })
  class M {}
  const moduleRef = await Test.createTestingModule({ imports: [M] }).compile();
  await moduleRef.init();
  return moduleRef.get(StrategyRegistry);
}

describe('StrategyRegistry', () => {
  it('finds decorated providers by their workflow type and ignores the rest', async () => {
    const registry = await build(TradingA, Rebalance, NotAStrategy);
    expect(registry.types().sort()).toEqual(['rebalance', 'trading']);
    expect(registry.get('rebalance')).toBeInstanceOf(Rebalance);
  });

  it('fails start-up on two providers for one type', async () => {
    await expect(build(TradingA, TradingB)).rejects.toThrow(/two decision strategies for workflow type "trading"/);
  });

  it('fails start-up when no provider serves the default type', async () => {
    await expect(build(Rebalance)).rejects.toThrow(/default workflow type "trading"/);
  });

  it('fails start-up on a malformed type', async () => {
    await expect(build(TradingA, BadType)).rejects.toThrow(/must match/);
  });

  it('reports an unknown type as bad input (dead-lettered, not retried)', async () => {
    const registry = await build(TradingA);
    expect(() => registry.get('nope')).toThrow(BadInputError);
  });
});

describe('StrategyRegistry: strategies built in code (PROGRAMMATIC_STRATEGIES, the workflows file)', () => {
  async function buildWith(programmatic: ProgrammaticStrategy[], ...providers: (new () => unknown)[]) {
    @Module({
      imports: [DiscoveryModule],
      providers: [
        ...providers,
        StrategyRegistry,
        { provide: workflowConfig.KEY, useValue: { defaultType: 'trading' } },
        { provide: PROGRAMMATIC_STRATEGIES, useValue: programmatic },
      ],
    })
    class M {}
    const moduleRef = await Test.createTestingModule({ imports: [M] }).compile();
    await moduleRef.init();
    return moduleRef.get(StrategyRegistry);
  }
  const hedge = new Base();

  it('registers them beside the providers', async () => {
    const registry = await buildWith([{ type: 'hedge', strategy: hedge, source: 'the workflows file w.yaml' }], TradingA);
    expect(registry.types().sort()).toEqual(['hedge', 'trading']);
    expect(registry.get('hedge')).toBe(hedge);
  });

  it('a type both in the file and served by a provider class stops start-up', async () => {
    await expect(buildWith([{ type: 'trading', strategy: hedge, source: 'the workflows file w.yaml' }], TradingA)).rejects.toThrow(
      'two decision strategies for workflow type "trading": TradingA and the workflows file w.yaml',
    );
  });

  it('they may serve the default type', async () => {
    const registry = await buildWith([{ type: 'trading', strategy: hedge, source: 'the workflows file w.yaml' }], Rebalance);
    expect(registry.get('trading')).toBe(hedge);
  });
});
