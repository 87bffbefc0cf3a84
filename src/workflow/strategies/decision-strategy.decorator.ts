import { DiscoveryService } from '@nestjs/core';

/**
 * Marks a provider class as the decision strategy of one workflow type. It only attaches metadata;
 * `StrategyRegistry` finds the marked providers at start (and refuses two for one type).
 *
 * @example `@DecisionStrategyProvider('trading') @Injectable() class TradingDecisionStrategy implements DecisionStrategy {}`
 */
export const DecisionStrategyProvider = DiscoveryService.createDecorator<string>();
