import { registerAs, type ConfigType } from '@nestjs/config';
import { parseSettings, type Settings } from './env.schema.js';

/*
 * One namespace per concern, each injected typed: `@Inject(workflowConfig.KEY) cfg: WorkflowConfig`.
 * The values come from the environment (and `.env`), validated by `parseSettings` once for all four
 * namespaces (it reads secret files): parsed again only if a `META_AGENT_*` variable changed since, as it
 * does between the test modules of one process.
 */
let parsed: { key: string; settings: Settings } | undefined;

/** The settings of the current environment (bootstrap validates with it; the namespaces read it). */
export function currentSettings(): Settings {
  const key = JSON.stringify(Object.entries(process.env).filter(([name]) => name.startsWith('META_AGENT_')));
  if (parsed?.key !== key) parsed = { key, settings: parseSettings(process.env) };
  return parsed.settings;
}

export const appConfig = registerAs('app', () => currentSettings().app);
export const natsConfig = registerAs('nats', () => currentSettings().nats);
export const redisConfig = registerAs('redis', () => currentSettings().redis);
export const workflowConfig = registerAs('workflow', () => currentSettings().workflow);

export type AppConfig = ConfigType<typeof appConfig>;
export type NatsConfig = ConfigType<typeof natsConfig>;
export type RedisConfig = ConfigType<typeof redisConfig>;
export type WorkflowConfig = ConfigType<typeof workflowConfig>;
