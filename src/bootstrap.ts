import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { NestFactory } from '@nestjs/core';
import type { INestApplication, Type } from '@nestjs/common';
import { setupOpenApi } from './admin/openapi.js';
import { AppModule } from './app.module.js';
import { currentSettings } from './config/configuration.js';
import { ConfigValidationError } from './config/env-reader.js';
import type { Settings } from './config/env.schema.js';
import { declarativeStrategies } from './workflow/strategies/declarative/declarative.provider.js';
import { WorkflowsFileError } from './workflow/strategies/declarative/workflows-file.js';
import { ShutdownState } from './health/shutdown-state.js';
import { JsonLogger } from './logging/json-logger.js';
import { JetStreamServer } from './transport/jetstream/jetstream.server.js';

function loadSettings(): Settings {
  // `.env` fills in what the environment does not set (the environment wins).
  if (existsSync('.env')) process.loadEnvFile('.env');
  try {
    const settings = currentSettings();
    // The workflows file is checked here too, so that an invalid one stops start-up with one line, as a setting does.
    declarativeStrategies(settings.workflow);
    return settings;
  } catch (error) {
    if (error instanceof ConfigValidationError || error instanceof WorkflowsFileError) {
      process.stderr.write(`meta-agent: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

/**
 * Runs the service: HTTP app (health, metrics, inspection) + the JetStream microservice, with shutdown
 * on SIGTERM/SIGINT. `rootModule` lets a deployment add its own strategy providers:
 *
 * ```ts
 * @Module({ imports: [AppModule], providers: [RebalanceStrategy] })
 * class MyModule {}
 * void runService(MyModule);
 * ```
 */
export async function runService(rootModule: Type<unknown> = AppModule): Promise<void> {
  const settings = loadSettings();
  const logger = new JsonLogger(settings.app.logLevel);
  let app: INestApplication | undefined;
  let stopping = false;

  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.log({ msg: 'shutting down', signal }, 'Main');
    const force = setTimeout(() => {
      logger.error({ msg: 'shutdown took too long, exiting', timeout_ms: settings.app.shutdownTimeoutMs }, 'Main');
      process.exit(1);
    }, settings.app.shutdownTimeoutMs);
    force.unref();
    // Readiness goes false first; then Nest stops the sweeper, the consumers (in-flight messages finish),
    // the HTTP server, sends the audit trail's last events, and last drains NATS and closes Redis.
    app?.get(ShutdownState).begin();
    await app?.close();
    logger.log({ msg: 'stopped' }, 'Main');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  try {
    app = await NestFactory.create(rootModule, { logger, abortOnError: false, bufferLogs: false });
    app.connectMicroservice({ strategy: app.get(JetStreamServer) }, { inheritAppConfig: true });
    // GET /openapi.json (admin API and the rest of the HTTP port), built on first request.
    setupOpenApi(app);
    await app.init();
    await app.startAllMicroservices();
    await app.listen(settings.app.httpPort, '0.0.0.0');
  } catch (error) {
    logger.fatal({ msg: `start-up failed: ${(error as Error).message}` }, 'Main');
    await app?.close().catch(() => undefined);
    process.exit(1);
  }
  logger.log({ msg: 'meta-agent orchestrator started', name: settings.app.name, http_port: settings.app.httpPort }, 'Main');
}
