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
import { setTimeout as sleep } from 'node:timers/promises';
import { alternate, median, privateRedis, repositorySides } from './repository-ab.mjs';
const [dirA, dirB] = process.argv.slice(2, 4);
const N = Number(process.argv[4] ?? 20000),
  ROUNDS = Number(process.argv[5] ?? 6),
  LIMIT = Number(process.argv[6] ?? 62);
const PORT = Number(process.env.BENCH_SWEEP_CPU_PORT ?? 27791);
const redis = privateRedis(PORT, 'sweep-cpu');
const sides = await repositorySides(dirA, dirB, PORT);
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
  const t0 = redis.ticks(),
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
  const redisMs = redis.ticks() - t0,
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
const out = await alternate(ROUNDS, run);
for (const name of ['A', 'B'])
  console.log(
    name,
    'median µs per timeout: redis',
    median(out[name].map((x) => x.redis_us)),
    'client',
    median(out[name].map((x) => x.client_us)),
    'wall s',
    median(out[name].map((x) => x.wall_s)),
  );
for (const s of Object.values(sides)) s.client.disconnect();
await redis.stop();
