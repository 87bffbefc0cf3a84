import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeSettings, parseSettings } from '../../src/config/env.schema.js';
import { ROOT, type K8sObject } from './manifests.js';

/** Every variable the service reads (from its settings schema, the same source as docs/OPERATIONS.md). */
export const KNOWN_SETTINGS = new Set(describeSettings().map((s) => s.variable));
export const DEFAULTS = Object.fromEntries(describeSettings().map((s) => [s.variable, s.default]));

/** The error parseSettings gives for this environment, or undefined when it is accepted. */
export function settingsError(env: Record<string, string>): string | undefined {
  try {
    parseSettings(env);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

export { parseSettings };

/** The routes the HTTP app serves under /health, read from the controller's decorators. */
export function healthRoutes(): string[] {
  const text = readFileSync(join(ROOT, 'src', 'health', 'health.controller.ts'), 'utf8');
  const base = /@Controller\(\s*'([^']*)'\s*\)/.exec(text)?.[1];
  if (base === undefined) throw new Error('no @Controller in health.controller.ts');
  const routes = [...text.matchAll(/@Get\(\s*(?:'([^']*)')?\s*\)/g)].map((m) => `/${[base, m[1]].filter(Boolean).join('/')}`);
  if (routes.length === 0) throw new Error('no @Get in health.controller.ts');
  return routes;
}

/**
 * The environment a container of the Deployment gets from the manifests: its ConfigMap and Secret
 * (envFrom, in order) and then its own `env` (which wins, as in Kubernetes).
 */
export function containerEnv(objects: K8sObject[], container: any): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) {
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === from.configMapRef.name);
      Object.assign(env, cm?.data ?? {});
    }
    if (from.secretRef) {
      const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === from.secretRef.name);
      Object.assign(env, secret?.stringData ?? {});
      for (const [k, v] of Object.entries<string>(secret?.data ?? {})) env[k] = Buffer.from(v, 'base64').toString('utf8');
    }
  }
  for (const e of container.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  return env;
}
