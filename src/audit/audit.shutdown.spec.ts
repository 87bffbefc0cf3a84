import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Global, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Server, type CustomTransportStrategy } from '@nestjs/microservices';
import { appConfig, natsConfig } from '../config/configuration.js';
import { NatsConnectionService } from '../nats/nats-connection.service.js';

// The real metrics class pulls in the Prometheus module (CommonJS requiring ESM Nest): a stand-in is given.
jest.unstable_mockModule('./audit.metrics.js', () => ({ AuditMetrics: class {}, auditMetricProviders: [] }));
const { AuditTrail } = await import('./audit.trail.js');
const { AuditMetrics } = await import('./audit.metrics.js');

/*
 * A SIGTERM loses no audit event (docs/ARCHITECTURE.md, "What a crash can lose"): Nest closes the consumers
 * (in-flight messages finish, emitting their events) after the `beforeApplicationShutdown` hooks and before the
 * `onApplicationShutdown` ones, where the NATS connection is drained; the trail must send what those last
 * messages emitted before the drain. A real Nest application, its NATS connection a stand-in whose server
 * acknowledges a batch in 50 ms and refuses publishes once drained.
 */

const sent: string[] = [];
let drained = false;
const connection = {
  publish: (subject: string) => {
    if (drained) throw new Error('connection draining');
    sent.push(subject);
  },
};

// Each batch's last event waits for JetStream's acknowledgement: it comes in 50 ms.
const acknowledged = {
  publish: (subject: string) => {
    if (drained) return Promise.reject(new Error('connection draining'));
    sent.push(subject);
    return new Promise<void>((resolve) => setTimeout(resolve, 50));
  },
};

class StandInNats {
  readonly connection = connection;
  acknowledgedPublisher = () => acknowledged;
  isConnected = () => !drained;
  onApplicationShutdown(): void {
    drained = true;
  }
}

// Global, as the real NatsModule: Nest runs global modules' shutdown hooks last.
@Global()
@Module({ providers: [{ provide: NatsConnectionService, useClass: StandInNats }], exports: [NatsConnectionService] })
class StandInNatsModule {}

@Module({
  imports: [StandInNatsModule],
  providers: [
    AuditTrail,
    { provide: AuditMetrics, useValue: { stored: () => undefined, lost: () => undefined } },
    { provide: natsConfig.KEY, useValue: { audit: { enabled: true, subjectPrefix: 'audit', bufferSize: 100 } } },
    { provide: appConfig.KEY, useValue: { name: 'unit' } },
  ],
})
class TrailModule {}

/** The consumers: closing lets two in-flight messages finish, the second while the first's events are being sent. */
class Consumers extends Server implements CustomTransportStrategy {
  constructor(private readonly trail: InstanceType<typeof AuditTrail>) {
    super();
  }
  listen(callback: () => void): void {
    callback();
  }
  async close(): Promise<void> {
    const input = { sequence: 1, storedAtMs: 1 };
    this.trail.signalStale('c1', 'risk', '{"corr_id":"c1","agent_name":"risk"}', input);
    await new Promise((resolve) => setTimeout(resolve, 10));
    this.trail.signalStale('c2', 'risk', '{"corr_id":"c2","agent_name":"risk"}', input);
  }
  on(): never {
    throw new Error('not used');
  }
  unwrap<T>(): T {
    throw new Error('not used');
  }
}

describe('AuditTrail on shutdown', () => {
  let app: INestApplication;
  afterEach(async () => {
    await app?.close().catch(() => undefined);
  });

  it('sends the events of the messages that finish while the consumers close, before NATS is drained', async () => {
    app = await NestFactory.create(TrailModule, { logger: false });
    app.connectMicroservice({ strategy: new Consumers(app.get(AuditTrail)) });
    await app.init();
    await app.startAllMicroservices();
    await app.close();
    expect(drained).toBe(true);
    expect(sent).toEqual(['audit.c1.signal_stale', 'audit.c2.signal_stale']);
  });
});
