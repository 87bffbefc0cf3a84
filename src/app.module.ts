import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { appConfig, natsConfig, redisConfig, workflowConfig } from './config/configuration.js';
import { parseSettings } from './config/env.schema.js';
import { HealthModule } from './health/health.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { NatsModule } from './nats/nats.module.js';
import { RedisModule } from './redis/redis.module.js';
import { JetStreamModule } from './transport/jetstream/jetstream.module.js';
import { WorkflowModule } from './workflow/workflow.module.js';

@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      // main.ts has already read .env (process.loadEnvFile) and validated; this validates again for any
      // other entry point (tests build the module directly).
      ignoreEnvFile: true,
      load: [appConfig, natsConfig, redisConfig, workflowConfig],
      validate: (env) => {
        parseSettings(env);
        return env;
      },
    }),
    MetricsModule,
    RedisModule,
    NatsModule,
    JetStreamModule,
    WorkflowModule,
    HealthModule,
  ],
})
export class AppModule {}
