import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readYaml, ROOT } from './manifests.js';

/** Helpers for the Prometheus rules, the Grafana dashboard and the tools that check them. */
export const ALERTS_FILE = join(ROOT, 'deploy', 'prometheus', 'alerts.yml');
export const ALERTS_TEST_FILE = join(ROOT, 'deploy', 'prometheus', 'alerts.test.yml');
export const DASHBOARD_FILE = join(ROOT, 'deploy', 'grafana', 'meta-agent-dashboard.json');
export const OPERATIONS_FILE = join(ROOT, 'docs', 'OPERATIONS.md');
/** The scrape job the rules and the dashboard expect (the ServiceMonitor's Service name). */
export const JOB = 'meta-agent-orchestrator';

/** A tool from Debian's prometheus package (scripts/ensure-tools.sh installs it). */
export function promBin(name: 'promtool' | 'prometheus'): string {
  const found = ['/usr/bin', '/usr/local/bin', '/usr/sbin'].map((d) => join(d, name)).find((p) => existsSync(p));
  if (!found) throw new Error(`${name} is not installed: run \`bash scripts/ensure-tools.sh\` (npm test does)`);
  return found;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (optionally with stdin), never throwing on a non-zero exit. */
export function run(cmd: string, args: string[], input?: string, timeoutMs = 60000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/** The metric names the service defines (the `M` table of src/metrics/orchestrator.metrics.ts). */
export function serviceMetricNames(): string[] {
  const text = readFileSync(join(ROOT, 'src', 'metrics', 'orchestrator.metrics.ts'), 'utf8');
  const table = /const M = \{([\s\S]*?)\} as const/.exec(text)?.[1];
  if (!table) throw new Error('no metric table in orchestrator.metrics.ts');
  return [...table.matchAll(/'(meta_agent_[a-z_]+)'/g)].map((m) => m[1]);
}

/** Every series name a query may use for these metrics (histograms add _bucket, _sum, _count). */
export function queryableMetricNames(): Set<string> {
  return new Set(serviceMetricNames().flatMap((n) => [n, `${n}_bucket`, `${n}_sum`, `${n}_count`]));
}

export function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b(meta_agent_[a-z_]+)/g)].map((m) => m[1]);
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function alertRules(): AlertRule[] {
  const file = readYaml<{ groups: { name: string; rules: AlertRule[] }[] }>(ALERTS_FILE);
  return file.groups.flatMap((g) => g.rules);
}

export function dashboard(): any {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));
}

/** Every panel (rows' nested panels included). */
export function panels(d: any): any[] {
  return (d.panels as any[]).flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** A dashboard query with Grafana's variables filled in as Grafana would, so Prometheus can run it. */
export function concreteQuery(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$job', JOB)
    .replaceAll('$workflow_type', '.*');
}

/** The anchor GitHub gives a Markdown heading. */
export function githubSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors of docs/OPERATIONS.md's headings. */
export function operationsAnchors(): Set<string> {
  // Headings outside fenced code blocks (a `# comment` in a bash block is no heading).
  const text = readFileSync(OPERATIONS_FILE, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => githubSlug(m[1])));
}
