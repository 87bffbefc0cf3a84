import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { AGENT_NAME, WORKFLOW_TYPE } from '../../../common/names.js';

/** A JSON scalar, as a condition compares it. */
export type Scalar = string | number | boolean | null;

/** A test on one field (dotted path) of a message: every operator given must hold. */
export interface Condition {
  field: string;
  equals?: Scalar;
  in?: Scalar[];
  gte?: number;
  lte?: number;
}

export interface VetoRule extends Condition {
  agent: string;
}

/** One workflow type of the file (README "Adding a workflow type"). */
export interface WorkflowTypeSpec {
  required_agents: string[];
  quorum?: number;
  timeout_seconds?: number;
  start_when?: Condition;
  veto?: VetoRule[];
  vote: { field: string; weights: Record<string, number>; min_confidence?: number };
  position_size?: { agent: string; field: string; scale_by_confidence?: boolean };
}

export interface WorkflowsFile {
  workflow_types: Record<string, WorkflowTypeSpec>;
}

/** An invalid `META_AGENT_WORKFLOWS_FILE`: one line naming the file, the type and the field. */
export class WorkflowsFileError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`invalid workflow file ${path}: ${reason}`);
    this.name = 'WorkflowsFileError';
  }
}

/** The JSON Schema of the file, shipped next to this module (copied to dist/ by scripts/copy-assets.mjs). */
export const WORKFLOWS_SCHEMA_URL = new URL('./workflows.schema.json', import.meta.url);

let validator: ReturnType<Ajv['compile']> | undefined;

function validate(data: unknown): ErrorObject | undefined {
  if (!validator) {
    const schema = JSON.parse(readFileSync(WORKFLOWS_SCHEMA_URL, 'utf8')) as object;
    validator = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true }).compile(schema);
  }
  return validator(data) ? undefined : (validator.errors?.[0] ?? undefined);
}

const OPERATORS = ['equals', 'in', 'gte', 'lte'] as const;
const TYPE_NAME = `a workflow type: ${WORKFLOW_TYPE.rule}`;
const AGENT_NAME_RULE = `an agent name: ${AGENT_NAME.rule}`;

/** `/workflow_types/hedge/veto/0/agent` → `workflow_types.hedge.veto[0].agent` (array indexes by the data). */
function fieldPath(data: unknown, pointer: string, extra?: string): string {
  const segments =
    pointer === ''
      ? []
      : pointer
          .slice(1)
          .split('/')
          .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) segments.push(extra);
  let out = '';
  let node: unknown = data;
  for (const segment of segments) {
    out += Array.isArray(node) ? `[${segment}]` : `${out === '' ? '' : '.'}${segment}`;
    node = typeof node === 'object' && node !== null && Object.hasOwn(node, segment) ? (node as Record<string, unknown>)[segment] : undefined;
  }
  return out;
}

function describe(data: unknown, error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required') return `${fieldPath(data, error.instancePath, String(params.missingProperty))}: is required`;
  if (error.keyword === 'additionalProperties') {
    const key = String(params.additionalProperty);
    const path = fieldPath(data, error.instancePath, key);
    if (error.instancePath === '/workflow_types') return `${path}: is not ${TYPE_NAME}`;
    if (error.instancePath.endsWith('/vote/weights')) return `${path}: is not ${AGENT_NAME_RULE}`;
    return `${path}: is not a known field`;
  }
  if (error.keyword === 'pattern' && error.instancePath.endsWith('/field')) return `${fieldPath(data, error.instancePath)}: must be a dotted path (a.b.c)`;
  if (error.keyword === 'pattern') return `${fieldPath(data, error.instancePath)}: is not ${AGENT_NAME_RULE}`;
  const path = fieldPath(data, error.instancePath);
  return `${path === '' ? '(the file)' : path}: ${error.message ?? 'is invalid'}`;
}

/** What the schema cannot say: a condition needs an operator, a quorum fits its agents, agents are accepted ones. */
function check(file: WorkflowsFile, knownAgents: ReadonlySet<string> | null): string | undefined {
  for (const [type, spec] of Object.entries(file.workflow_types)) {
    const at = `workflow_types.${type}`;
    const conditions: [string, Condition][] = [];
    if (spec.start_when) conditions.push([`${at}.start_when`, spec.start_when]);
    (spec.veto ?? []).forEach((rule, i) => conditions.push([`${at}.veto[${i}]`, rule]));
    for (const [path, condition] of conditions) {
      if (!OPERATORS.some((op) => Object.hasOwn(condition, op))) return `${path}: needs one of ${OPERATORS.join(', ')}`;
    }
    if (spec.quorum !== undefined && spec.quorum > spec.required_agents.length) {
      return `${at}.quorum: must be <= ${spec.required_agents.length} (the number of required_agents)`;
    }
    if (knownAgents) {
      const agents: [string, string][] = [
        ...spec.required_agents.map((a, i): [string, string] => [`${at}.required_agents[${i}]`, a]),
        ...(spec.veto ?? []).map((r, i): [string, string] => [`${at}.veto[${i}].agent`, r.agent]),
        ...Object.keys(spec.vote.weights).map((a): [string, string] => [`${at}.vote.weights.${a}`, a]),
        ...(spec.position_size ? [[`${at}.position_size.agent`, spec.position_size.agent] as [string, string]] : []),
      ];
      for (const [path, agent] of agents) {
        if (!knownAgents.has(agent)) return `${path}: agent "${agent}" is not in META_AGENT_REQUIRED_AGENTS or META_AGENT_OPTIONAL_AGENTS`;
      }
    }
  }
  return undefined;
}

export interface WorkflowsFileOptions {
  /** Agents the service accepts signals from (META_AGENT_REQUIRED_AGENTS + OPTIONAL_AGENTS); empty: any. */
  knownAgents?: string[];
}

/** Parses (YAML, or JSON for a `.json` file) and validates the text of a workflows file; throws `WorkflowsFileError`. */
export function parseWorkflowsFile(text: string, path: string, options: WorkflowsFileOptions = {}): WorkflowsFile {
  let data: unknown;
  const json = extname(path).toLowerCase() === '.json';
  try {
    data = json ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new WorkflowsFileError(path, `not valid ${json ? 'JSON' : 'YAML'}: ${(error as Error).message.split('\n')[0]}`);
  }
  const error = validate(data);
  if (error) throw new WorkflowsFileError(path, describe(data, error));
  const file = data as WorkflowsFile;
  const known = options.knownAgents && options.knownAgents.length > 0 ? new Set(options.knownAgents) : null;
  const reason = check(file, known);
  if (reason) throw new WorkflowsFileError(path, reason);
  return file;
}

/** Reads and validates `META_AGENT_WORKFLOWS_FILE`. */
export function readWorkflowsFile(path: string, options: WorkflowsFileOptions = {}): WorkflowsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new WorkflowsFileError(path, `cannot read it: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseWorkflowsFile(text, path, options);
}
