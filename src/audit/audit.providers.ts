import { auditMetricProviders, AuditMetrics } from './audit.metrics.js';
import { AuditReader } from './audit.reader.js';
import { AuditTrail } from './audit.trail.js';

/*
 * The audit trail (README "Audit trail"). Registered in WorkflowModule, whose service and sweeper emit the
 * events; exported to the admin module, whose actions are events too and which serves the history.
 */
export const auditProviders = [...auditMetricProviders, AuditMetrics, AuditTrail, AuditReader];
