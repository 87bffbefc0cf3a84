import {
  alertRules,
  dashboard,
  metricsIn,
  operationsAnchors,
  panels,
  queryableMetricNames,
  serviceMetricNames,
} from './observability.js';

/* The Grafana dashboard and the alert rules refer to what the service really exports, and every alert
 * has its runbook in docs/OPERATIONS.md. (Their PromQL is run by Prometheus in prometheus.spec.ts.) */

const d = dashboard();
const all = panels(d);
const graphs = all.filter((p) => p.type !== 'row');
const exprs = graphs.flatMap((p) => (p.targets ?? []).map((t: any) => t.expr as string));
const byTitle = (re: RegExp) => {
  const found = graphs.filter((p) => re.test(p.title));
  expect(found.map((p) => p.title)).toHaveLength(1);
  return found[0];
};

describe('the Grafana dashboard', () => {
  it('is an importable dashboard: uid, title, schema version, a Prometheus data source variable, panels on the grid', () => {
    expect(d).toMatchObject({ uid: 'meta-agent-orchestrator', title: expect.any(String), schemaVersion: expect.any(Number) });
    expect(d.templating.list.map((v: any) => v.name)).toEqual(expect.arrayContaining(['datasource', 'job']));
    expect(d.templating.list.find((v: any) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const ids = all.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(graphs.length).toBeGreaterThanOrEqual(12);
    for (const p of graphs) {
      expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets.length).toBeGreaterThan(0);
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      expect(typeof p.description).toBe('string');
      for (const t of p.targets) expect(t.expr.length).toBeGreaterThan(0);
    }
  });

  it('uses only metrics the service exports (and the NATS exporter\'s consumer metric)', () => {
    const known = queryableMetricNames();
    const used = new Set(exprs.flatMap(metricsIn));
    expect([...used].filter((m) => !known.has(m))).toEqual([]);
    // Every metric of the service is on the dashboard somewhere.
    expect(serviceMetricNames().filter((m) => ![...used].some((u) => u.startsWith(m)))).toEqual([]);
    const foreign = exprs.flatMap((e) => [...e.matchAll(/\b([a-z_]+)\{/g)].map((m) => m[1])).filter((n) => !n.startsWith('meta_agent_'));
    expect(new Set(foreign)).toEqual(new Set(['up', 'jetstream_consumer_num_pending']));
  });

  it('shows throughput, decisions by type and status, timeouts, dead letters by reason, latency quantiles, active workflows and consumer lag', () => {
    const throughput = byTitle(/^Triggers, signals and decisions/).targets.map((t: any) => t.expr).join('\n');
    expect(throughput).toContain('meta_agent_signals_received_total');
    expect(throughput).toContain('meta_agent_decisions_published_total');
    expect(byTitle(/^Decisions by type/).targets[0].expr).toMatch(/sum by \(decision_type\)/);
    expect(byTitle(/^Workflows ended by status/).targets[0].expr).toMatch(/sum by \(status\)/);
    expect(byTitle(/^Timeouts$/).targets[0].expr).toMatch(/status="timeout"/);
    expect(byTitle(/^Dead letters by reason/).targets[0].expr).toMatch(/sum by \(reason\) \(increase\(meta_agent_dead_letters_total/);
    const latency = byTitle(/^Signal-to-decision latency/).targets.map((t: any) => t.expr);
    expect(latency.map((e: string) => /^histogram_quantile\((0\.\d+), /.exec(e)?.[1])).toEqual(['0.5', '0.9', '0.99']);
    for (const e of latency) expect(e).toContain('meta_agent_signal_to_decision_seconds_bucket');
    expect(byTitle(/^Active workflows$/).targets[0].expr).toMatch(/^max\(meta_agent_active_workflows/);
    const lag = byTitle(/^Consumer lag/);
    expect(lag.targets[0].expr).toContain('jetstream_consumer_num_pending');
    expect(lag.description).toMatch(/prometheus-nats-exporter/);
    expect(lag.description).toMatch(/-jsz/);
    expect(byTitle(/^Messages settled/).targets[0].expr).toContain('meta_agent_messages_settled_total');
  });
});

describe('the alert rules', () => {
  const rules = alertRules();

  it('cover not ready, dead letters, timeouts, consumer lag and missing decisions', () => {
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining([
        'MetaAgentOrchestratorDown',
        'MetaAgentDependencyDown',
        'MetaAgentDeadLettersRising',
        'MetaAgentTimeoutRatioHigh',
        'MetaAgentConsumerLagGrowing',
        'MetaAgentNoDecisions',
      ]),
    );
    const rule = (name: string) => rules.find((r) => r.alert === name)!;
    expect(rule('MetaAgentOrchestratorDown')).toMatchObject({ expr: expect.stringMatching(/^up\{.*\} == 0$/), for: '2m' });
    expect(rule('MetaAgentDependencyDown')).toMatchObject({ expr: 'meta_agent_dependency_up == 0', for: '2m' });
    expect(rule('MetaAgentNoDecisions').expr).toMatch(/rate\(meta_agent_workflows_started_total\[10m\]\)\) > 0\s+and\s+\(sum\(rate\(meta_agent_decisions_published_total\[10m\]\)\) or vector\(0\)\) == 0/);
    expect(rule('MetaAgentTimeoutRatioHigh').expr).toMatch(/status="timeout"[\s\S]*\/[\s\S]*meta_agent_workflows_completed_total/);
  });

  it('use only metrics the service exports', () => {
    const known = queryableMetricNames();
    expect(rules.flatMap((r) => metricsIn(r.expr)).filter((m) => !known.has(m))).toEqual([]);
  });

  it('each have a severity, summary, description, and a runbook that exists in docs/OPERATIONS.md', () => {
    const anchors = operationsAnchors();
    for (const r of rules) {
      expect({ alert: r.alert, severity: r.labels?.severity }).toEqual({ alert: r.alert, severity: expect.stringMatching(/^(critical|warning)$/) });
      expect(r.annotations?.summary).toBeTruthy();
      expect(r.annotations?.description).toBeTruthy();
      const [file, anchor] = (r.annotations?.runbook_url ?? '').split('#');
      expect({ alert: r.alert, file }).toEqual({ alert: r.alert, file: 'docs/OPERATIONS.md' });
      expect({ alert: r.alert, anchor, exists: anchors.has(anchor) }).toEqual({ alert: r.alert, anchor, exists: true });
      expect(anchor).toBe(r.alert.toLowerCase());
    }
  });
});
