import { ConfigValidationError, PREFIX, type EnvReader } from '../env-reader.js';

/** META_AGENT_ADMIN_TOKEN (or its _FILE): the admin API's bearer tokens, by name. */
export function readAdminTokens(r: EnvReader): AdminToken[] {
  return parseAdminTokens(
    r.secret(
      'ADMIN_TOKEN',
      'Bearer token(s) of the admin endpoints (`/workflows`: list, inspect, cancel, decide, extend): one token, or `name:token,name2:token2` (the name is logged with each admin request). Tokens: 16 to 512 characters of `A-Z a-z 0-9 - . _ ~ + /`. Unset: the admin endpoints are off (404).',
    ),
  );
}

/** One admin bearer token and the name it is known by in logs. */
export interface AdminToken {
  name: string;
  token: string;
}

/** An RFC 6750 bearer token (`b64token`), long enough not to be guessed. */
const ADMIN_TOKEN_RE = /^[A-Za-z0-9\-._~+/]{16,512}=*$/;
const ADMIN_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * `META_AGENT_ADMIN_TOKEN`: one token (named `admin`), or `name:token` entries separated by commas or
 * newlines (a mounted file may hold one per line). No error message ever contains a token.
 */
export function parseAdminTokens(value: string | undefined): AdminToken[] {
  if (value === undefined) return [];
  const fail = (reason: string): never => {
    throw new ConfigValidationError(`${PREFIX}ADMIN_TOKEN`, reason);
  };
  const entries = value
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const tokens = entries.map((entry, i): AdminToken => {
    const colon = entry.indexOf(':');
    const name =
      colon < 0 ? (entries.length === 1 ? 'admin' : fail(`entry ${i + 1} has no name (write name:token when there are several)`)) : entry.slice(0, colon);
    const token = colon < 0 ? entry : entry.slice(colon + 1);
    if (!ADMIN_NAME_RE.test(name)) fail(`entry ${i + 1}: the name must be 1 to 64 characters of A-Z a-z 0-9 _ . -`);
    if (!ADMIN_TOKEN_RE.test(token)) fail(`entry ${i + 1} (${name}): a token must be 16 to 512 characters of A-Z a-z 0-9 - . _ ~ + / (then = padding)`);
    return { name, token };
  });
  if (new Set(tokens.map((t) => t.name)).size !== tokens.length) fail('two tokens have the same name');
  if (new Set(tokens.map((t) => t.token)).size !== tokens.length) fail('two names have the same token');
  return tokens;
}
