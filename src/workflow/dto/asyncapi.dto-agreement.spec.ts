import 'reflect-metadata';
import { asyncApiSchemas, readAsyncApi } from '../../../test/support/asyncapi.js';
import { BadInputError } from '../../common/errors.js';
import type { JsonObject } from '../workflow.types.js';
import { AgentSignalDto, TriggerDto } from './signal.dto.js';
import { messageValidationPipe } from './validation.pipe.js';

/*
 * The DTOs (through the service's own validation pipe) and docs/asyncapi.yaml's schemas (through ajv) accept and
 * refuse the same messages, on cases generated at every boundary. Each case goes through JSON first, as a
 * message does on the wire (so `undefined` is a missing field, and there is no NaN). Where a verdict is known,
 * the case also says it, so the two cannot agree on a wrong answer.
 */

const { document } = readAsyncApi();
const schema = asyncApiSchemas(document);

type Dto = new () => object;

function dtoAccepts(dto: Dto, message: JsonObject): boolean {
  try {
    messageValidationPipe.transform(message, { type: 'body', metatype: dto });
    return true;
  } catch (error) {
    if (!(error instanceof BadInputError) || error.code !== 'validation_failed') throw error;
    return false;
  }
}

interface Case {
  what: string;
  message: JsonObject;
  /** The verdict the contract gives, where the case is a boundary of it. */
  valid?: boolean;
}

const TRIGGER: JsonObject = {
  corr_id: 'sim-1.fx-0001',
  instrument: 'EURUSD',
  side: 'buy',
  strength: 0.62,
  price: 1.0852,
  normalized_at: '2026-12-07T10:15:30.125Z',
  workflow_type: 'trading',
  timeout_seconds: 4,
  source: 'agent-simulator',
};
const SIGNAL: JsonObject = {
  corr_id: 'sim-1.fx-0001',
  agent_name: 'momentum',
  signal_type: 'analysis',
  confidence: 0.75,
  timestamp: '2026-12-07T10:15:31.411Z',
  metadata: { simulator_run: 'sim-1' },
  analysis: { trend_direction: 'bearish', momentum_strength: 0.74 },
};

/** Every kind of JSON value, for the wrong-type cases. */
const KINDS: [string, unknown][] = [
  ['null', null],
  ['true', true],
  ['0', 0],
  ['1.5', 1.5],
  ['-1', -1],
  ['empty string', ''],
  ['string', 'buy'],
  ['array', ['a']],
  ['empty object', {}],
  ['object', { a: 1 }],
];

const TIMESTAMPS: [string, boolean][] = [
  ['2026-12-07T10:15:30Z', true],
  ['2026-12-07T10:15:30.125Z', true],
  ['2026-12-07T10:15:30.123456789+02:00', true],
  ['2024-02-29T00:00:00Z', true],
  ['2026-12-07', true],
  ['2025-02-29T00:00:00Z', false],
  ['2026-04-31T00:00:00Z', false],
  ['2026-13-01T00:00:00Z', false],
  ['2026-12-07T24:00:00Z', false],
  ['2026-12-07 10:15:30Z', true], // ISO 8601 allows a space for the T (isISO8601 does)
  ['yesterday', false],
  ['', false],
];

function corrIdCases(base: JsonObject): Case[] {
  return [
    { what: 'corr_id of 0 characters', message: { ...base, corr_id: '' }, valid: false },
    { what: 'corr_id of 1 character', message: { ...base, corr_id: 'a' }, valid: true },
    { what: 'corr_id of 128 characters', message: { ...base, corr_id: 'c'.repeat(128) }, valid: true },
    { what: 'corr_id of 129 characters', message: { ...base, corr_id: 'c'.repeat(129) }, valid: false },
    { what: 'corr_id of every allowed character', message: { ...base, corr_id: 'AZaz09._:-' }, valid: true },
    ...[' ', '*', '>', '/', '{', '\n', '\u00e9', '\u{1F600}', '\0', '#', '$', '@', '+', ',', '"'].map((c) => ({
      what: `corr_id with ${JSON.stringify(c)}`,
      message: { ...base, corr_id: `fx${c}1` },
      valid: false,
    })),
    { what: 'corr_id with a trailing newline', message: { ...base, corr_id: 'fx-1\n' }, valid: false },
    { what: 'corr_id missing', message: { ...base, corr_id: undefined }, valid: false },
  ];
}

/** A number field at its edges: values below `min` (or at it, when exclusive) and above `max` are refused. */
function numberCases(base: JsonObject, field: string, edges: [number, boolean][]): Case[] {
  return edges.map(([value, valid]) => ({ what: `${field} = ${value}`, message: { ...base, [field]: value }, valid }));
}

function lengthCases(base: JsonObject, field: string, min: number, max: number): Case[] {
  return [
    { what: `${field} of ${min - 1} characters`, message: { ...base, [field]: 'x'.repeat(min - 1) }, valid: min - 1 >= min },
    { what: `${field} of ${min} characters`, message: { ...base, [field]: 'x'.repeat(min) }, valid: true },
    { what: `${field} of ${max} characters`, message: { ...base, [field]: 'x'.repeat(max) }, valid: true },
    { what: `${field} of ${max + 1} characters`, message: { ...base, [field]: 'x'.repeat(max + 1) }, valid: false },
    { what: `${field} of ${max} characters, one an emoji`, message: { ...base, [field]: `${'x'.repeat(max - 1)}\u{1F600}` }, valid: true },
  ];
}

