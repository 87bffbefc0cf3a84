import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { appConfig, type AppConfig } from '../config/configuration.js';
import { BackgroundLoop } from '../common/background-loop.js';
import { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import { NatsConnectionService } from '../nats/nats-connection.service.js';
import { WorkflowRepository } from '../workflow/workflow.repository.js';

export const CHECK_TIMEOUT_MS = 2000;

/**
 * Every META_AGENT_HEALTH_CHECK_INTERVAL seconds, checks NATS JetStream and Redis in the background,
 * exports `meta_agent_dependency_up{dependency}` and logs each change (down, and back up), so an outage
 * shows in logs and metrics even when nobody probes the HTTP endpoints. The checks are Terminus attempts
 * with its timeout (an `AbortSignal.timeout`, nothing left running once a check has answered), as the
 * HTTP probes are.
 */
@Injectable()
export class DependencyMonitor implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('DependencyMonitor');
  private readonly state = new Map<string, boolean>();
  private readonly loop: BackgroundLoop;

  constructor(
    private readonly nats: NatsConnectionService,
    private readonly repository: WorkflowRepository,
    private readonly metrics: OrchestratorMetrics,
    private readonly indicators: HealthIndicatorService,
    @Inject(appConfig.KEY) config: AppConfig,
  ) {
    this.loop = new BackgroundLoop(() => this.checkAll(), config.healthCheckIntervalMs);
  }

  onApplicationBootstrap(): void {
    this.loop.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.loop.stop();
  }

  /** One round of checks (the loop's step). */
  async checkAll(): Promise<void> {
    await Promise.all([this.check('nats', () => this.nats.checkJetStream()), this.check('redis', () => this.repository.ping())]);
  }

  private async check(dependency: string, probe: () => Promise<unknown>): Promise<void> {
    const result = await this.indicators
      .check(dependency)
      .attempt(async () => {
        await probe();
      })
      .withTimeout(CHECK_TIMEOUT_MS);
    const { status, message } = result[dependency] as { status: string; message?: string };
    const up = status === 'up';
    this.metrics.dependencyUp(dependency, up);
    const before = this.state.get(dependency);
    this.state.set(dependency, up);
    if (before === up) return;
    if (!up) this.logger.warn({ msg: `${dependency} unreachable`, dependency, error: message });
    else if (before === false) this.logger.log({ msg: `${dependency} reachable again`, dependency });
  }
}
