import { createHash, timingSafeEqual } from 'node:crypto';
import {
  applyDecorators,
  Global,
  Module,
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  UnauthorizedException,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type OnModuleInit,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { appConfig, type AppConfig } from '../config/configuration.js';

/** What a request that passed the guard carries: the name of the token it presented (for logs). */
export interface AdminRequest extends Request {
  adminTokenName?: string;
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/**
 * The admin tokens (SPEC "HTTP"), once per process: admin endpoints are served only with
 * `Authorization: Bearer <token>` naming one of `META_AGENT_ADMIN_TOKEN`'s tokens; without a token configured
 * they are off. Says so once at start.
 *
 * The presented token is compared with every configured one, each through SHA-256 and `timingSafeEqual`
 * (equal lengths, no early exit), so the time taken says nothing about how much of a token was right.
 */
@Injectable()
export class AdminTokens implements OnModuleInit {
  private readonly logger = new Logger('Admin');
  private readonly tokens: { name: string; digest: Buffer }[];

  constructor(@Inject(appConfig.KEY) config: AppConfig) {
    this.tokens = config.adminTokens.map((t) => ({ name: t.name, digest: digest(t.token) }));
  }

  get enabled(): boolean {
    return this.tokens.length > 0;
  }

  onModuleInit(): void {
    if (!this.enabled) this.logger.log({ msg: 'admin endpoints are off: META_AGENT_ADMIN_TOKEN is not set' });
    else this.logger.log({ msg: 'admin endpoints need a bearer token', tokens: this.tokens.map((t) => t.name) });
  }

  /** The name of the configured token an `Authorization` header presents, or undefined. */
  match(header: string | undefined): string | undefined {
    const m = /^Bearer +(\S+) *$/i.exec(header ?? '');
    if (!m) return undefined;
    const presented = digest(m[1]);
    let found: string | undefined;
    for (const t of this.tokens) {
      if (timingSafeEqual(presented, t.digest) && found === undefined) found = t.name;
    }
    return found;
  }
}

/**
 * The guard of the admin endpoints: 404 while they are off (as for a route that does not exist), 401 with
 * `WWW-Authenticate: Bearer` for a missing, malformed or wrong token. The token's name goes on the request
 * (`adminTokenName`) and in the log line of each admin request; a token itself is never logged. Nest makes
 * one guard per module hosting a guarded controller; they share the one `AdminTokens`.
 *
 * Use `@AdminOnly()` on a controller or a route.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly logger = new Logger('Admin');

  constructor(private readonly tokens: AdminTokens) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const request = http.getRequest<AdminRequest>();
    if (!this.tokens.enabled) throw new NotFoundException(`Cannot ${request.method} ${request.path}`);

    const name = this.tokens.match(request.headers.authorization);
    if (name === undefined) {
      this.logger.warn({
        msg: 'admin request refused',
        reason: request.headers.authorization ? 'wrong token' : 'no token',
        method: request.method,
        path: request.path,
        from: request.ip,
      });
      http.getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="meta-agent"');
      throw new UnauthorizedException('a valid bearer token is required (Authorization: Bearer <META_AGENT_ADMIN_TOKEN>)');
    }
    request.adminTokenName = name;
    this.logger.log({ msg: 'admin request', token: name, method: request.method, path: request.path, from: request.ip });
    return true;
  }
}

/** Marks a controller or route as an admin endpoint (bearer token, off without one). */
export const AdminOnly = () => applyDecorators(UseGuards(AdminTokenGuard));

/** Provides the one `AdminTokens` to every module's guard. */
@Global()
@Module({ providers: [AdminTokens], exports: [AdminTokens] })
export class AdminAuthModule {}
