import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AppProcess } from '../support/app.js';
import {
  filesUnder,
  find,
  K8S,
  kubectlKustomize,
  readKustomization,
  readYamlDocs,
  renderKustomization,
  ROOT,
  type K8sObject,
} from './manifests.js';
import { containerEnv, DEFAULTS, healthRoutes, KNOWN_SETTINGS, parseSettings, settingsError } from './settings.js';

/* The Kubernetes manifests (deploy/k8s): they parse, the kustomizations are complete, and what they
 * configure is what the service really reads and serves. */

const BASE = join(K8S, 'base');
const PRODUCTION = join(K8S, 'overlays', 'production');
const KUSTOMIZATIONS = [BASE, PRODUCTION];

const rendered = new Map<string, K8sObject[]>(KUSTOMIZATIONS.map((dir) => [dir, renderKustomization(dir)]));
const label = (dir: string) => relative(K8S, dir);

const deploymentOf = (objects: K8sObject[]) => find(objects, 'Deployment', 'meta-agent-orchestrator');
const containerOf = (objects: K8sObject[]) => {
  const containers = deploymentOf(objects).spec.template.spec.containers;
  expect(containers).toHaveLength(1);
  return containers[0];
};
const podLabels = (objects: K8sObject[]) => deploymentOf(objects).spec.template.metadata.labels as Record<string, string>;
const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('files', () => {
  it('every YAML file under deploy/ parses, and every Kubernetes object has apiVersion, kind and a name', () => {
    const files = filesUnder(join(ROOT, 'deploy'), ['.yaml', '.yml']);
    expect(files.length).toBeGreaterThanOrEqual(15);
    for (const file of files) {
      const docs = readYamlDocs(file);
      expect(docs.length).toBeGreaterThan(0);
      if (!file.startsWith(K8S) || file.endsWith('kustomization.yaml')) continue;
      for (const doc of docs) {
        expect(typeof doc.apiVersion).toBe('string');
        expect(typeof doc.kind).toBe('string');
        expect(typeof doc.metadata?.name).toBe('string');
      }
    }
  });

  it.each(KUSTOMIZATIONS.map((d) => [label(d), d]))('%s: the kustomization lists every file of its folder, and only files that exist', (_name, dir) => {
    const k = readKustomization(dir);
    const listed = [...(k.resources ?? []), ...(k.patches ?? []).map((p) => p.path ?? '')];
    for (const path of listed) expect(existsSync(join(dir, path))).toBe(true);
    const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((f) => !listed.includes(f))).toEqual([]);
  });

  const kubectlRendered = kubectlKustomize(BASE) !== undefined;
  // kubectl is not on every machine; where it is, the rendering the other tests check is the real one.
  (kubectlRendered ? it : it.skip).each(KUSTOMIZATIONS.map((d) => [label(d), d]))(
    '%s: `kubectl kustomize` renders exactly the objects these tests check',
    (_name, dir) => {
      const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      const real = kubectlKustomize(dir)!;
      const ours = rendered.get(dir)!;
      expect(real.map(key).sort()).toEqual(ours.map(key).sort());
      for (const o of real) expect(ours.find((x) => key(x) === key(o))).toEqual(o);
    },
  );
});

