import 'reflect-metadata';
import { existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { NestFactory } from '@nestjs/core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { redactUrl } from '../../config/env-reader.js';
import { parseSettings, type Settings } from '../../config/env.schema.js';
import { natsSecurityOptions } from '../../nats/nats-connection.service.js';
import { StrategyRegistry } from '../../workflow/strategies/strategy.registry.js';
import type { AuditRecord } from '../audit.events.js';
import { buildHistory } from '../audit-history.js';
import { readAuditSince } from './audit-source.js';
import { COMPARED, changedFields, recordedDecision, replayInstance, type ComparedField } from './replay-simulation.js';
import { ReplayModule } from './replay.module.js';

const USAGE = `usage: npm run replay -- --since <ISO time> [--until <ISO time>] [--type <workflow type>] [--corr-id <id>] [--out <file.jsonl>]
  Runs the workflows recorded in the audit stream (started between --since and --until) through the current
  strategies and settings (the META_AGENT_* environment and .env, as the service reads them), offline: no
  Redis, nothing published. Prints "replayed N workflows: M changed" and counts by changed field; writes one
  JSON line per changed workflow to --out (default: stdout).`;

class UsageError extends Error {}

function fail(message: string, code = 2): never {
  process.stderr.write(`replay: ${message}\n`);
  process.exit(code);
}

function time(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || !Number.isFinite(ms)) throw new UsageError(`--${name} "${value}" is not an ISO 8601 time`);
  return ms;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        since: { type: 'string' },
        until: { type: 'string' },
        type: { type: 'string' },
        'corr-id': { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (error) {
    fail(`${(error as Error).message} (npm run replay -- --help)`);
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let sinceMs: number;
  let untilMs: number;
  try {
    if (args.since === undefined) throw new UsageError('--since is required');
    sinceMs = time('since', args.since)!;
    untilMs = time('until', args.until) ?? Number.MAX_SAFE_INTEGER;
    if (untilMs < sinceMs) throw new UsageError('--until is before --since');
  } catch (error) {
    if (error instanceof UsageError) fail(`${error.message} (npm run replay -- --help)`);
    throw error;
  }

  if (existsSync('.env')) process.loadEnvFile('.env');
  let settings: Settings;
  try {
    settings = parseSettings(process.env);
  } catch (error) {
    fail((error as Error).message);
  }
  const { audit } = settings.nats;
  let nc: NatsConnection;
  try {
    nc = await connect({ timeout: settings.nats.connectTimeoutMs, maxReconnectAttempts: 0, ...natsSecurityOptions(settings.nats) });
  } catch (error) {
    fail(`cannot connect to NATS at ${redactUrl(settings.nats.servers)}: ${(error as Error).message}`);
  }
  let records: AuditRecord[];
  try {
    const jsm = await jetstreamManager(nc, { timeout: settings.nats.connectTimeoutMs });
    // Early signals of a workflow started at --since came before it, within the grace.
    const margin = settings.workflow.earlySignalGraceSeconds * 1000 + 60_000;
    records = await readAuditSince(jetstream(nc), jsm, audit.stream, audit.subjectPrefix, sinceMs - margin, args['corr-id']);
  } catch (error) {
    await nc.close().catch(() => undefined);
    fail(`cannot read the audit stream ${audit.stream}: ${(error as Error).message}`);
  }
  await nc.close().catch(() => undefined);

  const app = await NestFactory.createApplicationContext(ReplayModule, { logger: false });
  const registry = app.get(StrategyRegistry);
  const strategyOf = (type: string) => (registry.types().includes(type) ? registry.get(type) : undefined);

  const byCorrId = new Map<string, AuditRecord[]>();
  for (const r of records) {
    const list = byCorrId.get(r.corr_id);
    if (list) list.push(r);
    else byCorrId.set(r.corr_id, [r]);
  }
  const counts = Object.fromEntries(COMPARED.map((f) => [f, 0])) as Record<ComparedField, number>;
  const lines: string[] = [];
  let replayed = 0;
  let skipped = 0;
  let elsewhere = 0;
  for (const [corrId, list] of byCorrId) {
    for (const instance of buildHistory(corrId, list).instances) {
      const started = Date.parse(instance.started_at);
      if (started < sinceMs || started > untilMs) continue;
      if (args.type && !instance.workflow_id.startsWith(`${args.type}:`)) continue;
      const recorded = recordedDecision(instance);
      if (!recorded) {
        skipped++;
        continue;
      }
      const outcome = await replayInstance(instance, strategyOf, settings.workflow, settings.app.name);
      replayed++;
      const changed = changedFields(recorded, outcome.decision);
      if (changed.length === 0) continue;
      // The same decision, but not the same message (its reason, metadata, source signals): counted apart.
      if (changed.length === 1 && changed[0] === 'other') {
        elsewhere++;
        continue;
      }
      for (const f of changed) counts[f]++;
      lines.push(
        JSON.stringify({
          corr_id: corrId,
          workflow_id: instance.workflow_id,
          instance: instance.instance,
          recorded,
          replayed: outcome.decision ?? { outcome: outcome.kind },
          changed,
        }),
      );
    }
  }
  await app.close();
  const summary = [`replayed ${replayed} workflows: ${lines.length} changed`];
  for (const f of COMPARED) if (f !== 'other' && counts[f] > 0) summary.push(`  ${f}: ${counts[f]}`);
  if (elsewhere > 0) summary.push(`  (${elsewhere} with the same ${COMPARED.slice(0, -1).join(', ')} but another message: reason, metadata or source signals)`);
  if (skipped > 0) summary.push(`  (${skipped} without a recorded decision yet, not replayed)`);
  process.stdout.write(`${summary.join('\n')}\n`);
  const jsonl = lines.length > 0 ? `${lines.join('\n')}\n` : '';
  if (args.out) writeFileSync(args.out, jsonl);
  else process.stdout.write(jsonl);
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
