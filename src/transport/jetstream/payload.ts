import { BadInputError } from '../../common/errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true });
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface DecodedPayload {
  /** The parsed JSON object. */
  value: Record<string, unknown>;
  /** The payload text as received (stored verbatim, so a redelivery compares equal). */
  text: string;
}

/**
 * Turns a message body into a JSON object, or throws `BadInputError` with a stable code:
 * `payload_too_large`, `invalid_utf8`, `invalid_json`, `not_an_object`, `forbidden_key`.
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
  // Keys that could reach an object's prototype through a careless merge are refused outright;
  // the substring test keeps the deep walk off the common path.
  if (/"(__proto__|constructor|prototype)"\s*:/.test(text)) {
    const key = findForbiddenKey(value);
    if (key) throw new BadInputError('forbidden_key', `payload has the forbidden key "${key}"`);
  }
  return { value: value as Record<string, unknown>, text };
}

function findForbiddenKey(value: unknown): string | null {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    for (const key of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(key)) return key;
      stack.push((v as Record<string, unknown>)[key]);
    }
  }
  return null;
}
