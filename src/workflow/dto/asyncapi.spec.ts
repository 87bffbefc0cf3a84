import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { asyncApiSchemas, readAsyncApi, schemaName } from '../../../test/support/asyncapi.js';
import { NAME_RE } from '../../config/settings/nats-names.js';
import { AGENT_NAME, CORR_ID, WORKFLOW_TYPE } from '../../common/names.js';
import { DeadLetterHeaders } from '../../transport/jetstream/dead-letter.publisher.js';
import { strategyHarness, workflowSettings } from '../strategies/testing.js';
import { TradingDecisionStrategy } from '../strategies/trading.strategy.js';
import { cancelDecision, toDecisionMessage } from '../workflow-context.js';
import type { JsonObject } from '../workflow.types.js';
import { AgentSignalDto, TriggerDto } from './signal.dto.js';
import { messageValidationPipe } from './validation.pipe.js';
// @ts-expect-error: plain JavaScript, no declarations.
import { planWorkflows, signalMessage, triggerMessage } from '../../../scripts/simulator-messages.mjs';

/* docs/asyncapi.yaml, the message contract: a valid AsyncAPI document, whose examples, the agent simulator's
 * messages and the decisions the service builds from them all fit its schemas. */

interface PlannedWorkflow {
  corrId: string;
  weak: boolean;
  answers: { agent: string; payload: JsonObject }[];
}
const plan = planWorkflows as (count: number, seed: number, runId: string) => PlannedWorkflow[];
const trigger = triggerMessage as (wf: PlannedWorkflow, timeoutSeconds: number, now?: Date) => JsonObject;
const signal = signalMessage as (wf: PlannedWorkflow, answer: PlannedWorkflow['answers'][number], runId: string, now?: Date) => JsonObject;

const { text, document } = readAsyncApi();
const schema = asyncApiSchemas(document);
const errors = (validate: ReturnType<typeof schema>, value: unknown) => (validate(value) ? [] : validate.errors);

