/**
 * The public entry point (`import ... from 'meta-agent-orchestrator'`, i.e. `dist/index.js`): what a deployment
 * that adds its own workflow types imports, instead of deep paths into `dist/`.
 *
 * ```ts
 * import { AppModule, DecisionStrategyProvider, runService, type DecisionStrategy } from 'meta-agent-orchestrator';
 *
 * @DecisionStrategyProvider('rebalance') @Injectable() class RebalanceStrategy implements DecisionStrategy { ... }
 * @Module({ imports: [AppModule], providers: [RebalanceStrategy] }) class MyModule {}
 * void runService(MyModule);
 * ```
 */

// Running the service.
export { AppModule } from './app.module.js';
export { runService } from './bootstrap.js';

// Writing a strategy.
export { DecisionStrategyProvider } from './workflow/strategies/decision-strategy.decorator.js';
export type { DecisionStrategy, WorkflowDefinition } from './workflow/strategies/decision-strategy.interface.js';
export { WorkflowStatus } from './workflow/workflow.types.js';
export type { AgentSignal, Decision, FinalStatus, JsonObject, OrchestratedDecision, WorkflowContext } from './workflow/workflow.types.js';
export { defaultTimeoutDecision, toAgentSignal, toTriggerSignal } from './workflow/workflow-context.js';
export { isReady, type ReadinessRule } from './workflow/readiness.js';
// The workflow settings (META_AGENT_*), for a strategy that reads them: `@Inject(workflowConfig.KEY) config: WorkflowConfig`.
export { workflowConfig, type WorkflowConfig } from './config/configuration.js';

// Testing a strategy.
export { strategyHarness, workflowSettings } from './workflow/strategies/testing.js';
export type { HarnessOptions, RunResult, Scenario, StrategyHarness } from './workflow/strategies/testing.js';

// Workflow types defined without code (META_AGENT_WORKFLOWS_FILE): e.g. to test a file's types with the harness.
export { DeclarativeStrategy } from './workflow/strategies/declarative/declarative.strategy.js';
export { parseWorkflowsFile, readWorkflowsFile, WorkflowsFileError } from './workflow/strategies/declarative/workflows-file.js';
export type { WorkflowsFile, WorkflowTypeSpec } from './workflow/strategies/declarative/workflows-file.js';
