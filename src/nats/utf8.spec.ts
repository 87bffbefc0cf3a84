import { utf8 } from './utf8.js';

describe('utf8', () => {
  it('gives the bytes TextEncoder gives, non-ASCII included', () => {
    for (const text of ['', '{"a":1}', 'é€𝄞 "quoted" \\ \u0000', 'x'.repeat(5000)]) {
      expect(Array.from(utf8(text))).toEqual(Array.from(new TextEncoder().encode(text)));
    }
  });

  it('passes bytes through as they are', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    expect(utf8(bytes)).toBe(bytes);
  });
});
