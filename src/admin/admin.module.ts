import { Module } from '@nestjs/common';
import { WorkflowModule } from '../workflow/workflow.module.js';
import { AdminController } from './admin.controller.js';
import { adminMetricProviders, AdminMetrics } from './admin.metrics.js';
import { AdminService } from './admin.service.js';

/** The admin API (list, cancel, decide, extend), behind the admin bearer token; see README "Admin API". */
@Module({
  imports: [WorkflowModule],
  controllers: [AdminController],
  providers: [...adminMetricProviders, AdminMetrics, AdminService],
})
export class AdminModule {}
