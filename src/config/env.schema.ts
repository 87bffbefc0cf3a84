import { EnvReader, type Env, type SettingDoc } from './env-reader.js';
import { readAppSettings } from './settings/app.js';
import { checkNatsSettings, readNatsSettings } from './settings/nats.js';
import { checkRedisSettings, readRedisSettings } from './settings/redis.js';
import { checkWorkflowSettings, readWorkflowSettings } from './settings/workflow.js';

/**
 * Every setting of the service, assembled from one file per concern (settings/*.ts) in the order the
 * documentation lists them. `parseSettings` validates the whole environment at start; the first invalid value
 * throws a `ConfigValidationError` (env-reader.ts) whose message is one line naming the variable and the reason.
 * It runs once per process (`currentSettings` in configuration.ts).
 *
 * The template's settings keep their names and defaults (`META_AGENT_` prefix). Each reader call carries the
 * setting's meaning; `describeSettings()` lists them all, and the settings table of docs/OPERATIONS.md is
 * generated from it (`npm run docs:settings`; a test keeps the two in step).
 */
export function parseSettings(env: Env) {
  return read(new EnvReader(env));
}

/** Every setting with its default and meaning, in the order of the code (docs are generated from it). */
export function describeSettings(): SettingDoc[] {
  const reader = new EnvReader({});
  read(reader);
  return reader.docs;
}

function read(r: EnvReader) {
  const app = readAppSettings(r);
  const nats = readNatsSettings(r, app.name);
  const redis = readRedisSettings(r);
  const workflow = readWorkflowSettings(r);
  // Every value is read (and checked alone) before the checks that relate several.
  checkWorkflowSettings(workflow);
  checkNatsSettings(nats);
  checkRedisSettings(redis);
  return { app, nats, redis, workflow };
}

export type Settings = ReturnType<typeof parseSettings>;
