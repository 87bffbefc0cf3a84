import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { DiscoveryModule } from '@nestjs/core';
import { appConfig, workflowConfig } from '../../config/configuration.js';
import { StrategiesModule } from '../../workflow/strategies/strategies.module.js';
import { StrategyRegistry } from '../../workflow/strategies/strategy.registry.js';

/**
 * The strategies alone, as the service registers them (the built-in providers and the workflows file's
 * types), with the same settings: what replay runs recorded workflows through. No NATS, no Redis.
 */
@Module({
  imports: [ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [appConfig, workflowConfig] }), DiscoveryModule, StrategiesModule],
  providers: [StrategyRegistry],
})
export class ReplayModule {}
