import type { Result } from 'ioredis';

/**
 * The Lua scripts (`lua/<name>-<numKeys>.lua`) as typed ioredis commands, and their reply codes, named once.
 * Each code here is the one the script's header lists under "Output" (src/redis/script-replies.spec.ts
 * checks that they agree); the repository reads replies only through these names.
 */

/** What a script answers: Lua integers, strings and nested tables (RESP arrays). */
export type ScriptReply = (string | number | ScriptReply)[];
/** Keys first, then ARGV: how ioredis calls a script defined with `numberOfKeys`. */
export type ScriptArgs = (string | number)[];

/** start-workflows-2.lua, per trigger. */
export const START = { duplicate: 0, started: 1, ready: 2, failed: -1 } as const;
/** add-signals-2.lua, per signal. */
export const ADD_SIGNAL = {
  added: 1,
  duplicate: 2,
  late: 3,
  buffered: 4,
  orphaned: 5,
  superseded: 6,
  bufferSuperseded: 7,
  ready: 8,
  failed: -1,
} as const;
/** freeze-3.lua. */
export const FREEZE = { closed: 0, frozen: 1, outdated: 2 } as const;
/** finalize-2.lua, per workflow. */
export const FINALIZE = { already: 0, finalized: 1 } as const;
/** rest-2.lua. */
export const REST = { changed: 0, rested: 1 } as const;
/** extend-2.lua. */
export const EXTEND = { closed: 0, extended: 1 } as const;

type Codes<T> = T[keyof T];

/** One item of a batched reply, or a whole reply: its code first, the rest as the script's header says. */
export type Coded<T> = [Codes<T>, ...ScriptReply];

/** The reply codes of every script that has some, by ioredis command name (the spec reads them). */
export const REPLY_CODES: Record<string, Record<string, number>> = {
  startWorkflows: START,
  addSignals: ADD_SIGNAL,
  freeze: FREEZE,
  finalize: FINALIZE,
  rest: REST,
  extend: EXTEND,
};

/** Each script's reply, by command name (what `WorkflowRepository.run` returns for it). */
export interface ScriptReplies {
  startWorkflows: Coded<typeof START>[];
  addSignals: Coded<typeof ADD_SIGNAL>[];
  freeze: Coded<typeof FREEZE>;
  finalize: Coded<typeof FINALIZE>[];
  rest: Coded<typeof REST>;
  extend: Coded<typeof EXTEND>;
  /** { remaining, due, now, job... }, each job { corr_id, kind, wf, sig } (a snapshot: common.lua's append_snapshot) or { corr_id, 'broken', error }. */
  sweep: [number, number, number, ...ScriptReply[]];
  /** { buffers reaped, signals orphaned }. */
  reapEarly: [number, number];
  /** { exhausted, last score, last corr_id, item... }. */
  list: [0 | 1, string, string, ...ScriptReply[]];
}

export type ScriptName = keyof ScriptReplies;

// The scripts as commands of the client (and of its pipelines), as `defineScripts` registers them.
declare module 'ioredis' {
  interface RedisCommander<Context> {
    startWorkflows(...keysAndArgs: ScriptArgs): Result<ScriptReplies['startWorkflows'], Context>;
    addSignals(...keysAndArgs: ScriptArgs): Result<ScriptReplies['addSignals'], Context>;
    freeze(...keysAndArgs: ScriptArgs): Result<ScriptReplies['freeze'], Context>;
    finalize(...keysAndArgs: ScriptArgs): Result<ScriptReplies['finalize'], Context>;
    rest(...keysAndArgs: ScriptArgs): Result<ScriptReplies['rest'], Context>;
    extend(...keysAndArgs: ScriptArgs): Result<ScriptReplies['extend'], Context>;
    sweep(...keysAndArgs: ScriptArgs): Result<ScriptReplies['sweep'], Context>;
    reapEarly(...keysAndArgs: ScriptArgs): Result<ScriptReplies['reapEarly'], Context>;
    list(...keysAndArgs: ScriptArgs): Result<ScriptReplies['list'], Context>;
  }
}
