import { Injectable } from '@nestjs/common';
import { InjectMetric, makeCounterProvider } from '@willsoto/nestjs-prometheus';
import type { Counter } from 'prom-client';

const ADMIN_ACTIONS = 'meta_agent_admin_actions_total';

/** What an admin action came to (a bounded label). */
export type AdminOutcome = 'ok' | 'clamped' | 'not_found' | 'conflict' | 'invalid';
export type AdminAction = 'list' | 'cancel' | 'decide' | 'extend';

export const adminMetricProviders = [
  makeCounterProvider({
    name: ADMIN_ACTIONS,
    help: 'Admin API actions, by action, outcome and the name of the admin token that asked',
    labelNames: ['action', 'outcome', 'token'],
  }),
];

/** Admin actions counted. Label values are bounded: the actions and outcomes above, and the configured token names. */
@Injectable()
export class AdminMetrics {
  constructor(@InjectMetric(ADMIN_ACTIONS) private readonly actions: Counter) {}

  action(action: AdminAction, outcome: AdminOutcome, token: string): void {
    this.actions.inc({ action, outcome, token });
  }
}
