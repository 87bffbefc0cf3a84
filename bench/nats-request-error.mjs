// nats.js 3.x builds an Error on every *completed* request, so on every JetStream publish: a minimal
// reproduction (only @nats-io packages), a count of the Errors built per operation and where, and what they
// cost (docs/PERFORMANCE.md, "nats.js builds an Error on every completed request").
//
//   node bench/nats-request-error.mjs [--url=nats://127.0.0.1:4222] [--count-only] [--n=20000] [--rounds=5]
//        [--inflight=1,64,256] [--variants=default,noAsyncTraces,patched,wildcard] [--nats-pid=PID] [--json=FILE]
//
// 1. Counts: the client's Error classes (RequestError, TimeoutError) are replaced by counting subclasses
//    (`instanceof` still holds both ways) while 1,000 `js.publish(…, { msgID })` and 1,000 core `nc.request`
//    complete, with and without `noAsyncTraces`, and with the proposed patch; each construction's site is
//    the first stack frame outside errors.js.
// 2. Cost: publishes/s and CPU µs per publish (this process; nats-server too with --nats-pid) with 1, 64
//    and 256 publishes in flight, the variants alternating (A B C D, D C B A, ...), medians reported:
//      default        js.publish, connection with default options
//      noAsyncTraces  js.publish, connection with { noAsyncTraces: true } (what the service uses)
//      patched        as noAsyncTraces, with RequestOne patched as proposed upstream (no Error on success)
//      wildcard       the service's JetStreamPublisher (src/nats/jetstream-publisher.ts: one `<inbox>.*`
//                     subscription, a map of awaited acks, one sweep timer) on the noAsyncTraces connection;
//                     needs Node >= 22.18 (TypeScript type stripping), skipped otherwise.
// Uses its own memory stream BENCH_REQERR (subject bench.reqerr.pub), deleted at the end.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';

const arg = (name, dflt) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const NATS_URL = arg('url', process.env.NATS_URL ?? 'nats://127.0.0.1:4222');
const N = Number(arg('n', '20000'));
const ROUNDS = Number(arg('rounds', '5'));
const INFLIGHT = arg('inflight', '1,64,256').split(',').map(Number);
const VARIANTS = arg('variants', 'default,noAsyncTraces,patched,wildcard').split(',');
const NATS_PID = arg('nats-pid', process.env.NATS_PID);
const JSON_OUT = arg('json', undefined);
const STREAM = 'BENCH_REQERR';
const SUBJECT = 'bench.reqerr.pub';
const PAYLOAD = JSON.stringify({ corr_id: 'c'.repeat(36), status: 'completed', decision: { action: 'trade', size: 0.5, note: 'x'.repeat(160) } });

// The CommonJS modules the client runs on (the same instances @nats-io/transport-node loaded).
const require = createRequire(import.meta.url);
const coreLib = dirname(require.resolve('@nats-io/nats-core'));
const errorsModule = require(join(coreLib, 'errors.js'));
const requestModule = require(join(coreLib, 'request.js'));
const coreVersion = JSON.parse(readFileSync(join(coreLib, '..', 'package.json'), 'utf8')).version;
const jsVersion = JSON.parse(readFileSync(join(dirname(require.resolve('@nats-io/jetstream')), '..', 'package.json'), 'utf8')).version;

