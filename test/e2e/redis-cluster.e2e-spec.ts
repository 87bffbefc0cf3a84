import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppProcess, freePort } from '../support/app.js';
import { waitFor } from '../support/env.js';
import { ephemeralRedisArgs, redisAnswers, redisServerBin, ServerProcess } from '../support/servers.js';

/*
 * Redis Cluster is not supported yet (docs/OPERATIONS.md): the service creates a standalone or Sentinel
 * client only and was never run on a cluster. Start-up refuses a Redis that reports cluster mode, with
 * one clear line, instead of failing later on the first key of another slot.
 */
let dir: string;
let port: number;
let server: ServerProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'redis-cluster-e2e-'));
  port = await freePort();
  server = ServerProcess.start(redisServerBin(), [
    '--port',
    String(port),
    ...ephemeralRedisArgs(dir, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')]),
  ]);
  await waitFor('redis (cluster mode) up', () => redisAnswers(port));
});

afterAll(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

it('start-up refuses a Redis in cluster mode: exit 1, one line saying Redis Cluster is not supported', async () => {
  const app = AppProcess.spawn({ META_AGENT_REDIS_URL: `redis://127.0.0.1:${port}` }, await freePort());
  // The 20 s guard must not outlive the test: a pending timer keeps Jest from exiting when the run is over.
  let guard: NodeJS.Timeout | undefined;
  const code = await Promise.race([app.exited(), new Promise((resolve) => (guard = setTimeout(() => resolve('still running'), 20000)))]);
  clearTimeout(guard);
  if (code === 'still running') await app.stop('SIGKILL');
  expect(code).toBe(1);
  const lines = app.logs('Redis Cluster is not supported');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain('cluster_enabled:1');
  expect(lines[0]).toContain(`127.0.0.1:${port}`);
  expect(app.logs('meta-agent orchestrator started')).toEqual([]);
});
