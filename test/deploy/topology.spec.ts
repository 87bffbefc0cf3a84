import { join } from 'node:path';
import { find, K8S, readYaml, renderKustomization, ROOT } from './manifests.js';
import { containerEnv, parseSettings } from './settings.js';

/* The production topology (issue 17): the overlay's settings, the NATS and Redis Cluster Helm values it
 * assumes (deploy/helm/), and the disruption budgets fit one another. */

const objects = renderKustomization(join(K8S, 'overlays', 'production'));
const deployment = find(objects, 'Deployment', 'meta-agent-orchestrator');
const settings = parseSettings(containerEnv(objects, deployment.spec.template.spec.containers[0]));
const nats = readYaml(join(ROOT, 'deploy', 'helm', 'nats-values.yaml'));
const redis = readYaml(join(ROOT, 'deploy', 'helm', 'redis-cluster-values.yaml'));
/** The Redis configuration lines of the values (`redis.configmap`), as name -> value. */
const redisConf = Object.fromEntries(
  String(redis.redis.configmap)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => [line.split(/\s+/)[0], line.split(/\s+/).slice(1).join(' ')]),
);

describe('production overlay on a NATS cluster', () => {
  it('replicates the streams on as many nodes as the NATS cluster has, an odd number of at least 3', () => {
    const nodes = nats.config.cluster.replicas;
    expect(nats.config.cluster.enabled).toBe(true);
    expect(nodes % 2).toBe(1);
    expect(nodes).toBeGreaterThanOrEqual(3);
    expect(settings.nats.streamReplicas).toBe(3);
    expect(settings.nats.streamReplicas).toBeLessThanOrEqual(nodes);
  });

  it('JetStream keeps its files on persistent volumes', () => {
    expect(nats.config.jetstream.enabled).toBe(true);
    expect(nats.config.jetstream.fileStore.pvc.enabled).toBe(true);
  });

  it("NATS's disruption budget keeps every R3 stream's quorum, and a stuck node is noticed in seconds on both sides", () => {
    const quorum = Math.floor(settings.nats.streamReplicas / 2) + 1;
    expect(nats.podDisruptionBudget.enabled).toBe(true);
    expect(nats.config.cluster.replicas - nats.podDisruptionBudget.merge.spec.maxUnavailable).toBeGreaterThanOrEqual(quorum);
    expect(settings.nats.pingIntervalMs).toBeLessThanOrEqual(5000);
    expect(parseFloat(nats.config.merge.ping_interval)).toBeLessThanOrEqual(5);
  });
});

describe('production overlay on a Redis Cluster', () => {
  it('uses the cluster client, seeded with nodes of the chart release, and spreads the shards over the primaries', () => {
    expect(settings.redis.clusterNodes.length).toBeGreaterThanOrEqual(2);
    for (const node of settings.redis.clusterNodes) expect(node.host).toMatch(/^redis-cluster-\d+\.redis-cluster-headless\.data\.svc\./);
    expect(settings.redis.sentinels).toEqual([]);
    // docs/OPERATIONS.md "How REDIS_SHARDS spreads over the primaries": 96 or more, within 10 % of even for 3.
    expect(settings.redis.shards).toBeGreaterThanOrEqual(96);
  });

  it('waits for fewer replicas than every primary has: a promoted primary still has enough to confirm its writes', () => {
    const primaries = redis.cluster.nodes / (1 + redis.cluster.replicas);
    expect(Number.isInteger(primaries) && primaries >= 3).toBe(true);
    expect(settings.redis.waitReplicas).toBeGreaterThanOrEqual(1);
    expect(settings.redis.waitReplicas).toBeLessThan(redis.cluster.replicas);
  });

  it('Redis keeps an AOF, fails over within a few seconds and uses the recommended hash encoding', () => {
    expect(redisConf.appendonly).toBe('yes');
    expect(Number(redisConf['cluster-node-timeout'])).toBeLessThanOrEqual(5000);
    expect(redisConf['cluster-require-full-coverage']).toBe('no');
    expect(Number(redisConf['hash-max-listpack-value'])).toBeGreaterThanOrEqual(4096);
  });

  it("Redis's disruption budget takes one node at a time, so a primary and its replica never go together", () => {
    expect(redis.pdb.create).toBe(true);
    expect(redis.pdb.maxUnavailable).toBe(1);
  });
});

describe("the orchestrator's own disruption budget", () => {
  it('leaves at least two replicas running during a voluntary disruption', () => {
    const pdb = find(objects, 'PodDisruptionBudget', 'meta-agent-orchestrator');
    expect(deployment.spec.replicas - pdb.spec.maxUnavailable).toBeGreaterThanOrEqual(2);
  });
});
