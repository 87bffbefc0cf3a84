#!/usr/bin/env node
// Replays dead letters after a fix: republishes each dead-lettered message's payload, byte for byte, to
// its original subject (header `Meta-Agent-Original-Subject`) with its original headers (the
// `Meta-Agent-*` headers the dead-lettering added are dropped). Reads the dead-letter stream with an
// ordered consumer, so reading changes nothing; only --delete removes what was replayed.
//
//   node scripts/replay-dead-letters.mjs --dry-run                       # what would be replayed
//   node scripts/replay-dead-letters.mjs --filter-code unknown_agent --since 2h
//   node scripts/replay-dead-letters.mjs --nats nats://user:pass@nats:4222 --limit 100 --delete
//
// Each replayed message is published with `Nats-Msg-Id: replay:<stream>:<sequence>`, so running the
// command twice within the target stream's duplicate window does not publish a dead letter twice.
// Exit code: 0 all went well, 1 some publish or delete failed, 2 bad arguments or no connection.
import { parseArgs } from 'node:util';
import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';

const USAGE = `usage: node scripts/replay-dead-letters.mjs [options]
  --nats URL          NATS server URL(s), comma-separated; credentials in the URL (nats://user:pass@host:4222)
                      (default: $META_AGENT_NATS_URL or nats://localhost:4222)
  --stream NAME       dead-letter stream (default: $META_AGENT_DEADLETTER_STREAM or DEADLETTER)
  --filter-code CODE  only dead letters with this Meta-Agent-Reason-Code (comma-separated for several)
  --since WHEN        only dead letters stored since WHEN: an ISO 8601 time or a duration ago (90s, 30m, 2h, 7d)
  --limit N           replay at most N dead letters (the oldest first)
  --dry-run           print what would be replayed, publish and delete nothing
  --delete            delete each dead letter from the stream once its replay is stored
  --help              this text`;

const META_PREFIX = 'meta-agent-';
const ORIGINAL_SUBJECT = 'Meta-Agent-Original-Subject';
const REASON_CODE = 'Meta-Agent-Reason-Code';
// Headers that steer JetStream rather than describe the message: the dead-letter copy's own
// de-duplication id, and expectations that held for the first publish only.
const dropHeader = (key) => {
  const k = key.toLowerCase();
  return k.startsWith(META_PREFIX) || k === 'nats-msg-id' || k.startsWith('nats-expected');
};

function fail(message) {
  console.error(`replay-dead-letters: ${message}`);
  console.error(USAGE);
  process.exit(2);
}

function parseSince(value) {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(value);
  if (m) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2]];
    return new Date(Date.now() - Number(m[1]) * unit);
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) fail(`--since "${value}" is neither an ISO 8601 time nor a duration like 30m`);
  return new Date(t);
}

/** Server URLs without credentials, plus the credentials a URL carried (user:pass, or a token). */
function natsOptions(urls) {
  const options = { servers: [], name: 'meta-agent-replay-dead-letters' };
  for (const raw of urls
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    let url;
    try {
      url = new URL(raw);
    } catch {
      fail(`--nats "${raw}" is not a URL`);
    }
    if (url.username) {
      if (url.password) Object.assign(options, { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) });
      else options.token = decodeURIComponent(url.username);
      url.username = '';
      url.password = '';
    }
    options.servers.push(url.toString().replace(/\/$/, ''));
  }
  if (options.servers.length === 0) fail('--nats is empty');
  return options;
}

const redact = (urls) => urls.replace(/\/\/[^@/]*@/g, '//***@');

function readArgs() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        nats: { type: 'string' },
        stream: { type: 'string' },
        'filter-code': { type: 'string' },
        since: { type: 'string' },
        limit: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        delete: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    fail(error.message);
  }
  if (parsed.help) {
    console.log(USAGE);
    process.exit(0);
  }
  let limit = Infinity;
  if (parsed.limit !== undefined) {
    if (!/^\d+$/.test(parsed.limit) || Number(parsed.limit) < 1) fail(`--limit "${parsed.limit}" is not a positive whole number`);
    limit = Number(parsed.limit);
  }
  return {
    nats: parsed.nats ?? process.env.META_AGENT_NATS_URL ?? 'nats://localhost:4222',
    stream: parsed.stream ?? process.env.META_AGENT_DEADLETTER_STREAM ?? 'DEADLETTER',
    codes: parsed['filter-code']
      ? new Set(
          parsed['filter-code']
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        )
      : undefined,
    since: parsed.since !== undefined ? parseSince(parsed.since) : undefined,
    limit,
    dryRun: parsed['dry-run'],
    del: parsed.delete,
  };
}

