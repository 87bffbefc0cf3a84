import type { HarnessBus, SentMessage } from './bus.js';
import { agentSubject, TRIGGER_SUBJECT } from './load.js';

/*
 * Hostile input, interleaved with the real traffic. Each message carries a `Fault-Id` header (the
 * dead-letter stream keeps original headers), and an expectation:
 *  - `dl`: malformed; must be dead-lettered once, byte for byte, with one of these reason codes;
 *  - `accept`: odd but valid (future timestamps, unicode in free fields, separators in corr_ids, declined
 *    triggers); must not be dead-lettered and must not open or change any workflow (they use corr_ids
 *    no trigger ever opens, or are declined).
 * Malformed messages often name a real workflow's corr_id: they must not change it.
 */

export type Expectation = { dl: string[] } | { accept: true };

export interface HostileMessage {
  id: number;
  label: string;
  subject: string;
  data: string | Uint8Array;
  expect: Expectation;
  /** Corr_id of an `accept` message (it must never get a workflow or a decision). */
  corrId?: string;
  message?: SentMessage;
}

type Case = (c: Ctx) => Omit<HostileMessage, 'id'>;
interface Ctx {
  rng: () => number;
  /** A real workflow's corr_id half the time, else a corr_id no trigger opens. */
  target: () => string;
  /** A corr_id no trigger ever opens. */
  stray: () => string;
  now: () => string;
}

const INVALID_JSON = ['invalid_json'];
const VALIDATION = ['validation_failed'];
const TOO_DEEP = ['too_deep'];

const j = (v: unknown) => JSON.stringify(v);
const sig = (c: Ctx, extra: Record<string, unknown> = {}, agent = 'momentum') => ({
  corr_id: c.target(),
  agent_name: agent,
  signal_type: 'analysis',
  confidence: 0.9,
  timestamp: c.now(),
  analysis: { trend_direction: 'bullish', momentum_strength: 0.9 },
  ...extra,
});
const trig = (c: Ctx, extra: Record<string, unknown> = {}) => ({
  corr_id: c.target(),
  instrument: 'EURUSD',
  side: 'buy',
  strength: 0.8,
  price: 1.1,
  normalized_at: c.now(),
  timeout_seconds: 2,
  ...extra,
});
const onSig = (label: string, data: string | Uint8Array, expect: Expectation, agent = 'momentum') => ({ label, subject: agentSubject(agent), data, expect });
const onTrig = (label: string, data: string | Uint8Array, expect: Expectation) => ({ label, subject: TRIGGER_SUBJECT, data, expect });
const nest = (depth: number, open: string, close: string, inner: string) => open.repeat(depth) + inner + close.repeat(depth);
const bytes = (...b: number[]) => new Uint8Array(b);

