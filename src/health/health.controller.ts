import { Controller, Get, HttpCode, Inject, Res } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Response } from 'express';
import { appConfig, type AppConfig } from '../config/configuration.js';
import { NatsConnectionService } from '../nats/nats-connection.service.js';
import { WorkflowRepository } from '../workflow/workflow.repository.js';
import { ShutdownState } from './shutdown-state.js';
import { TransportHealth } from './transport.health.js';

const CHECK_TIMEOUT_MS = 1000;

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly nats: NatsConnectionService,
    private readonly repository: WorkflowRepository,
    private readonly shutdown: ShutdownState,
    private readonly transport: TransportHealth,
    @Inject(appConfig.KEY) private readonly app: AppConfig,
  ) {}

  private natsCheck() {
    return this.indicators
      .check('nats')
      .attempt(() => this.nats.checkJetStream())
      .withTimeout(CHECK_TIMEOUT_MS);
  }

  private redisCheck() {
    return this.indicators
      .check('redis')
      .attempt(() => this.repository.ping())
      .withTimeout(CHECK_TIMEOUT_MS);
  }

  private shutdownCheck() {
    const session = this.indicators.check('shutdown');
    return this.shutdown.isShuttingDown ? session.down({ message: 'shutting_down' }) : session.up();
  }

  /** The process is alive (its event loop answers). */
  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  /**
   * Ready to take work: not shutting down, the transport connected with every consumer it reads (from its
   * events, TransportHealth), JetStream answering, Redis answering.
   */
  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.shutdownCheck(), () => this.transport.check(), () => this.natsCheck(), () => this.redisCheck()]);
  }

  /** The template's JSON shape; 503 when unhealthy. `active_workflows` is counted in Redis. */
  @Get()
  @HttpCode(200)
  async summary(@Res({ passthrough: true }) res: Response) {
    const [nats, redis, active] = await Promise.all([
      this.natsCheck().then((r) => r.nats.status === 'up'),
      this.redisCheck().then((r) => r.redis.status === 'up'),
      this.repository.countActive().catch(() => null),
    ]);
    const healthy = nats && redis && !this.shutdown.isShuttingDown;
    res.status(healthy ? 200 : 503);
    return {
      status: healthy ? 'healthy' : 'unhealthy',
      agent_name: this.app.name,
      active_workflows: active,
      nats_connected: nats,
      redis_connected: redis,
    };
  }
}
