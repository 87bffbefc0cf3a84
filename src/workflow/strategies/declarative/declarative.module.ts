import { Module } from '@nestjs/common';
import { PROGRAMMATIC_STRATEGIES } from '../strategy.registry.js';
import { declarativeStrategiesProvider } from './declarative.provider.js';

/** The workflow types of META_AGENT_WORKFLOWS_FILE, as `PROGRAMMATIC_STRATEGIES` for the StrategyRegistry. */
@Module({
  providers: [declarativeStrategiesProvider],
  exports: [PROGRAMMATIC_STRATEGIES],
})
export class DeclarativeStrategiesModule {}
