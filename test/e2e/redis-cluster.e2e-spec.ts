import { Cluster } from 'ioredis';
import { keySlot } from '../../src/redis/redis-client.js';
import { WorkflowKeys } from '../../src/workflow/workflow.keys.js';
import { AppProcess, freePort } from '../support/app.js';
import { uniqueId, waitFor } from '../support/env.js';
import { useInfra } from '../support/infra.js';
import { freeBasePort, REDIS_PORT_SPAN, RedisCluster } from '../support/clusters.js';
import { agentSubject, decisionsFor, momentum, risk, trigger, TRIGGER_SUBJECT, waitForDecision } from '../support/signals.js';

/*
 * The service on a real Redis Cluster (3 primaries, 3 replicas), through META_AGENT_REDIS_CLUSTER_NODES
 * (two seeds: it finds the rest), with the replication wait on (one replica per write): decisions, timeouts
 * by the sweeper on shards of every primary, the admin list; and a standalone client pointed at a cluster
 * node refused at start-up with one line.
 */
const infra = useInfra();
let cluster: RedisCluster;
let reader: Cluster;
let app: AppProcess;
const apps: AppProcess[] = [];
const keys = new WorkflowKeys('ma', 16);

/** The primary ports serving each slot (CLUSTER SLOTS). */
async function primaryBySlot(): Promise<(slot: number) => number> {
  const { primaries } = await cluster.roles();
  const ranges = await cluster.ask<[number, number, [string, number]][]>(primaries[0], 'CLUSTER', 'SLOTS');
  return (slot) => Number(ranges.find(([from, to]) => slot >= from && slot <= to)![2][1]);
}

beforeAll(async () => {
  cluster = await RedisCluster.start({ primaries: 3, replicasPerPrimary: 1, basePort: await freeBasePort(REDIS_PORT_SPAN) });
  reader = new Cluster(cluster.all.slice(0, 2).map((n) => ({ host: '127.0.0.1', port: n.port })));
  app = AppProcess.spawn(
    {
      // Nothing listens there: the cluster can only have been reached through its nodes.
      META_AGENT_REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      META_AGENT_REDIS_CLUSTER_NODES: cluster.all
        .slice(0, 2)
        .map((n) => `127.0.0.1:${n.port}`)
        .join(','),
      META_AGENT_REDIS_WAIT_REPLICAS: '1',
      META_AGENT_SWEEP_INTERVAL_MS: '100',
    },
    await freePort(),
  );
  apps.push(app);
  await app.waitReady();
}, 90000);

afterAll(async () => {
  await Promise.allSettled(apps.map((a) => a.stop('SIGKILL')));
  reader?.disconnect();
  await cluster?.stopAll();
});

it('logs the topology it found: a cluster of 3 primaries and 3 replicas', async () => {
  expect(app.logs('Redis topology:')).toEqual([expect.stringContaining('Redis topology: cluster with 3 primaries and 3 replicas (cluster_state:ok)')]);
  expect((await app.get('/health')).body).toMatchObject({ status: 'healthy', redis_connected: true });
  expect((await app.get('/health/ready')).status).toBe(200);
});

it('decides a workflow once, its state in the cluster and nowhere else', async () => {
  const id = uniqueId('rc');
  await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
  await infra.bus.publish(agentSubject('momentum'), momentum(id));
  await infra.bus.publish(agentSubject('risk'), risk(id));
  const decision = await waitForDecision(infra.bus, id);
  expect(decision).toMatchObject({ corr_id: id, status: 'completed' });
  const wf = await waitFor('published in the cluster', async () => {
    const fields = await reader.hgetall(keys.forWorkflow(id).wf);
    return fields.published === '1' ? fields : undefined;
  });
  expect(wf.status).toBe('completed');
  expect(await decisionsFor(infra.bus, id)).toHaveLength(1);
  expect(await infra.redis.dbsize()).toBe(0);
});

it('times out workflows on every shard, on all three primaries, each once; the admin list shows them', async () => {
  const owner = await primaryBySlot();
  const base = uniqueId('rct');
  const ids: string[] = [];
  for (let i = 0; ids.length < 16 * 2; i++) {
    const id = `${base}-${i}`;
    if (ids.filter((x) => keys.shardOf(x) === keys.shardOf(id)).length < 2) ids.push(id);
  }
  expect(new Set(ids.map((id) => keys.shardOf(id))).size).toBe(16);
  expect(new Set(ids.map((id) => owner(keySlot(keys.forWorkflow(id).wf)))).size).toBe(3);

  for (const id of ids) await infra.bus.publish(TRIGGER_SUBJECT, trigger(id, { timeout_seconds: 2 }));
  const listed = await waitFor('all of them listed as open', async () => {
    const { body } = await app.get('/workflows?status=open&limit=500');
    const found = (body.items as { corr_id: string }[]).filter((w) => w.corr_id.startsWith(base));
    return found.length === ids.length ? found : undefined;
  });
  expect(listed).toHaveLength(ids.length);

  for (const id of ids) {
    const d = await waitForDecision(infra.bus, id, 20000);
    expect(d).toMatchObject({ corr_id: id, status: 'timeout' });
  }
  await new Promise((r) => setTimeout(r, 500));
  for (const id of ids) expect(await decisionsFor(infra.bus, id)).toHaveLength(1);
  const finished = await waitFor('all of them listed as finished', async () => {
    const { body } = await app.get('/workflows?status=timeout&limit=500');
    const found = (body.items as { corr_id: string }[]).filter((w) => w.corr_id.startsWith(base));
    return found.length === ids.length ? found : undefined;
  });
  expect(finished).toHaveLength(ids.length);
});

