import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { AdminModule } from './admin/admin.module.js';
import { AdminAuthModule } from './common/admin-token.guard.js';
import { ConsoleModule } from './console/console.module.js';
import { appConfig, natsConfig, redisConfig, workflowConfig } from './config/configuration.js';
import { HealthModule } from './health/health.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { NatsModule } from './nats/nats.module.js';
import { RedisModule } from './redis/redis.module.js';
import { JetStreamModule } from './transport/jetstream/jetstream.module.js';
import { WorkflowModule } from './workflow/workflow.module.js';

@Module({
  imports: [
    // The namespaces read (and validate) the environment when Nest builds them, after bootstrap has
    // read .env and checked every setting. No `validate` here: forRoot runs when this file is imported,
    // before .env is read, and would judge the environment without it.
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      load: [appConfig, natsConfig, redisConfig, workflowConfig],
    }),
    MetricsModule,
    RedisModule,
    NatsModule,
    JetStreamModule,
    AdminAuthModule,
    WorkflowModule,
    AdminModule,
    ConsoleModule,
    HealthModule,
  ],
})
export class AppModule {}
