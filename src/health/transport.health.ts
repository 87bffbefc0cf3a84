import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type { Subscription } from 'rxjs';
import { JetStreamServer, type JetStreamStatus } from '../transport/jetstream/jetstream.server.js';
import { TransportMetrics } from './transport.metrics.js';

/**
 * Readiness from the transport's events, not from a poll: the JetStream transport reports its connection
 * (`status`: connected, disconnected, reconnecting) and a consumer a pull loop found gone or back
 * (`on('consumer_gone' | 'consumer_back')`). The replica is not ready while the connection is not up, or while
 * a consumer it reads is gone (it consumes nothing from it): `/health/ready` says so at once, with the
 * connection state and the gone consumers. Each change sets `meta_agent_nats_connected` /
 * `meta_agent_consumer_up`; the log line of each change is the transport's (and the NATS connection's).
 *
 * Liveness does not read them: a restart mends neither a NATS outage (the client reconnects by itself) nor a
 * deleted consumer (the pull loop provisions it again, or waits for it with provisioning off).
 */
@Injectable()
export class TransportHealth implements OnModuleInit, OnModuleDestroy {
  /** `starting` until the transport listens (the HTTP port opens after it). */
  private connection: JetStreamStatus | 'starting' = 'starting';
  private readonly gone = new Map<string, string>();
  private subscription: Subscription | undefined;

  constructor(
    private readonly transport: JetStreamServer,
    private readonly indicators: HealthIndicatorService,
    private readonly metrics: TransportMetrics,
  ) {}

  onModuleInit(): void {
    for (const route of this.transport.routes()) this.metrics.consumer(route.durable, true);
    // The status observable replays the last state and drops repeats.
    this.subscription = this.transport.status.subscribe((status) => this.connectionIs(status));
    this.transport.on('consumer_gone', (consumer, reason) => this.consumerIs(consumer, reason));
    this.transport.on('consumer_back', (consumer) => this.consumerIs(consumer, undefined));
  }

  onModuleDestroy(): void {
    this.subscription?.unsubscribe();
  }

  /** The readiness check `transport`: down while the connection is not up or a consumer is gone. */
  check(): HealthIndicatorResult {
    const session = this.indicators.check('transport');
    const consumersGone = Object.fromEntries(this.gone);
    if (this.connection === 'connected' && this.gone.size === 0) return session.up({ connection: this.connection });
    return session.down({ connection: this.connection, ...(this.gone.size > 0 ? { consumers_gone: consumersGone } : {}) });
  }

  private connectionIs(status: JetStreamStatus): void {
    this.connection = status;
    this.metrics.connected(status === 'connected');
  }

  /** `goneReason` undefined: the consumer is back. */
  private consumerIs(consumer: string, goneReason: string | undefined): void {
    this.metrics.consumer(consumer, goneReason === undefined);
    if (goneReason === undefined) this.gone.delete(consumer);
    else this.gone.set(consumer, goneReason);
  }
}
