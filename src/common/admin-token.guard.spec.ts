import 'reflect-metadata';
import { NotFoundException, UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import type { AppConfig } from '../config/configuration.js';
import { ConfigValidationError } from '../config/env-reader.js';
import { parseSettings } from '../config/env.schema.js';
import { parseAdminTokens } from '../config/settings/admin-tokens.js';
import { AdminTokenGuard, AdminTokens, type AdminRequest } from './admin-token.guard.js';

/* The admin bearer token: the setting's forms, and the guard's answers (SPEC "HTTP"). */

const OPS = 'ops-token-0123456789abcdef';
const AUDIT = 'audit/token+0123456789==';

function guard(tokens: string | undefined) {
  return new AdminTokenGuard(new AdminTokens({ adminTokens: parseAdminTokens(tokens) } as AppConfig));
}

function call(g: AdminTokenGuard, authorization?: string) {
  const request = {
    method: 'GET',
    path: '/workflows/x',
    ip: '127.0.0.1',
    headers: authorization === undefined ? {} : { authorization },
  } as unknown as AdminRequest;
  const headers: Record<string, string> = {};
  const response = { setHeader: (k: string, v: string) => (headers[k] = v) };
  const context = { switchToHttp: () => ({ getRequest: () => request, getResponse: () => response }) } as unknown as ExecutionContext;
  try {
    return { allowed: g.canActivate(context), name: request.adminTokenName, headers };
  } catch (error) {
    return { error, headers };
  }
}

describe('META_AGENT_ADMIN_TOKEN', () => {
  it('is off when unset or empty; one token is named admin; name:token pairs by comma or newline', () => {
    expect(parseSettings({}).app.adminTokens).toEqual([]);
    expect(parseSettings({ META_AGENT_ADMIN_TOKEN: '' }).app.adminTokens).toEqual([]);
    expect(parseSettings({ META_AGENT_ADMIN_TOKEN: OPS }).app.adminTokens).toEqual([{ name: 'admin', token: OPS }]);
    expect(parseAdminTokens(`ops:${OPS}, audit:${AUDIT}`)).toEqual([
      { name: 'ops', token: OPS },
      { name: 'audit', token: AUDIT },
    ]);
    expect(parseAdminTokens(`ops:${OPS}\naudit:${AUDIT}\n`)).toEqual([
      { name: 'ops', token: OPS },
      { name: 'audit', token: AUDIT },
    ]);
  });

  it.each([
    ['a short token', 'short-token'],
    ['a token with a space', 'ops:token with spaces 0123456789'],
    ['a token with a colon', 'ops:abc:0123456789abcdef0123'],
    ['several tokens without names', `${OPS},${AUDIT}`],
    ['a bad name', `o p s:${OPS}`],
    ['a repeated name', `ops:${OPS},ops:${AUDIT}`],
    ['a repeated token', `ops:${OPS},audit:${OPS}`],
  ])('refuses %s, naming the variable and never the token', (_what, value) => {
    let error: unknown;
    try {
      parseSettings({ META_AGENT_ADMIN_TOKEN: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    expect((error as ConfigValidationError).variable).toBe('META_AGENT_ADMIN_TOKEN');
    for (const secret of [OPS, AUDIT, '0123456789abcdef']) expect((error as Error).message).not.toContain(secret);
  });
});

describe('AdminTokenGuard', () => {
  it('without a token configured, the endpoint is off: 404 whatever is presented', () => {
    expect(call(guard(undefined)).error).toBeInstanceOf(NotFoundException);
    expect(call(guard(undefined), `Bearer ${OPS}`).error).toBeInstanceOf(NotFoundException);
  });

  it('lets a configured token through and names it on the request', () => {
    const g = guard(`ops:${OPS},audit:${AUDIT}`);
    expect(call(g, `Bearer ${OPS}`)).toMatchObject({ allowed: true, name: 'ops' });
    expect(call(g, `bearer ${AUDIT}`)).toMatchObject({ allowed: true, name: 'audit' });
    expect(call(guard(OPS), `Bearer ${OPS}`)).toMatchObject({ allowed: true, name: 'admin' });
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['another scheme', `Basic ${OPS}`],
    ['the scheme alone', 'Bearer'],
    ['a wrong token', 'Bearer ops-token-0123456789abcdeX'],
    ['a prefix of the token', `Bearer ${OPS.slice(0, -1)}`],
    ['the token with more after it', `Bearer ${OPS}0`],
    ['the name instead of the token', 'Bearer ops'],
    ['name:token', `Bearer ops:${OPS}`],
    ['two tokens', `Bearer ${OPS} ${AUDIT}`],
  ])('refuses %s with 401 and WWW-Authenticate: Bearer', (_what, header) => {
    const result = call(guard(`ops:${OPS},audit:${AUDIT}`), header);
    expect(result.error).toBeInstanceOf(UnauthorizedException);
    expect(result.headers['WWW-Authenticate']).toMatch(/^Bearer /);
  });
});
