import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, appendFileSync, constants, mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppProcess } from '../support/app.js';
import { type SpawnHook } from '../support/clusters.js';
import { redisAnswers } from '../support/servers.js';

/*
 * The processes of a fault run: a private nats-server and redis-server, and the orchestrator replicas,
 * each of which the harness can kill, stop and restart. Every exit is recorded with whether the harness
 * caused it, so that a crash nobody asked for fails the run. Every pid goes to a file that
 * scripts/faults.sh reads to kill leftovers, even if this process itself dies.
 */

export interface ExitRecord {
  name: string;
  pid: number;
  code: number | null;
  signal: string | null;
  /** What the harness did to it: 'kill' (SIGKILL), 'term' (SIGTERM, must exit 0), or null (nothing). */
  cause: 'kill' | 'term' | null;
  at: number;
}

export class ProcessBook {
  readonly exits: ExitRecord[] = [];
  private readonly live = new Set<ChildProcess>();

  constructor(private readonly pidFile: string) {}

  track(name: string, child: ChildProcess, cause: () => ExitRecord['cause']): void {
    if (child.pid === undefined) throw new Error(`${name} did not start`);
    appendFileSync(this.pidFile, `${child.pid}\n`);
    this.live.add(child);
    child.once('exit', (code, signal) => {
      this.live.delete(child);
      this.exits.push({ name, pid: child.pid!, code, signal, cause: cause(), at: Date.now() });
    });
  }

  /** Exits the harness did not cause, and replicas' SIGTERMs that did not end with exit code 0 (nats-server exits 1 on SIGTERM by design). */
  unexpectedExits(): ExitRecord[] {
    return this.exits.filter((e) => e.cause === null || (e.cause === 'term' && e.code !== 0 && e.name.startsWith('replica')));
  }

  /** Last resort (also on the way out after a failure): SIGKILL whatever still runs. */
  killAll(): void {
    for (const child of this.live) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }

  async stopAll(timeoutMs = 30000): Promise<void> {
    const waits = [...this.live].map((c) => new Promise((r) => c.once('exit', r)));
    await Promise.race([Promise.all(waits), sleep(timeoutMs)]);
    this.killAll();
  }
}

/**
 * The clusters of test/support/clusters.ts (NatsCluster, RedisCluster) in a fault run: pass
 * `onSpawn: trackedBy(book)` to their start(), and every node's pid goes to the pid file and every exit
 * to the book (a node the cluster helpers did not kill is an unexpected exit).
 */
export function trackedBy(book: ProcessBook): SpawnHook {
  return (name, child, cause) => book.track(name, child, cause);
}

export function findBin(name: string): string {
  // scripts/lib.sh exports the servers it chose (NATS_SERVER_BIN, REDIS_SERVER_BIN).
  const chosen = process.env[`${name.replace('-', '_').toUpperCase()}_BIN`];
  if (chosen) return chosen;
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/usr/local/bin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      /* next */
    }
  }
  throw new Error(`${name} is not installed (Debian: apt-get install -y ${name}); scripts/servers.sh installs it`);
}

export async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await probe().catch(() => false)) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A process the harness owns: started, SIGKILLed, SIGTERMed, restarted; every exit recorded. */
abstract class Managed {
  protected child?: ChildProcess;
  private cause: ExitRecord['cause'] = null;
  private exited?: Promise<void>;

  constructor(
    readonly name: string,
    protected readonly book: ProcessBook,
  ) {}

  protected abstract spawnChild(): ChildProcess;
  abstract waitReady(): Promise<void>;

  get pid(): number | undefined {
    return this.child?.pid;
  }

  running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running()) throw new Error(`${this.name} is already running`);
    this.cause = null;
    const child = this.spawnChild();
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.book.track(this.name, child, () => this.cause);
    await this.waitReady();
  }

  /** SIGKILL, and wait until it is gone. */
  async kill(): Promise<void> {
    if (!this.running()) return;
    this.cause = 'kill';
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, and wait (bounded) until it is gone; returns the exit code. */
  async terminate(timeoutMs = 40000): Promise<number | null> {
    if (!this.running()) return this.child?.exitCode ?? null;
    this.cause = 'term';
    this.child!.kill('SIGTERM');
    await Promise.race([this.exited, sleep(timeoutMs)]);
    if (this.running()) {
      this.cause = 'kill';
      this.child!.kill('SIGKILL');
      await this.exited;
      return null;
    }
    return this.child!.exitCode;
  }
}

