import { BadInputError } from '../../common/errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true });
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** Objects and arrays nested deeper than this are bad input (`too_deep`): validation recurses, and real signals nest a few levels. */
export const MAX_DEPTH = 64;

export interface DecodedPayload {
  /** The parsed JSON object. */
  value: Record<string, unknown>;
  /** The payload text as received (stored verbatim, so a redelivery compares equal). */
  text: string;
}

/**
 * Turns a message body into a JSON object, or throws `BadInputError` with a stable code:
 * `payload_too_large`, `invalid_utf8`, `invalid_json`, `not_an_object`, `forbidden_key`, `too_deep`.
 */
export function decodePayload(data: Uint8Array, maxBytes: number): DecodedPayload {
  if (data.length > maxBytes) {
    throw new BadInputError('payload_too_large', `payload is ${data.length} bytes, the limit is ${maxBytes}`);
  }
  let text: string;
  try {
    text = decoder.decode(data);
  } catch (error) {
    throw new BadInputError('invalid_utf8', 'payload is not valid UTF-8', { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BadInputError('invalid_json', `payload is not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadInputError('not_an_object', 'payload must be a JSON object');
  }
  checkStructure(value);
  return { value: value as Record<string, unknown>, text };
}

/**
 * One iterative walk of the parsed value (never recursion: the input decides the depth). Keys that could
 * reach an object's prototype through a careless merge are refused outright — judged on the parsed keys,
 * since `"\u005f_proto__"` is the same key as `"__proto__"` — and so is nesting deeper than MAX_DEPTH.
 */
function checkStructure(value: object): void {
  // Two parallel stacks (objects and their depths): no array or tuple per node, on every message.
  const objects: object[] = [value];
  const depths: number[] = [1];
  while (objects.length > 0) {
    const v = objects.pop()!;
    const depth = depths.pop()!;
    if (depth > MAX_DEPTH) throw new BadInputError('too_deep', `payload nests objects or arrays deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(v)) {
      for (const child of v as unknown[]) {
        if (typeof child === 'object' && child !== null) {
          objects.push(child);
          depths.push(depth + 1);
        }
      }
      continue;
    }
    // JSON.parse makes plain objects with own enumerable keys only: for...in visits exactly those.
    for (const key in v) {
      if (FORBIDDEN_KEYS.has(key)) throw new BadInputError('forbidden_key', `payload has the forbidden key "${key}"`);
      const child = (v as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null) {
        objects.push(child);
        depths.push(depth + 1);
      }
    }
  }
}
