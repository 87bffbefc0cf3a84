import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freePort } from './app.js';
import { waitFor } from './env.js';

/**
 * Options of a one-shot probe client: one attempt, no retry. `disconnectTimeout: 0`: ioredis's disconnect()
 * arms a timer (2 s by default) that only the socket's next 'close' clears; after a refused connection the
 * socket has closed already, and the timer would be left running, keeping Jest from exiting at the end.
 */
export const PROBE_OPTIONS = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, disconnectTimeout: 0 } as const;

/** Whether a redis-server on this loopback port answers PING with PONG (not LOADING, not refused). */
export async function redisAnswers(port: number): Promise<boolean> {
  const probe = new Redis(port, '127.0.0.1', PROBE_OPTIONS);
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } finally {
    probe.disconnect();
  }
}

/**
 * The redis-server scripts/lib.sh chose (REDIS_SERVER_BIN), else the one on PATH (where scripts/lib.sh also
 * puts its nats-server, for the tests that start `nats-server` by name).
 */
export function redisServerBin(): string {
  return process.env.REDIS_SERVER_BIN || 'redis-server';
}

/** A throw-away redis-server's arguments: loopback only, no persistence, data in `dir`; `extra` after them. */
export function ephemeralRedisArgs(dir: string, extra: string[] = []): string[] {
  return ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra];
}

/** A server process a test starts itself (nats-server, redis-server), killed for sure at the end. */
export class ServerProcess {
  private readonly exited: Promise<unknown>;

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', resolve));
  }

  static start(command: string, args: string[]): ServerProcess {
    return new ServerProcess(spawn(command, args, { stdio: 'ignore' }));
  }

  /** SIGKILL, then wait for the exit (a crash, as the tests mean it). Idempotent. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export async function killAll(servers: ServerProcess[]): Promise<void> {
  await Promise.all(servers.map((s) => s.kill()));
}

/**
 * A private server on a free loopback port with its own folder, that a test can kill (SIGKILL: a crash) and
 * start again on the same port with the same folder (an outage: the service's client reconnects to it).
 */
abstract class PrivateServer {
  readonly dir: string;
  protected server?: ServerProcess;