describe('docs/asyncapi.yaml', () => {
  it('is a valid AsyncAPI 3 document for the AsyncAPI parser (no error, no warning)', async () => {
    const { document: parsed, diagnostics } = await new Parser().parse(text);
    // Spectral severities: 0 error, 1 warning, 2 information, 3 hint.
    expect(diagnostics.filter((d) => Number(d.severity) <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`)).toEqual([]);
    expect(parsed?.version()).toMatch(/^3\./);
    expect(
      parsed
        ?.channels()
        .all()
        .map((c) => c.address())
        .sort(),
    ).toEqual([
      'audit.{corr_token}.decided',
      'audit.{corr_token}.{event}',
      'deadletter.signals',
      'orchestrated.decision',
      'signals.enriched.{agent}',
      'signals.normalized',
    ]);
    const operations = Object.fromEntries(
      parsed
        ?.operations()
        .all()
        .map((o) => [o.id(), `${o.action()} ${o.channels().all()[0].address()}`]) ?? [],
    );
    expect(operations).toEqual({
      receiveTrigger: 'receive signals.normalized',
      receiveAgentSignal: 'receive signals.enriched.{agent}',
      sendDecision: 'send orchestrated.decision',
      sendDeadLetter: 'send deadletter.signals',
      sendAuditEvent: 'send audit.{corr_token}.{event}',
      sendAuditDecided: 'send audit.{corr_token}.decided',
    });
  });

  it("carries the package's version", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(document.info.version).toBe(pkg.version);
  });

  it('refuses a broken document (the parser test can fail)', async () => {
    const { document: parsed, diagnostics } = await new Parser().parse(text.replace('action: send', 'action: publish'));
    expect(parsed).toBeUndefined();
    expect(diagnostics.some((d) => Number(d.severity) === 0)).toBe(true);
  });

  it("names the dead-letter headers the publisher sets, every one required, with the reason code 'poison'", () => {
    const headers = document.components.schemas.DeadLetterHeaders as { required: string[]; properties: Record<string, { enum?: string[] }> };
    expect([...headers.required].sort()).toEqual(Object.values(DeadLetterHeaders).sort());
    expect(headers.properties[DeadLetterHeaders.Code].enum).toEqual(
      expect.arrayContaining(['poison', 'max_deliveries', 'validation_failed', 'agent_mismatch']),
    );
  });

  it('writes the corr_id, workflow type and agent name as src/common/names.ts defines them, wherever it names them', () => {
    const schemas = document.components.schemas as Record<string, { pattern?: string; properties?: Record<string, { pattern?: string }> }>;
    const workflowId = `^${WORKFLOW_TYPE.body}:${CORR_ID.body}$`;
    expect({
      CorrId: schemas.CorrId.pattern,
      'Trigger.workflow_type': schemas.Trigger.properties?.workflow_type.pattern,
      'AgentSignal.agent_name': schemas.AgentSignal.properties?.agent_name.pattern,
      'Decision.workflow_type': schemas.Decision.properties?.workflow_type.pattern,
      // The workflow id and instance are schemas of their own, referred to by the decision, its header and the audit events.
      WorkflowId: schemas.WorkflowId.pattern,
      WorkflowInstance: schemas.WorkflowInstance.pattern,
      'Decision.workflow_id': (schemas.Decision.properties?.workflow_id as { $ref?: string }).$ref,
      'DecisionHeaders.Nats-Msg-Id': (schemas.DecisionHeaders.properties?.['Nats-Msg-Id'] as { $ref?: string }).$ref,
    }).toEqual({
      CorrId: CORR_ID.pattern,
      'Trigger.workflow_type': WORKFLOW_TYPE.pattern,
      'AgentSignal.agent_name': AGENT_NAME.pattern,
      'Decision.workflow_type': WORKFLOW_TYPE.pattern,
      WorkflowId: workflowId,
      WorkflowInstance: `${workflowId.slice(0, -1)}@\\d+$`,
      'Decision.workflow_id': '#/components/schemas/WorkflowId',
      'DecisionHeaders.Nats-Msg-Id': '#/components/schemas/WorkflowInstance',
    });
    // No other pattern of the document spells out one of these names (a copy the check above would miss).
    // The audit events' `replica` is META_AGENT_NAME (its own pattern, whose characters happen to be an agent name's) @ host : pid.
    const replica = `^${NAME_RE.source.slice(1, -1)}@\\S*:\\d+$`;
    expect((schemas.AuditEnvelope.properties?.replica as { pattern?: string }).pattern).toBe(replica);
    const known = new Set([CORR_ID.pattern, WORKFLOW_TYPE.pattern, AGENT_NAME.pattern, workflowId, `${workflowId.slice(0, -1)}@\\d+$`, replica]);
    const spelled = [CORR_ID, WORKFLOW_TYPE, AGENT_NAME].map((name) => name.body.slice(0, name.body.indexOf(']') + 1));
    const strays: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (typeof node !== 'object' || node === null) return;
      for (const [key, value] of Object.entries(node)) {
        if (key === 'pattern' && typeof value === 'string' && spelled.some((chars) => value.includes(chars)) && !known.has(value))
          strays.push(`${at}: ${value}`);
        walk(value, `${at}/${key}`);
      }
    };
    walk(document, '');
    expect(strays).toEqual([]);
  });

  it('has examples that fit their own message (headers and payload)', () => {
    let checked = 0;
    for (const [name, message] of Object.entries(document.components.messages)) {
      expect({ name, hasExamples: (message.examples?.length ?? 0) > 0 }).toEqual({ name, hasExamples: true });
      for (const example of message.examples ?? []) {
        const where = `${name}/${example.name}`;
        if (message.payload.$ref) expect({ where, errors: errors(schema(schemaName(message.payload.$ref)), example.payload) }).toEqual({ where, errors: [] });
        if (message.headers) expect({ where, errors: errors(schema(schemaName(message.headers.$ref)), example.headers) }).toEqual({ where, errors: [] });
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(17);
  });

  it("fits every message of the agent simulator, and the service's validation takes them too", () => {
    const runId = 'sim-test-0001';
    let triggers = 0;
    let signals = 0;
    for (const seed of [1, 42, 4242]) {
      for (const wf of plan(120, seed, runId)) {
        const t = trigger(wf, 4);
        expect({ t, errors: errors(schema('Trigger'), t) }).toEqual({ t, errors: [] });
        expect(messageValidationPipe.transform(t, { type: 'body', metatype: TriggerDto })).toBe(t);
        triggers++;
        for (const answer of wf.answers) {
          const s = signal(wf, answer, runId);
          expect({ s, errors: errors(schema('AgentSignal'), s) }).toEqual({ s, errors: [] });
          expect(messageValidationPipe.transform(s, { type: 'body', metatype: AgentSignalDto })).toBe(s);
          signals++;
        }
      }
    }
    expect(triggers).toBe(360);
    expect(signals).toBeGreaterThan(800);
  });

  it("fits the decisions the service builds from the simulator's messages (completed, timeout, failed, cancelled)", async () => {
    const runId = 'sim-test-0002';
    const harness = strategyHarness(new TradingDecisionStrategy(workflowSettings()), { workflowType: 'trading' });
    const statuses = new Set<string>();
    const actions = new Set<string>();
    const check = (message: JsonObject, startedAt: string) => {
      const headers = { 'Nats-Msg-Id': `${String(message.workflow_id)}@${Date.parse(startedAt)}` };
      expect({ message, errors: errors(schema('Decision'), message) }).toEqual({ message, errors: [] });
      expect({ headers, errors: errors(schema('DecisionHeaders'), headers) }).toEqual({ headers, errors: [] });
      statuses.add(String(message.status));
      actions.add(String((message.decision as JsonObject).action));
    };
    for (const wf of plan(80, 7, runId)) {
      const scenario = { trigger: trigger(wf, 4), signals: wf.answers.map((a) => signal(wf, a, runId)) };
      const outcome = await harness.run(scenario);
      if (outcome.status === 'declined') continue;
      const ctx = await harness.context(scenario);
      const message = toDecisionMessage(ctx, 'trading_decision_meta_agent', outcome.status, outcome.decision, Date.parse(ctx.decidedAt));
      check(message as unknown as JsonObject, ctx.startedAt);
      if (outcome.status === 'completed') {
        const failed = { action: 'error', reason: 'strategy_error', error: 'Error: boom' };
        check(toDecisionMessage(ctx, 'trading_decision_meta_agent', 'failed', failed) as unknown as JsonObject, ctx.startedAt);
        check(toDecisionMessage(ctx, 'trading_decision_meta_agent', 'cancelled', cancelDecision()) as unknown as JsonObject, ctx.startedAt);
      }
    }
    expect([...statuses].sort()).toEqual(['cancelled', 'completed', 'failed', 'timeout']);
    expect([...actions].sort()).toEqual(expect.arrayContaining(['cancelled', 'error', 'no_trade', 'timeout', 'trade']));
  });

  it('refuses decisions that break the contract (the decision schema can fail)', () => {
    const valid = document.components.messages.Decision.examples![0].payload as JsonObject;
    expect(errors(schema('Decision'), valid)).toEqual([]);
    for (const broken of [
      { ...valid, status: 'pending' },
      { ...valid, workflow_id: 'c-1' },
      { ...valid, orchestrated_at: '2026-12-07' },
      { ...valid, decision: { reason: 'no action' } },
      { ...valid, source_signals: [{ agent: 'risk', confidence: 0.9 }] },
      Object.fromEntries(Object.entries(valid).filter(([k]) => k !== 'metadata')),
    ]) {
      expect({ broken, valid: schema('Decision')(broken) }).toEqual({ broken, valid: false });
    }
  });
});
