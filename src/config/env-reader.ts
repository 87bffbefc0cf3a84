import { accessSync, constants, readFileSync } from 'node:fs';

/*
 * The general reader of settings: typed readers of `META_AGENT_*` variables (`r.int`, `r.url`, `r.secret`, ...),
 * secrets from files (`<NAME>_FILE`), and the one error an invalid setting gives. What each setting means,
 * its default and bounds are in settings/<concern>.ts; env.schema.ts assembles them.
 */

/**
 * An invalid setting: its message is one line naming the variable and the reason (bootstrap prints it and
 * exits 1). It never holds a secret.
 */
export class ConfigValidationError extends Error {
  constructor(
    readonly variable: string,
    readonly reason: string,
  ) {
    super(`invalid setting ${variable}: ${reason}`);
    this.name = 'ConfigValidationError';
  }
}

export const PREFIX = 'META_AGENT_';

export type Env = Record<string, string | undefined>;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One setting as documented: variable, default as written in the environment, meaning. */
export interface SettingDoc {
  variable: string;
  default: string;
  doc: string;
}

/**
 * Reads `META_AGENT_<name>` variables, typed and checked, and notes each one read (variable, default, meaning)
 * for `describeSettings()`. The first invalid value throws a ConfigValidationError.
 */
export class EnvReader {
  readonly docs: SettingDoc[] = [];

  constructor(private readonly env: Env) {}

  private note(name: string, def: unknown, doc: string): void {
    this.docs.push({ variable: PREFIX + name, default: Array.isArray(def) ? def.join(',') : String(def), doc });
  }

  private raw(name: string): string | undefined {
    const value = this.env[PREFIX + name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  private fail(name: string, reason: string): never {
    throw new ConfigValidationError(PREFIX + name, reason);
  }

  string(name: string, def: string, doc: string, pattern?: RegExp, what = 'a valid value'): string {
    this.note(name, def, doc);
    const v = this.raw(name) ?? def;
    if (pattern && !pattern.test(v)) this.fail(name, `"${v}" is not ${what}`);
    return v;
  }

  url(name: string, def: string, protocols: string[], doc: string): string {
    this.note(name, def, doc);
    const v = this.raw(name) ?? def;
    for (const part of v.split(',')) {
      let parsed: URL;
      try {
        parsed = new URL(part.trim());
      } catch {
        this.fail(name, `"${redactUrl(part)}" is not a URL`);
      }
      if (!protocols.includes(parsed.protocol)) {
        this.fail(name, `protocol must be one of ${protocols.join(', ')}, got ${parsed.protocol}`);
      }
    }
    return v;
  }

  int(name: string, def: number, min: number, max: number, doc: string): number {
    this.note(name, def, doc);
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!/^-?\d+$/.test(v)) this.fail(name, `"${v}" is not a whole number`);
    const n = Number(v);
    if (n < min || n > max) this.fail(name, `${n} is outside ${min}..${max}`);
    return n;
  }

  float(name: string, def: number, min: number, max: number, doc: string): number {
    this.note(name, def, doc);
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) this.fail(name, `"${v}" is not a number`);
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) this.fail(name, `${n} is outside ${min}..${max}`);
    return n;
  }

  /** A value that may be absent (no default). */
  optional(name: string, doc: string, pattern?: RegExp, what = 'a valid value'): string | undefined {
    this.note(name, '', doc);
    const v = this.raw(name);
    if (v !== undefined && pattern && !pattern.test(v)) this.fail(name, `is not ${what}`);
    return v;
  }

  /**
   * A credential, from `<NAME>` or from the file `<NAME>_FILE` names (Kubernetes secrets mounted as
   * files); never both. Its value is never put in an error message.
   */
  secret(name: string, doc: string): string | undefined {
    this.note(name, '', `${doc} Secret: never logged.`);
    this.note(`${name}_FILE`, '', `A file holding ${PREFIX}${name} (instead of the variable).`);
    const direct = this.env[PREFIX + name];
    const file = this.raw(`${name}_FILE`);
    if (direct !== undefined && direct !== '' && file !== undefined)
      this.fail(`${name}_FILE`, `set either ${PREFIX}${name} or ${PREFIX}${name}_FILE, not both`);
    if (file === undefined) return direct === '' ? undefined : direct;
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (error) {
      this.fail(`${name}_FILE`, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }

  /** A path to a readable file (certificates, credentials), or absent. */
  file(name: string, doc: string): string | undefined {
    this.note(name, '', doc);
    const v = this.raw(name);
    if (v === undefined) return undefined;
    try {
      accessSync(v, constants.R_OK);
    } catch (error) {
      this.fail(name, `cannot read ${v}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    return v;
  }

  /** `host:port` pairs, comma-separated. */
  hostPorts(name: string, doc: string): { host: string; port: number }[] {
    this.note(name, '', doc);
    const v = this.raw(name);
    if (v === undefined) return [];
    return v.split(',').map((part) => {
      const m = /^\s*([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\s*$/.exec(part);
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) this.fail(name, `"${part.trim()}" is not host:port`);
      return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
    });
  }

  bool(name: string, def: boolean, doc: string): boolean {
    this.note(name, def, doc);
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return def;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    this.fail(name, `"${v}" is not a boolean (true/false)`);
  }

  /** A list, written `a,b,c` or as a JSON array `["a","b"]` (pydantic's form, as the template used). */
  list(name: string, def: string[], pattern: RegExp, doc: string): string[] {
    this.note(name, def, doc);
    const v = this.raw(name);
    if (v === undefined) return def;
    let items: unknown[];
    if (v.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(v);
        if (!Array.isArray(parsed)) throw new Error('not an array');
        items = parsed;
      } catch {
        this.fail(name, 'is not a JSON array of strings');
      }
    } else {
      items = v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    }
    for (const item of items) {
      if (typeof item !== 'string' || !pattern.test(item)) this.fail(name, `"${String(item)}" is not a valid name`);
    }
    return [...new Set(items as string[])];
  }

  logLevel(name: string, def: LogLevel, doc: string): LogLevel {
    this.note(name, def.toUpperCase(), doc);
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return def;
    const alias: Record<string, LogLevel> = { warn: 'warning', fatal: 'critical', verbose: 'trace' };
    const level = (alias[v] ?? v) as LogLevel;
    if (!LOG_LEVELS.includes(level)) this.fail(name, `"${v}" is not one of ${LOG_LEVELS.join(', ')}`);
    return level;
  }
}

/** Replaces the password (or token) of a URL list with `***`, for logs and /health. */
export function redactUrl(urls: string): string {
  return urls
    .split(',')
    .map((u) => u.replace(/\/\/([^:@/]*)(:[^@/]*)?@/, (_m, user: string, pass?: string) => `//${pass ? `${user}:***` : '***'}@`))
    .join(',');
}
