import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { adminProviders, AdminController } from '../admin/admin.providers.js';
import { auditProviders, HistoryController } from '../audit/audit.providers.js';
import { Admission } from './admission.js';
import { DecisionPublisher } from './decision.publisher.js';
import { SignalsController } from './signals.controller.js';
import { RedisSuspectLedger } from './suspect-ledger.js';
import { StrategiesModule } from './strategies/strategies.module.js';
import { StrategyRegistry } from './strategies/strategy.registry.js';
import { WorkflowRepository } from './workflow.repository.js';
import { WorkflowService } from './workflow.service.js';
import { WorkflowSweeper } from './workflow.sweeper.js';
import { WorkflowsController } from './workflows.controller.js';

@Module({
  imports: [DiscoveryModule, StrategiesModule],
  // The admin API's controller sits beside WorkflowsController: one module, one AdminTokenGuard instance.
  controllers: [SignalsController, WorkflowsController, AdminController, HistoryController],
  providers: [
    WorkflowRepository,
    StrategyRegistry,
    Admission,
    WorkflowService,
    WorkflowSweeper,
    DecisionPublisher,
    RedisSuspectLedger,
    ...adminProviders,
    ...auditProviders,
  ],
  exports: [WorkflowRepository, WorkflowService],
})
export class WorkflowModule {}