it("a primary that stops answering holds only its own shards: the other primaries' workflows are decided meanwhile, its own once it is back, each once", async () => {
  const owner = await primaryBySlot();
  const { replicasOf } = await cluster.roles();
  const stopped = cluster.node(owner(keySlot(keys.forWorkflow('any').wf)));
  const base = uniqueId('rcs');
  const held: string[] = [];
  const others: string[] = [];
  // More of the others than a consumer pulls ahead (MAX_IN_FLIGHT, 64): with every route paused, some would wait.
  for (let i = 0; held.length < 6 || others.length < 80; i++) {
    const id = `${base}-${i}`;
    (owner(keySlot(keys.forWorkflow(id).wf)) === stopped.port ? held : others).push(id);
  }
  // The stopped primary must not be failed over (its shards would move) nor take the other primaries with it:
  // its replica may not take over, and the cluster serves the slots it still covers (the production setting).
  const replicaPorts = replicasOf.get(stopped.port) ?? [];
  await Promise.all(cluster.all.map((n) => n.command('CONFIG', 'SET', 'cluster-require-full-coverage', 'no')));
  await Promise.all(replicaPorts.map((port) => cluster.node(port).command('CONFIG', 'SET', 'cluster-replica-no-failover', 'yes')));
  const publishWorkflow = async (id: string) => {
    await infra.bus.publish(TRIGGER_SUBJECT, trigger(id));
    await infra.bus.publish(agentSubject('momentum'), momentum(id));
    await infra.bus.publish(agentSubject('risk'), risk(id));
  };
  stopped.stop();
  try {
    // Its own workflows first, until their writes have failed and are held (an outage of all of Redis would
    // stop pulling here); then the others.
    for (const id of held) await publishWorkflow(id);
    await waitFor('its workflows held', async () => app.logs('unreachable: holding').length > 0);
    for (const id of others) await publishWorkflow(id);
    for (const id of others) expect(await waitForDecision(infra.bus, id, 30000)).toMatchObject({ corr_id: id, status: 'completed' });
    // Still stopped: none of its workflows could have been stored, let alone decided.
    expect(stopped.running()).toBe(true);
    for (const id of held) expect(await decisionsFor(infra.bus, id)).toEqual([]);
    expect(app.logs('pulling paused')).toEqual([]);
    expect(app.logs('unreachable: holding its messages until it answers, the others go on').length).toBeGreaterThan(0);
  } finally {
    stopped.cont();
  }
  for (const id of held) expect(await waitForDecision(infra.bus, id, 30000)).toMatchObject({ corr_id: id, status: 'completed' });
  await waitFor('the held shards probed again and let go', async () => app.logs('answers again: its held messages run').length > 0);
  for (const id of [...held, ...others]) expect(await decisionsFor(infra.bus, id)).toHaveLength(1);
  await Promise.all(replicaPorts.map((port) => cluster.node(port).command('CONFIG', 'SET', 'cluster-replica-no-failover', 'no')));
  await Promise.all(cluster.all.map((n) => n.command('CONFIG', 'SET', 'cluster-require-full-coverage', 'yes')));
}, 120000);

it('a standalone client pointed at a cluster node stops start-up with one line saying to set META_AGENT_REDIS_CLUSTER_NODES', async () => {
  const port = cluster.all[0].port;
  const wrong = AppProcess.spawn({ META_AGENT_REDIS_URL: `redis://127.0.0.1:${port}` }, await freePort());
  apps.push(wrong);
  const code = await wrong.exitedWithin(20000);
  expect(code).toBe(1);
  const lines = wrong.logs('set META_AGENT_REDIS_CLUSTER_NODES');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain('cluster_enabled:1');
  expect(lines[0]).toContain(`127.0.0.1:${port}`);
  expect(wrong.logs('meta-agent orchestrator started')).toEqual([]);
});

it('META_AGENT_REDIS_WAIT_AOF: refused at start-up with one line where the server has no WAITAOF (Redis < 7.2)', async () => {
  const info = await cluster.ask<unknown[]>(cluster.all[0].port, 'COMMAND', 'INFO', 'WAITAOF');
  const supported = Array.isArray(info[0]);
  const env = { META_AGENT_REDIS_CLUSTER_NODES: cluster.nodes, META_AGENT_REDIS_WAIT_AOF: 'true', META_AGENT_REDIS_WAIT_REPLICAS: '1' };
  const other = AppProcess.spawn(env, await freePort());
  apps.push(other);
  if (supported) {
    await other.waitReady();
    return;
  }
  const code = await other.exitedWithin(20000);
  expect(code).toBe(1);
  expect(other.logs('has no WAITAOF command')).toHaveLength(1);
});
