import { readFileSync } from 'node:fs';
import { Controller, Get, NotFoundException, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AdminTokens } from '../common/admin-token.guard.js';

/**
 * The page's headers: its script, style and requests only from this origin (no inline script or style, no
 * other origin, no frames, no plugins, no forms posted anywhere); Trusted Types so that no HTML string can be
 * written into the page (an innerHTML would throw); never cached (a shared machine's cache, a proxy).
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

const HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** The console's files (src/console/assets, copied into dist by `npm run build`), read once. */
const ASSETS: Record<string, { type: string; body: Buffer }> = Object.fromEntries(
  [
    ['console.html', 'text/html; charset=utf-8'],
    ['console.js', 'text/javascript; charset=utf-8'],
    ['console.css', 'text/css; charset=utf-8'],
  ].map(([name, type]) => [name, { type, body: readFileSync(new URL(`./assets/${name}`, import.meta.url)) }]),
);

/**
 * The operator console (README "Operator console"): one page and its script and style, served at `/console`.
 * The page holds no data and needs no token to load (a browser cannot send a bearer header on a navigation):
 * it asks for the admin token and shows what the admin API returns for it. Off (404) when the admin API is.
 */
@ApiExcludeController()
@Controller('console')
export class ConsoleController {
  constructor(private readonly tokens: AdminTokens) {}

  @Get()
  page(@Req() req: Request, @Res() res: Response): void {
    this.send(req, res, 'console.html');
  }

  @Get('console.js')
  script(@Req() req: Request, @Res() res: Response): void {
    this.send(req, res, 'console.js');
  }

  @Get('console.css')
  style(@Req() req: Request, @Res() res: Response): void {
    this.send(req, res, 'console.css');
  }

  private send(req: Request, res: Response, name: string): void {
    if (!this.tokens.enabled) throw new NotFoundException(`Cannot ${req.method} ${req.path}`);
    const asset = ASSETS[name];
    res.status(200).set(HEADERS).type(asset.type).send(asset.body);
  }
}
