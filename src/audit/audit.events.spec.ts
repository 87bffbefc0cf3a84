import { firstCopies } from './audit.events.js';

describe('firstCopies', () => {
  it('keeps the first of events stored twice byte for byte (a batch sent again), and every distinct one', () => {
    const first = firstCopies();
    const a = '{"v":1,"event":"signal_stored","corr_id":"c1","order":[1,1,7]}';
    const b = '{"v":1,"event":"signal_stored","corr_id":"c1","order":[1,1,8]}';
    expect([a, b, a, b, `${a} `].map(first)).toEqual([true, true, false, false, true]);
    // Each reader starts its own: another read sees the same events again.
    expect(firstCopies()(a)).toBe(true);
  });
});
