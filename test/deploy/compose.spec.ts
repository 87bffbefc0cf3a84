import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readYaml, ROOT } from './manifests.js';
import { KNOWN_SETTINGS, parseSettings, settingsError } from './settings.js';

/* docker-compose.yml and the Dockerfile. No Docker engine runs on the test machines, so
 * `docker compose config` cannot check the file; this reads it as YAML and checks what the service reads. */

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
