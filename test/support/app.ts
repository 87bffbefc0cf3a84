import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NATS_URL, REDIS_URL, waitFor } from './env.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * A port nothing listens on, picked from 17000-23999: below Linux's ephemeral range (32768-60999), so
 * that an outgoing connection cannot take it while a test has stopped the server it belongs to (a
 * restarted PrivateRedis or service listens on the same port again), and clear of the fixed ports of
 * scripts/test.sh (14222, 16379) and the demo (24222 and up).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 17000 + Math.floor(Math.random() * 7000);
    if (await canListen(port)) return port;
  }
  throw new Error('no free port found in 17000-23999');
}

/** Whether a server could listen on `port` now (on every interface). */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

/**
 * The admin bearer token test services get unless a test sets `META_AGENT_ADMIN_TOKEN` itself (`''`:
 * admin endpoints off). `AppProcess.get` presents it; `adminHeaders()` is for other HTTP clients.
 */
export const TEST_ADMIN_TOKEN = 'test-admin-token-4f6c1b2e9a';

export function adminHeaders(token = TEST_ADMIN_TOKEN): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** The built service (`dist/main.js`), run as a real process against the test servers. */
export class AppProcess {
  readonly lines: string[] = [];
  private exitCode: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    /** The admin token `get` presents (the service's, unless the test set none). */
    readonly adminToken: string,
  ) {
    let buffer = '';
    const collect = (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      this.lines.push(...parts.filter((l) => l.length > 0));
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    // 'close', not 'exit': 'exit' can come before the last output has been read from the pipes, and a test
    // that reads `lines` once the process has ended must see all of it.
    this.exitCode = new Promise((resolve) => child.once('close', (code) => resolve(code)));
  }

  /** `entry`: the script to run, relative to the repository (default: the built service). */
  static spawn(env: Record<string, string>, port: number, entry = 'dist/main.js', cwd = ROOT): AppProcess {
    const child = spawn(process.execPath, [join(ROOT, entry)], {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        META_AGENT_NATS_URL: NATS_URL,
        META_AGENT_REDIS_URL: REDIS_URL,
        META_AGENT_METRICS_PORT: String(port),
        META_AGENT_LOG_LEVEL: 'debug',
        META_AGENT_NAK_DELAY_MS: '100',
        META_AGENT_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const app = new AppProcess(child, port, env.META_AGENT_ADMIN_TOKEN ?? TEST_ADMIN_TOKEN);
    AppProcess.running.add(app);
    void app.exitCode.then(() => AppProcess.running.delete(app));
    return app;
  }

  /** Every service process started and not yet exited: what a test that failed half-way left behind. */
  private static readonly running = new Set<AppProcess>();

  /**
   * SIGKILLs every service process still running (useInfra calls it after each test, or before the next file): a test
   * that failed before stopping its replicas must not leave one consuming — and re-creating the streams the
   * next test deleted — under the next test.
   */
  static async killLeftovers(): Promise<number> {
    const left = [...AppProcess.running];
    await Promise.all(left.map((app) => app.stop('SIGKILL')));
    return left.length;
  }

  /**
   * Starts the service on a free port and waits until /health/ready says so. A service that does not get
   * ready is killed before the error is thrown: left running, it would go on consuming the test servers'
   * streams beside the next tests' services, which would then miss messages, counts and log lines.
   */
  static async start(env: Record<string, string> = {}, entry?: string): Promise<AppProcess> {
    const app = AppProcess.spawn(env, await freePort(), entry);
    try {
      await app.waitReady();
    } catch (error) {
      await app.stop('SIGKILL');
      throw error;
    }
    return app;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /**
   * GET, presenting the admin bearer token (harmless on the open routes). `token`: another one to
   * present, or null for none.
   */
  async get(path: string, token: string | null = this.adminToken): Promise<{ status: number; body: any; text: string; headers: Headers }> {
    const res = await fetch(this.url(path), { headers: token ? adminHeaders(token) : {} });
    const text = await res.text();
    let body: unknown = undefined;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON (e.g. /metrics) */
    }
    return { status: res.status, body, text, headers: res.headers };
  }

  /** Waits until /health/ready answers 200. The deadline is generous: a loaded machine starts Node slowly. */
  async waitReady(timeoutMs = 60000): Promise<void> {
    let exited = false;
    void this.exitCode.then(() => (exited = true));
    // An exit ends the wait at once (a thrown error would only be kept until the timeout).
    const outcome = await waitFor(
      'the service to be ready',
      async () => (exited ? 'exited' : (await this.get('/health/ready')).status === 200 && 'ready'),
      timeoutMs,
      100,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; its last lines:\n${this.lines.slice(-20).join('\n')}`);
    });
    if (outcome === 'exited') throw new Error(`the service exited before it was ready:\n${this.lines.slice(-20).join('\n')}`);
  }

  /** The value of one metric sample (sum over label sets matching `labels`). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const { text } = await this.get('/metrics');
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.split(' ').pop());
    }
    return total;
  }

  logs(match: string): string[] {
    return this.lines.filter((l) => l.includes(match));
  }

  /**
   * By the service's own log times: ms from its first JSON line (Nest starting) to the first line containing
   * `match`. How long the service took, without the time Node needs to load before it logs anything (which a
   * loaded machine stretches to many seconds).
   */
  msToLog(match: string): number {
    const time = (line: string) => Date.parse((JSON.parse(line) as { time: string }).time);
    const json = this.lines.filter((l) => l.startsWith('{'));
    const found = json.find((l) => l.includes(match));
    if (json.length === 0 || !found) throw new Error(`no JSON log line with ${match}`);
    return time(found) - time(json[0]);
  }

  /**
   * Waits until at least `count` lines contain `match`, and returns them. A line the service printed comes
   * through a pipe: it can arrive after an HTTP reply or a message the service sent later.
   */
  async waitForLogs(match: string, count = 1, timeoutMs = 30000): Promise<string[]> {
    return waitFor(
      `${count} log line(s) with ${match}`,
      async () => {
        const found = this.logs(match);
        return found.length >= count ? found : undefined;
      },
      timeoutMs,
    );
  }

  /** The exit code once the process has exited, or 'still running' after `timeoutMs` (the timer is cleared either way). */
  async exitedWithin(timeoutMs: number): Promise<number | null | 'still running'> {
    let guard: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([this.exited(), new Promise<'still running'>((resolve) => (guard = setTimeout(() => resolve('still running'), timeoutMs)))]);
    } finally {
      clearTimeout(guard);
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exitCode;
  }

  exited(): Promise<number | null> {
    return this.exitCode;
  }
}
