import { jest } from '@jest/globals';
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import { JetStreamStatusError } from '@nats-io/jetstream/internal';
import { Logger } from '@nestjs/common';
import { Subject } from 'rxjs';
import { parseSettings } from '../../config/env.schema.js';
import type { OrchestratorMetrics } from '../../metrics/orchestrator.metrics.js';
import type { NatsConnectionChange, NatsConnectionService } from '../../nats/nats-connection.service.js';
import type { DeadLetterPublisher } from './dead-letter.publisher.js';
import { FlowControl } from './flow-control.js';
import type { JetStreamEvents, JetStreamStatus } from './transport-status.js';

// A stand-in: the real class would pull in the Prometheus module (CommonJS requiring Nest's ESM).
jest.unstable_mockModule('../../metrics/orchestrator.metrics.js', () => ({ OrchestratorMetrics: class {} }));
const { AGENT_SIGNAL_PATTERN, JetStreamServer, TRIGGER_PATTERN } = await import('./jetstream.server.js');

/*
 * The transport's status and events (transport-status.ts), on a JetStreamServer whose NATS connection and
 * JetStream are stand-ins: the connection's changes come from a Subject, the consumers are in memory, and each
 * pull does what the test scripts (waits until stopped, or fails as the client fails when its consumer is
 * deleted). Provisioning is the real code, on an in-memory manager.
 */

type Pull = 'wait' | 'deleted' | 'no-responders';

const notFound = (what: 'consumer' | 'stream') =>
  new JetStreamApiError({
    code: 404,
    err_code: what === 'consumer' ? JetStreamApiCodes.ConsumerNotFound : JetStreamApiCodes.StreamNotFound,
    description: `${what} not found`,
  });

/** A pull that yields nothing: it ends when stopped (close), or fails as scripted. */
function pull(kind: Pull) {
  let stop = () => undefined as void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  return {
    stop: () => stop(),
    [Symbol.asyncIterator]: () => ({
      next: async (): Promise<IteratorResult<never>> => {
        if (kind === 'deleted') throw new JetStreamStatusError('consumer deleted', 409);
        if (kind === 'no-responders') throw new JetStreamStatusError('no responders', 503);
        await stopped;
        return { done: true, value: undefined };
      },
    }),
  };
}

/** Resolves once `condition` holds (looked at every 20 ms). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

function transport(env: Record<string, string> = {}) {
  const config = parseSettings(env).nats;
  const filters = new Map([
    [config.consumers.trigger, config.subjects.trigger],
    [config.consumers.agents, config.subjects.agents],
  ]);
  const consumers = new Set(filters.keys());
  /** Scripted pulls per consumer, taken in order; then every pull waits. */
  const pulls = new Map<string, Pull[]>();
  const changes = new Subject<NatsConnectionChange>();
  let connected = true;
  const jsm = {
    streams: {
      info: () =>
        Promise.resolve({
          config: { subjects: ['signals.>', 'orchestrated.>', 'deadletter.>', 'audit.>'], duplicate_window: Number.MAX_SAFE_INTEGER, num_replicas: 5 },
        }),
    },
    consumers: {
      info: (_stream: string, durable: string) =>
        consumers.has(durable)
          ? Promise.resolve({ config: { filter_subject: filters.get(durable), max_deliver: config.maxDeliveries + 10, ack_wait: config.ackWaitMs * 1e6 } })
          : Promise.reject(notFound('consumer')),
      add: (_stream: string, c: { durable_name: string }) => (consumers.add(c.durable_name), Promise.resolve({})),
    },
  } as unknown as JetStreamManager;
  const nats = {
    manager: jsm,
    jetstream: {
      consumers: {
        get: (_stream: string, durable: string) => {
          if (!consumers.has(durable)) return Promise.reject(notFound('consumer'));
          return Promise.resolve({
            fetch: () => {
              const kind = pulls.get(durable)?.shift() ?? 'wait';
              // A deletion is what the scripted failure stands for: the consumer is gone from the server too.
              if (kind !== 'wait') consumers.delete(durable);
              return Promise.resolve(pull(kind));
            },
          });
        },
      },
    },
    connectionChanges: changes,
    isConnected: () => connected,
    serverUrl: () => '127.0.0.1:4222',
  } as unknown as NatsConnectionService;
  const server = new JetStreamServer(nats, {} as DeadLetterPublisher, {} as OrchestratorMetrics, new FlowControl(), config);
  server.addHandler(TRIGGER_PATTERN, () => Promise.resolve(), true);
  server.addHandler(AGENT_SIGNAL_PATTERN, () => Promise.resolve(), true);

  const statuses: JetStreamStatus[] = [];
  server.status.subscribe((s) => statuses.push(s));
  const events: [keyof JetStreamEvents, ...unknown[]][] = [];
  const waiters: { event: keyof JetStreamEvents; count: number; resolve: () => void }[] = [];
  const record =
    (event: keyof JetStreamEvents) =>
    (...args: unknown[]) => {
      events.push([event, ...args]);
      for (const w of [...waiters]) {
        if (events.filter(([e]) => e === w.event).length >= w.count) w.resolve();
      }
    };
  for (const event of ['connect', 'disconnect', 'reconnect', 'consumer_gone', 'consumer_back'] as const) server.on(event, record(event));
  /** Resolves once `event` has come `count` times. */
  const waitFor = (event: keyof JetStreamEvents, count = 1) =>
    new Promise<void>((resolve) => {
      waiters.push({ event, count, resolve });
      if (events.filter(([e]) => e === event).length >= count) resolve();
    });
  const start = async () => {
    const error = await new Promise<unknown>((resolve) => void server.listen(resolve));
    expect(error).toBeUndefined();
  };
  return {
    server,
    config,
    consumers,
    pulls,
    changes,
    statuses,
    events,
    waitFor,
    start,
    disconnect: () => (connected = false),
  };
}

