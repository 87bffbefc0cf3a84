import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LUA_DIR, readScripts } from './redis-scripts.js';
import { REPLY_CODES, type ScriptReplies } from './script-replies.js';

/** The codes a script's header lists under "Output": every `{ <integer>` from "Output:" to the end of the header. */
function headerCodes(file: string): number[] {
  const lua = readFileSync(join(LUA_DIR, file), 'utf8');
  const header = /^--\[\[([\s\S]*?)\]\]/.exec(lua)?.[1] ?? '';
  const output = header.slice(header.indexOf('Output:'));
  return [...new Set([...output.matchAll(/\{ (-?\d+)\b/g)].map((m) => Number(m[1])))].sort((a, b) => a - b);
}

describe('script reply codes (src/redis/script-replies.ts)', () => {
  const files = readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));
  const commands = new Map(readScripts().map((s, i) => [s.command, files[i]]));

  it('every script has a header with an Output section', () => {
    for (const file of files) expect({ file, output: readFileSync(join(LUA_DIR, file), 'utf8').includes('Output:') }).toEqual({ file, output: true });
  });

  it.each(files)('%s: its header lists exactly the codes named for it', (file) => {
    const command = [...commands].find(([, f]) => f === file)![0];
    const named = Object.values(REPLY_CODES[command] ?? {}).sort((a, b) => a - b);
    expect(headerCodes(file)).toEqual(named);
  });

  it('names no code twice within a script', () => {
    for (const [command, codes] of Object.entries(REPLY_CODES)) {
      const values = Object.values(codes);
      expect({ command, distinct: new Set(values).size }).toEqual({ command, distinct: values.length });
    }
  });

  it('every script is a typed command, and every typed command a script', () => {
    // The keys of ScriptReplies, as the declaration names them (a type has no runtime keys: listed here once,
    // and checked against the interface by the `satisfies`).
    const typed = { startWorkflows: 1, addSignals: 1, freeze: 1, finalize: 1, rest: 1, extend: 1, sweep: 1, reapEarly: 1, list: 1 } satisfies Record<
      keyof ScriptReplies,
      1
    >;
    expect(Object.keys(typed).sort()).toEqual([...commands.keys()].sort());
    for (const command of Object.keys(REPLY_CODES)) expect(commands.has(command)).toBe(true);
  });
});
