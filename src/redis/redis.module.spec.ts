import { Cluster, Redis } from 'ioredis';
import { parseSettings } from '../config/env.schema.js';
import { isCluster } from './redis-client.js';
import { createRedisClient } from './redis.module.js';

describe('createRedisClient', () => {
  it('builds a standalone client without META_AGENT_REDIS_CLUSTER_NODES', () => {
    const client = createRedisClient(parseSettings({}).redis);
    try {
      expect(client).toBeInstanceOf(Redis);
      expect(isCluster(client)).toBe(false);
    } finally {
      client.disconnect();
    }
  });

  it('builds a cluster client from the seed nodes, with the credentials of REDIS_URL and the timeouts on every node', () => {
    const config = parseSettings({
      META_AGENT_REDIS_CLUSTER_NODES: 'r1:7000,r2:7001',
      META_AGENT_REDIS_URL: 'redis://orchestrator:p%40ss@ignored:6379',
      META_AGENT_REDIS_COMMAND_TIMEOUT_MS: '1500',
    }).redis;
    const client = createRedisClient(config) as Cluster;
    try {
      expect(client).toBeInstanceOf(Cluster);
      expect(isCluster(client)).toBe(true);
      expect(client.options.redisOptions).toMatchObject({ username: 'orchestrator', password: 'p@ss', commandTimeout: 1500, maxRetriesPerRequest: 1 });
      expect(client.options).toMatchObject({ enableAutoPipelining: true, scaleReads: 'master', lazyConnect: true });
      // The scripts are defined on it, as on the standalone client.
      expect(typeof (client as unknown as Record<string, unknown>).addSignal).toBe('function');
    } finally {
      client.disconnect();
    }
  });

  it('lets REDIS_USERNAME/PASSWORD win over the URL on a cluster', () => {
    const config = parseSettings({
      META_AGENT_REDIS_CLUSTER_NODES: 'r1:7000',
      META_AGENT_REDIS_URL: 'redis://a:b@ignored:6379',
      META_AGENT_REDIS_USERNAME: 'svc',
      META_AGENT_REDIS_PASSWORD: 'secret-pw',
    }).redis;
    const client = createRedisClient(config) as Cluster;
    try {
      expect(client.options.redisOptions).toMatchObject({ username: 'svc', password: 'secret-pw' });
    } finally {
      client.disconnect();
    }
  });
});