const CASES: Case[] = [
  // Not JSON, or not an object.
  () => onSig('not json: text', 'hello, agents', { dl: INVALID_JSON }),
  () => onSig('not json: empty payload', '', { dl: INVALID_JSON }),
  () => onTrig('not json: truncated', '{"corr_id": "x", "instrument": "EUR', { dl: INVALID_JSON }),
  () => onSig('not json: single quotes', "{'corr_id': 'x', 'agent_name': 'momentum'}", { dl: INVALID_JSON }),
  () => onTrig('not json: trailing comma', '{"corr_id":"x","side":"buy",}', { dl: INVALID_JSON }),
  (c) => onSig('NaN literal', j(sig(c)).replace('"confidence":0.9', '"confidence":NaN'), { dl: INVALID_JSON }),
  (c) => onTrig('Infinity literal', j(trig(c)).replace('"strength":0.8', '"strength":Infinity'), { dl: INVALID_JSON }),
  (c) => onSig('raw control character in a string', `{"corr_id":"${c.target()}","agent_name":"momen\u0001tum"}`, { dl: INVALID_JSON }),
  () => onSig('JSON null', 'null', { dl: ['not_an_object'] }),
  () => onTrig('JSON array', '[{"corr_id":"x"}]', { dl: ['not_an_object'] }),
  () => onSig('JSON number', '42', { dl: ['not_an_object'] }),
  () => onTrig('JSON string', '"signals"', { dl: ['not_an_object'] }),
  () => onSig('invalid UTF-8', bytes(0x7b, 0x22, 0x63, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d), { dl: ['invalid_utf8'] }),
  () => onTrig('overlong UTF-8', bytes(0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d), { dl: ['invalid_utf8'] }),
  // Wrong types and missing fields.
  () => onTrig('corr_id a number', j({ corr_id: 12345, side: 'buy', strength: 0.9 }), { dl: VALIDATION }),
  () => onSig('corr_id null', j({ corr_id: null, agent_name: 'risk', confidence: 0.5 }), { dl: VALIDATION }, 'risk'),
  () => onSig('corr_id an array', j({ corr_id: ['a'], agent_name: 'momentum' }), { dl: VALIDATION }),
  () => onTrig('corr_id an object', j({ corr_id: { $gt: '' }, side: 'buy', strength: 0.9 }), { dl: VALIDATION }),
  (c) => onTrig('strength a string', j(trig(c, { strength: 'high' })), { dl: VALIDATION }),
  (c) => onTrig('price a boolean', j(trig(c, { price: true })), { dl: VALIDATION }),
  (c) => onTrig('timeout_seconds a string', j(trig(c, { timeout_seconds: '3' })), { dl: VALIDATION }),
  (c) => onTrig('workflow_type a number', j(trig(c, { workflow_type: 7 })), { dl: VALIDATION }),
  (c) => onTrig('instrument an object', j(trig(c, { instrument: { toString: 'x' } })), { dl: VALIDATION }),
  (c) => onTrig('normalized_at a number', j(trig(c, { normalized_at: 1700000000 })), { dl: VALIDATION }),
  (c) => onSig('agent_name a number', j(sig(c, { agent_name: 5 })), { dl: VALIDATION }),
  (c) => onSig('confidence a string', j(sig(c, { confidence: '0.99' })), { dl: VALIDATION }),
  (c) => onSig('timestamp a number', j(sig(c, { timestamp: 1700000000000 })), { dl: VALIDATION }),
  (c) => onSig('metadata a string', j(sig(c, { metadata: 'x' })), { dl: VALIDATION }),
  (c) => onSig('metadata an array', j(sig(c, { metadata: [1, 2] })), { dl: VALIDATION }),
  () => onTrig('empty trigger', '{}', { dl: VALIDATION }),
  () => onTrig('trigger without corr_id', j({ instrument: 'EURUSD', side: 'buy', strength: 0.9 }), { dl: VALIDATION }),
  (c) => onSig('signal without agent_name', j({ corr_id: c.target(), confidence: 0.9, timestamp: c.now() }), { dl: VALIDATION }),
  () => onSig('signal without corr_id', j({ agent_name: 'momentum', confidence: 0.9 }), { dl: VALIDATION }),
  // Numbers out of range.
  (c) => onSig('negative confidence', j(sig(c, { confidence: -0.5 })), { dl: VALIDATION }),
  (c) => onSig('confidence above 1', j(sig(c, { confidence: 1.5 })), { dl: VALIDATION }, 'risk'),
  (c) => onTrig('negative strength', j(trig(c, { strength: -1 })), { dl: VALIDATION }),
  (c) => onTrig('negative price', j(trig(c, { price: -5 })), { dl: VALIDATION }),
  (c) => onTrig('negative timeout', j(trig(c, { timeout_seconds: -3 })), { dl: VALIDATION }),
  (c) => onTrig('zero timeout', j(trig(c, { timeout_seconds: 0 })), { dl: VALIDATION }),
  (c) => onTrig('timeout overflowing to Infinity', j(trig(c)).replace('"timeout_seconds":2', '"timeout_seconds":1e400'), { dl: VALIDATION }),
  // Timestamps.
  (c) => onSig('timestamp not a date', j(sig(c, { timestamp: 'yesterday' })), { dl: VALIDATION }),
  (c) => onSig('timestamp impossible', j(sig(c, { timestamp: '2024-13-45T99:99:99Z' })), { dl: VALIDATION }),
  (c) => onTrig('normalized_at empty', j(trig(c, { normalized_at: '' })), { dl: VALIDATION }),
  // corr_ids with Redis-glob, hash-tag, key-separator, unicode and control characters.
  ...['*', 'a*', 'flt.*', 'wf:*', 'a?b', '[ab]', '{ma:0}', 'a}b', 'a b', 'a/b', 'a\\b', 'a|b', 'a%b', 'a,b', '', 'x'.repeat(129)].map(
    (bad): Case =>
      (c) =>
        c.rng() < 0.5
          ? onSig(`corr_id ${JSON.stringify(bad).slice(0, 20)}`, j(sig(c, { corr_id: bad })), { dl: VALIDATION })
          : onTrig(`corr_id ${JSON.stringify(bad).slice(0, 20)}`, j(trig(c, { corr_id: bad })), { dl: VALIDATION }),
  ),
  ...['wf-é', 'a\u0000b', 'a\nb', 'a\tb', '🚀', 'a\u202eb', 'a\u200bb', 'ｆｕｌｌ', 'a\u0085b', '\ud800'].map(
    (bad): Case =>
      (c) =>
        onSig(`corr_id unicode/control ${JSON.stringify(bad)}`, j(sig(c, { corr_id: bad })), { dl: VALIDATION }),
  ),
  // Prototype keys, plain and hidden behind \u escapes.
  (c) => onSig('__proto__ key', `{"__proto__":{"polluted":true},${j(sig(c)).slice(1)}`, { dl: ['forbidden_key'] }),
  (c) => onSig('nested __proto__ key', j(sig(c)).replace('"analysis":{', '"analysis":{"__proto__":{"isAdmin":true},'), { dl: ['forbidden_key'] }),
  (c) => onTrig('constructor.prototype keys', `{"constructor":{"prototype":{"x":1}},${j(trig(c)).slice(1)}`, { dl: ['forbidden_key'] }),
  (c) => onSig('__proto__ key written with \\u escapes', `{"\\u005f\\u005fproto__":{"polluted":true},${j(sig(c)).slice(1)}`, { dl: ['forbidden_key'] }),
  (c) => onTrig('constructor key written with \\u escapes', `{"constructo\\u0072":{"prototype":1},${j(trig(c)).slice(1)}`, { dl: ['forbidden_key'] }),
  // Unknown agents and workflow types (including names of Object.prototype members).
  ...['evil', 'MOMENTUM', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'normalizer'].map(
    (agent): Case =>
      (c) =>
        onSig(`unknown agent ${agent}`, j(sig(c, { agent_name: agent })), { dl: ['unknown_agent'] }, agent.replace(/[^A-Za-z0-9_-]/g, '') || 'x'),
  ),
  (c) => onSig('agent on the wrong subject', j(sig(c, { agent_name: 'intruder' })), { dl: ['agent_mismatch'] }, 'risk'),
  (c) => onSig('an agent speaking for another', j(sig(c)), { dl: ['agent_mismatch'] }, 'risk'),
  ...['nonexistent', 'rebalance', '__proto__', 'constructor', 'tostring'].map(
    (type): Case =>
      (c) =>
        onTrig(`unknown workflow type ${type}`, j(trig(c, { workflow_type: type })), { dl: ['unknown_workflow_type'] }),
  ),
  (c) => onTrig('workflow type not a type name', j(trig(c, { workflow_type: 'Trading!' })), { dl: VALIDATION }),
  // Deep nesting, wherever it is.
  (c) => onSig('deeply nested analysis', j(sig(c)).replace('"analysis":{', `"deep":${nest(20000, '{"a":', '}', '1')},"analysis":{`), { dl: TOO_DEEP }),
  (c) =>
    onSig('deeply nested metadata', j(sig(c)).replace('"analysis":{', `"metadata":${nest(5000, '{"m":', '}', '1')},"analysis":{`), { dl: TOO_DEEP }, 'risk'),
  (c) => onTrig('deeply nested array field', j(trig(c)).replace('"side":"buy"', `"side":"buy","levels":${nest(50000, '[', ']', '0')}`), { dl: TOO_DEEP }),
  () => onTrig('deeply nested corr_id', `{"corr_id":${nest(3000, '[', ']', '"x"')},"side":"buy"}`, { dl: TOO_DEEP }),
  () => onSig('a deeply nested array alone', nest(100000, '[', ']', ''), { dl: ['not_an_object', 'too_deep'] }),
  // Huge payloads (over the 256 KiB limit).
  (c) =>
    c.rng() < 0.15
      ? onSig('huge payload', j(sig(c, { blob: 'A'.repeat(300 * 1024) })), { dl: ['payload_too_large'] })
      : onSig('not json: text', 'x', { dl: INVALID_JSON }),
  // Odd but valid: must be accepted, and change nothing.
  (c) => ({ ...onSig('future timestamp', j(sig(c, { corr_id: c.stray(), timestamp: '2999-12-31T23:59:59.999Z' })), { accept: true }) }),
  (c) => ({
    ...onSig(
      'unicode in free fields',
      j(sig(c, { corr_id: c.stray(), signal_type: 'αβγ 🚀', analysis: { note: 'ü\u202e\u0000\u2028' } }, 'sentiment')),
      { accept: true },
      'sentiment',
    ),
  }),
  (c) => ({
    ...onSig(
      'moderate nesting',
      j(sig(c, { corr_id: c.stray(), analysis: JSON.parse(nest(30, '{"a":', '}', '1')) as unknown }, 'risk')),
      { accept: true },
      'risk',
    ),
  }),
  (c) => ({ ...onSig('key separators in corr_id', j(sig(c, { corr_id: `${c.stray()}:wf:sig:early` })), { accept: true }) }),
  (c) => ({ ...onSig('harmless extra fields', j(sig(c, { corr_id: c.stray(), proto: 1, __proto: 2, prototypes: [], constructors: 'x' })), { accept: true }) }),
  (c) => ({
    ...onTrig('declined: no side, future time', j(trig(c, { corr_id: c.stray(), side: undefined, normalized_at: '2999-01-01T00:00:00Z' })), { accept: true }),
  }),
  (c) => ({ ...onTrig('declined: weak strength', j(trig(c, { corr_id: c.stray(), strength: 0.05, instrument: 'ÜNICODE-€' })), { accept: true }) }),
];

