import { jest } from '@jest/globals';
import { HealthIndicatorService } from '@nestjs/terminus';
import { ReplaySubject } from 'rxjs';
import type { JetStreamEvents, JetStreamStatus } from '../transport/jetstream/transport-status.js';
import type { TransportMetrics } from './transport.metrics.js';

// Stand-ins: the real classes would pull in NATS and the Prometheus module.
jest.unstable_mockModule('../transport/jetstream/jetstream.server.js', () => ({ JetStreamServer: class {} }));
jest.unstable_mockModule('./transport.metrics.js', () => ({ TransportMetrics: class {} }));
const { TransportHealth } = await import('./transport.health.js');
type Transport = ConstructorParameters<typeof TransportHealth>[0];

/** A transport that reports what the test tells it, and metrics that record what they are set to. */
function healthOf() {
  const status = new ReplaySubject<JetStreamStatus>(1);
  const listeners = new Map<string, ((...args: unknown[]) => void)[]>();
  const transport = {
    routes: () => [{ durable: 'trigger' }, { durable: 'enriched' }],
    status,
    on: (event: string, callback: (...args: unknown[]) => void) => listeners.set(event, [...(listeners.get(event) ?? []), callback]),
  };
  const emit = <K extends keyof JetStreamEvents>(event: K, ...args: Parameters<JetStreamEvents[K]>) => {
    for (const listener of listeners.get(event) ?? []) listener(...args);
  };
  const set: string[] = [];
  const metrics = {
    connected: (up: boolean) => set.push(`nats_connected ${up ? 1 : 0}`),
    consumer: (consumer: string, up: boolean) => set.push(`consumer_up{${consumer}} ${up ? 1 : 0}`),
  };
  const health = new TransportHealth(transport as unknown as Transport, new HealthIndicatorService(), metrics as unknown as TransportMetrics);
  health.onModuleInit();
  return { health, status, emit, set };
}

describe('TransportHealth (readiness from the transport events)', () => {
  it('is down until the transport has listened, then up while connected with every consumer', () => {
    const { health, status, set } = healthOf();
    expect(health.check()).toEqual({ transport: { status: 'down', connection: 'starting' } });
    status.next('connected');
    expect(health.check()).toEqual({ transport: { status: 'up', connection: 'connected' } });
    expect(set).toEqual(['consumer_up{trigger} 1', 'consumer_up{enriched} 1', 'nats_connected 1']);
  });

  it('is down while the connection is down or reconnecting, up again once reconnected', () => {
    const { health, status, set } = healthOf();
    status.next('connected');
    status.next('disconnected');
    expect(health.check()).toEqual({ transport: { status: 'down', connection: 'disconnected' } });
    status.next('reconnecting');
    expect(health.check()).toEqual({ transport: { status: 'down', connection: 'reconnecting' } });
    status.next('connected');
    expect(health.check()).toEqual({ transport: { status: 'up', connection: 'connected' } });
    expect(set.slice(2)).toEqual(['nats_connected 1', 'nats_connected 0', 'nats_connected 0', 'nats_connected 1']);
  });

  it('is down while a consumer is gone, naming it and why, whatever the connection does meanwhile', () => {
    const { health, status, emit, set } = healthOf();
    status.next('connected');
    emit('consumer_gone', 'trigger', 'consumer deleted');
    expect(health.check()).toEqual({ transport: { status: 'down', connection: 'connected', consumers_gone: { trigger: 'consumer deleted' } } });
    emit('consumer_gone', 'enriched', 'stream not found');
    status.next('disconnected');
    emit('consumer_back', 'trigger');
    expect(health.check()).toEqual({ transport: { status: 'down', connection: 'disconnected', consumers_gone: { enriched: 'stream not found' } } });
    status.next('connected');
    expect(health.check().transport.status).toBe('down');
    emit('consumer_back', 'enriched');
    expect(health.check()).toEqual({ transport: { status: 'up', connection: 'connected' } });
    expect(set.slice(3)).toEqual([
      'consumer_up{trigger} 0',
      'consumer_up{enriched} 0',
      'nats_connected 0',
      'consumer_up{trigger} 1',
      'nats_connected 1',
      'consumer_up{enriched} 1',
    ]);
  });
});
