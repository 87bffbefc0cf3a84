import type { HarnessBus, SentMessage } from './bus.js';

/*
 * The load generator: opens workflows at a steady rate, with mixed instruments, and plays their agents
 * with jitter. Some agents never answer or answer after the deadline (timeouts), some signals come
 * before their trigger, some are sent twice (same bytes), some are revised (a second, different signal
 * from the same agent), some triggers are repeated and some are declined by the strategy. Everything it
 * sends is recorded, so the checker can re-derive each decision from what was really sent.
 */

export const TRIGGER_SUBJECT = 'signals.normalized';
export const agentSubject = (agent: string) => `signals.enriched.${agent}`;

/** A seeded PRNG (mulberry32): the same seed plans the same run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type PlanKind = 'complete' | 'withheld' | 'late' | 'declined';

export interface SentSignal {
  agent: string;
  payload: Record<string, unknown>;
  text: string;
  message?: SentMessage;
}

export interface WorkflowRecord {
  corrId: string;
  kind: PlanKind;
  instrument: string;
  timeoutSeconds: number;
  trigger: Record<string, unknown>;
  triggerText: string;
  /** The trigger's publish (the first one; repeats are in `repeats`). */
  triggerMessage?: SentMessage;
  repeats: SentMessage[];
  /** Every agent signal sent for it (revisions and duplicates included). */
  signals: SentSignal[];
  withheldAgent?: string;
}

export interface LoadOptions {
  runId: string;
  rate: number;
  rng: () => number;
}

