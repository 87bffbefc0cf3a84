import { Injectable } from '@nestjs/common';
import { InjectMetric, makeCounterProvider } from '@willsoto/nestjs-prometheus';
import type { Counter } from 'prom-client';

const PUBLISHED = 'meta_agent_audit_published_total';
const DROPPED = 'meta_agent_audit_dropped_total';

/**
 * Why an audit event was lost: `buffer_full` (META_AGENT_AUDIT_BUFFER events were waiting: NATS slow or
 * away), `publish_failed` (the connection refused it or closed before the server had read it).
 */
export type AuditDropReason = 'buffer_full' | 'publish_failed';

export const auditMetricProviders = [
  makeCounterProvider({ name: PUBLISHED, help: 'Audit events sent in batches JetStream acknowledged (a batch sent again counts once)' }),
  makeCounterProvider({ name: DROPPED, help: 'Audit events lost, by reason (buffer_full: NATS slow or away; publish_failed)', labelNames: ['reason'] }),
];

@Injectable()
export class AuditMetrics {
  constructor(
    @InjectMetric(PUBLISHED) private readonly published: Counter,
    @InjectMetric(DROPPED) private readonly dropped: Counter,
  ) {}

  stored(n = 1): void {
    this.published.inc(n);
  }

  lost(reason: AuditDropReason, n = 1): void {
    this.dropped.inc({ reason }, n);
  }
}
