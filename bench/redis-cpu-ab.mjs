// Redis CPU per workflow of the hot path's scripts (start, signals, finalize through WorkflowRepository, as
// the service calls them), for the built dist/ of two checkouts, alternating A B, B A, ... (docs/PERFORMANCE.md,
// "Issue 20"). One private redis-server (no persistence, hash-max-listpack-value 4096); per workflow a trigger
// with the trading strategy's rule (3 agents for 1 in 4 workflows, else 2), its signals one by one, then the
// finalisation; `inflight` workflows at once. Redis CPU from /proc (utime + stime of redis-server), and Redis's
// commands per workflow (INFO commandstats). A and B run on separate connections, so run it twice with the
// checkouts swapped: the second connection came out slower in wall time whichever code it ran.
//
//   node bench/redis-cpu-ab.mjs <checkoutA> <checkoutB> [workflows=20000] [rounds=4] [inflight=64]
//   BENCH_REDIS_CPU_PORT (27790), REDIS_SERVER_BIN
import { alternate, median, privateRedis, repositorySides } from './repository-ab.mjs';
const [dirA, dirB] = process.argv.slice(2, 4);
const N = Number(process.argv[4] ?? 20000),
  ROUNDS = Number(process.argv[5] ?? 4),
  INFLIGHT = Number(process.argv[6] ?? 64);
const PORT = Number(process.env.BENCH_REDIS_CPU_PORT ?? 27790);
const redis = privateRedis(PORT, 'redis-cpu');
const sides = await repositorySides(dirA, dirB, PORT);
let seq = 0;
const sig = (agent) =>
  `{"corr_id":"x","agent_name":"${agent}","signal_type":"analysis","confidence":0.8,"timestamp":"2026-12-07T10:00:00Z","data":{"direction":"long","strength":0.61,"horizon":"1d","note":"${'n'.repeat(120)}"}}`;
async function one(repo, id, crypto) {
  const agents = crypto ? ['momentum', 'risk', 'sentiment'] : ['momentum', 'risk'];
  const started = await repo.start({
    corrId: id,
    workflowType: 'trading',
    timeoutMs: 600_000,
    requiredAgents: agents,
    metadata: { instrument: crypto ? 'BTC' : 'EURUSD' },
    triggerJson: `{"corr_id":"${id}","workflow_type":"trading","instrument":"EURUSD","side":"buy","note":"${'t'.repeat(150)}"}`,
    checkMs: 1500,
    readyRule: `0|${agents.join(',')}|`,
    leaseMs: 1500,
  });
  let last;
  for (const a of agents)
    last = await repo.addSignal(id, a, sig(a), { graceMs: 30000, sequence: ++seq, storedAtMs: Date.now(), checkMs: 1500, earlyTtlMs: 120000, leaseMs: 1500 });
  if (last.kind !== 'ready') throw new Error(`not ready: ${last.kind} (start ${started.kind})`);
  await repo.finalize(last.workflow, 'completed', `{"decision":"${'d'.repeat(300)}"}`, 60000);
}
async function run(name, round) {
  const { client, make } = sides[name];
  await client.flushall();
  const repo = make(`m${round}${name}`);
  let next = 0;
  const t0 = redis.ticks(),
    w0 = performance.now();
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next < N) {
        const i = next++;
        await one(repo, `w${i}`, i % 4 === 3);
      }
    }),
  );
  const cpu = redis.ticks() - t0,
    wall = performance.now() - w0;
  const stats = await client.info('commandstats');
  const calls = [...stats.matchAll(/calls=(\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
  await client.config('RESETSTAT');
  return { name, round, redis_us_per_wf: +((cpu * 1000) / N).toFixed(1), wall_s: +(wall / 1000).toFixed(2), cmds_per_wf: +(calls / N).toFixed(2) };
}
const out = await alternate(ROUNDS, run);
for (const name of ['A', 'B'])
  console.log(
    name,
    'median redis µs/workflow',
    median(out[name].map((x) => x.redis_us_per_wf)),
    'wall s',
    median(out[name].map((x) => x.wall_s)),
    'commands',
    median(out[name].map((x) => x.cmds_per_wf)),
  );
for (const s of Object.values(sides)) s.client.disconnect();
await redis.stop();