describe('JetStreamServer status and events', () => {
  const warnings: unknown[] = [];
  beforeEach(() => {
    warnings.length = 0;
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => void warnings.push(message));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it('reports the connection as its status (connected, disconnected, reconnecting) and as connect / disconnect / reconnect events', async () => {
    const t = transport();
    await t.start();
    expect(t.statuses).toEqual(['connected']);
    expect(t.events).toEqual([['connect', '127.0.0.1:4222']]);

    t.changes.next({ type: 'disconnect', server: 'nats://a:4222' });
    t.changes.next({ type: 'reconnecting' });
    t.changes.next({ type: 'reconnecting' });
    t.changes.next({ type: 'disconnect', server: 'nats://a:4222' });
    t.changes.next({ type: 'reconnect', server: 'nats://b:4222' });
    t.changes.next({ type: 'close' });
    // The status drops repeats (Nest's status observable); each event comes once per change.
    expect(t.statuses).toEqual(['connected', 'disconnected', 'reconnecting', 'disconnected', 'connected', 'disconnected']);
    expect(t.events).toEqual([
      ['connect', '127.0.0.1:4222'],
      ['disconnect', 'nats://a:4222'],
      ['reconnect', 'nats://b:4222'],
      ['disconnect', undefined],
    ]);
    await t.server.close();
    // Closed: later changes are not the transport's any more.
    t.changes.next({ type: 'reconnect', server: 'nats://b:4222' });
    expect(t.events).toHaveLength(4);
  });

  it('starts as disconnected when the connection is down at listen (no connect event)', async () => {
    const t = transport();
    t.disconnect();
    await t.start();
    expect(t.statuses).toEqual(['disconnected']);
    expect(t.events).toEqual([]);
    await t.server.close();
  });

  it('a consumer deleted under a pull: consumer_gone, then consumer_back once provisioned again', async () => {
    const t = transport();
    const trigger = t.config.consumers.trigger;
    t.pulls.set(trigger, ['deleted']);
    await t.start();
    await t.waitFor('consumer_back');
    expect(t.events.slice(1)).toEqual([
      ['consumer_gone', trigger, 'consumer deleted'],
      ['consumer_back', trigger],
    ]);
    expect(t.consumers.has(trigger)).toBe(true);
    expect(warnings).toContainEqual(expect.objectContaining({ msg: 'consumer gone: provisioning it again', consumer: trigger, reason: 'consumer deleted' }));
    await t.server.close();
  });

  it('with provisioning off: gone once, however often the look-up fails, and back when someone makes the consumer again', async () => {
    const t = transport({ META_AGENT_PROVISION: 'false' });
    const agents = t.config.consumers.agents;
    t.pulls.set(agents, ['deleted']);
    const failed = jest.spyOn(t.server as unknown as { pullFailed: (...args: unknown[]) => void }, 'pullFailed');
    await t.start();
    await t.waitFor('consumer_gone');
    // The loop looks for it again every second: let the look-up fail twice (3 failures in all), then make the consumer.
    await until(() => failed.mock.calls.length >= 3);
    t.consumers.add(agents);
    await t.waitFor('consumer_back');
    expect(t.events.slice(1)).toEqual([
      ['consumer_gone', agents, 'consumer deleted'],
      ['consumer_back', agents],
    ]);
    expect(warnings.filter((w) => (w as { msg?: string }).msg?.startsWith('consumer gone'))).toHaveLength(1);
    expect(warnings.filter((w) => (w as { msg?: string }).msg === 'pulling failed, trying again')).toEqual([]);
    await t.server.close();
  });

  it('a deletion the pull did not see (no answer): gone and back when provisioning has to create the consumer', async () => {
    const t = transport();
    const trigger = t.config.consumers.trigger;
    t.pulls.set(trigger, ['no-responders']);
    await t.start();
    await t.waitFor('consumer_back');
    expect(warnings).toContainEqual(expect.objectContaining({ msg: 'pulling failed, trying again', consumer: trigger }));
    expect(t.events.slice(1)).toEqual([
      ['consumer_gone', trigger, 'found missing'],
      ['consumer_back', trigger],
    ]);
    await t.server.close();
  });
});
