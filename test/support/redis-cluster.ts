import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './app.js';
import { waitFor } from './env.js';
import { redisAnswers, redisServerBin, ServerProcess } from './servers.js';

const run = promisify(execFile);

/** redis-cli beside the redis-server the tests use (REDIS_SERVER_BIN), else the one on PATH. */
function redisCliBin(): string {
  const server = process.env.REDIS_SERVER_BIN;
  return server ? server.replace(/redis-server$/, 'redis-cli') : 'redis-cli';
}

export interface ClusterNode {
  port: number;
  /** The cluster bus port (set with `cluster-port`, so both are in the tests' port range). */
  busPort: number;
  server: ServerProcess | undefined;
}

/**
 * A small private Redis Cluster for the tests that need one: `primaries` primaries with `replicasEach`
 * replicas each, on loopback, AOF on, node timeout 2 s, slots split evenly by `redis-cli --cluster create`.
 * Waits until every node reports `cluster_state:ok`. To be replaced by the shared cluster helpers.
 */
export class LocalRedisCluster {
  private constructor(
    readonly dir: string,
    readonly nodes: ClusterNode[],
  ) {}

  static async start(primaries = 3, replicasEach = 1): Promise<LocalRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
    const nodes: ClusterNode[] = [];
    const cluster = new LocalRedisCluster(dir, nodes);
    try {
      const used = new Set<number>();
      const pick = async () => {
        for (;;) {
          const port = await freePort();
          if (!used.has(port)) {
            used.add(port);
            return port;
          }
        }
      };
      for (let i = 0; i < primaries * (1 + replicasEach); i++) {
        const node: ClusterNode = { port: await pick(), busPort: await pick(), server: undefined };
        nodes.push(node);
        // Another test process may take a port between the pick and the start: then pick again.
        for (let attempt = 0; ; attempt++) {
          cluster.launch(node);
          const up = await waitFor(`cluster node ${node.port} up`, async () => {
            if (node.server?.child.exitCode !== null || node.server?.child.signalCode !== null) return 'exited';
            return (await redisAnswers(node.port)) && 'up';
          }).catch(() => 'exited');
          if (up === 'up') break;
          await node.server?.kill();
          if (attempt >= 5) throw new Error(`cluster node did not start on ${node.port}`);
          [node.port, node.busPort] = [await pick(), await pick()];
        }
      }
      await run(redisCliBin(), [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicasEach),
        '--cluster-yes',
      ]);
      await cluster.waitHealthy();
      return cluster;
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
  }

  private launch(node: ClusterNode): void {
    node.server = ServerProcess.start(redisServerBin(), [
      '--port',
      String(node.port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-port',
      String(node.busPort),
      '--cluster-config-file',
      `nodes-${node.port}.conf`,
      '--cluster-node-timeout',
      '2000',
      '--appendonly',
      'yes',
      '--save',
      '',
      '--dir',
      this.dir,
    ]);
  }

  /** `host:port,...` of every node, as META_AGENT_REDIS_CLUSTER_NODES takes it. */
  get seeds(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  /** A plain client on one node (CLUSTER, INFO, ROLE). */
  client(port: number): Redis {
    return new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: false });
  }

  async ask<T>(port: number, ...args: (string | number)[]): Promise<T> {
    const c = this.client(port);
    try {
      return (await c.call(String(args[0]), ...args.slice(1))) as T;
    } finally {
      c.disconnect();
    }
  }

  /** Ports of the nodes that are primaries now, and of each one's replicas. */
  async roles(): Promise<{ primaries: number[]; replicasOf: Map<number, number[]> }> {
    const primaries: number[] = [];
    const replicasOf = new Map<number, number[]>();
    for (const node of this.nodes) {
      if (!node.server) continue;
      const role = await this.ask<unknown[]>(node.port, 'ROLE');
      if (role[0] === 'master') {
        primaries.push(node.port);
        replicasOf.set(
          node.port,
          (role[2] as [string, string, string][]).map((r) => Number(r[1])),
        );
      }
    }
    return { primaries, replicasOf };
  }

  /** Every running node reports cluster_state:ok, and every replica is connected to its primary. */
  async waitHealthy(timeoutMs = 30000): Promise<void> {
    await waitFor(
      'cluster_state:ok on every node',
      async () => {
        for (const node of this.nodes) {
          if (!node.server) continue;
          const info = await this.ask<string>(node.port, 'CLUSTER', 'INFO').catch(() => '');
          if (!/^cluster_state:ok\s*$/m.test(info)) return false;
        }
        // And every replica is in sync with its primary (cluster_state:ok says nothing of replication).
        let replicas = 0;
        let listed = 0;
        for (const node of this.nodes) {
          if (!node.server) continue;
          const role = await this.ask<unknown[]>(node.port, 'ROLE').catch(() => []);
          if (role[0] === 'slave') {
            if (role[3] !== 'connected') return false;
            replicas++;
          } else if (role[0] === 'master') listed += (role[2] as unknown[]).length;
        }
        return listed === replicas;
      },
      timeoutMs,
      200,
    );
  }

  /** The node whose port is `port`. */
  node(port: number): ClusterNode {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no cluster node on ${port}`);
    return node;
  }

  pause(port: number): void {
    this.node(port).server?.child.kill('SIGSTOP');
  }

  resume(port: number): void {
    this.node(port).server?.child.kill('SIGCONT');
  }

  async kill(port: number): Promise<void> {
    const node = this.node(port);
    await node.server?.kill();
    node.server = undefined;
  }

  async dispose(): Promise<void> {
    for (const node of this.nodes) {
      node.server?.child.kill('SIGCONT');
      await node.server?.kill();
      node.server = undefined;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
