import { Cluster, Redis } from 'ioredis';
import { parseSettings } from '../config/env.schema.js';
import { isCluster } from './redis-client.js';
import { countClusterNodes, createRedisClient } from './redis.module.js';

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
      expect(typeof client.addSignals).toBe('function');
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

describe('countClusterNodes', () => {
  it('counts the primaries serving slots and the replicas, leaving out failed nodes', () => {
    const reply = [
      '07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected',
      '67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922',
      '292f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383',
      '6ec2 127.0.0.1:30005@31005 slave 67ed 0 1426238316232 5 connected',
      '824f 127.0.0.1:30006@31006 slave,fail 292f 0 1426238317741 6 disconnected',
      'e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460',
      'aaaa 127.0.0.1:30007@31007 master,fail - 0 0 7 disconnected',
      'bbbb 127.0.0.1:30008@31008 master - 0 0 8 connected',
      '',
    ].join('\n');
    expect(countClusterNodes(reply)).toEqual({ primaries: ['127.0.0.1:30001', '127.0.0.1:30002', '127.0.0.1:30003'], replicas: 2 });
  });
});
