import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { AppConfig } from '../config/configuration.js';
import type { OrchestratorMetrics } from '../metrics/orchestrator.metrics.js';
import type { NatsConnectionService } from '../nats/nats-connection.service.js';
import type { WorkflowRepository } from '../workflow/workflow.repository.js';

// The probes and the gauge are stand-ins: the real classes would pull in the Prometheus module and the clients.
jest.unstable_mockModule('../metrics/orchestrator.metrics.js', () => ({ OrchestratorMetrics: class {} }));
jest.unstable_mockModule('../nats/nats-connection.service.js', () => ({ NatsConnectionService: class {} }));
jest.unstable_mockModule('../workflow/workflow.repository.js', () => ({ WorkflowRepository: class {} }));
const { CHECK_TIMEOUT_MS, DependencyMonitor } = await import('./dependency.monitor.js');

/** Timers that keep the process alive (the unref'd ones, such as AbortSignal.timeout's, are not listed). */
const liveTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

function monitorWith(probes: { nats: () => Promise<unknown>; redis: () => Promise<unknown> }) {
  const up: [string, boolean][] = [];
  const metrics = { dependencyUp: (dependency: string, value: boolean) => up.push([dependency, value]) };
  const monitor = new DependencyMonitor(
    { checkJetStream: probes.nats } as unknown as NatsConnectionService,
    { ping: probes.redis } as unknown as WorkflowRepository,
    metrics as unknown as OrchestratorMetrics,
    new HealthIndicatorService(),
    { healthCheckIntervalMs: 60_000 } as AppConfig,
  );
  return { monitor, up };
}

describe('DependencyMonitor', () => {
  const logs: { level: string; message: unknown }[] = [];
  beforeEach(() => {
    logs.length = 0;
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => void logs.push({ level: 'warn', message }));
    jest.spyOn(Logger.prototype, 'log').mockImplementation((message: unknown) => void logs.push({ level: 'log', message }));
  });
  afterEach(() => jest.restoreAllMocks());

  it('exports each check, logs a dependency going down and coming back once each, and leaves no timer behind', async () => {
    let redisDown = false;
    const { monitor, up } = monitorWith({
      nats: async () => ({ jetstream: true }),
      redis: async () => {
        if (redisDown) throw new Error('ECONNREFUSED');
        return 'PONG';
      },
    });
    const before = liveTimers();
    await monitor.checkAll();
    expect(liveTimers()).toBe(before);
    redisDown = true;
    await monitor.checkAll();
    await monitor.checkAll();
    redisDown = false;
    await monitor.checkAll();
    expect(up).toEqual([
      ['nats', true],
      ['redis', true],
      ['nats', true],
      ['redis', false],
      ['nats', true],
      ['redis', false],
      ['nats', true],
      ['redis', true],
    ]);
    expect(logs).toEqual([
      { level: 'warn', message: { msg: 'redis unreachable', dependency: 'redis', error: 'ECONNREFUSED' } },
      { level: 'log', message: { msg: 'redis reachable again', dependency: 'redis' } },
    ]);
  });

  it(`counts a probe that does not answer in ${CHECK_TIMEOUT_MS} ms as down`, async () => {
    const { monitor, up } = monitorWith({ nats: () => new Promise(() => undefined), redis: async () => 'PONG' });
    const started = performance.now();
    await monitor.checkAll();
    expect(performance.now() - started).toBeGreaterThanOrEqual(CHECK_TIMEOUT_MS - 50);
    expect(up).toEqual([
      ['redis', true],
      ['nats', false],
    ]);
    expect(logs).toEqual([{ level: 'warn', message: { msg: 'nats unreachable', dependency: 'nats', error: `timeout of ${CHECK_TIMEOUT_MS}ms exceeded` } }]);
  });
});
