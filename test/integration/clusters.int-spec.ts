import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Cluster, Redis } from 'ioredis';
import { freeBasePort, NATS_PORT_SPAN, NatsCluster, REDIS_PORT_SPAN, RedisCluster, waitUntil, type RedisNode } from '../support/clusters.js';

/*
 * The cluster helpers of test/support/clusters.ts on real servers (the nats-server and redis-server or
 * valkey-server that scripts/lib.sh chose): they form the clusters, find leaders and primaries, and see
 * failovers through. Every wait is on the servers' answers.
 */

describe('NatsCluster', () => {
  let cluster: NatsCluster;
  let nc: NatsConnection | undefined;

  beforeAll(async () => {
    cluster = await NatsCluster.start({ nodes: 3, basePort: await freeBasePort(NATS_PORT_SPAN) });
  }, 120000);

  afterAll(async () => {
    await nc?.close().catch(() => undefined);
    await cluster?.stopAll();
  });

  it('forms a 3-node JetStream cluster: an R3 stream acks, its leader is found; killing the leader elects another, publishing goes on, the node comes back', async () => {
    expect(cluster.urls.split(',')).toHaveLength(3);
    nc = await cluster.connect();
    const jsm = await jetstreamManager(nc, { timeout: 10000 });
    await jsm.streams.add({ name: 'CLUSTER_R3', subjects: ['cluster.r3.>'], num_replicas: 3, storage: StorageType.File, retention: RetentionPolicy.Limits });
    const leader = await cluster.waitStreamReady('CLUSTER_R3');
    // The monitor (the leader's own /jsz) names the same leader as STREAM.INFO.
    expect((await cluster.streamLeaderFromMonitor('CLUSTER_R3'))?.name).toBe(leader.name);

    const js = jetstream(nc, { timeout: 10000 });
    // The stream's subjects reach the node this client is connected to a moment after the stream has a
    // leader (interest propagates over the routes): until then a publish finds no responders. Retried,
    // de-duplicated by the message id.
    const first = await waitUntil('a publish acked by the new stream', () => js.publish('cluster.r3.a', 'one', { msgID: 'one' }), 60000, 250);
    expect(first).toMatchObject({ stream: 'CLUSTER_R3', seq: 1, duplicate: false });

    await leader.kill();
    const next = await cluster.waitStreamLeader('CLUSTER_R3', { notLeader: leader });
    expect(next.name).not.toBe(leader.name);
    expect(next.running()).toBe(true);

    // The client may still be reconnecting away from the dead node: retry, de-duplicated by the message id.
    const second = await waitUntil('a publish acked by the new leader', () => js.publish('cluster.r3.a', 'two', { msgID: 'two' }), 60000, 250);
    expect(second.seq).toBe(2);

    // The killed node starts again on its ports and store and catches up: all three replicas current.
    await leader.start();
    await cluster.waitStreamReady('CLUSTER_R3');
    const info = await cluster.streamInfo('CLUSTER_R3');
    expect(info.state.messages).toBe(2);
    expect([info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)].sort()).toEqual(['n1', 'n2', 'n3']);
  }, 240000);
});

describe('RedisCluster', () => {
  const nodeTimeoutMs = 2000;
  let cluster: RedisCluster;
  let client: Cluster | undefined;

  beforeAll(async () => {
    cluster = await RedisCluster.start({ primaries: 3, replicasPerPrimary: 1, basePort: await freeBasePort(REDIS_PORT_SPAN), nodeTimeoutMs });
  }, 120000);

  afterAll(async () => {
    client?.disconnect();
    await cluster?.stopAll();
  });

  it('serves keys of all three primaries; killing a primary promotes its replica, data kept; the killed node rejoins as a replica', async () => {
    expect(cluster.nodes.split(',')).toHaveLength(6);
    const primaries = await cluster.primaries();
    expect(primaries).toHaveLength(3);

    client = new Cluster(
      cluster.nodes.split(',').map((address) => ({ host: '127.0.0.1', port: Number(address.split(':')[1]) })),
      { clusterRetryStrategy: () => 200, redisOptions: { connectTimeout: 5000 } },
    );
    // One key on each primary, written through the cluster client and read back from that primary itself.
    const keyOf = new Map<RedisNode, string>();
    for (let i = 0; keyOf.size < 3 && i < 1000; i++) {
      const key = `cluster-spec:${i}`;
      const primary = await cluster.primaryForKey(key);
      if (keyOf.has(primary)) continue;
      await client.set(key, `value-${i}`);
      expect(await primary.command('GET', key)).toBe(`value-${i}`);
      keyOf.set(primary, key);
    }
    expect([...keyOf.keys()].sort((a, b) => a.port - b.port)).toEqual(primaries);

    const victim = primaries[0];
    const key = keyOf.get(victim)!;
    const [replica] = await cluster.replicasOf(victim);
    expect(replica).toBeDefined();
    // Written again on the primary itself, and held by its replica before the kill (WAIT on the same
    // connection: this client's writes reached one replica).
    const direct = new Redis(victim.port, '127.0.0.1');
    try {
      await direct.set(key, 'before-failover');
      expect(Number(await direct.call('WAIT', '1', '10000'))).toBeGreaterThanOrEqual(1);
    } finally {
      direct.disconnect();
    }

    const killedAt = Date.now();
    await victim.kill();
    const promoted = await cluster.waitFailover(victim);
    const tookMs = Date.now() - killedAt;
    expect(promoted).toBe(replica);
    // Detection takes the node timeout, then an election; anything near 10 node timeouts means it did not work as configured.
    expect(tookMs).toBeGreaterThanOrEqual(nodeTimeoutMs);
    expect(tookMs).toBeLessThan(nodeTimeoutMs * 10);
    expect((await promoted.role()).role).toBe('master');
    expect(await promoted.command('GET', key)).toBe('before-failover');
    expect((await cluster.primaryForKey(key)).port).toBe(promoted.port);
    // The cluster client follows the new slot map.
    await waitUntil('the cluster client to write to the new primary', async () => (await client!.set(key, 'after-failover')) === 'OK', 60000, 250);
    expect(await promoted.command('GET', key)).toBe('after-failover');

    // Restarted on its port and folder, the old primary learns of the newer epoch and follows the promoted node.
    await victim.start();
    await cluster.waitReplicaOf(victim, promoted);
    expect(await victim.role()).toMatchObject({ role: 'slave', primaryPort: promoted.port, linkState: 'connected' });
    await cluster.waitHealthy();
    expect((await cluster.primaries()).map((n) => n.port)).toContain(promoted.port);
    expect((await cluster.primaries()).map((n) => n.port)).not.toContain(victim.port);
  }, 240000);
});