const pick = <T>(rng: () => number, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/** The agents the trading strategy needs before it decides (canDecide), per instrument. */
export function decidingAgents(instrument: string): string[] {
  return instrument.startsWith('CRYPTO') ? ['momentum', 'risk', 'sentiment'] : ['momentum', 'risk'];
}

function optionalAgents(instrument: string): string[] {
  if (instrument.startsWith('CRYPTO')) return ['correlation'];
  if (['SPY', 'QQQ', 'IWM'].includes(instrument)) return ['correlation', 'macro'];
  return [];
}

function signalPayload(rng: () => number, corrId: string, agent: string, timestamp: string): Record<string, unknown> {
  const base = { corr_id: corrId, agent_name: agent, signal_type: 'analysis', timestamp };
  switch (agent) {
    case 'momentum':
      return {
        ...base,
        confidence: round(0.6 + rng() * 0.4),
        analysis: { trend_direction: pick(rng, ['bullish', 'bearish']), momentum_strength: round(0.5 + rng() * 0.5) },
      };
    case 'risk': {
      const level = rng() < 0.06 ? 'blocked' : pick(rng, ['low', 'low', 'medium', 'high']);
      // Both places the risk level can be: the template's top-level field and `analysis`.
      const top = level === 'blocked' && rng() < 0.5 ? { risk_level: 'blocked' } : {};
      return {
        ...base,
        ...top,
        confidence: round(0.5 + rng() * 0.5),
        analysis: { risk_level: level, max_position_size: Math.round(10000 + rng() * 190000) },
      };
    }
    case 'sentiment':
      return { ...base, confidence: round(0.5 + rng() * 0.5), sentiment_score: round(rng() * 2 - 1) };
    case 'correlation':
      return { ...base, confidence: round(0.5 + rng() * 0.5), correlation_risk: round(rng()) };
    default:
      return { ...base, confidence: round(0.5 + rng() * 0.5), analysis: { regime: pick(rng, ['risk_on', 'risk_off']) } };
  }
}

export class LoadGenerator {
  readonly workflows: WorkflowRecord[] = [];
  private timers = new Set<NodeJS.Timeout>();
  private opener?: NodeJS.Timeout;
  private seq = 0;
  private readonly rng: () => number;

  constructor(
    private readonly bus: HarnessBus,
    private readonly options: LoadOptions,
  ) {
    this.rng = options.rng;
  }

  start(): void {
    this.opener = setInterval(() => this.openOne(), 1000 / this.options.rate);
  }

  /** Stops opening workflows; what was planned for open ones is still sent. */
  stopOpening(): void {
    clearInterval(this.opener);
  }

  /** True once every planned send has been handed to the publisher. */
  idle(): boolean {
    return this.timers.size === 0;
  }

  /** Corr_ids of recent workflows (targets for malformed messages). */
  recentCorrIds(n = 20): string[] {
    return this.workflows.slice(-n).map((w) => w.corrId);
  }

  private at(delayMs: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, delayMs));
    this.timers.add(t);
  }

  private send(subject: string, text: string, msgId: string, done: (m: SentMessage) => void): void {
    void this.bus.publish({ subject, data: text, msgId }).then(done);
  }

  private openOne(): void {
    const rng = this.rng;
    const n = this.seq++;
    // Corr_ids with the key separator and dots in them, on purpose.
    const corrId = `flt.${this.options.runId}:wf:${n}${n % 7 === 0 ? ':sig' : ''}`;
    const instrument = pick(rng, ['EURUSD', 'EURUSD', 'GBPJPY', 'SPY', 'QQQ', 'CRYPTO-BTC', 'CRYPTO-ETH']);
    const r = rng();
    const kind: PlanKind = r < 0.03 ? 'declined' : r < 0.23 ? 'withheld' : r < 0.31 ? 'late' : 'complete';
    const timeoutSeconds = pick(rng, [2, 2.5, 3, 3.5, 4]);
    const trigger: Record<string, unknown> = {
      corr_id: corrId,
      instrument,
      side: pick(rng, ['buy', 'sell']),
      strength: round(0.4 + rng() * 0.6),
      price: round(1 + rng() * 500, 4),
      normalized_at: new Date().toISOString(),
      timeout_seconds: timeoutSeconds,
    };
    if (kind === 'declined') {
      if (rng() < 0.5) delete trigger.side;
      else trigger.strength = round(rng() * 0.29);
    }
    const triggerText = JSON.stringify(trigger);
    const wf: WorkflowRecord = { corrId, kind, instrument, timeoutSeconds, trigger, triggerText, repeats: [], signals: [] };
    this.workflows.push(wf);

    const t0 = Date.now();
    const deadlineOffset = timeoutSeconds * 1000;
    const deciding = decidingAgents(instrument);
    if (kind === 'withheld' || kind === 'late') wf.withheldAgent = pick(rng, deciding);

    // Some signals are sent before the trigger: the trigger goes out at `triggerAt` (0 to 400 ms).
    const triggerAt = rng() < 0.25 ? Math.round(rng() * 400) : 0;
    this.at(triggerAt, () => this.send(TRIGGER_SUBJECT, triggerText, `${corrId}#trigger`, (m) => (wf.triggerMessage = m)));
    if (rng() < 0.15) {
      // A repeated trigger, byte for byte, as a new message.
      this.at(triggerAt + Math.round(rng() * 3000), () => this.send(TRIGGER_SUBJECT, triggerText, `${corrId}#trigger-again`, (m) => wf.repeats.push(m)));
    }

    const agents = [...deciding, ...optionalAgents(instrument).filter(() => rng() < 0.5)];
    let version = 0;
    for (const agent of agents) {
      if (agent === wf.withheldAgent && kind === 'withheld') continue;
      const offset = agent === wf.withheldAgent ? deadlineOffset + 600 + Math.round(rng() * 900) : Math.round(rng() * 1300);
      const timestamp = new Date(t0 + offset + version++).toISOString();
      const payload = signalPayload(rng, corrId, agent, timestamp);
      const sig: SentSignal = { agent, payload, text: JSON.stringify(payload) };
      wf.signals.push(sig);
      this.at(offset, () => this.send(agentSubject(agent), sig.text, `${corrId}#${agent}#${timestamp}`, (m) => (sig.message = m)));
      if (rng() < 0.12) {
        // Sent again, byte for byte (an agent retrying): a duplicate.
        const dup: SentSignal = { agent, payload, text: sig.text };
        wf.signals.push(dup);
        this.at(offset + 30 + Math.round(rng() * 1500), () => this.send(agentSubject(agent), sig.text, `${corrId}#${agent}#${timestamp}#dup`, (m) => (dup.message = m)));
      }
      if (rng() < 0.1 && agent !== wf.withheldAgent) {
        // A revised signal from the same agent (new values, later timestamp): the latest one replaces the first.
        const later = offset + 20 + Math.round(rng() * 300);
        const ts2 = new Date(t0 + later + version++).toISOString();
        const payload2 = signalPayload(rng, corrId, agent, ts2);
        const rev: SentSignal = { agent, payload: payload2, text: JSON.stringify(payload2) };
        wf.signals.push(rev);
        this.at(later, () => this.send(agentSubject(agent), rev.text, `${corrId}#${agent}#${ts2}`, (m) => (rev.message = m)));
      }
    }
  }
}
