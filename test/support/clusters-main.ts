import { NatsCluster, RedisCluster } from './clusters.js';

/*
 * The clusters of test/support/clusters.ts by hand (scripts/clusters.sh runs this with the servers
 * scripts/lib.sh chose): starts them, prints how to reach them, and stops them on Ctrl-C / SIGTERM.
 *   node --import ./test/faults/register.mjs test/support/clusters-main.ts [nats] [redis]
 * Environment: NATS_CLUSTER_BASE_PORT (41000), REDIS_CLUSTER_BASE_PORT (42000), REDIS_CLUSTER_NODE_TIMEOUT_MS
 * (2000), KEEP=1 (keep the folders).
 */
const which = process.argv.slice(2);
const wantNats = which.length === 0 || which.includes('nats');
const wantRedis = which.length === 0 || which.includes('redis');

let nats: NatsCluster | undefined;
let redis: RedisCluster | undefined;
let stopping = false;
const say = (line: string) => process.stdout.write(`[clusters] ${line}\n`);

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await nats?.stopAll();
  await redis?.stopAll();
  say('stopped');
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  if (wantNats) {
    nats = await NatsCluster.start({ nodes: 3, basePort: Number(process.env.NATS_CLUSTER_BASE_PORT ?? 41000) });
    say(`NATS cluster ${nats.name} (JetStream): META_AGENT_NATS_URL=${nats.urls}`);
    for (const n of nats.nodes) say(`  ${n.name} ${n.url} monitor http://127.0.0.1:${n.monitorPort} (${n.dir})`);
  }
  if (wantRedis) {
    redis = await RedisCluster.start({
      primaries: 3,
      replicasPerPrimary: 1,
      basePort: Number(process.env.REDIS_CLUSTER_BASE_PORT ?? 42000),
      nodeTimeoutMs: Number(process.env.REDIS_CLUSTER_NODE_TIMEOUT_MS ?? 2000),
    });
    say(`Redis Cluster: META_AGENT_REDIS_CLUSTER_NODES=${redis.nodes}`);
    const primaries = await redis.primaries();
    for (const n of redis.all) say(`  ${n.address} ${primaries.includes(n) ? 'primary' : 'replica'} pid ${n.process.pid} (${n.dir})`);
  }
  say('running; Ctrl-C stops them');
} catch (error) {
  say(`${String(error instanceof Error ? error.message : error)}`);
  await stop(1);
}
