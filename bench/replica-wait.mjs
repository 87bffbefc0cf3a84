// The cost of META_AGENT_REDIS_WAIT_REPLICAS: add-signals-2.lua calls (WorkflowRepository.addSignal, as
// the service makes them) against a primary with one replica on loopback, without and with WAIT 1.
// Starts its own two redis-servers (no persistence) and stops them at the end. Needs `npm run build`.
//
//   node bench/replica-wait.mjs [calls=4000] [concurrency=64]
//   REDIS_SERVER_BIN, BENCH_WAIT_PORT (45400: the primary; the replica on the next port)
//
// Two shapes: one call at a time (each awaited: the latency a message pays), and `concurrency` calls in
// flight (the throughput of a busy replica: the writes answered in one turn share one WAIT).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { parseSettings } from '../dist/config/env.schema.js';
import { defineScripts } from '../dist/redis/redis-scripts.js';
import { WorkflowRepository } from '../dist/workflow/workflow.repository.js';

const CALLS = Number(process.argv[2] ?? 4000);
const CONCURRENCY = Number(process.argv[3] ?? 64);
const BIN = process.env.REDIS_SERVER_BIN || 'redis-server';
const PORT = Number(process.env.BENCH_WAIT_PORT ?? 45400);
const dir = mkdtempSync(join(tmpdir(), 'bench-replica-wait-'));
const args = (port, extra = []) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra];
const primary = spawn(BIN, args(PORT, ['--dbfilename', 'p.rdb', '--repl-diskless-sync-delay', '0']), { stdio: 'ignore' });
const replica = spawn(BIN, args(PORT + 1, ['--dbfilename', 'r.rdb', '--replicaof', '127.0.0.1', String(PORT)]), { stdio: 'ignore' });

const client = new Redis(PORT, '127.0.0.1', { enableAutoPipelining: true, maxRetriesPerRequest: 1, lazyConnect: true });
try {
  for (let i = 0; ; i++) {
    try {
      await client.connect();
      break;
    } catch (error) {
      if (i > 50) throw error;
      await sleep(100);
    }
  }
  defineScripts(client);
  while (!/^slave0:.*state=online/m.test(await client.info('replication'))) await sleep(50);

  const base = parseSettings({}).redis;
  const repo = (waitReplicas, prefix) => new WorkflowRepository(client, { ...base, prefix, shards: 16, waitReplicas, waitTimeoutMs: 1000 });
  let sequence = 0;
  const signal = (r, id) =>
    r.addSignal(id, 'momentum', '{"agent_name":"momentum","confidence":0.8,"timestamp":"2026-12-07T10:00:00Z"}', {
      graceMs: 30_000,
      sequence: ++sequence,
      storedAtMs: Date.now(),
      checkMs: 60_000,
      earlyTtlMs: 120_000,
      leaseMs: 1_500,
    });
  const start = (r, id) =>
    r.start({
      corrId: id,
      workflowType: 'trading',
      timeoutMs: 600_000,
      requiredAgents: ['momentum', 'risk'],
      metadata: {},
      triggerJson: '{"corr_id":"x"}',
      checkMs: 60_000,
      readyRule: null,
      leaseMs: 1_500,
    });

  async function measure(waitReplicas, label) {
    const r = repo(waitReplicas, `bw${label}`);
    const ids = Array.from({ length: CALLS }, (_, i) => `w-${i}`);
    await Promise.all(ids.map((id) => start(repo(0, `bw${label}`), id)));
    // One at a time.
    let t = process.hrtime.bigint();
    for (const id of ids.slice(0, CALLS / 2)) await signal(r, id);
    const sequentialUs = Number(process.hrtime.bigint() - t) / 1000 / (CALLS / 2);
    // `CONCURRENCY` in flight.
    const sentBefore = r.replicaWait?.sent ?? 0;
    const rest = ids.slice(CALLS / 2);
    t = process.hrtime.bigint();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < rest.length) await signal(r, rest[next++]);
      }),
    );
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    const waits = (r.replicaWait?.sent ?? 0) - sentBefore;
    return { label, sequentialUs, perSecond: rest.length / seconds, waits, calls: rest.length };
  }

  // Warm-up, then each setting twice, alternating.
  await measure(0, 'warm');
  const rows = [];
  for (const round of [1, 2]) {
    rows.push({ round, ...(await measure(0, `off${round}`)) });
    rows.push({ round, ...(await measure(1, `on${round}`)) });
  }
  console.log(`add-signals-2.lua via WorkflowRepository.addSignal, ${CALLS / 2} calls per shape, primary + 1 replica on loopback`);
  console.log('round  wait  sequential µs/call  concurrent(' + CONCURRENCY + ') calls/s  WAITs sent (concurrent)');
  for (const r of rows) {
    console.log(
      `${r.round}      ${r.label.startsWith('on') ? 'WAIT 1' : 'off   '}  ${r.sequentialUs.toFixed(0).padStart(18)}  ${r.perSecond.toFixed(0).padStart(22)}  ${String(r.waits).padStart(7)} for ${r.calls}`,
    );
  }
} finally {
  client.disconnect();
  primary.kill('SIGKILL');
  replica.kill('SIGKILL');
  await sleep(200);
  rmSync(dir, { recursive: true, force: true });
}
