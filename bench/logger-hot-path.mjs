// The cost of one log call on the service's hot path, through Nest's `Logger` as the service calls it
// (`new Logger('WorkflowService').log({ msg, corr_id, workflow_id, ... })`), with the service's JsonLogger
// (src/logging/json-logger.ts) and, when it is installed, with nestjs-pino's Logger configured to write the
// same line shape (the numbers docs/ARCHITECTURE.md gives under "Choices", "No nestjs-pino").
//
//   npm run build && node bench/logger-hot-path.mjs > /dev/null          # the JsonLogger alone
//   npm install --no-save nestjs-pino pino pino-http && node bench/logger-hot-path.mjs > /dev/null
//
// The log lines go to stdout (send it to /dev/null, or a file to look at them); the figures to stderr: calls
// per second at info (written) and at debug with the level at info (dropped), median of 7 runs of each,
// alternating the loggers. LOG_BENCH_REDACT=0: nestjs-pino without its redaction.
import 'reflect-metadata';
import { Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { JsonLogger } from '../dist/logging/json-logger.js';

const CALLS = { info: 200_000, debug: 2_000_000 };
const ROUNDS = 7;
const say = (line) => process.stderr.write(`${line}\n`);

// Level names and keys of the JsonLogger's lines: {"time","level","logger","msg",...fields}.
const LEVELS = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warning', error: 'error', fatal: 'critical' };
/** Keys whose values are secrets, wherever a log call might put them. */
const REDACT = ['password', 'token', 'authorization', 'secret', 'adminToken', 'url'].flatMap((k) => [k, `*.${k}`]);

async function pinoLogger() {
  let nestjsPino;
  try {
    nestjsPino = await import('nestjs-pino');
  } catch {
    return null;
  }
  const { LoggerModule, Logger: PinoNestLogger } = nestjsPino;
  class PinoModule {}
  Module({
    imports: [
      LoggerModule.forRoot({
        renameContext: 'logger',
        pinoHttp: {
          level: 'info',
          autoLogging: false,
          base: undefined,
          messageKey: 'msg',
          timestamp: () => `,"time":"${new Date().toISOString()}"`,
          formatters: { level: (label) => ({ level: LEVELS[label] ?? label }) },
          ...(process.env.LOG_BENCH_REDACT === '0' ? {} : { redact: { paths: REDACT, censor: '[redacted]' } }),
        },
      }),
    ],
  })(PinoModule);
  const app = await NestFactory.createApplicationContext(PinoModule, { logger: false });
  return { app, logger: app.get(PinoNestLogger) };
}

function measure(level, calls) {
  const logger = new Logger('WorkflowService');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    const fields = { msg: 'signal stored', corr_id: `fx-${i}`, workflow_id: `trading:fx-${i}`, agent: 'risk', stream_seq: i };
    if (level === 'info') logger.log(fields);
    else logger.debug(fields);
  }
  return Math.round(calls / (Number(process.hrtime.bigint() - t0) / 1e9));
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const json = new JsonLogger('info');
const pino = await pinoLogger();
const loggers = [['JsonLogger', json], ...(pino ? [['nestjs-pino', pino.logger]] : [])];
if (!pino) say('nestjs-pino is not installed: the JsonLogger alone (npm install --no-save nestjs-pino pino pino-http to compare)');
say(`node ${process.version}; calls/s through Nest's Logger, median of ${ROUNDS} runs`);
for (const level of ['info', 'debug']) {
  const results = Object.fromEntries(loggers.map(([name]) => [name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, instance] of r % 2 === 0 ? loggers : [...loggers].reverse()) {
      Logger.overrideLogger(instance);
      measure(level, Math.round(CALLS[level] / 10)); // warm-up
      results[name].push(measure(level, CALLS[level]));
    }
  }
  for (const [name, values] of Object.entries(results)) {
    say(
      `  ${level === 'info' ? 'info (written) ' : 'debug (dropped)'}  ${name.padEnd(11)} ${String(median(values)).padStart(10)} calls/s  (runs: ${values.join(' ')})`,
    );
  }
}
await pino?.app.close();
