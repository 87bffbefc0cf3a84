import { Global, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { metricProviders, metricSetProvider, OrchestratorMetrics } from './orchestrator.metrics.js';

@Global()
@Module({
  imports: [PrometheusModule.register({ path: '/metrics', defaultMetrics: { enabled: true } })],
  providers: [...metricProviders, metricSetProvider, OrchestratorMetrics],
  exports: [OrchestratorMetrics],
})
export class MetricsModule {}