// ---- counting ---------------------------------------------------------------------------------------------
const tally = new Map();
function countingClass(Original) {
  const Counting = class extends Original {
    constructor(...args) {
      super(...args);
      // [0] is this constructor; [1] where the client built the Error, [2] its caller.
      const frames = (new Error().stack ?? '')
        .split('\n')
        .slice(2, 4)
        .map((l) =>
          l
            .trim()
            .replace(/^at /, '')
            .replace(/\(.*node_modules\//, '('),
        );
      const key = `${Original.name}(${typeof args[0] === 'string' ? JSON.stringify(args[0]) : ''}) at ${frames.join(' <- ')}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
    static [Symbol.hasInstance](x) {
      return x instanceof Original;
    }
  };
  Object.defineProperty(Counting, 'name', { value: Original.name });
  return Counting;
}
const originals = { RequestError: errorsModule.RequestError, TimeoutError: errorsModule.TimeoutError };
function countErrors(on) {
  for (const [name, Original] of Object.entries(originals)) {
    // The client refers to them both as the module's exports and through its `errors` object.
    const Counting = on ? countingClass(Original) : Original;
    errorsModule[name] = Counting;
    errorsModule.errors[name] = Counting;
  }
}

// ---- the proposed patch (upstream: core/src/request.ts, RequestOne) ------------------------------------------
// resolver() ends with cleanup (clear the timer, leave the mux) instead of cancel(), which also rejects the
// already settled promise with a new RequestError("cancelled") that nobody can observe.
const original = { resolver: requestModule.RequestOne.prototype.resolver, cancel: requestModule.RequestOne.prototype.cancel };
const patched = {
  resolver(err, msg) {
    if (err) {
      if (!(err instanceof errorsModule.TimeoutError)) {
        if (this.ctx) {
          this.ctx.message = err.message;
          this.ctx.cause = err;
          err = this.ctx;
        } else {
          err = new errorsModule.errors.RequestError(err.message, { cause: err });
        }
      }
      this.deferred.reject(err);
    } else {
      this.deferred.resolve(msg);
    }
    this.cleanup();
  },
  cleanup() {
    if (this.timer) this.timer.cancel();
    this.mux.cancel(this);
  },
  cancel(err) {
    this.cleanup();
    this.deferred.reject(err ? err : new errorsModule.RequestError('cancelled'));
  },
};
function patch(on) {
  const proto = requestModule.RequestOne.prototype;
  proto.resolver = on ? patched.resolver : original.resolver;
  proto.cancel = on ? patched.cancel : original.cancel;
  proto.cleanup = patched.cleanup;
}

// ---- set-up -----------------------------------------------------------------------------------------------
const ncDefault = await connect({ servers: NATS_URL, name: 'reqerr-default' });
const ncQuiet = await connect({ servers: NATS_URL, name: 'reqerr-noAsyncTraces', noAsyncTraces: true });
const jsm = await jetstreamManager(ncDefault);
await jsm.streams.delete(STREAM).catch(() => undefined);
await jsm.streams.add({ name: STREAM, subjects: [SUBJECT], storage: 'memory', max_msgs: 200_000, duplicate_window: 30e9 });
const echo = ncQuiet.subscribe('bench.reqerr.echo', { callback: (_e, m) => m.respond(m.data) });
await ncQuiet.flush();

let JetStreamPublisher;
if (VARIANTS.includes('wildcard')) {
  try {
    ({ JetStreamPublisher } = await import('../src/nats/jetstream-publisher.ts'));
  } catch (error) {
    console.log(`wildcard: skipped (${error.message.split('\n')[0]})`);
  }
}
const wildcard = JetStreamPublisher ? new JetStreamPublisher(ncQuiet, { timeoutMs: 5000 }) : undefined;

let seq = 0;
const msgID = () => `reqerr-${process.pid}-${seq++}`;
const publishers = {
  default: { js: jetstream(ncDefault), run: (js) => js.publish(SUBJECT, PAYLOAD, { msgID: msgID() }) },
  noAsyncTraces: { js: jetstream(ncQuiet), run: (js) => js.publish(SUBJECT, PAYLOAD, { msgID: msgID() }) },
  patched: { js: jetstream(ncQuiet), run: (js) => js.publish(SUBJECT, PAYLOAD, { msgID: msgID() }), patch: true },
  wildcard: wildcard && { run: () => wildcard.publish(SUBJECT, PAYLOAD, msgID()) },
};
const variants = VARIANTS.filter((v) => publishers[v]);

console.log(
  `@nats-io/nats-core ${coreVersion}, @nats-io/jetstream ${jsVersion}, Node ${process.version}, nats-server ${ncDefault.info?.version} at ${NATS_URL}`,
);

// ---- 1. counts --------------------------------------------------------------------------------------------
async function countPer(label, ops, op) {
  tally.clear();
  countErrors(true);
  for (let i = 0; i < ops; i++) await op();
  countErrors(false);
  const total = [...tally.values()].reduce((a, b) => a + b, 0);
  console.log(`  ${label.padEnd(50)} ${(total / ops).toFixed(2)} Errors built per completed operation`);
  for (const [k, v] of [...tally.entries()].sort((a, b) => b[1] - a[1])) console.log(`      ${(v / ops).toFixed(2)} × ${k}`);
}
console.log('\n== Errors built per completed operation (1,000 sequential operations, all succeed)');
for (const [label, nc, p] of [
  ['default options', ncDefault, false],
  ['noAsyncTraces: true', ncQuiet, false],
  ['noAsyncTraces: true + proposed patch', ncQuiet, true],
]) {
  const js = jetstream(nc);
  patch(p);
  await countPer(`js.publish(…, { msgID }), ${label}`, 1000, () => js.publish(SUBJECT, PAYLOAD, { msgID: msgID() }));
  await countPer(`nc.request (core echo), ${label}`, 1000, () => nc.request('bench.reqerr.echo', 'x'));
  // The one request option that avoids RequestOne: a subscription per request; js.publish cannot pass it.
  if (!p) await countPer(`nc.request (core echo, noMux), ${label}`, 1000, () => nc.request('bench.reqerr.echo', 'x', { noMux: true, timeout: 1000 }));
  patch(false);
}
if (wildcard) await countPer('JetStreamPublisher.publish (wildcard inbox)', 1000, () => wildcard.publish(SUBJECT, PAYLOAD, msgID()));

// ---- 2. cost ----------------------------------------------------------------------------------------------
const TICKS = 100;
const natsCpu = () => {
  if (!NATS_PID) return 0;
  const f = readFileSync(`/proc/${NATS_PID}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
};
async function run(variant, inflight, n) {
  const p = publishers[variant];
  patch(p.patch === true);
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started++;
      await p.run(p.js);
    }
  };
  const cpu0 = process.cpuUsage();
  const s0 = natsCpu();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, worker));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const s1 = natsCpu();
  patch(false);
  return { rate: (n / ms) * 1000, clientUs: (cpu.user + cpu.system) / n, serverUs: ((s1 - s0) * 1e6) / n };
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
if (!process.argv.includes('--count-only')) {
  console.log(`\n== cost: ${N} publishes per run, ${ROUNDS} rounds alternating (${variants.join(' ')}, then reversed, ...), medians`);
  for (const v of variants) await run(v, 64, Math.min(N, 5000)); // warm-up
  const results = {};
  for (const inflight of INFLIGHT) {
    for (let r = 0; r < ROUNDS; r++) {
      for (const v of r % 2 ? [...variants].reverse() : variants) {
        ((results[inflight] ??= {})[v] ??= []).push(await run(v, inflight, N));
      }
    }
    // Ratios against js.publish with noAsyncTraces (the client's best as published), else the first variant.
    const baseName = variants.includes('noAsyncTraces') ? 'noAsyncTraces' : variants[0];
    const base = median(results[inflight][baseName].map((x) => x.rate));
    for (const v of variants) {
      const xs = results[inflight][v];
      const rates = xs.map((x) => x.rate);
      const rate = median(rates);
      const spread = `${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)}`;
      const us = (key) => `${median(xs.map((x) => x[key])).toFixed(1)} µs/publish`.padStart(15);
      const ratio = `×${(rate / base).toFixed(2)} ${baseName}`;
      const line = `  in flight ${String(inflight).padStart(3)}  ${v.padEnd(14)} ${rate.toFixed(0).padStart(6)} publishes/s (${spread}; ${ratio})  client CPU ${us('clientUs')}`;
      console.log(NATS_PID ? `${line}  nats-server ${us('serverUs')}` : line);
    }
  }
  if (JSON_OUT) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(JSON_OUT, JSON.stringify({ coreVersion, jsVersion, node: process.version, server: ncDefault.info?.version, N, ROUNDS, results }, null, 1));
  }
}

echo.unsubscribe();
wildcard?.close();
await jsm.streams.delete(STREAM).catch(() => undefined);
await Promise.all([ncDefault.close(), ncQuiet.close()]);
