import { isISO8601 } from 'class-validator';
import { isTimestamp } from './is-timestamp.js';

describe('isTimestamp: the verdicts of isISO8601 strict, faster', () => {
  const cases = [
    '2026-11-29T13:45:00Z',
    '2026-11-29T13:45:00.123Z',
    '2026-11-29T13:45:00.123456789+02:00',
    '2026-11-29T23:59:59-23:59',
    '2024-02-29T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-00-10T00:00:00Z',
    '2026-11-00T00:00:00Z',
    '2026-11-29T24:00:00Z',
    '2026-11-29T13:60:00Z',
    '2026-11-29T13:45:60Z',
    '2026-11-29T13:45:00+24:00',
    '2026-11-29T13:45:00+02:60',
    '2026-11-29T13:45:00',
    '2026-11-29 13:45:00Z',
    '2026-11-29',
    '20261129T134500Z',
    '2026-W48-7',
    '2026-333',
    '1900-02-29T00:00:00Z',
    '2000-02-29T00:00:00Z',
    '2026-11-29T13:45:00.Z',
    '2026-11-29T13:45:00z',
    'yesterday',
    '',
    ' 2026-11-29T13:45:00Z',
  ];

  it.each(cases)('%s', (value) => {
    expect(isTimestamp(value)).toBe(isISO8601(value, { strict: true }));
  });

  it('agrees on 20,000 random dates around the fast path (calendar edges, offsets)', () => {
    const pad = (n: number, w = 2) => String(n).padStart(w, '0');
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    for (let i = 0; i < 20_000; i++) {
      const offset = ['Z', `+${pad(rand(26))}:${pad(rand(62))}`, `-${pad(rand(26))}:${pad(rand(62))}`][rand(3)];
      const value = `${pad(1896 + rand(210), 4)}-${pad(rand(14))}-${pad(rand(33))}T${pad(rand(26))}:${pad(rand(62))}:${pad(rand(62))}${rand(2) ? `.${rand(1000)}` : ''}${offset}`;
      expect([value, isTimestamp(value)]).toEqual([value, isISO8601(value, { strict: true })]);
    }
  });

  it('refuses what is not a string', () => {
    expect(isTimestamp(20261129)).toBe(false);
    expect(isTimestamp(null)).toBe(false);
  });
});
