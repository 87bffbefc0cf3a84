import 'reflect-metadata';
import { IsString, validateSync } from 'class-validator';
import { BadInputError } from '../../common/errors.js';
import { compileCheck } from './compiled-validation.js';
import { AgentSignalDto, TriggerDto } from './signal.dto.js';
import { MessageValidationPipe } from './validation.pipe.js';

type Dto = new () => object;

function classValidatorSays(dto: Dto, object: Record<string, unknown>): boolean {
  const instance = Object.setPrototypeOf({ ...object }, dto.prototype as object) as object;
  return validateSync(instance, { forbidUnknownValues: false }).length === 0;
}

/** Values of every kind, including the edges of the DTOs' constraints. */
const VALUES: unknown[] = [
  undefined,
  null,
  true,
  0,
  -1,
  0.5,
  1,
  1.0000001,
  2,
  1e308,
  -0,
  NaN,
  Infinity,
  -Infinity,
  '',
  'a',
  'buy',
  'x'.repeat(32),
  'x'.repeat(33),
  'x'.repeat(64),
  'x'.repeat(65),
  'x'.repeat(128),
  'x'.repeat(129),
  'fx-1.2:3_4',
  'has space',
  'a*b',
  'a{b}',
  'ünï',
  'trading',
  'Trading',
  'MOMENTUM',
  'risk-2',
  '2026-11-26T10:00:00Z',
  '2026-11-26T10:00:00.123+01:00',
  '2026-11-26',
  '2026-02-30T00:00:00Z',
  '2026-13-01T00:00:00Z',
  'yesterday',
  [],
  ['a'],
  {},
  { a: 1 },
  new Date(0),
];

const BASES: [Dto, Record<string, unknown>][] = [
  [
    TriggerDto,
    {
      corr_id: 'c-1',
      instrument: 'EURUSD',
      side: 'buy',
      strength: 0.8,
      price: 1.1,
      normalized_at: '2026-11-26T10:00:00Z',
      workflow_type: 'trading',
      timeout_seconds: 30,
      extra: { kept: true },
    },
  ],
  [
    AgentSignalDto,
    {
      corr_id: 'c-1',
      agent_name: 'momentum',
      signal_type: 'momentum',
      confidence: 0.7,
      timestamp: '2026-11-26T10:00:00Z',
      metadata: { a: 1 },
      analysis: { x: 1 },
    },
  ],
];

describe('compiled DTO check', () => {
  it.each(BASES.map(([dto, base]) => [dto.name, dto, base] as const))(
    '%s: compiles, and agrees with validateSync on every property set to every kind of value',
    (_name, dto, base) => {
      const check = compileCheck(dto);
      expect(check).not.toBeNull();
      const properties = [...Object.keys(base), 'absent_field'];
      let valid = 0;
      let invalid = 0;
      for (const property of properties) {
        for (const value of VALUES) {
          const object = { ...base, [property]: value };
          const expected = classValidatorSays(dto, object);
          expect({ property, value, valid: check!(object) }).toEqual({ property, value, valid: expected });
          if (expected) valid++;
          else invalid++;
        }
        const without = { ...base };
        delete without[property];
        expect({ property, missing: check!(without) }).toEqual({ property, missing: classValidatorSays(dto, without) });
      }
      // The table covers both answers, many times over.
      expect(valid).toBeGreaterThan(50);
      expect(invalid).toBeGreaterThan(100);
    },
  );

  it('gives up (null: validateSync for every message) on what it does not reproduce exactly', () => {
    class Tagged {
      @IsString({ each: true })
      tags!: string[];
    }
    class Grouped {
      @IsString({ groups: ['strict'] })
      name!: string;
    }
    expect(compileCheck(Tagged)).toBeNull();
    expect(compileCheck(Grouped)).toBeNull();
  });
});

describe('MessageValidationPipe', () => {
  const pipe = new MessageValidationPipe();

  it('returns a valid message as it is (unknown fields kept)', () => {
    const message = { ...BASES[1][1] };
    expect(pipe.transform(message, { type: 'body', metatype: AgentSignalDto })).toBe(message);
  });

  it("refuses an invalid one with validateSync's reasons, naming the fields", () => {
    const call = () => pipe.transform({ corr_id: 'a b', agent_name: 'momentum', confidence: 2 }, { type: 'body', metatype: AgentSignalDto });
    expect(call).toThrow(BadInputError);
    expect(call).toThrow(/corr_id must be 1 to 128 characters.*confidence must not be greater than 1/);
  });
});