async function main() {
  const args = readArgs();
  let nc;
  try {
    nc = await connect(natsOptions(args.nats));
  } catch (error) {
    console.error(`replay-dead-letters: cannot connect to ${redact(args.nats)}: ${error.message}`);
    process.exit(2);
  }
  const stats = { replayed: 0, duplicate: 0, skipped: 0, failed: 0, deleted: 0, filtered: 0 };
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    let info;
    try {
      info = await jsm.streams.info(args.stream);
    } catch (error) {
      console.error(`replay-dead-letters: stream ${args.stream}: ${error.message}`);
      process.exitCode = 2;
      return;
    }
    // Only what is in the stream now: replays that get dead-lettered again are not read back.
    const lastSeq = info.state.last_seq;
    const mode = args.dryRun ? ' (dry run: nothing is published or deleted)' : '';
    console.log(
      `stream ${args.stream}: ${info.state.messages} dead letters (seq ${info.state.first_seq}..${lastSeq})` +
        `${args.codes ? `, code ${[...args.codes].join(',')}` : ''}${args.since ? `, since ${args.since.toISOString()}` : ''}${mode}`,
    );
    if (info.state.messages === 0) return;

    const consumer = await js.consumers.get(
      args.stream,
      args.since ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: args.since.toISOString() } : { deliver_policy: DeliverPolicy.All },
    );
    let handled = 0;
    let done = false;
    while (!done) {
      const batch = await consumer.fetch({ max_messages: 256, expires: 2000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        const seq = m.seq;
        if (seq > lastSeq) {
          done = true;
          break;
        }
        const code = m.headers?.get(REASON_CODE) ?? '';
        if (args.codes && !args.codes.has(code)) {
          stats.filtered++;
        } else if (handled >= args.limit) {
          done = true;
          break;
        } else {
          handled++;
          await replayOne(m, code, args, js, jsm, stats);
        }
        if (seq >= lastSeq) {
          done = true;
          break;
        }
      }
      if (got === 0) done = true; // nothing more to read (messages removed meanwhile, or --since after the last)
    }
  } finally {
    await nc.drain().catch(() => undefined);
  }
  const verb = args.dryRun ? 'would replay' : 'replayed';
  console.log(
    `${verb} ${stats.replayed}, already replayed ${stats.duplicate}, skipped ${stats.skipped}, failed ${stats.failed}` +
      `${args.del ? `, deleted ${stats.deleted}` : ''}, not matching ${stats.filtered}`,
  );
  if (stats.failed > 0) process.exitCode = 1;
}

async function replayOne(m, code, args, js, jsm, stats) {
  const seq = m.seq;
  const subject = m.headers?.get(ORIGINAL_SUBJECT);
  const what = `seq ${seq} ${m.timestamp} code=${code || '-'}`;
  if (!subject) {
    stats.skipped++;
    console.log(`skip     ${what}: no ${ORIGINAL_SUBJECT} header`);
    return;
  }
  const h = natsHeaders();
  let kept = 0;
  if (m.headers) {
    for (const [key, values] of m.headers) {
      if (dropHeader(key)) continue;
      for (const v of values) h.append(key, v);
      kept++;
    }
  }
  if (args.dryRun) {
    stats.replayed++;
    console.log(`would    ${what} -> ${subject} (${m.data.length} bytes, ${kept} headers)${args.del ? ', then delete' : ''}`);
    return;
  }
  let ack;
  try {
    ack = await js.publish(subject, m.data, { headers: kept > 0 ? h : undefined, msgID: `replay:${args.stream}:${seq}` });
  } catch (error) {
    stats.failed++;
    console.log(`FAILED   ${what} -> ${subject}: ${error.message}`);
    return;
  }
  if (ack.duplicate) {
    stats.duplicate++;
    console.log(`already  ${what} -> ${subject}: replayed before (${ack.stream} seq ${ack.seq})`);
  } else {
    stats.replayed++;
    console.log(`replayed ${what} -> ${subject} (${ack.stream} seq ${ack.seq})`);
  }
  if (args.del) {
    try {
      await jsm.streams.deleteMessage(args.stream, seq, false);
      stats.deleted++;
    } catch (error) {
      stats.failed++;
      console.log(`FAILED   delete seq ${seq}: ${error.message}`);
    }
  }
}

main().catch((error) => {
  console.error(`replay-dead-letters: ${error.stack ?? error}`);
  process.exit(1);
});
