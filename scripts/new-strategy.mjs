// Scaffolds a decision strategy written in code:
//   npm run new:strategy -- <type> [--root <dir>]
// writes src/workflow/strategies/<type>.strategy.ts (a provider with a small working rule) and its spec
// (on the strategy test harness), and lists the provider in src/workflow/strategies/strategies.module.ts.
// `--root` is the project directory (default: this repository). Refuses an invalid type or an existing
// file with one line, and writes nothing then.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The rule of META_AGENT_DEFAULT_WORKFLOW_TYPE and of the strategy registry (WORKFLOW_TYPE in src/common/names.ts;
// a copy, as this script runs without a build: new-strategy.spec.ts keeps the two equal).
const TYPE_RE = /^[a-z0-9_-]{1,64}$/;
const USAGE = 'usage: npm run new:strategy -- <type> [--root <dir>]';

function fail(message) {
  process.stderr.write(`new:strategy: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  let type;
  let root = join(dirname(fileURLToPath(import.meta.url)), '..');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--root') {
      if (argv[i + 1] === undefined) fail(`--root needs a directory (${USAGE})`);
      root = resolve(argv[++i]);
    } else if (arg.startsWith('--root=')) {
      root = resolve(arg.slice('--root='.length));
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (arg.startsWith('-')) {
      fail(`unknown option ${arg} (${USAGE})`);
    } else if (type === undefined) {
      type = arg;
    } else {
      fail(`one workflow type at a time, got "${type}" and "${arg}" (${USAGE})`);
    }
  }
  if (type === undefined) fail(`no workflow type given (${USAGE})`);
  return { type, root };
}

/** `my-type_2` → `MyType2Strategy`; a type starting with a digit gets a `Type` prefix (`2fa` → `Type2faStrategy`). */
function className(type) {
  const pascal = type
    .split(/[-_]+/)
    .filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join('');
  if (pascal === '') return 'TypeStrategy';
  return `${/^[0-9]/.test(pascal) ? 'Type' : ''}${pascal}Strategy`;
}

function strategySource(type, cls) {
  return `import { Injectable } from '@nestjs/common';
import { defaultTimeoutDecision } from '../workflow-context.js';
import { isReady, type ReadinessRule } from '../readiness.js';
import type { AgentSignal, Decision, WorkflowContext } from '../workflow.types.js';
import { DecisionStrategyProvider } from './decision-strategy.decorator.js';
import type { DecisionStrategy, WorkflowDefinition } from './decision-strategy.interface.js';

/** Agents a ${type} workflow waits for. */
const REQUIRED_AGENTS = ['momentum', 'risk'];
/** Below this mean confidence of the agents, the answer is \`reject\`. */
const MIN_CONFIDENCE = 0.6;
/**
 * When a workflow can decide, as a rule Redis judges while storing each signal (the fast path: see
 * src/workflow/readiness.ts): every required agent has answered. \`canDecide\` says the same with \`isReady\`.
 * A rule that is not about which agents answered? Drop \`readyWhen\` and write \`canDecide\` as you need.
 */
const READY_WHEN: ReadinessRule = { all: REQUIRED_AGENTS };

/**
 * The \`${type}\` workflow type, served for triggers with \`"workflow_type": "${type}"\`.
 *
 * Example rule (replace it with yours): a trigger with an \`instrument\` opens a workflow that waits up to
 * 60 s for the momentum and risk agents; once both have answered, it approves when their mean confidence
 * is at least MIN_CONFIDENCE, unless one of them reports \`risk_level: "blocked"\`.
 *
 * Methods may be async; none may keep state between calls (any replica may run any step of a workflow).
 * A method that throws ends the workflow as \`failed\`. See decision-strategy.interface.ts.
 */
@DecisionStrategyProvider('${type}')
@Injectable()
export class ${cls} implements DecisionStrategy {
  /** Whether this trigger opens a workflow at all (a declined trigger is acked and counted). */
  shouldStart(trigger: AgentSignal): boolean {
    return typeof trigger.data.instrument === 'string';
  }

  /** The agents to wait for, the timeout (a trigger's \`timeout_seconds\` overrides it) and metadata stored with the workflow. */
  define(trigger: AgentSignal): WorkflowDefinition {
    return { requiredAgents: REQUIRED_AGENTS, timeoutSeconds: 60, metadata: { instrument: trigger.data.instrument ?? null }, readyWhen: READY_WHEN };
  }

  /** True once every required agent has answered (READY_WHEN, which Redis judges in its place). */
  canDecide(ctx: WorkflowContext): boolean {
    return isReady(READY_WHEN, Object.keys(ctx.receivedSignals));
  }

  /** Runs once per workflow, on the signals stored when it was claimed; the decision is published as is. */
  evaluate(ctx: WorkflowContext): Decision {
    const signals = Object.values(ctx.receivedSignals);
    const confidence = meanConfidence(ctx);
    if (signals.some((s) => s.data.risk_level === 'blocked')) return { action: 'reject', reason: 'risk_blocked', confidence };
    if (confidence < MIN_CONFIDENCE) return { action: 'reject', reason: 'insufficient_confidence', confidence };
    return { action: 'approve', reason: 'agents_agree', confidence, instrument: ctx.metadata.instrument ?? null };
  }

  /** The decision when the deadline passes first: the default one (partial and missing signals), plus the confidence so far. */
  onTimeout(ctx: WorkflowContext): Decision {
    return { ...defaultTimeoutDecision(ctx), confidence: meanConfidence(ctx) };
  }
}

function meanConfidence(ctx: WorkflowContext): number {
  const signals = Object.values(ctx.receivedSignals);
  return signals.length === 0 ? 0 : signals.reduce((sum, s) => sum + s.confidence, 0) / signals.length;
}
`;
}

function specSource(type, cls) {
  return `import { strategyHarness } from './testing.js';
import { ${cls} } from './${type}.strategy.js';

// Triggers and agent signals as published (plain JSON); the harness builds the WorkflowContext the service would.
const h = strategyHarness(new ${cls}());
const trigger = { instrument: 'EURUSD', side: 'buy' };
const momentum = (confidence: number) => ({ agent_name: 'momentum', confidence, analysis: { trend_direction: 'bullish' } });
const risk = (confidence: number, risk_level = 'low') => ({ agent_name: 'risk', confidence, risk_level });

describe('${cls}', () => {
  it('serves the workflow type ${type}', () => {
    expect(h.workflowType).toBe('${type}');
  });

  it('starts on a trigger with an instrument', async () => {
    expect(await h.shouldStart(trigger)).toBe(true);
    expect(await h.shouldStart({ side: 'buy' })).toBe(false);
    expect(await h.define(trigger)).toEqual({
      requiredAgents: ['momentum', 'risk'],
      timeoutSeconds: 60,
      metadata: { instrument: 'EURUSD' },
      readyWhen: { all: ['momentum', 'risk'] },
    });
  });

  it('waits for momentum and risk', async () => {
    expect(await h.canDecide({ trigger, signals: [momentum(0.9)] })).toBe(false);
    expect(await h.canDecide({ trigger, signals: [momentum(0.9), risk(0.7)] })).toBe(true);
  });

  it('approves when the agents are confident enough, rejects otherwise', async () => {
    expect(await h.evaluate({ trigger, signals: [momentum(0.9), risk(0.7)] })).toEqual({
      action: 'approve',
      reason: 'agents_agree',
      confidence: expect.closeTo(0.8, 10),
      instrument: 'EURUSD',
    });
    expect(await h.evaluate({ trigger, signals: [momentum(0.5), risk(0.6)] })).toMatchObject({ action: 'reject', reason: 'insufficient_confidence' });
    expect(await h.evaluate({ trigger, signals: [momentum(0.9), risk(0.9, 'blocked')] })).toMatchObject({ action: 'reject', reason: 'risk_blocked' });
  });

  it('times out with the missing agents', async () => {
    expect(await h.onTimeout({ trigger, signals: [momentum(0.8)] })).toEqual({
      action: 'timeout',
      reason: 'workflow_timeout',
      partial_signals: ['momentum'],
      missing_signals: ['risk'],
      confidence: 0.8,
    });
  });

  it('decides at the signal that completes the workflow', async () => {
    expect(await h.run({ trigger, signals: [risk(0.8), momentum(0.8)] })).toMatchObject({
      status: 'completed',
      afterSignals: 2,
      decision: { action: 'approve' },
    });
  });
});
`;
}

/** Adds the import after the last import line and the class to the first `providers: [...]` of the module. */
function registerInModule(source, type, cls, modulePath) {
  if (new RegExp(`\\b${cls}\\b`).test(source)) fail(`${cls} is already in ${modulePath}`);
  const providers = /providers:\s*\[([^\]]*)\]/.exec(source);
  if (!providers) fail(`no "providers: [...]" in ${modulePath}: add ${cls} there yourself`);
  const imports = [...source.matchAll(/^import [^;]*;[ \t]*$/gm)];
  if (imports.length === 0) fail(`no import line in ${modulePath}`);

  const inner = providers[1];
  const trimmed = inner.replace(/[\s,]*$/, '');
  const multiline = inner.includes('\n');
  let listed;
  if (trimmed.trim() === '') listed = cls;
  else if (multiline) {
    const indent = /\n([ \t]*)\S/.exec(inner)?.[1] ?? '    ';
    listed = `${trimmed},\n${indent}${cls},${inner
      .slice(trimmed.length)
      .replace(/^,/, '')
      .replace(/^[^\n]*/, '')}`;
  } else listed = `${trimmed}, ${cls}`;
  const providersStart = providers.index + providers[0].indexOf('[') + 1;
  let out = source.slice(0, providersStart) + listed + source.slice(providersStart + inner.length);

  const last = imports[imports.length - 1];
  const at = last.index + last[0].length;
  out = `${out.slice(0, at)}\nimport { ${cls} } from './${type}.strategy.js';${out.slice(at)}`;
  return out;
}

const { type, root } = parseArgs(process.argv.slice(2));
if (!TYPE_RE.test(type)) fail(`invalid workflow type "${type}": 1 to 64 characters of a-z 0-9 _ - (${TYPE_RE})`);

const dir = join(root, 'src/workflow/strategies');
const modulePath = join(dir, 'strategies.module.ts');
const strategyPath = join(dir, `${type}.strategy.ts`);
const specPath = join(dir, `${type}.strategy.spec.ts`);
const show = (p) => (relative(process.cwd(), p).startsWith('..') ? p : relative(process.cwd(), p));
if (!existsSync(modulePath)) fail(`${show(modulePath)} not found (is --root the project directory?)`);
for (const p of [strategyPath, specPath]) if (existsSync(p)) fail(`${show(p)} already exists`);

const cls = className(type);
const module = registerInModule(readFileSync(modulePath, 'utf8'), type, cls, show(modulePath));
writeFileSync(strategyPath, strategySource(type, cls));
writeFileSync(specPath, specSource(type, cls));
writeFileSync(modulePath, module);
process.stdout.write(
  `new:strategy: wrote ${show(strategyPath)} (${cls}) and ${show(specPath)}, listed ${cls} in ${show(modulePath)}\n` +
    `  next: replace the example rule, then npm run test:unit -- ${show(specPath)}\n`,
);
