import { auditMetricProviders, AuditMetrics } from './audit.metrics.js';
import { AuditReader } from './audit.reader.js';
import { AuditTrail } from './audit.trail.js';
import { HistoryController } from './history.controller.js';

/*
 * The audit trail (README "Audit trail"). Registered in WorkflowModule, whose service, sweeper and admin API
 * emit the events, and beside the other /workflows controllers (one AdminTokenGuard instance).
 */
export const auditProviders = [...auditMetricProviders, AuditMetrics, AuditTrail, AuditReader];
export { HistoryController };