export class NatsServer extends Managed {
  constructor(
    book: ProcessBook,
    readonly port: number,
    readonly monitorPort: number,
    private readonly dir: string,
  ) {
    super('nats-server', book);
    mkdirSync(join(dir, 'jetstream'), { recursive: true });
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  protected spawnChild(): ChildProcess {
    const args = ['-a', '127.0.0.1', '-p', String(this.port), '-m', String(this.monitorPort), '-js', '-sd', join(this.dir, 'jetstream')];
    args.push('-l', join(this.dir, 'nats.log'));
    return spawn(findBin('nats-server'), args, { stdio: 'ignore' });
  }

  /** Port open and JetStream ready (the monitor's /healthz answers ok only then). */
  async waitReady(): Promise<void> {
    await until(
      'nats-server (JetStream) to be ready',
      async () => {
        if (!this.running()) throw new Error('nats-server exited');
        const res = await fetch(`http://127.0.0.1:${this.monitorPort}/healthz`);
        return res.ok && (await portOpen(this.port));
      },
      30000,
    );
  }
}

export class RedisServer extends Managed {
  constructor(
    book: ProcessBook,
    readonly port: number,
    private readonly dir: string,
    private readonly appendfsync: 'always' | 'everysec',
  ) {
    super('redis-server', book);
    mkdirSync(join(dir, 'data'), { recursive: true });
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  protected spawnChild(): ChildProcess {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', join(this.dir, 'data'), '--daemonize', 'no'];
    // The recommended hash encoding (docs/OPERATIONS.md "Redis"): workflow hashes kept as compact listpacks.
    args.push('--appendonly', 'yes', '--appendfsync', this.appendfsync, '--save', '', '--protected-mode', 'no', '--hash-max-listpack-value', '4096');
    args.push('--logfile', join(this.dir, 'redis.log'));
    return spawn(findBin('redis-server'), args, { stdio: 'ignore' });
  }

  /** Answers PING with PONG (not LOADING: the AOF has been replayed). */
  async waitReady(): Promise<void> {
    await until(
      'redis-server to be ready',
      async () => {
        if (!this.running()) throw new Error('redis-server exited');
        return redisAnswers(this.port);
      },
      30000,
    );
  }
}

/** One orchestrator replica: `node dist/main.js` (via AppProcess), its log lines appended to a file. */
export class Replica extends Managed {
  app?: AppProcess;
  starts = 0;
  private flusher?: NodeJS.Timeout;
  /** Log lines at level error or critical, by message (for the report). */
  readonly errors = new Map<string, number>();

  constructor(
    book: ProcessBook,
    readonly index: number,
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly logFile: string,
    /** The built service to run, relative to the repository (a snapshot of dist/, see run.ts). */
    private readonly entry: string,
  ) {
    super(`replica-${index}`, book);
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  protected spawnChild(): ChildProcess {
    this.flush();
    this.starts++;
    appendFileSync(this.logFile, `--- start #${this.starts} at ${new Date().toISOString()}\n`);
    const app = AppProcess.spawn(this.env, this.port, this.entry);
    this.app = app;
    app.child.once('exit', (code, signal) => {
      this.flush();
      appendFileSync(this.logFile, `--- exit code=${code} signal=${signal} at ${new Date().toISOString()}\n`);
    });
    clearInterval(this.flusher);
    this.flusher = setInterval(() => this.flush(), 1000);
    this.flusher.unref();
    return app.child;
  }

  async waitReady(): Promise<void> {
    await this.app!.waitReady(30000);
  }

  /** Moves collected log lines to the file (bounded memory over a long run), counting errors. */
  flush(): void {
    if (!this.app || this.app.lines.length === 0) return;
    const lines = this.app.lines.splice(0);
    for (const line of lines) {
      if (!line.includes('"level":"error"') && !line.includes('"level":"critical"')) continue;
      let msg = line.slice(0, 120);
      try {
        msg = String((JSON.parse(line) as { msg?: unknown }).msg);
      } catch {
        /* not JSON: keep the start of the line */
      }
      this.errors.set(msg, (this.errors.get(msg) ?? 0) + 1);
    }
    appendFileSync(this.logFile, lines.join('\n') + '\n');
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return this.app!.metric(name, labels);
  }

  close(): void {
    clearInterval(this.flusher);
    this.flush();
  }
}
