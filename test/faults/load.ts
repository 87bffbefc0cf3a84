import { setTimeout as sleep } from 'node:timers/promises';
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
/** A trigger that the trading strategy starts: a side, and a strength from `minStrength` to 1. */
function randomTrigger(
  rng: () => number,
  corrId: string,
  instrument: string,
  minStrength: number,
  normalizedAt: string,
  timeoutSeconds: number,
): Record<string, unknown> {
  return {
    corr_id: corrId,
    instrument,
    side: pick(rng, ['buy', 'sell']),
    strength: round(minStrength + rng() * (1 - minStrength)),
    price: round(1 + rng() * 500, 4),
    normalized_at: normalizedAt,
    timeout_seconds: timeoutSeconds,
  };
}

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

/**
 * A targeted revision (issue 9, 1): the risk agent's first revision (`blocked`: the decision would be
 * no_trade risk_blocked) and its correction (`low`), both acknowledged by JetStream in that order (so the
 * second has the higher stream sequence) before momentum, which goes out only once the second revision
 * was seen stored (GET /workflows/:corr_id) and a few seconds more: any decision naming the first
 * revision then means a stale revision replaced a newer one.
 */
export interface RevisionPlan {
  first: SentSignal;
  second: SentSignal;
  /** When GET /workflows/:corr_id first showed the second revision stored (undefined: never seen). */
  secondSeenAt?: number;
  /** When momentum was handed to the publisher. */
  momentumAt?: number;
}

/** The part of GET /workflows/:corr_id the generator looks at. */
export interface InspectedSignals {
  status: number;
  signals?: Record<string, { timestamp?: unknown; confidence?: unknown }>;
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
  revision?: RevisionPlan;
  /** Opened in a burst (all signals, then all triggers): every deciding signal is sent, none withheld. */
  burst?: boolean;
}

export interface LoadOptions {
  runId: string;
  /** Workflows opened per second. */
  rate: number;
  rng: () => number;
  /** Shares of declined, withheld (an agent never answers) and late (it answers after the deadline) workflows (default 3 %, 20 %, 8 %). */
  shares?: { declined: number; withheld: number; late: number };
  /** `timeout_seconds` of the triggers, picked at random (default 2 to 4 s). */
  timeouts?: number[];
  /** Share of the workflows that are targeted risk revisions (RevisionPlan; default 0). */
  revisionShare?: number;
  /** How long momentum waits after the second revision was seen stored (default 5000 ms: past a 4 s ack wait). */
  revisionMomentumDelayMs?: number;
  /** GET /workflows/:corr_id (required with revisionShare > 0). */
  inspect?: (corrId: string) => Promise<InspectedSignals | undefined>;
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
  private tasks = new Set<Promise<void>>();
  private opener?: NodeJS.Timeout;
  private seq = 0;
  private readonly rng: () => number;
  /** Targeted revision workflows, counted (for the report). */
  revisionsPlanned = 0;
  /** When the last burst began publishing its triggers (ms). */
  burstTriggersAt = 0;

  constructor(
    private readonly bus: HarnessBus,
    private readonly options: LoadOptions,
  ) {
    this.rng = options.rng;
  }

  /**
   * Opens workflows at `rate` per second: on each tick as many as are due since the start (so the rate
   * holds at hundreds per second, where a timer per workflow would drift), at most 100 ms apart.
   */
  start(): void {
    const t0 = Date.now();
    let opened = 0;
    const tick = Math.max(5, Math.min(100, Math.floor(1000 / this.options.rate)));
    this.opener = setInterval(() => {
      const due = Math.floor(((Date.now() - t0) / 1000) * this.options.rate) + 1;
      // A stalled event loop must not turn into a burst: at most one second's worth at once.
      const n = Math.min(due - opened, Math.max(1, Math.ceil(this.options.rate)));
      for (let i = 0; i < n; i++) this.openOne();
      opened = Math.max(opened + n, due - Math.ceil(this.options.rate));
    }, tick);
  }

