import { Module } from '@nestjs/common';
import { HistoryController } from '../audit/history.controller.js';
import { WorkflowModule } from '../workflow/workflow.module.js';
import { AdminController } from './admin.controller.js';
import { adminMetricProviders, AdminMetrics } from './admin.metrics.js';
import { AdminService } from './admin.service.js';

/**
 * The admin API (list, cancel, decide, extend, history; README "Admin API", "Audit trail"), behind the admin
 * bearer token: the upper layer, on top of the workflow module whose service and repository it drives. The
 * token guard's state (`AdminTokens`) is provided once, by the global `AdminAuthModule`.
 */
@Module({
  imports: [WorkflowModule],
  controllers: [AdminController, HistoryController],
  providers: [...adminMetricProviders, AdminMetrics, AdminService],
})
export class AdminModule {}
