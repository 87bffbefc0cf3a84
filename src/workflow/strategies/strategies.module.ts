import { Module } from '@nestjs/common';
import { TradingDecisionStrategy } from './trading.strategy.js';

/**
 * The built-in decision strategies. Adding a workflow type: write a provider class marked
 * `@DecisionStrategyProvider('<type>')` and list it here (or in any module of the app);
 * `npm run new:strategy -- <type>` writes one, with its spec, and lists it here.
 */
@Module({
  providers: [TradingDecisionStrategy],
})
export class StrategiesModule {}
