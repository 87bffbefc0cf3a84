import type { ListIndex } from '../workflow/workflow.repository.js';
import { WorkflowStatus } from '../workflow/workflow.types.js';

const OPEN_STATUSES: string[] = [WorkflowStatus.Pending, WorkflowStatus.InProgress, WorkflowStatus.WaitingForAgents, WorkflowStatus.Evaluating];
const FINAL_STATUSES: string[] = [WorkflowStatus.Completed, WorkflowStatus.Timeout, WorkflowStatus.Failed, WorkflowStatus.Cancelled];

export interface ListSource {
  index: ListIndex;
  /** Statuses kept (empty: any). */
  statuses: string[];
}

/**
 * Which indexes a status filter reads, in page order: the due index (every unfinished or unpublished
 * workflow, soonest due first), then the recent index (finished and published, newest first).
 */
export function listPlan(status: string | undefined): ListSource[] {
  if (status === undefined)
    return [
      { index: 'deadlines', statuses: [] },
      { index: 'recent', statuses: [] },
    ];
  if (status === 'open') return [{ index: 'deadlines', statuses: OPEN_STATUSES }];
  if (status === 'finished')
    return [
      { index: 'deadlines', statuses: FINAL_STATUSES },
      { index: 'recent', statuses: [] },
    ];
  if (OPEN_STATUSES.includes(status)) return [{ index: 'deadlines', statuses: [status] }];
  return [
    { index: 'deadlines', statuses: [status] },
    { index: 'recent', statuses: [status] },
  ];
}
