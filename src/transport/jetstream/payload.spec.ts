import { BadInputError } from '../../common/errors.js';
import { decodePayload, MAX_DEPTH } from './payload.js';

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

  // Found by the fault suite (docs/RELIABILITY.md): a key spelled with \u escapes is the same key once parsed,
  // and got past a check that only looked at the raw text; the message was accepted and changed a workflow.
  it.each([
    ['{"\\u005f\\u005fproto__":{"polluted":true},"corr_id":"a"}'],
    ['{"corr_id":"a","analysis":{"constructo\\u0072":{"prototype":1}}}'],
    ['{"corr_id":"a","list":[{"prot\\u006ftype":1}]}'],
  ])('rejects forbidden keys written with \\u escapes: %s', (text) => {
    expect(code(() => decodePayload(enc(text), 1024))).toBe('forbidden_key');
  });

  // Found by the fault suite: deep nesting (far below the size limit) overflowed the stack in validation; the
  // RangeError was taken for a transient failure and the message retried for minutes instead of dead-lettered.
  it('rejects nesting deeper than MAX_DEPTH, in objects and arrays, as too_deep', () => {
    const objects = (n: number) => '{"corr_id":"a","x":' + '{"a":'.repeat(n - 1) + '1' + '}'.repeat(n - 1) + '}';
    const arrays = (n: number) => '{"corr_id":"a","x":' + '['.repeat(n - 1) + ']'.repeat(n - 1) + '}';
    expect(code(() => decodePayload(enc(objects(MAX_DEPTH)), 1 << 20))).toBe('none');
    expect(code(() => decodePayload(enc(arrays(MAX_DEPTH)), 1 << 20))).toBe('none');
    expect(code(() => decodePayload(enc(objects(MAX_DEPTH + 1)), 1 << 20))).toBe('too_deep');
    expect(code(() => decodePayload(enc(arrays(MAX_DEPTH + 1)), 1 << 20))).toBe('too_deep');
    expect(code(() => decodePayload(enc(objects(50000)), 1 << 20))).toBe('too_deep');
  });

  it('accepts the words as values, only keys are refused', () => {
    expect(decodePayload(enc('{"note":"__proto__ constructor"}'), 1024).value).toEqual({ note: '__proto__ constructor' });
  });

  it('does not pollute Object.prototype', () => {
    code(() => decodePayload(enc('{"__proto__":{"polluted":true}}'), 1024));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
