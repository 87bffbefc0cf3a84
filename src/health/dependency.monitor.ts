import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { appConfig, type AppConfig } from '../config/configuration.js';
import { BackgroundLoop } from '../common/background-loop.js';
import { describeError } from '../common/errors.js';
import { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import { NatsConnectionService } from '../nats/nats-connection.service.js';
import { WorkflowRepository } from '../workflow/workflow.repository.js';

const CHECK_TIMEOUT_MS = 2000;

function withTimeout(work: Promise<unknown>): Promise<unknown> {
  return Promise.race([work, sleep(CHECK_TIMEOUT_MS, undefined, { ref: false }).then(() => Promise.reject(new Error(`no answer in ${CHECK_TIMEOUT_MS} ms`)))]);
}

/**
 * Every META_AGENT_HEALTH_CHECK_INTERVAL seconds, checks NATS JetStream and Redis in the background,
 * exports `meta_agent_dependency_up{dependency}` and logs each change (down, and back up), so an outage
 * shows in logs and metrics even when nobody probes the HTTP endpoints.
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
    @Inject(appConfig.KEY) config: AppConfig,
  ) {
    this.loop = new BackgroundLoop(async () => {
      await Promise.all([this.check('nats', () => this.nats.checkJetStream()), this.check('redis', () => this.repository.ping())]);
    }, config.healthCheckIntervalMs);
  }

  onApplicationBootstrap(): void {
    this.loop.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.loop.stop();
  }

  private async check(dependency: string, probe: () => Promise<unknown>): Promise<void> {
    let up = true;
    let error: string | undefined;
    try {
      await withTimeout(probe());
    } catch (e) {
      up = false;
      error = describeError(e);
    }
    this.metrics.dependencyUp(dependency, up);
    const before = this.state.get(dependency);
    this.state.set(dependency, up);
    if (before === up) return;
    if (!up) this.logger.warn({ msg: `${dependency} unreachable`, dependency, error });
    else if (before === false) this.logger.log({ msg: `${dependency} reachable again`, dependency });
  }
}
