import type { LoggerService, LogLevel as NestLogLevel } from '@nestjs/common';
import type { LogLevel } from '../config/env-reader.js';

const ORDER: Record<string, number> = { trace: 10, debug: 20, info: 30, warning: 40, error: 50, critical: 60 };

/**
 * One JSON object per line on stdout: `{"time","level","logger","msg",...fields}`. Messages given as
 * objects (`logger.log({ msg, corr_id, workflow_id })`) have their fields merged into the line.
 */
export class JsonLogger implements LoggerService {
  private readonly threshold: number;

  constructor(level: LogLevel = 'info') {
    this.threshold = ORDER[level];
  }

  private write(level: string, message: unknown, params: unknown[]): void {
    if (ORDER[level] < this.threshold) return;
    // Nest passes the context (the logger name) as the last string parameter, and a stack before it for errors.
    const rest = [...params];
    const context = typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const line: Record<string, unknown> = { time: new Date().toISOString(), level, logger: context };
    if (message instanceof Error) {
      line.msg = message.message;
      line.error = message.stack;
    } else if (typeof message === 'object' && message !== null) {
      Object.assign(line, message);
    } else {
      line.msg = String(message);
    }
    if (level === 'error' && typeof rest[0] === 'string' && rest[0].includes('\n')) line.stack = rest[0];
    let text: string;
    try {
      text = JSON.stringify(line);
    } catch {
      text = JSON.stringify({ time: line.time, level, logger: context, msg: String(line.msg) });
    }
    process.stdout.write(text + '\n');
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warning', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('critical', message, params);
  }
  setLogLevels(_levels: NestLogLevel[]): void {
    // The level comes from META_AGENT_LOG_LEVEL only.
  }
}
