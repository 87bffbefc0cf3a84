// The project's JetStream transport alone: a tiny Nest app with the real `JetStreamServer` (and its real
// dependencies: config, NATS connection, metrics, dead-letter publisher), but instead of the workflow a
// trivial event handler for each of its two patterns (the transport has already decoded the payload:
// UTF-8, JSON, checks; the handler returns). Compared with bench/raw-consume.mjs on the same backlog.
// Plain JavaScript on the build output (dist/), with decorators applied as functions.
//
//   META_AGENT_NATS_URL, META_AGENT_TRIGGER_CONSUMER, META_AGENT_ENRICHED_CONSUMER, META_AGENT_MAX_IN_FLIGHT,
//   EXPECTED (messages)
// Prints "transport-alone ready" once consuming, then "RESULT {json}" when EXPECTED messages reached a
// handler: {count, first_ms, last_ms, cpu_ms} (performance.now() in this process; the ack follows each handler).
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { EventPattern } from '@nestjs/microservices';
import { appConfig, natsConfig } from '../dist/config/configuration.js';
import { JsonLogger } from '../dist/logging/json-logger.js';
import { MetricsModule } from '../dist/metrics/metrics.module.js';
import { NatsModule } from '../dist/nats/nats.module.js';
import { JetStreamModule } from '../dist/transport/jetstream/jetstream.module.js';
import { AGENT_SIGNAL_PATTERN, JetStreamServer, TRIGGER_PATTERN } from '../dist/transport/jetstream/jetstream.server.js';
import { resultCounter } from './lib.mjs';

const EXPECTED = Number(process.env.EXPECTED ?? 0);
const counted = resultCounter(EXPECTED);

class TrivialController {
  onTrigger() {
    counted();
  }
  onSignal() {
    counted();
  }
}
const method = (name) => [TrivialController.prototype, name, Object.getOwnPropertyDescriptor(TrivialController.prototype, name)];
EventPattern(TRIGGER_PATTERN)(...method('onTrigger'));
EventPattern(AGENT_SIGNAL_PATTERN)(...method('onSignal'));
Controller()(TrivialController);

class TransportBenchModule {}
Module({
  imports: [ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [appConfig, natsConfig] }), MetricsModule, NatsModule, JetStreamModule],
  controllers: [TrivialController],
})(TransportBenchModule);

const app = await NestFactory.create(TransportBenchModule, { logger: new JsonLogger('warning'), abortOnError: false });
app.connectMicroservice({ strategy: app.get(JetStreamServer) }, { inheritAppConfig: true });
await app.init();
await app.startAllMicroservices();
process.stdout.write('transport-alone ready\n');

process.once('SIGTERM', () => {
  void app.close().finally(() => process.exit(0));
});
