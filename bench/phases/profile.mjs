// --profile: a CPU profile of the service over the throughput backlog. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSummary, summarizeProfile } from '../profile-summary.mjs';
import { log, RESULTS_DIR } from '../context.mjs';
import { throughputRun } from './throughput.mjs';

/** A service run under --cpu-prof on the throughput backlog (not counted in the figures). */
export async function phaseProfile(n, inbound) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-prof-'));
  try {
    const run = await throughputRun('service', 'prof', n, inbound, { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('no .cpuprofile written');
    // Only the samples between the first and the last decision (start-up and shutdown left out); the
    // profile starts with the process, within a few ms of the spawn.
    const fromMs = run.start_to_first_decision_s * 1000;
    const profile = readFileSync(join(dir, file), 'utf8');
    // Kept (not committed) for a closer look: Chrome DevTools or VS Code open it.
    writeFileSync(join(RESULTS_DIR, 'service.cpuprofile'), profile);
    const summary = summarizeProfile(JSON.parse(profile), 30, { fromMs, toMs: fromMs + run.seconds * 1000 });
    writeFileSync(
      join(RESULTS_DIR, 'profile.txt'),
      `CPU profile of the service (node --cpu-prof) over ${n} workflows of the throughput backlog (${run.decisions_per_s} decisions/s while profiled), first to last decision\n\n${formatSummary(summary)}\n`,
    );
    log(
      `profile: ${summary.busy_ms} ms busy; top: ${summary.functions
        .slice(0, 3)
        .map((f) => `${f.name} ${f.share}%`)
        .join(', ')}`,
    );
    return {
      decisions_per_s_while_profiled: run.decisions_per_s,
      window_ms: summary.window_ms,
      busy_ms: summary.busy_ms,
      functions: summary.functions.slice(0, 15),
      modules: summary.modules.slice(0, 15),
      project_inclusive: summary.project_inclusive.slice(0, 15),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