function timestampCases(base: JsonObject, field: string): Case[] {
  return TIMESTAMPS.map(([value, valid]) => ({ what: `${field} = ${JSON.stringify(value)}`, message: { ...base, [field]: value }, valid }));
}

/** Each field missing, and each field set to every kind of JSON value. */
function shapeCases(base: JsonObject, required: string[]): Case[] {
  const cases: Case[] = [];
  for (const field of Object.keys(base)) {
    cases.push({ what: `${field} missing`, message: { ...base, [field]: undefined }, valid: !required.includes(field) });
    for (const [kind, value] of KINDS) cases.push({ what: `${field} = ${kind}`, message: { ...base, [field]: value } });
  }
  cases.push({ what: 'an unknown field', message: { ...base, some_payload: { deep: [1, 2] } }, valid: true });
  cases.push({ what: 'only the required fields', message: Object.fromEntries(required.map((f) => [f, base[f]])), valid: true });
  cases.push({ what: 'no field at all', message: {}, valid: false });
  return cases;
}

const TRIGGER_CASES: Case[] = [
  { what: 'the base trigger', message: TRIGGER, valid: true },
  ...corrIdCases(TRIGGER),
  ...lengthCases(TRIGGER, 'instrument', 1, 64),
  ...lengthCases(TRIGGER, 'side', 1, 32),
  ...numberCases(TRIGGER, 'strength', [
    [-0.01, false],
    [0, true],
    [0.29, true],
    [0.3, true],
    [1, true],
    [1.01, true],
    [1e9, true],
  ]),
  ...numberCases(TRIGGER, 'price', [
    [-0.01, false],
    [0, true],
    [67250.5, true],
  ]),
  ...numberCases(TRIGGER, 'timeout_seconds', [
    [-1, false],
    [0, false],
    [0.001, true],
    [1, true],
    [3600, true],
    [3601, true],
    [86400 * 365, true],
  ]),
  ...timestampCases(TRIGGER, 'normalized_at'),
  { what: 'workflow_type of 64 characters', message: { ...TRIGGER, workflow_type: 'w'.repeat(64) }, valid: true },
  { what: 'workflow_type of 65 characters', message: { ...TRIGGER, workflow_type: 'w'.repeat(65) }, valid: false },
  { what: 'workflow_type empty', message: { ...TRIGGER, workflow_type: '' }, valid: false },
  { what: 'workflow_type in capitals', message: { ...TRIGGER, workflow_type: 'Trading' }, valid: false },
  { what: 'workflow_type with a dot', message: { ...TRIGGER, workflow_type: 'a.b' }, valid: false },
  { what: 'workflow_type of a-z 0-9 _ -', message: { ...TRIGGER, workflow_type: 'hedge_2-x' }, valid: true },
  ...shapeCases(TRIGGER, ['corr_id']),
];

const SIGNAL_CASES: Case[] = [
  { what: 'the base signal', message: SIGNAL, valid: true },
  ...corrIdCases(SIGNAL),
  ...numberCases(SIGNAL, 'confidence', [
    [-0.01, false],
    [0, true],
    [0.5, true],
    [1, true],
    [1.01, false],
    [1e9, false],
  ]),
  ...lengthCases(SIGNAL, 'signal_type', 1, 64),
  ...timestampCases(SIGNAL, 'timestamp'),
  { what: 'agent_name of 64 characters', message: { ...SIGNAL, agent_name: 'a'.repeat(64) }, valid: true },
  { what: 'agent_name of 65 characters', message: { ...SIGNAL, agent_name: 'a'.repeat(65) }, valid: false },
  { what: 'agent_name empty', message: { ...SIGNAL, agent_name: '' }, valid: false },
  { what: 'agent_name in capitals, with _ and -', message: { ...SIGNAL, agent_name: 'Risk_2-b' }, valid: true },
  { what: 'agent_name with a dot', message: { ...SIGNAL, agent_name: 'risk.v2' }, valid: false },
  { what: 'agent_name with a wildcard', message: { ...SIGNAL, agent_name: 'risk*' }, valid: false },
  { what: 'metadata an array', message: { ...SIGNAL, metadata: [] }, valid: false },
  ...shapeCases(SIGNAL, ['corr_id', 'agent_name']),
];

describe.each([
  ['TriggerDto', 'Trigger', TriggerDto, TRIGGER_CASES],
  ['AgentSignalDto', 'AgentSignal', AgentSignalDto, SIGNAL_CASES],
] as const)('%s and the schema %s', (_dtoName, schemaName, dto, cases) => {
  const validate = schema(schemaName);
  const wire = cases.map((c) => ({ ...c, message: JSON.parse(JSON.stringify(c.message)) as JsonObject }));

  it.each(wire.map((c) => [c.what, c] as const))('%s', (_what, { message, valid }) => {
    const verdicts = { dto: dtoAccepts(dto, message), schema: validate(message) };
    expect(verdicts).toEqual({ dto: verdicts.schema, schema: valid ?? verdicts.schema });
    if (valid !== undefined) expect(verdicts.dto).toBe(valid);
  });

  it('covers both verdicts, many times over', () => {
    const accepted = wire.filter((c) => validate(c.message)).length;
    expect(accepted).toBeGreaterThan(20);
    expect(wire.length - accepted).toBeGreaterThan(40);
  });
});
