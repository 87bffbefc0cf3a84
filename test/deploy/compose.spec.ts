import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readYaml, ROOT } from './manifests.js';
import { KNOWN_SETTINGS, parseSettings, settingsError } from './settings.js';

/* docker-compose.yml and the Dockerfile. A real Compose parses the file (Debian's docker-compose: its
 * `config` needs no Docker engine, which the test machines do not have), and the YAML is checked for what
 * the service reads. `docker build` needs an engine: the Dockerfile is only read. */

const compose = readYaml<any>(join(ROOT, 'docker-compose.yml'));

function environment(service: any): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((line: string) => [line.split('=')[0], line.slice(line.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

it('docker-compose.yml parses, with NATS (JetStream), Redis (AOF) and the orchestrator', () => {
  expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['nats', 'redis', 'orchestrator']));
  expect(compose.services.nats.command).toContain('-js');
  expect(compose.services.redis.command.join(' ')).toMatch(/--appendonly yes/);
  expect(compose.services.orchestrator.depends_on).toMatchObject({ nats: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
});

/**
 * `docker compose config` where Compose v2 is installed; else Debian's docker-compose 1.29
 * (scripts/ensure-tools.sh installs it), given the file without its top-level `name`, the one Compose
 * Spec key v1 predates (v2 reads it; v1 refuses any top-level key it does not know).
 */
function composeConfig(...args: string[]): string {
  const run = (cmd: string, cmdArgs: string[]) => execFileSync(cmd, cmdArgs, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  try {
    execFileSync('docker', ['compose', 'version'], { stdio: 'ignore' });
    return run('docker', ['compose', '-f', 'docker-compose.yml', ...args, 'config']);
  } catch {
    // no Compose v2 here
  }
  const dir = mkdtempSync(join(tmpdir(), 'compose-'));
  try {
    const file = join(dir, 'docker-compose.yml');
    writeFileSync(file, readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8').replace(/^name: .*$/m, ''));
    return run('docker-compose', ['-f', file, '--project-directory', ROOT, ...args, 'config']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it('a real Compose parses docker-compose.yml (compose config), the simulator in its own profile', () => {
  expect(Object.keys(compose).sort()).toEqual(['name', 'services', 'volumes']);
  const config = parseYaml(composeConfig('--profile', 'simulator'));
  expect(Object.keys(config.services).sort()).toEqual(['nats', 'orchestrator', 'redis', 'simulator']);
  expect(config.services.simulator.profiles).toEqual(['simulator']);
  expect(config.services.orchestrator.build.context).toBe(ROOT);
  expect(Object.keys(config.volumes).sort()).toEqual(['nats-data', 'redis-data']);
});

it('every META_AGENT_* variable the orchestrator gets is a setting, and together they are valid', () => {
  const env = environment(compose.services.orchestrator);
  const names = Object.keys(env).filter((n) => n.startsWith('META_AGENT_'));
  expect(names.length).toBeGreaterThanOrEqual(3);
  expect(names.filter((n) => !KNOWN_SETTINGS.has(n))).toEqual([]);
  expect(settingsError(env)).toBeUndefined();
  // The published port is the service's HTTP port.
  const port = parseSettings(env).app.httpPort;
  expect(compose.services.orchestrator.ports.map((p: string) => String(p).split(':').pop())).toContain(String(port));
});

it('compose gives the orchestrator longer to stop than its drain may take', () => {
  const env = environment(compose.services.orchestrator);
  const graceSeconds = parseInt(String(compose.services.orchestrator.stop_grace_period), 10);
  expect(graceSeconds * 1000).toBeGreaterThan(parseSettings(env).app.shutdownTimeoutMs);
});

it('the Dockerfile runs node as PID 1 as the non-root `node` user, on the HTTP port, checking /health/live', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  expect(dockerfile).toMatch(/^USER node$/m);
  expect(dockerfile).toMatch(/^EXPOSE 9090$/m);
  expect(dockerfile).toMatch(/^CMD \["node", "dist\/main\.js"\]$/m);
  expect(dockerfile).toMatch(/HEALTHCHECK[\s\S]*\/health\/live/);
  // The dead-letter replay runs from the image (kubectl exec), with the runtime's dependencies.
  expect(dockerfile).toMatch(/^COPY .*scripts\/replay-dead-letters\.mjs .*\.\/scripts\/$/m);
});
