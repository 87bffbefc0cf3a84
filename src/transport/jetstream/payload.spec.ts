import { BadInputError } from '../../common/errors.js';
import { decodePayload } from './payload.js';

const enc = (s: string) => new TextEncoder().encode(s);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof BadInputError) return error.code;
    throw error;
  }
  return 'none';
}

describe('decodePayload', () => {
  it('returns the object and the text as received', () => {
    const text = '{"corr_id":"a","n":1}';
    expect(decodePayload(enc(text), 1024)).toEqual({ value: { corr_id: 'a', n: 1 }, text });
  });

  it.each([
    ['payload_too_large', enc(`{"a":"${'x'.repeat(100)}"}`)],
    ['invalid_utf8', new Uint8Array([0x7b, 0xff, 0x7d])],
    ['invalid_json', enc('{not json')],
    ['not_an_object', enc('[1,2]')],
    ['not_an_object', enc('null')],
    ['not_an_object', enc('"text"')],
    ['forbidden_key', enc('{"corr_id":"a","__proto__":{"polluted":true}}')],
    ['forbidden_key', enc('{"a":{"b":[{"constructor":{"prototype":1}}]}}')],
  ])('rejects with %s', (expected, data) => {
    expect(code(() => decodePayload(data, 64))).toBe(expected);
  });

  it('accepts the words as values, only keys are refused', () => {
    expect(decodePayload(enc('{"note":"__proto__ constructor"}'), 1024).value).toEqual({ note: '__proto__ constructor' });
  });

  it('does not pollute Object.prototype', () => {
    code(() => decodePayload(enc('{"__proto__":{"polluted":true}}'), 1024));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
