import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from './redis-client.js';

/**
 * Loads `lua/<name>-<numKeys>.lua` and registers each as an ioredis command named in camelCase
 * (`start-workflows-2.lua` -> `startWorkflows`, 2 keys). ioredis runs them with EVALSHA and falls back to
 * EVAL on NOSCRIPT (after a Redis restart), on the client and on its pipelines alike. Their types (arguments,
 * replies, reply codes) are declared on ioredis's command map in script-replies.ts.
 */
export const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'lua');

export interface ScriptSource {
  command: string;
  numberOfKeys: number;
  lua: string;
}

/** Inlines `-- @include <file>` lines with `lua/includes/<file>` (shared helpers such as `now_ms`). */
function inline(lua: string, dir: string): string {
  return lua.replace(/^-- @include (\S+)$/gm, (_m, file: string) => readFileSync(join(dir, 'includes', file), 'utf8'));
}

export function readScripts(dir = LUA_DIR): ScriptSource[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const match = /^([a-z-]+)-(\d+)\.lua$/.exec(file);
      if (!match) throw new Error(`Lua script file name must be <name>-<numKeys>.lua: ${file}`);
      const command = match[1].replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
      return { command, numberOfKeys: Number(match[2]), lua: inline(readFileSync(join(dir, file), 'utf8'), dir) };
    });
}

export function defineScripts(redis: RedisClient, scripts = readScripts()): void {
  for (const s of scripts) redis.defineCommand(s.command, { numberOfKeys: s.numberOfKeys, lua: s.lua });
}