describe.each(KUSTOMIZATIONS.map((d) => [label(d), d]))('%s', (_name, dir) => {
  const objects = rendered.get(dir)!;

  it('has a Deployment, Service, ConfigMap, PodDisruptionBudget, HorizontalPodAutoscaler, ServiceMonitor, ServiceAccount and NetworkPolicy', () => {
    for (const kind of ['Deployment', 'Service', 'ConfigMap', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'ServiceMonitor', 'ServiceAccount', 'NetworkPolicy']) {
      expect(objects.filter((o) => o.kind === kind)).toHaveLength(1);
    }
    expect(find(objects, 'PodDisruptionBudget').apiVersion).toBe('policy/v1');
    expect(find(objects, 'HorizontalPodAutoscaler').apiVersion).toBe('autoscaling/v2');
    expect(find(objects, 'ServiceMonitor').apiVersion).toBe('monitoring.coreos.com/v1');
  });

  it('the NetworkPolicy admits only the HTTP port, from a named place, and lets the pods reach only NATS, Redis and DNS', () => {
    const policy = find(objects, 'NetworkPolicy');
    expect(policy.apiVersion).toBe('networking.k8s.io/v1');
    expect(selects(policy.spec.podSelector.matchLabels, podLabels(objects))).toBe(true);
    expect([...policy.spec.policyTypes].sort()).toEqual(['Egress', 'Ingress']);

    // Ingress: each rule names where from (no rule open to all) and only the HTTP port.
    const http = containerOf(objects).ports.find((p: any) => p.name === 'http');
    expect(policy.spec.ingress.length).toBeGreaterThan(0);
    for (const rule of policy.spec.ingress) {
      expect(rule.from?.length).toBeGreaterThan(0);
      for (const peer of rule.from) expect(Object.keys(peer.namespaceSelector?.matchLabels ?? peer.podSelector?.matchLabels ?? {}).length).toBeGreaterThan(0);
      expect(rule.ports.length).toBeGreaterThan(0);
      for (const port of rule.ports) expect([http.name, http.containerPort]).toContain(port.port);
    }

    // Egress: every rule names where to and which ports; together they cover the NATS and Redis ports of
    // the example credentials and DNS over UDP and TCP, and nothing else.
    const allowed = new Set<string>();
    for (const rule of policy.spec.egress) {
      expect(rule.to?.length).toBeGreaterThan(0);
      expect(rule.ports?.length).toBeGreaterThan(0);
      for (const port of rule.ports) allowed.add(`${port.protocol ?? 'TCP'}/${port.port}`);
    }
    const secret = find(rendered.get(BASE)!, 'Secret', 'meta-agent-orchestrator-credentials');
    const natsPort = new URL(secret.stringData.META_AGENT_NATS_URL).port || '4222';
    const redisPort = new URL(secret.stringData.META_AGENT_REDIS_URL).port || '6379';
    expect([...allowed].sort()).toEqual([`TCP/${natsPort}`, `TCP/${redisPort}`, 'TCP/26379', 'TCP/53', 'UDP/53'].sort());
  });

  it('probes use routes the health controller serves, on the container port that is META_AGENT_METRICS_PORT', () => {
    const container = containerOf(objects);
    const env = containerEnv(objects, container);
    const port = parseSettings(env).app.httpPort;
    const http = container.ports.find((p: any) => p.name === 'http');
    expect(http.containerPort).toBe(port);
    expect(container.ports).toHaveLength(1);

    const routes = healthRoutes();
    expect(routes).toEqual(expect.arrayContaining(['/health/live', '/health/ready']));
    const probes = { startupProbe: '/health/live', livenessProbe: '/health/live', readinessProbe: '/health/ready' };
    for (const [probe, path] of Object.entries(probes)) {
      const get = container[probe]?.httpGet;
      expect({ probe, path: get?.path }).toEqual({ probe, path });
      expect(routes).toContain(get.path);
      expect([http.name, http.containerPort]).toContain(get.port);
      expect(container[probe].timeoutSeconds).toBeGreaterThanOrEqual(1);
    }
    // Start-up (connecting to NATS and Redis) gets longer than the connect timeout before liveness counts.
    const startup = container.startupProbe;
    expect(startup.periodSeconds * startup.failureThreshold * 1000).toBeGreaterThan(parseSettings(env).nats.connectTimeoutMs);
  });

  it('the pod runs as the image\'s non-root user with a read-only root, no privileges, RuntimeDefault seccomp and a writable /tmp', () => {
    const pod = deploymentOf(objects).spec.template.spec;
    const container = containerOf(objects);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.securityContext.capabilities.add).toBeUndefined();
    expect(pod.automountServiceAccountToken).toBe(false);
    const tmp = container.volumeMounts.find((m: any) => m.mountPath === '/tmp');
    expect(tmp).toBeDefined();
    expect(pod.volumes.find((v: any) => v.name === tmp.name)).toMatchObject({ emptyDir: expect.any(Object) });
    // uid 1000 is the image's `node` user.
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^USER node$/m);
  });

  it('the grace period outlasts META_AGENT_SHUTDOWN_TIMEOUT_MS, which is set explicitly', () => {
    const container = containerOf(objects);
    const explicit = (container.env ?? []).find((e: any) => e.name === 'META_AGENT_SHUTDOWN_TIMEOUT_MS');
    expect(explicit?.value).toBeDefined();
    const timeoutMs = parseSettings(containerEnv(objects, container)).app.shutdownTimeoutMs;
    const graceMs = deploymentOf(objects).spec.template.spec.terminationGracePeriodSeconds * 1000;
    expect(graceMs - timeoutMs).toBeGreaterThanOrEqual(2000);
  });

  it('replicas spread over nodes, and rolling updates never go below the wanted count', () => {
    const deployment = deploymentOf(objects);
    const pod = deployment.spec.template.spec;
    const labels = podLabels(objects);
    expect(selects(deployment.spec.selector.matchLabels, labels)).toBe(true);
    const spread = pod.topologySpreadConstraints.find((c: any) => c.topologyKey === 'kubernetes.io/hostname');
    expect(selects(spread.labelSelector.matchLabels, labels)).toBe(true);
    const anti = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    expect(anti.topologyKey).toBe('kubernetes.io/hostname');
    expect(selects(anti.labelSelector.matchLabels, labels)).toBe(true);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('requests and limits are set, requests within limits', () => {
    const { requests, limits } = containerOf(objects).resources;
    const cpu = (v: string | number) => (String(v).endsWith('m') ? parseFloat(String(v)) / 1000 : Number(v));
    const mem = (v: string) => parseFloat(v) * ({ Mi: 2 ** 20, Gi: 2 ** 30 } as Record<string, number>)[v.replace(/^[\d.]+/, '')];
    expect(cpu(requests.cpu)).toBeGreaterThan(0);
    expect(cpu(requests.cpu)).toBeLessThanOrEqual(cpu(limits.cpu));
    expect(mem(requests.memory)).toBeGreaterThan(0);
    expect(mem(requests.memory)).toBeLessThanOrEqual(mem(limits.memory));
  });

  it('the Service, ServiceMonitor, PodDisruptionBudget and autoscaler all point at these pods', () => {
    const labels = podLabels(objects);
    const container = containerOf(objects);
    const service = find(objects, 'Service');
    expect(selects(service.spec.selector, labels)).toBe(true);
    const servicePort = service.spec.ports.find((p: any) => p.name === 'http');
    expect(servicePort.targetPort).toBe('http');
    expect(container.ports.map((p: any) => p.name)).toContain(servicePort.targetPort);

    const monitor = find(objects, 'ServiceMonitor');
    expect(selects(monitor.spec.selector.matchLabels, service.metadata.labels ?? {})).toBe(true);
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);

    expect(selects(find(objects, 'PodDisruptionBudget').spec.selector.matchLabels, labels)).toBe(true);

    const hpa = find(objects, 'HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deploymentOf(objects).metadata.name });
    expect(hpa.spec.metrics).toEqual([expect.objectContaining({ type: 'Resource', resource: expect.objectContaining({ name: 'cpu' }) })]);
    const replicas = deploymentOf(objects).spec.replicas;
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(replicas).toBeGreaterThanOrEqual(hpa.spec.minReplicas);
    expect(replicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
    expect(find(objects, 'ServiceAccount').metadata.name).toBe(deploymentOf(objects).spec.template.spec.serviceAccountName);
  });

  it('every META_AGENT_* variable in the ConfigMap, Secret and Deployment is a setting of the service', () => {
    const container = containerOf(objects);
    const names = [
      ...objects.filter((o) => o.kind === 'ConfigMap').flatMap((o) => Object.keys(o.data ?? {})),
      ...objects.filter((o) => o.kind === 'Secret').flatMap((o) => [...Object.keys(o.stringData ?? {}), ...Object.keys(o.data ?? {})]),
      ...(container.env ?? []).map((e: any) => e.name as string),
    ];
    expect(names.length).toBeGreaterThan(10);
    expect(names.filter((n) => !KNOWN_SETTINGS.has(n))).toEqual([]);
  });

  it('each ConfigMap value is valid on its own, and the container\'s whole environment is accepted', () => {
    const cm = find(objects, 'ConfigMap', 'meta-agent-orchestrator-config');
    for (const [name, value] of Object.entries<string>(cm.data)) {
      expect(typeof value).toBe('string');
      expect({ name, error: settingsError({ [name]: value }) }).toEqual({ name, error: undefined });
    }
    const container = containerOf(objects);
    expect(container.envFrom.map((e: any) => e.configMapRef?.name ?? e.secretRef?.name)).toEqual([
      'meta-agent-orchestrator-config',
      'meta-agent-orchestrator-credentials',
    ]);
    expect(settingsError(containerEnv(objects, container))).toBeUndefined();
  });
});

describe('the example Secret', () => {
  const secret = find(rendered.get(BASE)!, 'Secret', 'meta-agent-orchestrator-credentials');

  it('holds the NATS and Redis URLs with credentials, and says it is an example', () => {
    expect(Object.keys(secret.stringData).sort()).toEqual(['META_AGENT_NATS_URL', 'META_AGENT_REDIS_URL']);
    for (const url of Object.values<string>(secret.stringData)) {
      expect(new URL(url).password).toMatch(/CHANGE-ME/);
    }
    expect(JSON.stringify(secret.metadata.annotations)).toMatch(/example/);
    expect(settingsError(secret.stringData)).toBeUndefined();
  });

  it('is not in the production rendering (the real one is created out of band)', () => {
    expect(rendered.get(PRODUCTION)!.filter((o) => o.kind === 'Secret')).toEqual([]);
  });
});

describe('the production overlay', () => {
  const base = rendered.get(BASE)!;
  const prod = rendered.get(PRODUCTION)!;

  it('pins an image from a registry, runs 3 replicas with more resources, in its own namespace', () => {
    const image: string = containerOf(prod).image;
    expect(image).toMatch(/^[a-z0-9.-]+\/.+:[A-Za-z0-9._-]+$/);
    expect(image).not.toMatch(/:latest$/);
    expect(deploymentOf(prod).spec.replicas).toBe(3);
    expect(deploymentOf(base).spec.replicas).toBe(2);
    const mem = (o: K8sObject[]) => containerOf(o).resources.limits.memory;
    expect(mem(prod)).not.toBe(mem(base));
    expect(containerOf(prod).resources.requests.cpu).toBe('500m');
    const namespace = find(prod, 'Namespace').metadata.name;
    for (const o of prod.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace).toBe(namespace);
    // The patches changed what they meant to and kept the rest of the container.
    expect(containerOf(prod).readinessProbe).toEqual(containerOf(base).readinessProbe);
    expect(find(prod, 'ConfigMap').data.META_AGENT_MAX_CONCURRENT_WORKFLOWS).toBe('5000');
    expect(find(prod, 'ConfigMap').data.META_AGENT_REQUIRED_AGENTS).toBe(find(base, 'ConfigMap').data.META_AGENT_REQUIRED_AGENTS);
  });
});

describe('the built service with the ConfigMap\'s settings', () => {
  let app: AppProcess | undefined;

  afterAll(async () => {
    if (app) await app.stop();
  });

  it('starts, and answers 200 on every probe path and on /metrics (and 404 elsewhere)', async () => {
    const objects = rendered.get(BASE)!;
    const container = containerOf(objects);
    const env = containerEnv(objects, container);
    // The test servers and a free port instead of the cluster's addresses and port 9090.
    for (const name of ['META_AGENT_NATS_URL', 'META_AGENT_REDIS_URL', 'META_AGENT_METRICS_PORT']) delete env[name];
    expect(Object.keys(env).length).toBeGreaterThan(10);
    app = await AppProcess.start(env);

    const paths = new Set<string>(['startupProbe', 'livenessProbe', 'readinessProbe'].map((p) => container[p].httpGet.path));
    for (const route of healthRoutes()) paths.add(route);
    for (const path of paths) expect({ path, status: (await app.get(path)).status }).toEqual({ path, status: 200 });
    const metricsPath = find(objects, 'ServiceMonitor').spec.endpoints[0].path;
    const metrics = await app.get(metricsPath);
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('meta_agent_active_workflows');
    expect((await app.get('/healthz')).status).toBe(404);
    // The ConfigMap's settings are in force (the orchestrator name labels the metrics).
    expect(metrics.text).toContain(`agent_name="${env.META_AGENT_NAME ?? DEFAULTS.META_AGENT_NAME}"`);
  });
});
