import { AdminController } from './admin.controller.js';
import { adminMetricProviders, AdminMetrics } from './admin.metrics.js';
import { AdminService } from './admin.service.js';

/*
 * The admin API (list, cancel, decide, extend; README "Admin API"), behind the admin bearer token. Registered
 * in WorkflowModule rather than a module of its own: Nest makes one guard instance per module that hosts a
 * guarded controller, and AdminTokenGuard says once at start whether the admin endpoints are on.
 */
export { AdminController };
export const adminProviders = [...adminMetricProviders, AdminMetrics, AdminService];
