import { Module } from '@nestjs/common';
import { DeclarativeStrategiesModule } from './declarative/declarative.module.js';
import { TradingDecisionStrategy } from './trading.strategy.js';

/**
 * The built-in decision strategies, and (DeclarativeStrategiesModule) the workflow types of
 * META_AGENT_WORKFLOWS_FILE. Adding a workflow type: write a provider class marked
 * `@DecisionStrategyProvider('<type>')` and list it here (or in any module of the app);
 * `npm run new:strategy -- <type>` writes one, with its spec, and lists it here.
 */
@Module({
  imports: [DeclarativeStrategiesModule],
  providers: [TradingDecisionStrategy],
  exports: [DeclarativeStrategiesModule],
})
export class StrategiesModule {}
