// The audit trail's own work per workflow, without NATS: `node bench/audit-emit.mjs <checkout> [<checkout> ...]`
// (each checkout's dist/, built). A workflow's five events of the throughput workload (trigger accepted, an
// early signal, the signal that makes it ready, the freeze with its snapshot, the decision published), emitted
// and flushed as the service does; the connection only encodes each payload as UTF-8 (what nats.js does first)
// and counts messages and bytes (the last three events go as one message: a decision's events are sent
// together). Prints CPU µs per workflow: median and best of 7 rounds of 20,000, after 3 warm-up rounds.
// Several checkouts: each in its own process (two trails in one process share its heap, and so each other's
// garbage), 3 times, alternating (docs/PERFORMANCE.md, "Issue 20").
//
// With BENCH_AUDIT_NATS=1 the trail publishes to a real nats-server instead (NATS_SERVER_BIN, else
// `nats-server` on PATH; started here on BENCH_AUDIT_NATS_PORT, 27522, JetStream on a temporary directory, an
// AUDIT stream on `audit.>` as the service provisions it, emptied before each round), through nats.js and the
// service's JetStreamPublisher, and the NATS server's CPU per workflow (from /proc) is printed beside the
// trail's: what the servers pay per message.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate } from 'node:timers';
import { pathToFileURL } from 'node:url';