  protected constructor(
    readonly port: number,
    kind: string,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `private-${kind}-`));
  }

  abstract start(): Promise<void>;

  async stop(): Promise<void> {
    await this.server?.kill();
    this.server = undefined;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A private redis-server without persistence. */
export class PrivateRedis extends PrivateServer {
  private constructor(port: number) {
    super(port, 'redis');
  }

  static async create(): Promise<PrivateRedis> {
    return new PrivateRedis(await freePort());
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = ServerProcess.start(redisServerBin(), ['--port', String(this.port), ...ephemeralRedisArgs(this.dir)]);
    await waitFor('redis up', () => redisAnswers(this.port));
  }

  /** SIGSTOP: Redis stalls (a fork, an fsync, a network pause) and answers nothing until resume(). */
  pause(): void {
    this.server?.child.kill('SIGSTOP');
  }

  resume(): void {
    this.server?.child.kill('SIGCONT');
  }
}

/** The nats-server scripts/lib.sh chose (NATS_SERVER_BIN), else the one on PATH. */
export function natsServerBin(): string {
  return process.env.NATS_SERVER_BIN || 'nats-server';
}

/** A private nats-server with JetStream, its store in its folder. */
export class PrivateNats extends PrivateServer {
  private constructor(port: number) {
    super(port, 'nats');
  }

  static async create(): Promise<PrivateNats> {
    return new PrivateNats(await freePort());
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts it and waits until JetStream answers. */
  async start(): Promise<void> {
    this.server = ServerProcess.start(natsServerBin(), ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir]);
    await waitFor('nats-server with JetStream up', async () => {
      const nc = await connect({ servers: this.url, timeout: 1000, reconnect: false }).catch(() => undefined);
      if (!nc) return false;
      try {
        return (await (await jetstreamManager(nc, { timeout: 1000 })).getAccountInfo()) !== undefined;
      } catch {
        return false;
      } finally {
        await nc.close();
      }
    });
  }
}

/**
 * A private Redis Sentinel on a free loopback port that watches the master at 127.0.0.1:`masterPort`
 * under `name` (quorum 1). `password`: the Sentinel's own `requirepass`. Resolves once the Sentinel names
 * that master (SENTINEL get-master-addr-by-name).
 */
export class PrivateSentinel {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly server: ServerProcess,
  ) {}

  static async start(name: string, masterPort: number, password?: string): Promise<PrivateSentinel> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'private-sentinel-'));
    // Sentinel rewrites its configuration file (its id, what it learns), so it gets a writable one.
    const conf = join(dir, 'sentinel.conf');
    const lines = [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`];
    if (password) lines.push(`requirepass ${password}`);
    writeFileSync(conf, lines.join('\n') + '\n');
    const sentinel = new PrivateSentinel(port, dir, ServerProcess.start(redisServerBin(), [conf, '--sentinel']));
    try {
      await waitFor(`sentinel naming ${name}`, async () => {
        const probe = new Redis(port, '127.0.0.1', { ...PROBE_OPTIONS, password });
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          const addr = (await probe.call('SENTINEL', 'get-master-addr-by-name', name)) as string[] | null;
          return addr?.[1] === String(masterPort);
        } finally {
          probe.disconnect();
        }
      });
    } catch (error) {
      await sentinel.dispose();
      throw error;
    }
    return sentinel;
  }

  async dispose(): Promise<void> {
    await this.server.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ReplicatedRedisOptions {
  /** The server binary (default: redisServerBin()). */
  bin?: string;
  /**
   * A node's arguments, but for those of replication, which follow them (`name`: 'p' the primary, 'r' the
   * replica). Default: `--port`, then ephemeralRedisArgs in `dir` with `--dbfilename <name>.rdb`.
   */
  nodeArgs?: (port: number, name: 'p' | 'r', dir: string) => string[];
}

/**
 * A private primary and its replica (`--replicaof`) on free loopback ports, data in one throw-away folder.
 * start() returns once the primary reports the replica online (INFO replication); a test stops the
 * replica (`replica.child.kill('SIGSTOP')`) to hold back acknowledgements.
 */
export class ReplicatedRedis {
  primary?: ServerProcess;
  replica?: ServerProcess;

  private constructor(
    readonly dir: string,
    readonly primaryPort: number,
    readonly replicaPort: number,
  ) {}

  static async start(dirPrefix: string, options: ReplicatedRedisOptions = {}): Promise<ReplicatedRedis> {
    const bin = options.bin ?? redisServerBin();
    const nodeArgs = options.nodeArgs ?? ((port, name, dir) => ['--port', String(port), ...ephemeralRedisArgs(dir, ['--dbfilename', `${name}.rdb`])]);
    const primaryPort = await freePort();
    let replicaPort = await freePort();
    while (replicaPort === primaryPort) replicaPort = await freePort();
    const pair = new ReplicatedRedis(mkdtempSync(join(tmpdir(), dirPrefix)), primaryPort, replicaPort);
    try {
      pair.primary = ServerProcess.start(bin, [...nodeArgs(primaryPort, 'p', pair.dir), '--repl-diskless-sync-delay', '0']);
      await waitFor('primary up', () => redisAnswers(primaryPort));
      pair.replica = ServerProcess.start(bin, [...nodeArgs(replicaPort, 'r', pair.dir), '--replicaof', '127.0.0.1', String(primaryPort)]);
      const probe = new Redis(primaryPort, '127.0.0.1', { maxRetriesPerRequest: 1 });
      try {
        await waitFor('replica in sync', async () => /^slave0:.*state=online/m.test(await probe.info('replication')));
        // "online" is the primary's view once the copy is sent: the replica may still be loading it and confirm
        // nothing for a while (seen: over 300 ms on a busy machine). Ready when it confirms a write.
        await waitFor('replica confirms writes', async () => {
          await probe.set('replicated-redis:probe', String(Date.now()));
          return Number(await probe.call('WAIT', 1, 1000)) >= 1;
        });
      } finally {
        probe.disconnect();
      }
    } catch (error) {
      await pair.dispose();
      throw error;
    }
    return pair;
  }

  /** Runs `fn` with the replica stopped (SIGSTOP), continuing it (SIGCONT) however `fn` ends. */
  async whileReplicaStopped<T>(fn: () => Promise<T>): Promise<T> {
    this.replica!.child.kill('SIGSTOP');
    try {
      return await fn();
    } finally {
      this.replica!.child.kill('SIGCONT');
    }
  }

  /** Continues a stopped replica, kills both servers and removes the folder. */
  async dispose(): Promise<void> {
    this.replica?.child.kill('SIGCONT');
    await this.replica?.kill();
    await this.primary?.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
