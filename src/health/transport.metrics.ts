import { Injectable } from '@nestjs/common';
import { InjectMetric, makeGaugeProvider } from '@willsoto/nestjs-prometheus';
import type { Gauge } from 'prom-client';

const NATS_CONNECTED = 'meta_agent_nats_connected';
const CONSUMER_UP = 'meta_agent_consumer_up';

export const transportMetricProviders = [
  makeGaugeProvider({ name: NATS_CONNECTED, help: 'Whether the NATS connection is up (1) or down or reconnecting (0), as the transport reports it' }),
  makeGaugeProvider({
    name: CONSUMER_UP,
    help: 'Whether the transport has its durable consumer (1) or found it gone (0): deleted, or missing with provisioning off',
    labelNames: ['consumer'],
  }),
];

/** The transport's status as metrics, set on each change (the consumer label: the service's two durable names). */
@Injectable()
export class TransportMetrics {
  constructor(
    @InjectMetric(NATS_CONNECTED) private readonly natsConnected: Gauge,
    @InjectMetric(CONSUMER_UP) private readonly consumerUp: Gauge,
  ) {}

  connected(up: boolean): void {
    this.natsConnected.set(up ? 1 : 0);
  }

  consumer(consumer: string, up: boolean): void {
    this.consumerUp.set({ consumer }, up ? 1 : 0);
  }
}