const checkouts = process.argv.slice(2).map((p) => resolve(p));
if (checkouts.length === 0) {
  process.stderr.write('usage: node bench/audit-emit.mjs <checkout> [<checkout> ...]\n');
  process.exit(2);
}
const NATS_MODE = process.env.BENCH_AUDIT_NATS === '1';
const NATS_PORT = Number(process.env.BENCH_AUDIT_NATS_PORT ?? 27522);
if (checkouts.length > 1) {
  let server;
  let dir;
  if (NATS_MODE) {
    dir = mkdtempSync(join(tmpdir(), 'bench-audit-nats-'));
    server = spawn(process.env.NATS_SERVER_BIN || 'nats-server', ['-a', '127.0.0.1', '-p', String(NATS_PORT), '-js', '-sd', dir], { stdio: 'ignore' });
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const env = { ...process.env, BENCH_AUDIT_NATS_PID: String(server?.pid ?? '') };
  for (let r = 0; r < 3; r++) {
    for (const checkout of r % 2 === 0 ? checkouts : [...checkouts].reverse()) {
      process.stdout.write(execFileSync(process.execPath, [fileURLToPath(import.meta.url), checkout], { encoding: 'utf8', env }));
    }
  }
  if (server) {
    server.kill();
    await new Promise((resolve) => server.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}
const N = 20000;
const encoder = new TextEncoder();
let bytes = 0;
let messages = 0;
const publish = (subject, data) => {
  bytes += subject.length + (typeof data === 'string' ? encoder.encode(data) : data).length;
  messages++;
};
let nats = {
  isConnected: () => true,
  // Builds before the acknowledged batches flushed the connection; since, a batch's last event is acknowledged.
  connection: { publish, flush: () => Promise.resolve() },
  acknowledgedPublisher: () => ({ publish: (subject, data) => Promise.resolve(publish(subject, data)) }),
};
const metrics = { stored() {}, lost() {} };

const trigger = '{"corr_id":"s1.0","instrument":"EURUSD","side":"buy","strength":0.43,"price":1.0852,"normalized_at":"2026-12-07T16:05:27.260Z"}';
const momentum =
  '{"corr_id":"s1.0","agent_name":"momentum","signal_type":"analysis","timestamp":"2026-12-07T16:05:27.260Z","confidence":0.91,"analysis":{"trend_direction":"bearish","momentum_strength":0.78,"lookback_minutes":60}}';
const risk =
  '{"corr_id":"s1.0","agent_name":"risk","signal_type":"analysis","timestamp":"2026-12-07T16:05:27.260Z","confidence":0.76,"analysis":{"risk_level":"low","max_position_size":150000,"volatility":0.33}}';
const decision =
  '{"corr_id":"s1.0","workflow_id":"trading:s1.0","orchestrator":"trading_decision_meta_agent","decision":{"action":"sell","confidence":0.835,"reasoning":"momentum bearish, risk low","position_size":0.5},"source_signals":[{"agent":"momentum","confidence":0.91,"timestamp":"2026-12-07T16:05:27.260Z"},{"agent":"risk","confidence":0.76,"timestamp":"2026-12-07T16:05:27.260Z"}],"orchestrated_at":"2026-12-07T16:05:27.278Z","metadata":{"instrument":"EURUSD","trigger_price":1.0852,"trigger_side":"buy"},"workflow_type":"trading","status":"completed"}';

function workflow(i) {
  const corrId = `s1.${i}`;
  const t = 1_796_659_527_277 + i;
  return {
    corrId,
    workflowId: `trading:${corrId}`,
    workflowType: 'trading',
    status: 'evaluating',
    startedMs: t,
    deadlineMs: t + 120_000,
    timeoutMs: 120_000,
    requiredAgents: ['momentum', 'risk'],
    metadata: { instrument: 'EURUSD', trigger_price: 1.0852, trigger_side: 'buy' },
    triggerJson: trigger,
    version: 2,
    hasRule: true,
    frozenMs: t + 1,
    why: 'decide',
    frozenBy: null,
    decisionJson: null,
    published: false,
    finishedMs: null,
    signals: { momentum, risk },
  };
}

const context = (wf) => ({
  corrId: wf.corrId,
  workflowId: wf.workflowId,
  workflowType: wf.workflowType,
  status: 'evaluating',
  requiredAgents: wf.requiredAgents,
  receivedSignals: {},
  startedAt: new Date(wf.startedMs).toISOString(),
  decidedAt: new Date(wf.frozenMs).toISOString(),
  timeoutSeconds: 120,
  metadata: wf.metadata,
  trigger: {},
});

/** The NATS server's CPU so far, in µs (NATS mode; 0 otherwise). */
const natsPid = Number(process.env.BENCH_AUDIT_NATS_PID || 0);
const natsCpu = () => {
  if (!natsPid) return 0;
  const f = readFileSync(`/proc/${natsPid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000; // CLK_TCK 100
};
let natsUs = 0;
let stream;

async function round(trail) {
  if (stream) {
    await stream.purge();
    messages = 0;
  }
  const server0 = natsCpu();
  const before = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const wf = workflow(i);
    trail.triggerAccepted(wf, { sequence: 3 * i + 1, storedAtMs: wf.startedMs - 10 }, 1, '2|momentum,risk|');
    trail.signalResult(wf.corrId, 'momentum', momentum, { sequence: 3 * i + 2, storedAtMs: wf.startedMs - 10 }, { kind: 'buffered' });
    trail.signalResult(
      wf.corrId,
      'risk',
      risk,
      { sequence: 3 * i + 3, storedAtMs: wf.startedMs - 9 },
      { kind: 'ready', workflow: wf, nowMs: wf.startedMs + 1 },
    );
    trail.frozen(wf, context(wf), 'frozen');
    trail.decisionPublished(wf, decision, 'completed', false, { finishedMs: wf.startedMs + 3, startedMs: wf.startedMs });
    // The service flushes once per event-loop turn, with a batch of pulled messages in each.
    if (i % 64 === 63) await new Promise((resolve) => setImmediate(resolve));
  }
  await trail.flushed();
  const used = process.cpuUsage(before);
  natsUs = (natsCpu() - server0) / N;
  if (stream) messages = (await stream.info()).state.messages;
  return (used.user + used.system) / N;
}

const { AuditTrail } = await import(pathToFileURL(`${checkouts[0]}/dist/audit/audit.trail.js`).href);
if (NATS_MODE) {
  const { connect } = await import(pathToFileURL(`${checkouts[0]}/node_modules/@nats-io/transport-node/lib/mod.js`).href);
  const { jetstreamManager } = await import(pathToFileURL(`${checkouts[0]}/node_modules/@nats-io/jetstream/lib/mod.js`).href);
  const { JetStreamPublisher } = await import(pathToFileURL(`${checkouts[0]}/dist/nats/jetstream-publisher.js`).href);
  const nc = await connect({ servers: `nats://127.0.0.1:${NATS_PORT}` });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete('AUDIT').catch(() => undefined);
  await jsm.streams.add({ name: 'AUDIT', subjects: ['audit.>'], storage: 'file' });
  stream = { purge: () => jsm.streams.purge('AUDIT'), info: () => jsm.streams.info('AUDIT') };
  nats = { isConnected: () => true, connection: nc, acknowledgedPublisher: (timeoutMs) => new JetStreamPublisher(nc, { timeoutMs }) };
}
const trail = new AuditTrail(nats, metrics, { audit: { enabled: true, subjectPrefix: 'audit', bufferSize: 1e9 } }, { name: 'trading_decision_meta_agent' });
for (let r = 0; r < 3; r++) await round(trail);
const results = [];
const server = [];
for (let r = 0; r < 7; r++) {
  bytes = messages = 0;
  results.push(await round(trail));
  server.push(natsUs);
}
results.sort((a, b) => a - b);
server.sort((a, b) => a - b);
console.log(
  `${checkouts[0]}: ${results[3].toFixed(1)} µs/workflow (median of 7; best ${results[0].toFixed(1)}), ` +
    (NATS_MODE
      ? `NATS server ${server[3].toFixed(1)} µs/workflow (best ${server[0].toFixed(1)}), ${(messages / N).toFixed(2)} messages stored per workflow`
      : `${(messages / N).toFixed(2)} messages and ${Math.round(bytes / N)} B per workflow`),
);
process.exit(0);
