import { Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { WorkflowModule } from '../workflow/workflow.module.js';
import { DependencyMonitor } from './dependency.monitor.js';
import { HealthController } from './health.controller.js';
import { ShutdownState } from './shutdown-state.js';
import { TransportHealth } from './transport.health.js';
import { TransportMetrics, transportMetricProviders } from './transport.metrics.js';

@Global()
@Module({
  imports: [TerminusModule.forRoot({ logger: false }), WorkflowModule],
  controllers: [HealthController],
  providers: [ShutdownState, DependencyMonitor, ...transportMetricProviders, TransportMetrics, TransportHealth],
  exports: [ShutdownState],
})
export class HealthModule {}
