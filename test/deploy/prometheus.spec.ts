import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { AppProcess, freePort } from '../support/app.js';
import { REDIS_URL, waitFor } from '../support/env.js';
import { openBus, type Bus } from '../support/nats.js';
import { momentum, risk, trigger } from '../support/signals.js';
import {
  ALERTS_FILE,
  ALERTS_TEST_FILE,
  alertRules,
  concreteQuery,
  dashboard,
  JOB,
  panels,
  promBin,
  run,
  serviceMetricNames,
} from './observability.js';

/* The rules and the dashboard checked by Prometheus's own tools, and the service scraped by a real
 * Prometheus server. Needs Debian's prometheus package (scripts/ensure-tools.sh, run by npm test). */

const dashboardQueries = panels(dashboard())
  .filter((p) => p.type !== 'row')
  .flatMap((p) => p.targets.map((t: any) => ({ panel: p.title as string, expr: concreteQuery(t.expr as string) })));

describe('promtool', () => {
  it('accepts the alert rules file', async () => {
    const res = await run(promBin('promtool'), ['check', 'rules', ALERTS_FILE]);
    expect({ code: res.code, out: res.stdout + res.stderr }).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${alertRules().length} rules found`) });
  });

  it('passes the rules\' unit tests, which prove the dead-letter and no-decision alerts fire', async () => {
    const tests = readFileSync(ALERTS_TEST_FILE, 'utf8');
    for (const alert of ['MetaAgentDeadLettersRising', 'MetaAgentNoDecisions']) {
      // ... with at least one expected firing alert, not only "nothing fires".
      expect(tests).toMatch(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels:`));
    }
    const res = await run(promBin('promtool'), ['test', 'rules', ALERTS_TEST_FILE]);
    expect({ code: res.code, out: res.stdout + res.stderr }).toEqual({ code: 0, out: expect.stringContaining('SUCCESS') });
  });

  it('the unit tests fail when a rule loses what they test', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meta-agent-rules-'));
    try {
      copyFileSync(ALERTS_TEST_FILE, join(dir, 'alerts.test.yml'));
      const rules = readFileSync(ALERTS_FILE, 'utf8');
      // Without `or vector(0)`, "no decision ever" goes unnoticed; without the `unless` half, a first dead letter does.
      const broken = rules.replace(' or vector(0))', ')').replace(/\n\s+or\n\s+sum by \(reason\) \(meta_agent_dead_letters_total unless[^\n]*/, '');
      expect(broken).not.toBe(rules);
      writeFileSync(join(dir, 'alerts.yml'), broken);
      const res = await run(promBin('promtool'), ['test', 'rules', join(dir, 'alerts.test.yml')]);
      expect(res.code).not.toBe(0);
      expect(res.stdout + res.stderr).toContain('alertname: MetaAgentNoDecisions');
      expect(res.stdout + res.stderr).toContain('alertname: MetaAgentDeadLettersRising');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses every query of the Grafana dashboard', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meta-agent-dashboard-'));
    try {
      const file = join(dir, 'dashboard-queries.yml');
      const rules = dashboardQueries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr }));
      expect(rules.length).toBeGreaterThan(20);
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      const res = await run(promBin('promtool'), ['check', 'rules', file]);
      expect({ code: res.code, out: res.stdout + res.stderr }).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${rules.length} rules found`) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the built service, scraped', () => {
  // Streams, subjects, consumers and Redis keys of its own, so nothing else on the test servers is touched.
  const tag = `dp${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const streams = { signals: `${tag}_SIGNALS`, decisions: `${tag}_DECISIONS`, deadLetter: `${tag}_DEADLETTER` };
  const env = {
    META_AGENT_NAME: `meta_${tag}`,
    META_AGENT_SIGNALS_STREAM: streams.signals,
    META_AGENT_DECISIONS_STREAM: streams.decisions,
    META_AGENT_DEADLETTER_STREAM: streams.deadLetter,
    META_AGENT_SIGNALS_SUBJECTS: `${tag}.signals.>`,
    META_AGENT_TRIGGER_SUBJECT: `${tag}.signals.normalized`,
    META_AGENT_AGENT_SUBJECT: `${tag}.signals.enriched.*`,
    META_AGENT_DECISION_SUBJECT: `${tag}.orchestrated.decision`,
    META_AGENT_DECISIONS_SUBJECTS: `${tag}.orchestrated.>`,
    META_AGENT_DEADLETTER_SUBJECT: `${tag}.deadletter.signals`,
    META_AGENT_DEADLETTER_SUBJECTS: `${tag}.deadletter.>`,
    META_AGENT_REDIS_PREFIX: tag,
    META_AGENT_HEALTH_CHECK_INTERVAL: '1',
    META_AGENT_SWEEP_INTERVAL_MS: '100',
  };
  let bus: Bus;
  let redis: Redis;
  let app: AppProcess;

  beforeAll(async () => {
    bus = await openBus();
    redis = new Redis(REDIS_URL);
    app = await AppProcess.start(env);
    // Some of everything: one open workflow, one decided, one dead letter.
    await bus.publish(`${tag}.signals.normalized`, trigger(`${tag}-open`, { timeout_seconds: 600 }));
    await bus.publish(`${tag}.signals.normalized`, trigger(`${tag}-done`, { timeout_seconds: 600 }));
    await bus.publish(`${tag}.signals.enriched.momentum`, momentum(`${tag}-done`));
    await bus.publish(`${tag}.signals.enriched.risk`, risk(`${tag}-done`));
    await bus.publish(`${tag}.signals.enriched.momentum`, 'not json');
    await waitFor('a decision and a dead letter', async () => (await app.metric('meta_agent_decisions_published_total')) === 1 && (await app.metric('meta_agent_dead_letters_total')) === 1);
    await waitFor('one active workflow', async () => (await app.metric('meta_agent_active_workflows')) === 1);
  });

  afterAll(async () => {
    await app?.stop();
    if (bus) {
      await bus.deleteStreams(streams.signals, streams.decisions, streams.deadLetter);
      await bus.close();
    }
    if (redis) {
      const keys = await redis.keys(`{${tag}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it('/metrics passes `promtool check metrics` for every meta_agent_ metric, all of which are exported', async () => {
    const { text } = await app.get('/metrics');
    for (const name of serviceMetricNames()) expect(text).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    const ours = text
      .split('\n')
      .filter((line) => /^(# (HELP|TYPE) )?meta_agent_/.test(line))
      .join('\n');
    expect(ours.split('\n').filter((l) => !l.startsWith('#')).length).toBeGreaterThan(20);
    const lintOurs = await run(promBin('promtool'), ['check', 'metrics'], ours + '\n');
    expect({ code: lintOurs.code, problems: lintOurs.stdout + lintOurs.stderr }).toEqual({ code: 0, problems: '' });
    // The whole page: any problem promtool finds is in the Node.js client's default metrics, not ours.
    const lintAll = await run(promBin('promtool'), ['check', 'metrics'], text);
    const problems = (lintAll.stdout + lintAll.stderr).split('\n').filter((l) => l.trim() !== '');
    expect(problems.filter((p) => p.startsWith('meta_agent_') || !/^(nodejs|process)_/.test(p))).toEqual([]);
  });

  it('the linter does report a bad metric (so the check above can fail)', async () => {
    const bad = '# HELP meta_agent_bad_total A gauge named like a counter\n# TYPE meta_agent_bad_total gauge\nmeta_agent_bad_total 1\n';
    const res = await run(promBin('promtool'), ['check', 'metrics'], bad);
    expect(res.code).not.toBe(0);
    expect(res.stdout + res.stderr).toContain('meta_agent_bad_total');
  });

  describe('by a real Prometheus server', () => {
    let prometheus: ChildProcess | undefined;
    let exited: Promise<unknown> | undefined;
    let dir: string;
    let base: string;
    const logs: string[] = [];

    async function query(expr: string): Promise<{ status: string; error?: string; data?: { resultType: string; result: any[] } }> {
      const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`);
      return (await res.json()) as any;
    }

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'meta-agent-prometheus-'));
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      const config = {
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [ALERTS_FILE],
        scrape_configs: [
          {
            job_name: JOB,
            scrape_interval: '1s',
            scrape_timeout: '1s',
            metrics_path: '/metrics',
            static_configs: [{ targets: [`127.0.0.1:${app.port}`] }],
          },
        ],
      };
      writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
      prometheus = spawn(
        promBin('prometheus'),
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--storage.tsdb.retention.time=1h',
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const collect = (c: Buffer) => logs.push(c.toString());
      prometheus.stdout?.on('data', collect);
      prometheus.stderr?.on('data', collect);
      exited = new Promise((resolve) => prometheus!.once('exit', resolve));
      await waitFor(
        'prometheus to be ready',
        async () => {
          if (prometheus!.exitCode !== null) throw new Error(`prometheus exited: ${logs.join('')}`);
          return (await fetch(`${base}/-/ready`)).status === 200;
        },
        30000,
        200,
      );
    });

    afterAll(async () => {
      if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
        prometheus.kill('SIGTERM');
        const timer = setTimeout(() => prometheus!.kill('SIGKILL'), 10000);
        await exited;
        clearTimeout(timer);
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('scrapes the service and answers meta_agent_active_workflows with its value', async () => {
      const sample = await waitFor(
        'meta_agent_active_workflows in Prometheus',
        async () => {
          const r = await query(`meta_agent_active_workflows{job="${JOB}"}`);
          return r.data?.result[0];
        },
        30000,
        250,
      );
      expect(sample.metric).toMatchObject({ job: JOB, instance: `127.0.0.1:${app.port}`, agent_name: env.META_AGENT_NAME });
      expect(sample.value[1]).toBe(String(await app.metric('meta_agent_active_workflows')));
      expect(sample.value[1]).toBe('1');
      expect((await query(`up{job="${JOB}"}`)).data?.result[0].value[1]).toBe('1');
      expect((await query(`meta_agent_dependency_up{job="${JOB}", dependency="redis"}`)).data?.result[0].value[1]).toBe('1');
    });

    it('runs every dashboard query and alert expression without error', async () => {
      for (const q of [...dashboardQueries, ...alertRules().map((r) => ({ panel: r.alert, expr: r.expr }))]) {
        const r = await query(q.expr);
        expect({ panel: q.panel, status: r.status, error: r.error }).toEqual({ panel: q.panel, status: 'success', error: undefined });
      }
    });

    it('loads the alert rules, evaluates them all without error, and the dead letter alert goes off', async () => {
      const rules = await waitFor(
        'every rule evaluated',
        async () => {
          const body = (await (await fetch(`${base}/api/v1/rules`)).json()) as any;
          const all: any[] = body.data.groups.flatMap((g: any) => g.rules);
          return all.length > 0 && all.every((r) => r.lastEvaluation && !r.lastEvaluation.startsWith('0001')) ? all : undefined;
        },
        20000,
        250,
      );
      expect(rules.map((r) => r.name).sort()).toEqual(alertRules().map((r) => r.alert).sort());
      expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
      // The first dead letter of a reason: pending (its `for` is 1m), labelled with the reason.
      const alert = await waitFor(
        'the dead letter alert',
        async () => {
          const body = (await (await fetch(`${base}/api/v1/alerts`)).json()) as any;
          return (body.data.alerts as any[]).find((a) => a.labels.alertname === 'MetaAgentDeadLettersRising');
        },
        20000,
        250,
      );
      expect(alert.labels).toMatchObject({ reason: 'invalid_json', severity: 'warning' });
      expect(['pending', 'firing']).toContain(alert.state);
    });
  });
});
