import { readFileSync } from 'node:fs';
import { describeSettings, parseSettings } from './env.schema.js';
import { settingsTable, withSettingsTable } from './settings-table.js';

describe('settings documentation', () => {
  it('documents every setting once, with a meaning', () => {
    const docs = describeSettings();
    expect(new Set(docs.map((d) => d.variable)).size).toBe(docs.length);
    for (const d of docs) expect({ variable: d.variable, documented: d.doc.length > 20 }).toEqual({ variable: d.variable, documented: true });
  });

  it("keeps the template's settings and defaults", () => {
    const byName = new Map(describeSettings().map((d) => [d.variable, d.default]));
    expect(Object.fromEntries([...byName].filter(([k]) => TEMPLATE.includes(k)))).toEqual({
      META_AGENT_NAME: 'trading_decision_meta_agent',
      META_AGENT_NATS_URL: 'nats://localhost:4222',
      META_AGENT_REDIS_URL: 'redis://localhost:6379',
      META_AGENT_LOG_LEVEL: 'INFO',
      META_AGENT_DEFAULT_TIMEOUT_SECONDS: '300',
      META_AGENT_MAX_CONCURRENT_WORKFLOWS: '100',
      META_AGENT_WORKFLOW_CLEANUP_INTERVAL: '60',
      META_AGENT_REQUIRED_AGENTS: 'momentum,risk',
      META_AGENT_OPTIONAL_AGENTS: 'sentiment,correlation,macro',
      META_AGENT_AGENT_TIMEOUT_SECONDS: '60',
      META_AGENT_MIN_CONFIDENCE_THRESHOLD: '0.5',
      META_AGENT_MIN_AGENTS_REQUIRED: '2',
      META_AGENT_HEALTH_CHECK_INTERVAL: '30',
      META_AGENT_METRICS_PORT: '9090',
    });
  });

  it('every documented default parses back to the default settings', () => {
    const env = Object.fromEntries(describeSettings().map((d) => [d.variable, d.default]));
    expect(parseSettings(env)).toEqual(parseSettings({}));
  });

  it('docs/OPERATIONS.md carries the current table (regenerate: npm run build && npm run docs:settings)', () => {
    const doc = readFileSync(new URL('../../docs/OPERATIONS.md', import.meta.url), 'utf8');
    expect(doc).toContain(settingsTable());
    expect(withSettingsTable(doc)).toBe(doc);
  });
});

const TEMPLATE = [
  'NAME',
  'NATS_URL',
  'REDIS_URL',
  'LOG_LEVEL',
  'DEFAULT_TIMEOUT_SECONDS',
  'MAX_CONCURRENT_WORKFLOWS',
  'WORKFLOW_CLEANUP_INTERVAL',
  'REQUIRED_AGENTS',
  'OPTIONAL_AGENTS',
  'AGENT_TIMEOUT_SECONDS',
  'MIN_CONFIDENCE_THRESHOLD',
  'MIN_AGENTS_REQUIRED',
  'HEALTH_CHECK_INTERVAL',
  'METRICS_PORT',
].map((n) => `META_AGENT_${n}`);
