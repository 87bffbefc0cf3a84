import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The Chromium binary the browser tests drive: CHROMIUM_BIN (scripts/test.sh exports it: ensure_chromium in
 * scripts/lib.sh fetches Debian 12's package into .cache/browsers), else the one a run of it fetched before.
 */
export function chromiumPath(): string {
  if (process.env.CHROMIUM_BIN) return process.env.CHROMIUM_BIN;
  const pointer = join(ROOT, '.cache', 'browsers', 'chromium-bookworm-security.path');
  const bin = existsSync(pointer) ? readFileSync(pointer, 'utf8').trim() : '';
  if (bin && existsSync(bin)) return bin;
  throw new Error('no Chromium: run the tests through scripts/test.sh (npm test), which fetches it (ensure_chromium, scripts/lib.sh), or set CHROMIUM_BIN');
}

/** Headless Chromium, as a container without a sandbox, a GPU or a large /dev/shm can run it; no calls home. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
  });
}

/** Where browser tests put their screenshots (git-ignored): test-output/<name>/. */
export function outputDir(name: string): string {
  const dir = join(ROOT, 'test-output', name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A full-page screenshot into `dir`; prints its path (relative to the repository). */
export async function screenshot(page: Page, dir: string, name: string): Promise<string> {
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  process.stdout.write(`[screenshot] ${relative(ROOT, path)}\n`);
  return path;
}
