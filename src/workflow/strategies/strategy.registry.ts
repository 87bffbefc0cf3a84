import { Inject, Injectable, Logger, Optional, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { workflowConfig, type WorkflowConfig } from '../../config/configuration.js';
import { BadInputError } from '../../common/errors.js';
import { WORKFLOW_TYPE } from '../../common/names.js';
import { DecisionStrategyProvider } from './decision-strategy.decorator.js';
import type { DecisionStrategy } from './decision-strategy.interface.js';

export class StrategyRegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StrategyRegistryError';
  }
}

/**
 * Token of strategies built in code rather than discovered as provider classes (the workflow types of
 * META_AGENT_WORKFLOWS_FILE): a `ProgrammaticStrategy[]`, registered after the providers, with the same checks.
 */
export const PROGRAMMATIC_STRATEGIES = Symbol('PROGRAMMATIC_STRATEGIES');

export interface ProgrammaticStrategy {
  type: string;
  strategy: DecisionStrategy;
  /** Where it comes from, for start-up errors (e.g. `the workflows file /etc/meta-agent/workflows.yaml`). */
  source: string;
}

const REQUIRED_METHODS = ['shouldStart', 'define', 'canDecide', 'evaluate'] as const;

/**
 * Finds every provider marked `@DecisionStrategyProvider(type)` at start, then takes the
 * `PROGRAMMATIC_STRATEGIES` (the workflows file's types). Two strategies for one type,
 * a malformed type, a provider missing a method, or no provider for the default type stop start-up.
 */
@Injectable()
export class StrategyRegistry implements OnModuleInit {
  private readonly logger = new Logger('StrategyRegistry');
  private readonly strategies = new Map<string, DecisionStrategy>();
  private readonly sources = new Map<string, string>();

  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(workflowConfig.KEY) private readonly config: WorkflowConfig,
    @Optional() @Inject(PROGRAMMATIC_STRATEGIES) private readonly programmatic: ProgrammaticStrategy[] | null = null,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders({ metadataKey: DecisionStrategyProvider.KEY })) {
      const type = this.discovery.getMetadataByDecorator(DecisionStrategyProvider, wrapper);
      this.register(String(type), wrapper.instance as DecisionStrategy, wrapper.name);
    }
    for (const { type, strategy, source } of this.programmatic ?? []) this.register(type, strategy, source);
    if (!this.strategies.has(this.config.defaultType)) {
      throw new StrategyRegistryError(
        `no decision strategy serves the default workflow type "${this.config.defaultType}" (META_AGENT_DEFAULT_WORKFLOW_TYPE); registered: ${[...this.strategies.keys()].join(', ') || 'none'}`,
      );
    }
    this.logger.log({ msg: 'decision strategies registered', types: [...this.strategies.keys()] });
  }

  register(type: string, strategy: DecisionStrategy, providerName = strategy.constructor.name): void {
    if (!WORKFLOW_TYPE.re.test(type)) throw new StrategyRegistryError(`workflow type "${type}" of ${providerName} must match ${WORKFLOW_TYPE.re}`);
    if (this.strategies.has(type)) {
      throw new StrategyRegistryError(`two decision strategies for workflow type "${type}": ${this.sources.get(type)} and ${providerName}`);
    }
    for (const method of REQUIRED_METHODS) {
      if (typeof strategy?.[method] !== 'function') throw new StrategyRegistryError(`${providerName} does not implement ${method}()`);
    }
    this.strategies.set(type, strategy);
    this.sources.set(type, providerName);
  }

  /** The strategy of a type; an unknown type is bad input (the message is dead-lettered). */
  get(type: string): DecisionStrategy {
    const strategy = this.strategies.get(type);
    if (!strategy) throw new BadInputError('unknown_workflow_type', `no decision strategy for workflow type "${type}"`);
    return strategy;
  }

  types(): string[] {
    return [...this.strategies.keys()];
  }
}
