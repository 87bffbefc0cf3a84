import type { Provider } from '@nestjs/common';
import { workflowConfig, type WorkflowConfig } from '../../../config/configuration.js';
import { PROGRAMMATIC_STRATEGIES, type ProgrammaticStrategy } from '../strategy.registry.js';
import { DeclarativeStrategy } from './declarative.strategy.js';
import { readWorkflowsFile } from './workflows-file.js';

/** The workflow types of META_AGENT_WORKFLOWS_FILE (none without it); throws `WorkflowsFileError` on an invalid file. */
export function declarativeStrategies(
  config: Pick<WorkflowConfig, 'workflowsFile' | 'requiredAgents' | 'optionalAgents' | 'minConfidenceThreshold'>,
): ProgrammaticStrategy[] {
  const path = config.workflowsFile;
  if (path === undefined) return [];
  const file = readWorkflowsFile(path, { knownAgents: [...config.requiredAgents, ...config.optionalAgents] });
  return Object.entries(file.workflow_types).map(([type, spec]) => ({
    type,
    strategy: new DeclarativeStrategy(type, spec, { minConfidence: config.minConfidenceThreshold }),
    source: `the workflows file ${path}`,
  }));
}

/** Provides `PROGRAMMATIC_STRATEGIES` (read by the `StrategyRegistry`) from META_AGENT_WORKFLOWS_FILE. */
export const declarativeStrategiesProvider: Provider = {
  provide: PROGRAMMATIC_STRATEGIES,
  useFactory: (config: WorkflowConfig) => declarativeStrategies(config),
  inject: [workflowConfig.KEY],
};
