import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AuditReader } from '../audit/audit.reader.js';
import { AuditTrail } from '../audit/audit.trail.js';
import { auditProviders } from '../audit/audit.providers.js';
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
  controllers: [SignalsController, WorkflowsController],
  providers: [WorkflowRepository, StrategyRegistry, Admission, WorkflowService, WorkflowSweeper, DecisionPublisher, RedisSuspectLedger, ...auditProviders],
  // For the admin API (src/admin/admin.module.ts), which sits on top of this module.
  exports: [WorkflowRepository, WorkflowService, AuditTrail, AuditReader],
})
export class WorkflowModule {}
