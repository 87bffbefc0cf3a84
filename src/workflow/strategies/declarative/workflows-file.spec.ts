import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_NAME, WORKFLOW_TYPE } from '../../../common/names.js';
import { parseWorkflowsFile, readWorkflowsFile, WORKFLOWS_SCHEMA_URL, WorkflowsFileError } from './workflows-file.js';

/** The example file shipped in deploy/ (the README's example). */
const VALID = readFileSync(new URL('../../../../deploy/workflows/hedge.example.yaml', import.meta.url), 'utf8');

/** The one-line reason `parseWorkflowsFile` gives for a file, or 'valid'. */
function reason(text: string, path = 'w.yaml', knownAgents?: string[]): string {
  try {
    parseWorkflowsFile(text, path, { knownAgents });
    return 'valid';
  } catch (error) {
    expect(error).toBeInstanceOf(WorkflowsFileError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message.startsWith(`invalid workflow file ${path}: `)).toBe(true);
    return message.slice(`invalid workflow file ${path}: `.length);
  }
}

const hedge = (replace: string, by: string) => {
  expect(VALID).toContain(replace);
  return VALID.replace(replace, by);
};

describe('the workflows file (META_AGENT_WORKFLOWS_FILE)', () => {
  it('writes the workflow type and agent name patterns of its JSON Schema as src/common/names.ts defines them', () => {
    const text = readFileSync(WORKFLOWS_SCHEMA_URL, 'utf8');
    const schema = JSON.parse(text) as {
      properties: { workflow_types: { patternProperties: Record<string, unknown> } };
      definitions: {
        agent: { pattern: string };
        workflowType: { properties: { vote: { properties: { weights: { patternProperties: Record<string, unknown> } } } } };
      };
    };
    expect(Object.keys(schema.properties.workflow_types.patternProperties)).toEqual([WORKFLOW_TYPE.pattern]);
    expect(schema.definitions.agent.pattern).toBe(AGENT_NAME.pattern);
    expect(Object.keys(schema.definitions.workflowType.properties.vote.properties.weights.patternProperties)).toEqual([AGENT_NAME.pattern]);
    // Only those three places spell a name's pattern out.
    const spelled = (pattern: string) => text.split(JSON.stringify(pattern)).length - 1;
    expect({ type: spelled(WORKFLOW_TYPE.pattern), agent: spelled(AGENT_NAME.pattern) }).toEqual({ type: 1, agent: 2 });
  });

  it('accepts the documented example, in YAML and in JSON', () => {
    expect(reason(VALID)).toBe('valid');
    const file = parseWorkflowsFile(VALID, 'w.yaml');
    expect(reason(JSON.stringify(file), 'w.json')).toBe('valid');
    expect(file.workflow_types.hedge.vote.weights).toEqual({ momentum: 2, sentiment: 1 });
  });

  it('names the type and the field of a value out of bounds or of the wrong type', () => {
    expect(reason(hedge('quorum: 2', 'quorum: 0'))).toBe('workflow_types.hedge.quorum: must be >= 1');
    expect(reason(hedge('quorum: 2', 'quorum: 1.5'))).toBe('workflow_types.hedge.quorum: must be integer');
    expect(reason(hedge('quorum: 2', 'quorum: 4'))).toBe('workflow_types.hedge.quorum: must be <= 3 (the number of required_agents)');
    expect(reason(hedge('timeout_seconds: 30', 'timeout_seconds: 0'))).toBe('workflow_types.hedge.timeout_seconds: must be > 0');
    expect(reason(hedge('min_confidence: 0.6', 'min_confidence: 1.5'))).toBe('workflow_types.hedge.vote.min_confidence: must be <= 1');
    expect(reason(hedge('momentum: 2,', 'momentum: -2,'))).toBe('workflow_types.hedge.vote.weights.momentum: must be >= 0');
    expect(reason(hedge('gte: 0.3', 'gte: high'))).toBe('workflow_types.hedge.start_when.gte: must be number');
    expect(reason(hedge('[risk, momentum, sentiment]', 'risk'))).toBe('workflow_types.hedge.required_agents: must be array');
    expect(reason(hedge('[risk, momentum, sentiment]', '[risk, risk]'))).toMatch(/^workflow_types\.hedge\.required_agents: must NOT have duplicate items/);
  });

  it('names missing and unknown fields, array items included', () => {
    expect(reason(hedge('      field: analysis.trend_direction\n', ''))).toBe('workflow_types.hedge.vote.field: is required');
    expect(reason(hedge('- { agent: risk, field', '- { field'))).toBe('workflow_types.hedge.veto[0].agent: is required');
    expect(reason(hedge('quorum: 2', 'qorum: 2'))).toBe('workflow_types.hedge.qorum: is not a known field');
    expect(reason(hedge('equals: blocked', 'matches: blocked'))).toBe('workflow_types.hedge.veto[0].matches: is not a known field');
    expect(reason(hedge('{ agent: risk,', '{ agent: "risk level",'))).toBe(
      'workflow_types.hedge.veto[0].agent: is not an agent name: 1 to 64 characters of A-Z a-z 0-9 _ -',
    );
    expect(reason(hedge('field: analysis.risk_level', 'field: analysis..risk_level'))).toBe(
      'workflow_types.hedge.veto[0].field: must be a dotted path (a.b.c)',
    );
    expect(reason(hedge('equals: blocked', 'in: blocked'))).toBe('workflow_types.hedge.veto[0].in: must be array');
    expect(reason(hedge('equals: blocked }', '}'))).toBe('workflow_types.hedge.veto[0]: needs one of equals, in, gte, lte');
    expect(reason(hedge('  hedge:', '  Hedge:'))).toBe('workflow_types.Hedge: is not a workflow type: 1 to 64 characters of a-z 0-9 _ -');
    expect(reason('types: {}')).toBe('workflow_types: is required');
    expect(reason('')).toBe('(the file): must be object');
  });

  it('an agent the service does not accept signals from is an error (when the lists are set)', () => {
    expect(reason(VALID, 'w.yaml', ['risk', 'momentum'])).toBe(
      'workflow_types.hedge.required_agents[2]: agent "sentiment" is not in META_AGENT_REQUIRED_AGENTS or META_AGENT_OPTIONAL_AGENTS',
    );
    expect(reason(VALID, 'w.yaml', ['risk', 'momentum', 'sentiment'])).toBe('valid');
  });

  it('a syntax error is one line too', () => {
    expect(reason('workflow_types: { hedge: [', 'w.yaml')).toMatch(/^not valid YAML: /);
    expect(reason('{"workflow_types": ', 'w.json')).toMatch(/^not valid JSON: /);
    expect(reason('workflow_types:\n  a: {}\n  a: {}\n')).toMatch(/^not valid YAML: .*[Uu]nique/);
  });

  it('reads the file, and names an unreadable one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'workflows-'));
    const path = join(dir, 'workflows.yaml');
    writeFileSync(path, VALID);
    expect(Object.keys(readWorkflowsFile(path).workflow_types)).toEqual(['hedge']);
    expect(() => readWorkflowsFile(join(dir, 'none.yaml'))).toThrow(`invalid workflow file ${join(dir, 'none.yaml')}: cannot read it: ENOENT`);
  });
});