export class HostileInjector {
  readonly sent: HostileMessage[] = [];
  private timer?: NodeJS.Timeout;
  private n = 0;

  constructor(
    private readonly bus: HarnessBus,
    private readonly runId: string,
    private readonly rng: () => number,
    private readonly rate: number,
    private readonly realTargets: () => string[],
  ) {}

  start(): void {
    this.timer = setInterval(() => this.sendOne(), 1000 / this.rate);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sendOne(): void {
    const id = ++this.n;
    const stray = () => `hx.${this.runId}.${id}`;
    const ctx: Ctx = {
      rng: this.rng,
      stray,
      target: () => {
        const real = this.realTargets();
        return real.length > 0 && this.rng() < 0.5 ? real[Math.floor(this.rng() * real.length)] : stray();
      },
      now: () => new Date().toISOString(),
    };
    const made = CASES[Math.floor(this.rng() * CASES.length)](ctx);
    // Accepted messages are valid JSON; their corr_id must never get a workflow.
    const corrId = 'accept' in made.expect ? String((JSON.parse(made.data as string) as { corr_id: unknown }).corr_id) : undefined;
    const msg: HostileMessage = { ...made, id, corrId };
    this.sent.push(msg);
    void this.bus
      .publish({
        subject: msg.subject,
        data: msg.data,
        msgId: `hostile:${this.runId}:${id}`,
        headers: { 'Fault-Id': String(id), 'Fault-Label': msg.label.replace(/[^\x20-\x7e]/g, '?') },
      })
      .then((m) => (msg.message = m));
  }
}