  /** Stops opening workflows; what was planned for open ones is still sent. */
  stopOpening(): void {
    clearInterval(this.opener);
  }

  /** True once every planned send has been handed to the publisher. */
  idle(): boolean {
    return this.timers.size === 0 && this.tasks.size === 0;
  }

  /** Corr_ids of recent workflows (targets for malformed messages). */
  recentCorrIds(n = 20): string[] {
    return this.workflows.slice(-n).map((w) => w.corrId);
  }

  private at(delayMs: number, fn: () => void): void {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        fn();
      },
      Math.max(0, delayMs),
    );
    this.timers.add(t);
  }

  private send(subject: string, text: string, msgId: string, done: (m: SentMessage) => void): void {
    void this.bus.publish({ subject, data: text, msgId }).then(done);
  }

  private task(fn: () => Promise<void>): void {
    const t = fn().catch(() => undefined);
    this.tasks.add(t);
    void t.finally(() => this.tasks.delete(t));
  }

  private openOne(): void {
    const rng = this.rng;
    const n = this.seq++;
    // Corr_ids with the key separator and dots in them, on purpose.
    const corrId = `flt.${this.options.runId}:wf:${n}${n % 7 === 0 ? ':sig' : ''}`;
    if ((this.options.revisionShare ?? 0) > 0 && rng() < this.options.revisionShare!) {
      this.openRevision(corrId);
      return;
    }
    const instrument = pick(rng, ['EURUSD', 'EURUSD', 'GBPJPY', 'SPY', 'QQQ', 'CRYPTO-BTC', 'CRYPTO-ETH']);
    const r = rng();
    const sh = this.options.shares ?? { declined: 0.03, withheld: 0.2, late: 0.08 };
    const kind: PlanKind =
      r < sh.declined ? 'declined' : r < sh.declined + sh.withheld ? 'withheld' : r < sh.declined + sh.withheld + sh.late ? 'late' : 'complete';
    const timeoutSeconds = pick(rng, this.options.timeouts ?? [2, 2.5, 3, 3.5, 4]);
    const trigger = randomTrigger(rng, corrId, instrument, 0.4, new Date().toISOString(), timeoutSeconds);
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
        this.at(offset + 30 + Math.round(rng() * 1500), () =>
          this.send(agentSubject(agent), sig.text, `${corrId}#${agent}#${timestamp}#dup`, (m) => (dup.message = m)),
        );
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

  /** A targeted revision workflow (RevisionPlan): trigger, risk `blocked`, risk `low`, seen stored, then momentum. */
  private openRevision(corrId: string): void {
    const rng = this.rng;
    this.revisionsPlanned++;
    const instrument = pick(rng, ['EURUSD', 'GBPJPY', 'SPY']);
    // Long enough for a pause past the ack wait, the wait for the second revision and the delay after it.
    const timeoutSeconds = 25;
    const t0 = Date.now();
    const trigger = randomTrigger(rng, corrId, instrument, 0.5, new Date(t0).toISOString(), timeoutSeconds);
    const triggerText = JSON.stringify(trigger);
    const wf: WorkflowRecord = { corrId, kind: 'complete', instrument, timeoutSeconds, trigger, triggerText, repeats: [], signals: [] };
    const riskSignal = (level: string, confidence: number, at: number): SentSignal => {
      const payload = {
        corr_id: corrId,
        agent_name: 'risk',
        signal_type: 'analysis',
        timestamp: new Date(at).toISOString(),
        confidence,
        analysis: { risk_level: level, max_position_size: Math.round(10000 + rng() * 190000) },
      };
      return { agent: 'risk', payload, text: JSON.stringify(payload) };
    };
    // Distinguishable everywhere: level (the decision), confidence and timestamp (source_signals).
    const first = riskSignal('blocked', 0.555, t0 + 1);
    const second = riskSignal('low', 0.777, t0 + 2);
    const momentumPayload = {
      corr_id: corrId,
      agent_name: 'momentum',
      signal_type: 'analysis',
      timestamp: new Date(t0 + 3).toISOString(),
      confidence: round(0.85 + rng() * 0.15),
      analysis: { trend_direction: pick(rng, ['bullish', 'bearish']), momentum_strength: round(0.75 + rng() * 0.25) },
    };
    const momentum: SentSignal = { agent: 'momentum', payload: momentumPayload, text: JSON.stringify(momentumPayload) };
    wf.signals.push(first, second, momentum);
    wf.revision = { first, second };
    this.workflows.push(wf);

    this.task(async () => {
      wf.triggerMessage = await this.bus.publish({ subject: TRIGGER_SUBJECT, data: triggerText, msgId: `${corrId}#trigger` });
      // In this order, each acknowledged before the next: the second revision has the higher stream sequence.
      first.message = await this.bus.publish({ subject: agentSubject('risk'), data: first.text, msgId: `${corrId}#risk#1` });
      second.message = await this.bus.publish({ subject: agentSubject('risk'), data: second.text, msgId: `${corrId}#risk#2` });
      const end = Date.now() + 15000;
      while (Date.now() < end && this.options.inspect) {
        const seen = await this.options.inspect(corrId).catch(() => undefined);
        const risk = seen?.signals?.risk;
        if (risk && risk.timestamp === second.payload.timestamp && risk.confidence === second.payload.confidence) {
          wf.revision!.secondSeenAt = Date.now();
          break;
        }
        await sleep(250);
      }
      // Past the ack wait: a first revision held by a paused or killed replica is redelivered meanwhile.
      await sleep(this.options.revisionMomentumDelayMs ?? 5000);
      wf.revision!.momentumAt = Date.now();
      momentum.message = await this.bus.publish({ subject: agentSubject('momentum'), data: momentum.text, msgId: `${corrId}#momentum` });
    });
  }

  /**
   * A burst of `n` workflows that can all decide at once (issue 9, 3): every deciding signal is published
   * first (they wait in the early-signal buffer), then every trigger; at most `concurrency` publishes
   * awaiting JetStream's acknowledgement at a time. Resolves when all are acknowledged (or gave up).
   */
  async burst(n: number, tag: string, timeoutSeconds: number, concurrency = 1000): Promise<WorkflowRecord[]> {
    const rng = this.rng;
    const records: WorkflowRecord[] = [];
    const signals: [WorkflowRecord, SentSignal][] = [];
    const stamp = new Date().toISOString();
    for (let i = 0; i < n; i++) {
      const corrId = `flt.${this.options.runId}:${tag}:${i}`;
      const instrument = pick(rng, ['EURUSD', 'GBPJPY', 'SPY', 'QQQ', 'CRYPTO-BTC']);
      const trigger = randomTrigger(rng, corrId, instrument, 0.4, stamp, timeoutSeconds);
      const wf: WorkflowRecord = {
        corrId,
        kind: 'complete',
        instrument,
        timeoutSeconds,
        trigger,
        triggerText: JSON.stringify(trigger),
        repeats: [],
        signals: [],
        burst: true,
      };
      for (const agent of decidingAgents(instrument)) {
        const payload = signalPayload(rng, corrId, agent, stamp);
        const sig: SentSignal = { agent, payload, text: JSON.stringify(payload) };
        wf.signals.push(sig);
        signals.push([wf, sig]);
      }
      records.push(wf);
      this.workflows.push(wf);
    }
    await pool(signals, concurrency, async ([wf, sig]) => {
      sig.message = await this.bus.publish({ subject: agentSubject(sig.agent), data: sig.text, msgId: `${wf.corrId}#${sig.agent}` });
    });
    this.burstTriggersAt = Date.now();
    await pool(records, concurrency, async (wf) => {
      wf.triggerMessage = await this.bus.publish({ subject: TRIGGER_SUBJECT, data: wf.triggerText, msgId: `${wf.corrId}#trigger` });
    });
    return records;
  }
}

/** Runs `fn` over `items`, at most `concurrency` at a time. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
