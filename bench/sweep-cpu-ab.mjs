// CPU per timeout of the sweep (sweep-1.lua through WorkflowRepository.sweep, as the sweeper calls it), for
// the built dist/ of two checkouts, alternating A B, B A, ... (docs/PERFORMANCE.md, "Issue 20"). One private
// redis-server (no persistence, hash-max-listpack-value 4096); per round `workflows` trigger-only workflows of
// the trading strategy (3 agents for 1 in 4, else 2) started with a deadline already past, then swept in
// sweeps of `limit` per shard until none is due: each claimed whole, as the timeout storm claims them. Redis
// CPU from /proc (utime + stime of redis-server) and this process's CPU (the client: writing the sweeps,
// decoding the replies, reading the snapshots), both per timeout, over the sweeps only.
//
//   node bench/sweep-cpu-ab.mjs <checkoutA> <checkoutB> [workflows=20000] [rounds=6] [limit=62]
//   BENCH_SWEEP_CPU_PORT (27791), REDIS_SERVER_BIN
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
const [dirA, dirB] = process.argv.slice(2, 4);
const N = Number(process.argv[4] ?? 20000),
  ROUNDS = Number(process.argv[5] ?? 6),
  LIMIT = Number(process.argv[6] ?? 62);
const PORT = Number(process.env.BENCH_SWEEP_CPU_PORT ?? 27791);
const dir = mkdtempSync(join(tmpdir(), 'bench-sweep-cpu-'));
const server = spawn(
  process.env.REDIS_SERVER_BIN || 'redis-server',
  ['--port', String(PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--hash-max-listpack-value', '4096'],
  { stdio: 'ignore' },
);
const ticks = () => {
  const f = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}; // ms (CLK_TCK 100)
const { Redis } = await import(join(dirA, 'node_modules/ioredis/built/index.js'));
const sides = {};
for (const [name, d] of [
  ['A', dirA],
  ['B', dirB],
]) {
  const { defineScripts } = await import(join(d, 'dist/redis/redis-scripts.js'));
  const { WorkflowRepository } = await import(join(d, 'dist/workflow/workflow.repository.js'));
  const { parseSettings } = await import(join(d, 'dist/config/env.schema.js'));
  const client = new Redis(PORT, '127.0.0.1', { enableAutoPipelining: true, maxRetriesPerRequest: 1, lazyConnect: true });
  for (let i = 0; ; i++) {
    try {
      await client.connect();
      break;
    } catch (e) {
      if (i > 50) throw e;
      await sleep(100);
    }
  }
  defineScripts(client);
  sides[name] = { client, make: (prefix) => new WorkflowRepository(client, { ...parseSettings({}).redis, prefix, shards: 16 }) };
}
async function seed(repo) {
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < N) {
        const i = next++;
        const agents = i % 4 === 3 ? ['momentum', 'risk', 'sentiment'] : ['momentum', 'risk'];
        const id = `w${i}`;
        await repo.start({
          corrId: id,
          workflowType: 'trading',
          timeoutMs: 1,
          requiredAgents: agents,
          metadata: { instrument: i % 4 === 3 ? 'BTC' : 'EURUSD' },
          triggerJson: `{"corr_id":"${id}","workflow_type":"trading","instrument":"EURUSD","side":"buy","note":"${'t'.repeat(150)}"}`,
          checkMs: 1500,
          readyRule: `0|${agents.join(',')}|`,
          leaseMs: 1500,
        });
      }
    }),
  );
}
async function run(name, round) {
  const { client, make } = sides[name];
  await client.flushall();
  const repo = make(`s${round}${name}`);
  await seed(repo);
  await sleep(20);
  const t0 = ticks(),
    c0 = process.cpuUsage(),
    w0 = performance.now();
  let jobs = 0;
  for (;;) {
    const swept = await repo.sweep(LIMIT, 600_000);
    if (swept.errors.length || swept.broken.length) throw new Error(`sweep failed: ${JSON.stringify(swept.errors.concat(swept.broken))}`);
    jobs += swept.jobs.length;
    if (swept.jobs.length === 0) break;
  }
  const c = process.cpuUsage(c0);
  const redisMs = ticks() - t0,
    wall = performance.now() - w0;
  if (jobs !== N) throw new Error(`${jobs} jobs for ${N} workflows`);
  return {
    name,
    round,
    redis_us: +((redisMs * 1000) / N).toFixed(2),
    client_us: +((c.user + c.system) / N).toFixed(2),
    wall_s: +(wall / 1000).toFixed(2),
  };
}
const out = { A: [], B: [] };
await run('A', -1);
await run('B', -1); // warm-up
for (let r = 0; r < ROUNDS; r++)
  for (const name of r % 2 ? ['B', 'A'] : ['A', 'B']) {
    const x = await run(name, r);
    out[name].push(x);
    console.log(JSON.stringify(x));
  }
const med = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const name of ['A', 'B'])
  console.log(
    name,
    'median µs per timeout: redis',
    med(out[name].map((x) => x.redis_us)),
    'client',
    med(out[name].map((x) => x.client_us)),
    'wall s',
    med(out[name].map((x) => x.wall_s)),
  );
for (const s of Object.values(sides)) s.client.disconnect();
server.kill();
await new Promise((resolve) => server.once('exit', resolve));
rmSync(dir, { recursive: true, force: true });
