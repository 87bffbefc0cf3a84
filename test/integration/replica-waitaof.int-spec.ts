import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { TransientError } from '../../src/common/errors.js';
import { parseSettings } from '../../src/config/env.schema.js';
import { defineScripts } from '../../src/redis/redis-scripts.js';
import { WorkflowRepository } from '../../src/workflow/workflow.repository.js';
import { uniqueId, waitFor } from '../support/env.js';
import { ReplicatedRedis } from '../support/servers.js';
import { probeAnswersAgain, signalJson, signalOptions, startInput } from './repository-fixtures.js';

/*
 * META_AGENT_REDIS_WAIT_AOF against a server that has WAITAOF (Redis 7.2+, Valkey 8): WAITAOF_SERVER_BIN, else
 * a Valkey unpacked under .cache/servers (valkey-<version>/usr/bin/valkey-server), else the tests' redis-server
 * if it has the command. Without any such server the file is skipped (Redis 7.0 has no WAITAOF; the start-up
 * refusal there is e2e `redis-cluster`).
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function waitAofServer(): string | undefined {
  const candidates = [process.env.WAITAOF_SERVER_BIN];
  const servers = join(ROOT, '.cache', 'servers');
  if (existsSync(servers)) {
    for (const d of readdirSync(servers).filter((d) => d.startsWith('valkey-'))) candidates.push(join(servers, d, 'usr', 'bin', 'valkey-server'));
  }
  candidates.push(process.env.REDIS_SERVER_BIN || 'redis-server');
  for (const bin of candidates) {
    if (!bin) continue;
    try {
      const version = execFileSync(bin, ['--version'], { encoding: 'utf8' });
      const [major, minor] = (/v=(\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number);
      const valkey = version.startsWith('Valkey');
      if ((valkey && major >= 8) || (!valkey && (major > 7 || (major === 7 && minor >= 2)))) return bin;
    } catch {
      /* not there */
    }
  }
  return undefined;
}

const BIN = waitAofServer();
const describeIf = BIN ? describe : describe.skip;

describeIf(`WAITAOF (${BIN ?? 'no server with WAITAOF'})`, () => {
  let redis: ReplicatedRedis;
  let client: Redis;

  beforeAll(async () => {
    redis = await ReplicatedRedis.start('replica-waitaof-', {
      bin: BIN!,
      nodeArgs: (port, name, dir) => [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        // As docs/OPERATIONS.md recommends; with everysec a replica reports its fsync up to a second or two late.
        '--appendfsync',
        'always',
        '--appenddirname',
        `aof-${name}`,
        '--dir',
        dir,
        '--dbfilename',
        `${name}.rdb`,
      ],
    });
    client = new Redis(redis.primaryPort, '127.0.0.1', { maxRetriesPerRequest: 1, enableAutoPipelining: true });
    defineScripts(client);
    // A replica fsyncs (and acknowledges) nothing to its AOF until the rewrite that follows its sync is done.
    await waitFor('the replica fsyncing its AOF', async () => {
      await client.set('aof-probe', Date.now());
      const [local, replicas] = (await client.call('WAITAOF', 1, 1, 200)) as number[];
      return local === 1 && replicas === 1;
    });
  });

  afterAll(async () => {
    client?.disconnect();
    await redis?.dispose();
  });

  it('returns once the write is fsynced locally and on the replica; a stopped replica is a TransientError, found again after', async () => {
    const prefix = uniqueId('aof')
      .replace(/[^A-Za-z0-9_.-]/g, '')
      .slice(0, 32);
    const repo = new WorkflowRepository(client, { ...parseSettings({}).redis, prefix, shards: 4, waitReplicas: 1, waitTimeoutMs: 300, waitAof: true });
    const id = uniqueId('aof-wf');
    const sent = repo.replicaWait!.sent;
    expect((await repo.start(startInput(id))).kind).toBe('started');
    expect(repo.replicaWait!.sent).toBe(sent + 1);
    await repo.ping();

    const options = signalOptions();
    await redis.whileReplicaStopped(async () => {
      const error = await repo.addSignal(id, 'momentum', signalJson('momentum', 0.7), options).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TransientError);
      expect((error as Error).message).toMatch(/0 of 1 replicas fsynced it/);
      await expect(repo.ping()).rejects.toThrow(TransientError);
    });
    await probeAnswersAgain(repo);
    expect((await repo.addSignal(id, 'momentum', signalJson('momentum', 0.7), options)).kind).toBe('duplicate');
  });

  it('with 0 replicas waits for the local fsync only', async () => {
    const prefix = uniqueId('aof0')
      .replace(/[^A-Za-z0-9_.-]/g, '')
      .slice(0, 32);
    const repo = new WorkflowRepository(client, { ...parseSettings({}).redis, prefix, shards: 4, waitReplicas: 0, waitTimeoutMs: 300, waitAof: true });
    await redis.whileReplicaStopped(async () => {
      expect((await repo.start(startInput(uniqueId('aof0-wf')))).kind).toBe('started');
      expect(repo.replicaWait!.sent).toBe(1);
    });
  });
});
