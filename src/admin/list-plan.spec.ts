import { listPlan } from './list-plan.js';

describe('listPlan: which indexes a status filter reads', () => {
  it('no filter: open (due index) then finished (recent index), unfiltered', () => {
    expect(listPlan(undefined)).toEqual([
      { index: 'deadlines', statuses: [] },
      { index: 'recent', statuses: [] },
    ]);
  });

  it('open: the due index only, open statuses (evaluating included: not finished yet)', () => {
    expect(listPlan('open')).toEqual([{ index: 'deadlines', statuses: ['pending', 'in_progress', 'waiting_for_agents', 'evaluating'] }]);
    expect(listPlan('waiting_for_agents')).toEqual([{ index: 'deadlines', statuses: ['waiting_for_agents'] }]);
  });

  it('finished or a final status: finished but unpublished ones from the due index, then the recent index', () => {
    expect(listPlan('finished')).toEqual([
      { index: 'deadlines', statuses: ['completed', 'timeout', 'failed', 'cancelled'] },
      { index: 'recent', statuses: [] },
    ]);
    expect(listPlan('cancelled')).toEqual([
      { index: 'deadlines', statuses: ['cancelled'] },
      { index: 'recent', statuses: ['cancelled'] },
    ]);
  });
});
