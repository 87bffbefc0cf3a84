import { registerAs, type ConfigType } from '@nestjs/config';
import { parseSettings } from './env.schema.js';

/*
 * One namespace per concern, each injected typed: `@Inject(workflowConfig.KEY) cfg: WorkflowConfig`.
 * The values come from the environment (and `.env`), validated by `parseSettings`.
 */
export const appConfig = registerAs('app', () => parseSettings(process.env).app);
export const natsConfig = registerAs('nats', () => parseSettings(process.env).nats);
export const redisConfig = registerAs('redis', () => parseSettings(process.env).redis);
export const workflowConfig = registerAs('workflow', () => parseSettings(process.env).workflow);

export type AppConfig = ConfigType<typeof appConfig>;
export type NatsConfig = ConfigType<typeof natsConfig>;
export type RedisConfig = ConfigType<typeof redisConfig>;
export type WorkflowConfig = ConfigType<typeof workflowConfig>;
