// What the A/B benches of WorkflowRepository share (bench/redis-cpu-ab.mjs, bench/sweep-cpu-ab.mjs): a
// private redis-server (no persistence, hash-max-listpack-value 4096) and its CPU from /proc, the
// repository as the built dist/ of each of two checkouts makes it (each side on its own connection), and
// rounds alternated A B, B A, ... after a warm-up round of each, reported as medians.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Starts redis-server (REDIS_SERVER_BIN) on `port`; `ticks()`: its CPU (utime + stime) so far, in ms. */
export function privateRedis(port, tag) {
  const dir = mkdtempSync(join(tmpdir(), `bench-${tag}-`));
  const server = spawn(
    process.env.REDIS_SERVER_BIN || 'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--hash-max-listpack-value', '4096'],
    { stdio: 'ignore' },
  );
  return {
    ticks() {
      const f = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) * 10; // CLK_TCK 100
    },
    async stop() {
      server.kill();
      await new Promise((resolve) => server.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Each checkout's repository on its own connection: `{ A: { client, make(prefix) }, B: ... }`. */
export async function repositorySides(dirA, dirB, port) {
  const { Redis } = await import(join(dirA, 'node_modules/ioredis/built/index.js'));
  const sides = {};
  for (const [name, d] of [
    ['A', dirA],
    ['B', dirB],
  ]) {
    const { defineScripts } = await import(join(d, 'dist/redis/redis-scripts.js'));
    const { WorkflowRepository } = await import(join(d, 'dist/workflow/workflow.repository.js'));
    const { parseSettings } = await import(join(d, 'dist/config/env.schema.js'));
    const client = new Redis(port, '127.0.0.1', { enableAutoPipelining: true, maxRetriesPerRequest: 1, lazyConnect: true });
    for (let i = 0; ; i++) {
      try {
        await client.connect();
        break;
      } catch (e) {
        if (i > 50) throw e;
        await sleep(100);
      }
    }
    defineScripts(client);
    sides[name] = { client, make: (prefix) => new WorkflowRepository(client, { ...parseSettings({}).redis, prefix, shards: 16 }) };
  }
  return sides;
}

export const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** `run(name, round)` for each side: a warm-up round each, then `rounds` alternated; each result printed. */
export async function alternate(rounds, run) {
  const out = { A: [], B: [] };
  await run('A', -1);
  await run('B', -1);
  for (let r = 0; r < rounds; r++)
    for (const name of r % 2 ? ['B', 'A'] : ['A', 'B']) {
      const x = await run(name, r);
      out[name].push(x);
      console.log(JSON.stringify(x));
    }
  return out;
}
