// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by module (npm package,
// dist/ file, node internals, native bindings), and inclusive time of the project's own functions, as
// shares of the busy (non-idle) time; optionally only over a window of the profile (ms from its start).
//
//   node bench/profile-summary.mjs <file.cpuprofile> [--top=15] [--from=ms] [--to=ms]
import { readFileSync } from 'node:fs';

const V8_BUCKETS = new Set(['(garbage collector)', '(program)', '(idle)', '(root)']);

/** What a frame belongs to: an npm package, a file of this project, node itself, or V8's own buckets. */
export function moduleOf(url, functionName) {
  if (!url) return V8_BUCKETS.has(functionName) ? functionName : 'node (native bindings)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 14).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (url.startsWith('node:')) return 'node (internals)';
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  const bench = url.indexOf('/bench/');
  if (bench >= 0) return url.slice(bench + 1);
  return url.replace(/^file:\/\//, '');
}

function frameName({ functionName, url, lineNumber }) {
  const name = functionName || '(anonymous)';
  if (!url) return V8_BUCKETS.has(name) ? name : `${name}  (native)`;
  const nm = url.lastIndexOf('/node_modules/');
  const dist = url.indexOf('/dist/');
  const short = nm >= 0 ? url.slice(nm + 14) : dist >= 0 ? url.slice(dist + 1) : url.replace(/^file:\/\//, '');
  return `${name}  ${short}:${lineNumber + 1}`;
}

export function summarizeProfile(profile, top = 15, { fromMs = 0, toMs = Infinity } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const { samples, timeDeltas } = profile;
  const fn = new Map();
  const mod = new Map();
  const inclusive = new Map();
  let idle = 0;
  let busy = 0;
  let t = 0;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i];
    // timeDeltas[i] is the time between samples i-1 and i: the time until the next sample is charged to this one.
    const dt = Math.max(i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0, 0);
    if (t / 1000 < fromMs || t / 1000 > toMs) continue;
    const node = byId.get(samples[i]);
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    busy += dt;
    const key = frameName(node.callFrame);
    fn.set(key, (fn.get(key) ?? 0) + dt);
    const m = moduleOf(node.callFrame.url, node.callFrame.functionName);
    mod.set(m, (mod.get(m) ?? 0) + dt);
    // Inclusive time of the project's own functions (each counted once per sample, however deep the recursion).
    const seen = new Set();
    for (let id = samples[i]; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id).callFrame;
      if (!frame.url.includes('/dist/')) continue;
      const k = frameName(frame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  }
  const rank = (map) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, self_ms: Math.round(us / 1000), share: Math.round((1000 * us) / busy) / 10 }));
  return {
    window_ms: [Math.round(fromMs), Number.isFinite(toMs) ? Math.round(toMs) : Math.round((profile.endTime - profile.startTime) / 1000)],
    busy_ms: Math.round(busy / 1000),
    idle_ms: Math.round(idle / 1000),
    functions: rank(fn),
    modules: rank(mod),
    project_inclusive: rank(inclusive).map(({ name, self_ms, share }) => ({ name, total_ms: self_ms, share })),
  };
}

export function formatSummary(s) {
  const lines = [
    `window ${s.window_ms[0]}..${s.window_ms[1]} ms of the profile: busy ${s.busy_ms} ms, idle ${s.idle_ms} ms (shares are of busy time)`,
    '',
    'self time by function:',
  ];
  for (const f of s.functions) lines.push(`  ${String(f.share).padStart(5)}%  ${String(f.self_ms).padStart(7)} ms  ${f.name}`);
  lines.push('', 'self time by module:');
  for (const m of s.modules) lines.push(`  ${String(m.share).padStart(5)}%  ${String(m.self_ms).padStart(7)} ms  ${m.name}`);
  lines.push('', "inclusive (self + callees) time of the project's functions (dist/):");
  for (const f of s.project_inclusive) lines.push(`  ${String(f.share).padStart(5)}%  ${String(f.total_ms).padStart(7)} ms  ${f.name}`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node bench/profile-summary.mjs <file.cpuprofile> [--top=N] [--from=ms] [--to=ms]\n');
    process.exit(2);
  }
  const arg = (name, def) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def);
  const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), arg('top', 15), { fromMs: arg('from', 0), toMs: arg('to', Infinity) });
  process.stdout.write(formatSummary(summary) + '\n');
}
