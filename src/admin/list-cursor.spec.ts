import { CursorError, decodeCursor, encodeCursor, queryFingerprint } from './list-cursor.js';

const F = queryFingerprint({ status: 'open', type: 'trading' });

describe('list cursor', () => {
  it('round-trips the index and position, as opaque base64url', () => {
    for (const cursor of [
      { index: 'deadlines' as const, after: { score: 1_764_422_222_123, corrId: 'c-1.a:b_c' } },
      { index: 'recent' as const, after: null },
      { index: 'recent' as const, after: { score: 0, corrId: 'x' } },
    ]) {
      const text = encodeCursor(cursor, F);
      expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeCursor(text, F)).toEqual(cursor);
    }
  });

  it('belongs to its filters: another status or type is refused', () => {
    const text = encodeCursor({ index: 'deadlines', after: { score: 5, corrId: 'a' } }, F);
    expect(() => decodeCursor(text, queryFingerprint({ status: 'open' }))).toThrow(/other filters/);
    expect(() => decodeCursor(text, queryFingerprint({ status: 'finished', type: 'trading' }))).toThrow(CursorError);
    expect(queryFingerprint({})).toBe(queryFingerprint({ status: undefined, type: undefined }));
    expect(queryFingerprint({ status: 'open' })).not.toBe(queryFingerprint({ type: 'open' }));
  });

  it('refuses anything it did not make', () => {
    const forge = (body: unknown) => Buffer.from(JSON.stringify(body)).toString('base64url');
    for (const text of [
      'not a cursor!',
      '',
      Buffer.from('{"v":1').toString('base64url'),
      forge({ v: 2, f: F, i: 'recent', s: null, c: null }),
      forge({ v: 1, f: F, i: 'wf', s: null, c: null }),
      forge({ v: 1, f: F, i: 'recent', s: 'x', c: 'a' }),
      forge({ v: 1, f: F, i: 'recent', s: 5, c: '' }),
      forge({ v: 1, f: F, i: 'recent', s: 5 }),
      forge(null),
      forge([1]),
    ]) {
      expect(() => decodeCursor(text, F)).toThrow(CursorError);
    }
  });
});
