import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { jetstreamManager, type StreamInfo } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { canListen } from './app.js';
import { GiveUp, waitFor } from './env.js';

/*
 * Clusters of real servers on loopback, for tests (jest) and the fault suite (test/faults, run by plain node
 * through test/faults/register.mjs): a NATS cluster with JetStream (NatsCluster) and a Redis Cluster of
 * primaries with replicas (RedisCluster; redis-server or valkey-server, whichever scripts/lib.sh chose).
 * Every node can be killed (SIGKILL), stopped and continued (SIGSTOP/SIGCONT) and started again on the same
 * ports and data; every wait is on an answer of the servers, never on time alone.
 *
 * Clean-up is for sure: every process is killed and every folder removed when the cluster is stopped, and
 * also when this process exits (an 'exit' hook), however the test ended; a node is started under
 * `setpriv --pdeathsig SIGKILL` where util-linux has it, so that it dies with this process even when this
 * process is SIGKILLed. KEEP=1 keeps the folders (logs, stores) and prints where they are.
 *
 * Ports: defaults in 41000-42999 (a cluster by hand, clear of the tests' 14222/16379, the fault suite's
 * 30222/30379/31000+ and the demo's 24222/26379/29090); tests take a free block with freeBasePort(). The
 * Redis cluster bus is set explicitly (--cluster-port) next to the client ports, so that it is not
 * port+10000 (in Linux's ephemeral range, where an outgoing connection could take it).
 */

const execFileAsync = promisify(execFile);

/**
 * Called with every process a cluster spawns (the fault suite records its pid for clean-up and its exit);
 * `cause()` says, once it has exited, whether this module killed it ('kill') or not (null: a crash).
 */
export type SpawnHook = (name: string, child: ChildProcess, cause: () => 'kill' | null) => void;

// ---- processes -------------------------------------------------------------------------------------------

const liveChildren = new Set<ChildProcess>();
const ownedDirs = new Set<string>();
let exitHookInstalled = false;

function keep(): boolean {
  return process.env.KEEP === '1';
}

/** On the way out, whatever happened: SIGKILL every node still running, remove every folder (unless KEEP=1). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (!keep()) for (const dir of ownedDirs) rmSync(dir, { recursive: true, force: true });
  });
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat(['/usr/bin', '/bin'])) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      /* next */
    }
  }
  return undefined;
}

let setprivPath: string | null | undefined;
/** util-linux's setpriv, when it can set a parent-death signal (Linux only). */
function setpriv(): string | null {
  if (setprivPath === undefined) setprivPath = process.platform === 'linux' ? (onPath('setpriv') ?? null) : null;
  return setprivPath;
}

/** A temporary folder of the cluster's, removed by dispose/stopAll and on exit (unless KEEP=1). */
function ownDir(prefix: string): string {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  ownedDirs.add(dir);
  return dir;
}

function releaseDir(dir: string): void {
  ownedDirs.delete(dir);
  if (keep()) process.stderr.write(`[clusters] KEEP=1: kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}

/**
 * One server process of a cluster: started (again) with the same command line, so on the same ports and
 * data; killed, stopped, continued.
 */
export class ClusterProcess {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private killed = false;

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    private readonly onSpawn?: SpawnHook,
  ) {}

  get pid(): number | undefined {
    return this.running() ? this.child!.pid : undefined;
  }

  running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the process (not waiting for it to answer: the cluster classes do that). */
  spawn(): void {
    if (this.running()) throw new Error(`${this.name} is already running`);
    installExitHook();
    const wrapper = setpriv();
    // setpriv execs the server in place (same pid): signals reach the server itself.
    const child = wrapper
      ? spawn(wrapper, ['--pdeathsig', 'SIGKILL', '--', this.command, ...this.args], { stdio: 'ignore' })
      : spawn(this.command, this.args, { stdio: 'ignore' });
    // A binary that cannot be run reports it as an 'error' event after spawn() returns: never unhandled.
    child.once('error', () => undefined);
    if (child.pid === undefined) throw new Error(`${this.name} (${this.command}) did not start`);
    liveChildren.add(child);
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        liveChildren.delete(child);
        resolve();
      }),
    );
    this.killed = false;
    this.onSpawn?.(this.name, child, () => (this.killed ? 'kill' : null));
  }

  /** SIGKILL (a crash), and wait until it is gone. Idempotent. */
  async kill(): Promise<void> {
    if (!this.running()) return;
    this.killed = true;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGSTOP: the process freezes (a long pause, a partition) and answers nothing until cont(). */
  stop(): void {
    if (this.running()) this.child!.kill('SIGSTOP');
  }

  /** SIGCONT: a stopped process goes on. */
  cont(): void {
    if (this.running()) this.child!.kill('SIGCONT');
  }
}

// ---- helpers ---------------------------------------------------------------------------------------------

export { GiveUp };

/** waitFor with the clusters' longer defaults (60 s, every 100 ms): a cluster forms and fails over slowly. */
export function waitUntil<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 60000, everyMs = 100): Promise<T> {
  return waitFor(what, probe, timeoutMs, everyMs);
}

/**
 * The first port of `span` consecutive free ones, in 17000-23999 (test/support/app.ts freePort's range:
 * below the ephemeral ports, clear of every script's fixed ports); tests pass it as a cluster's basePort.
 */
export async function freeBasePort(span: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 17000 + Math.floor(Math.random() * (7000 - span));
    let free = true;
    for (let port = base; port < base + span && free; port++) free = await canListen(port);
    if (free) return base;
  }
  throw new Error(`no ${span} consecutive free ports found in 17000-23999`);
}

function binary(envName: string, plainName: string): string {
  return process.env[envName] || onPath(plainName) || plainName;
}

/**
 * A server of a cluster (NatsNode, RedisNode): its process, the signals a test sends it, and a start that
 * waits until the server answers (ending at once if the process exits).
 */
abstract class ClusterNode {
  constructor(readonly process: ClusterProcess) {}

  /** How the waits name the server (e.g. `nats-server n1`, `redis node 42000`). */
  protected abstract get label(): string;
  /** What the start waits for, after the label (e.g. `to answer PING`). */
  protected abstract get awaited(): string;
  /** The server's log, named when it exits while waited for. */
  protected abstract get logFile(): string;
  /** Whether the server answers as awaited. */
  protected abstract answers(): Promise<boolean>;

  running(): boolean {
    return this.process.running();
  }

  /** Starts the server (again: same ports, same data) and waits until it answers as awaited. */
  async start(timeoutMs = 60000): Promise<void> {
    this.process.spawn();
    await this.waitAnswers(timeoutMs);
  }

  protected async waitAnswers(timeoutMs: number): Promise<void> {
    await waitUntil(
      `${this.label} ${this.awaited}`,
      async () => {
        if (!this.running()) throw new GiveUp(`${this.label} exited; see ${this.logFile}`);
        return this.answers();
      },
      timeoutMs,
    );
  }

  /** SIGKILL. */
  kill(): Promise<void> {
    return this.process.kill();
  }

  /** SIGSTOP. */
  stop(): void {
    this.process.stop();
  }

  /** SIGCONT. */
  cont(): void {
    this.process.cont();
  }
}

// ---- NATS ------------------------------------------------------------------------------------------------

export interface NatsClusterOptions {
  /** Number of servers (default 3). */
  nodes?: number;
  /**
   * Client ports basePort..basePort+nodes-1, cluster (route) ports from basePort+10, monitor ports from
   * basePort+20 (default 41000: nodes of the span basePort..basePort+29).
   */
  basePort?: number;
  /** The cluster's name (default meta-agent-test). */
  name?: string;
  /** nats-server binary (default NATS_SERVER_BIN, as scripts/lib.sh chose it, else nats-server on PATH). */
  bin?: string;
  /** How long start() waits for the cluster to form (default 60 s). */
  readyTimeoutMs?: number;
  /** More top-level configuration lines for every server (e.g. `ping_interval: "1s"`). */
  extraConfig?: string[];
  onSpawn?: SpawnHook;
}

/** The NATS span of ports a cluster of `nodes` servers takes from its basePort (for freeBasePort). */
export const NATS_PORT_SPAN = 30;

interface Jsz {
  server_name?: string;
  meta_cluster?: { name?: string; leader?: string; cluster_size?: number; replicas?: { name: string; current: boolean; offline?: boolean }[] };
}

export class NatsNode extends ClusterNode {
  constructor(
    readonly index: number,
    /** The server's name (n1, n2, ...): what JetStream reports as a stream's leader. */
    readonly name: string,
    readonly port: number,
    readonly clusterPort: number,
    readonly monitorPort: number,
    readonly dir: string,
    bin: string,
    onSpawn?: SpawnHook,
  ) {
    super(new ClusterProcess(`nats-${name}`, bin, ['-c', join(dir, 'nats.conf')], onSpawn));
  }

  protected get label(): string {
    return `nats-server ${this.name}`;
  }

  protected get awaited(): string {
    return `(port ${this.port}) to be healthy`;
  }

  protected get logFile(): string {
    return join(this.dir, 'nats.log');
  }

  protected answers(): Promise<boolean> {
    return this.healthy();
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The monitor's answer at `path` (e.g. /jsz, /routez), parsed. */
  async monitor<T = unknown>(path: string): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.monitorPort}${path}`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`${this.name} ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  /** Whether /healthz answers ok: the server is up and its JetStream is current with the cluster. */
  async healthy(): Promise<boolean> {
    const res = await fetch(`http://127.0.0.1:${this.monitorPort}/healthz`, { signal: AbortSignal.timeout(5000) });
    return res.ok;
  }

  /** Waits until the server is healthy (routes up, JetStream current); start() waits for this too. */
  async waitHealthy(timeoutMs = 60000): Promise<void> {
    await this.waitAnswers(timeoutMs);
  }
}

/**
 * A NATS cluster with JetStream on loopback: `nodes` nats-server processes (names n1, n2, ...), each with
 * its own store, routes to every other, a monitor port. start() returns once every route is up, the
 * JetStream meta group has a leader and every server is healthy.
 */
export class NatsCluster {
  private constructor(
    readonly nodes: NatsNode[],
    readonly name: string,
    readonly dir: string,
  ) {}

  static async start(options: NatsClusterOptions = {}): Promise<NatsCluster> {
    const count = options.nodes ?? 3;
    const base = options.basePort ?? 41000;
    const name = options.name ?? 'meta-agent-test';
    const bin = options.bin ?? binary('NATS_SERVER_BIN', 'nats-server');
    if (count < 1 || count > 10) throw new Error(`NatsCluster: nodes must be 1-10, not ${count}`);
    const dir = ownDir('nats-cluster-');
    const routes = Array.from({ length: count }, (_, i) => `nats-route://127.0.0.1:${base + 10 + i}`);
    const nodes = Array.from({ length: count }, (_, i) => {
      const nodeDir = join(dir, `n${i + 1}`);
      mkdirSync(join(nodeDir, 'jetstream'), { recursive: true });
      // A configuration file: the cluster block (name, routes) has no command-line form for its name.
      const conf = [
        `server_name: n${i + 1}`,
        `listen: 127.0.0.1:${base + i}`,
        `http: 127.0.0.1:${base + 20 + i}`,
        `log_file: "${join(nodeDir, 'nats.log')}"`,
        `jetstream { store_dir: "${join(nodeDir, 'jetstream')}" }`,
        ...(options.extraConfig ?? []),
        `cluster {`,
        `  name: ${name}`,
        `  listen: 127.0.0.1:${base + 10 + i}`,
        `  routes: [${routes.filter((_, j) => j !== i).join(', ')}]`,
        `}`,
      ];
      writeFileSync(join(nodeDir, 'nats.conf'), conf.join('\n') + '\n');
      return new NatsNode(i, `n${i + 1}`, base + i, base + 10 + i, base + 20 + i, nodeDir, bin, options.onSpawn);
    });
    const cluster = new NatsCluster(nodes, name, dir);
    try {
      // All at once: no server is healthy before the JetStream meta group has a quorum.
      for (const node of nodes) node.process.spawn();
      await cluster.waitFormed(options.readyTimeoutMs ?? 60000, true);
    } catch (error) {
      await cluster.stopAll();
      throw error;
    }
    return cluster;
  }

  /** The client URLs of every node, comma-separated (a client's server list, META_AGENT_NATS_URL). */
  get urls(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  node(name: string): NatsNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no NATS node named ${name} (${this.nodes.map((n) => n.name).join(', ')})`);
    return node;
  }

  /**
   * Waits until every running node has its routes to the other running nodes, they agree on one JetStream
   * meta leader, and every running node is healthy. `requireAll`: a node that is not running ends the wait.
   */
  async waitFormed(timeoutMs = 60000, requireAll = false): Promise<void> {
    await waitUntil(
      `NATS cluster ${this.name} to form`,
      async () => {
        const gone = requireAll ? this.nodes.find((n) => !n.running()) : undefined;
        if (gone) throw new GiveUp(`nats-server ${gone.name} exited; see ${join(gone.dir, 'nats.log')}`);
        const running = this.nodes.filter((n) => n.running());
        const leaders = new Set<string>();
        for (const node of running) {
          const routez = await node.monitor<{ routes?: { remote_name?: string; remote_id?: string }[] }>('/routez');
          const peers = new Set((routez.routes ?? []).map((r) => r.remote_name ?? r.remote_id));
          if (!running.every((other) => other === node || peers.has(other.name))) return false;
          const jsz = await node.monitor<Jsz>('/jsz');
          if (!jsz.meta_cluster?.leader) return false;
          leaders.add(jsz.meta_cluster.leader);
          if (!(await node.healthy())) return false;
        }
        return leaders.size === 1;
      },
      timeoutMs,
      200,
    );
  }

  /** A client connection to the cluster (every node's URL; reconnects to another node when one dies). */
  connect(): Promise<NatsConnection> {
    return connect({ servers: this.nodes.map((n) => n.url), reconnectTimeWait: 250, maxReconnectAttempts: -1 });
  }

  /**
   * STREAM.INFO of `stream`, asked through a short-lived connection to the running nodes (the answer comes
   * from the stream's leader: none while it has none).
   */
  async streamInfo(stream: string): Promise<StreamInfo> {
    const nc = await connect({ servers: this.nodes.filter((n) => n.running()).map((n) => n.url), timeout: 5000 });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 5000 });
      return await jsm.streams.info(stream);
    } finally {
      await nc.close();
    }
  }

  /**
   * Waits until a running node (other than `notLeader`, when given: a new one after a kill) leads `stream`
   * (STREAM.INFO's cluster.leader) and returns it; the replicas may still be catching up.
   */
  async waitStreamLeader(stream: string, options: { notLeader?: NatsNode; timeoutMs?: number } = {}): Promise<NatsNode> {
    return waitUntil(
      `stream ${stream} to have a leader${options.notLeader ? ` other than ${options.notLeader.name}` : ''}`,
      async () => {
        const leader = (await this.streamInfo(stream)).cluster?.leader;
        const node = leader ? this.nodes.find((n) => n.name === leader) : undefined;
        return node?.running() && node !== options.notLeader ? node : undefined;
      },
      options.timeoutMs ?? 60000,
      200,
    );
  }

  /**
   * Waits until `stream` has a leader (other than `notLeader`, when given: a new one after a kill) and every
   * replica is current and online; returns the leader. `replicas`: how many peers besides the leader to
   * expect (default: as many as the stream's config asks, minus one).
   */
  async waitStreamReady(stream: string, options: { notLeader?: NatsNode; replicas?: number; timeoutMs?: number } = {}): Promise<NatsNode> {
    return waitUntil(
      `stream ${stream} to have a leader${options.notLeader ? ` other than ${options.notLeader.name}` : ''} and all replicas current`,
      async () => {
        const info = await this.streamInfo(stream);
        const leader = info.cluster?.leader;
        const node = leader ? this.nodes.find((n) => n.name === leader) : undefined;
        if (!node?.running() || node === options.notLeader) return undefined;
        const want = options.replicas ?? info.config.num_replicas - 1;
        const replicas = info.cluster?.replicas ?? [];
        if (replicas.length !== want) return undefined;
        return replicas.every((r) => r.current && !r.offline) ? node : undefined;
      },
      options.timeoutMs ?? 60000,
      200,
    );
  }

  /** The stream's leader as the monitor's /jsz tells it (no client connection; the leader itself answers). */
  async streamLeaderFromMonitor(stream: string): Promise<NatsNode | undefined> {
    for (const node of this.nodes.filter((n) => n.running())) {
      type Detail = { account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[] };
      const jsz = await node.monitor<Detail>('/jsz?streams=true').catch(() => undefined);
      for (const account of jsz?.account_details ?? []) {
        for (const detail of account.stream_detail ?? []) {
          if (detail.name === stream && detail.cluster?.leader) return this.nodes.find((n) => n.name === detail.cluster!.leader);
        }
      }
    }
    return undefined;
  }

  /** SIGKILLs every node and removes the cluster's folder (unless KEEP=1). Idempotent. */
  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    if (existsSync(this.dir)) releaseDir(this.dir);
  }
}

// ---- Redis Cluster ---------------------------------------------------------------------------------------

export interface RedisClusterOptions {
  /** Primaries (default 3). */
  primaries?: number;
  /** Replicas of each primary (default 1). */
  replicasPerPrimary?: number;
  /**
   * Client ports basePort..basePort+n-1, cluster bus ports from basePort+50 (default 42000: the span
   * basePort..basePort+99).
   */
  basePort?: number;
  /** cluster-node-timeout in ms (default 2000): how long a primary may be unreachable before a failover. */
  nodeTimeoutMs?: number;
  /** appendfsync (default everysec); AOF is on. */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** More server arguments for every node (e.g. ['--requirepass', 'x'] — then also `password`). */
  extraArgs?: string[];
  /** server / CLI binaries (default REDIS_SERVER_BIN / REDIS_CLI_BIN, as scripts/lib.sh chose them). */
  bin?: string;
  cliBin?: string;
  readyTimeoutMs?: number;
  onSpawn?: SpawnHook;
}

/** The span of ports a Redis Cluster takes from its basePort (for freeBasePort). */
export const REDIS_PORT_SPAN = 100;

export const CLUSTER_SLOTS = 16384;

type SlotRange = [start: number, end: number, primary: [host: string, port: number, id?: string], ...replicas: unknown[]];

/** One command on a short-lived connection to a node; rejects when the node does not answer in time. */
async function command<T = unknown>(port: number, args: (string | number)[], timeoutMs = 5000): Promise<T> {
  const client = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.call(String(args[0]), ...args.slice(1).map(String))) as T;
  } finally {
    client.disconnect();
  }
}

function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return out;
}

export class RedisNode extends ClusterNode {
  constructor(
    readonly index: number,
    readonly port: number,
    readonly busPort: number,
    readonly dir: string,
    bin: string,
    args: string[],
    onSpawn?: SpawnHook,
  ) {
    super(new ClusterProcess(`redis-${port}`, bin, args, onSpawn));
  }

  protected get label(): string {
    return `redis node ${this.port}`;
  }

  protected get awaited(): string {
    return 'to answer PING';
  }

  protected get logFile(): string {
    return join(this.dir, 'redis.log');
  }

  protected async answers(): Promise<boolean> {
    return (await this.command('PING')) === 'PONG';
  }

  /** host:port (an entry of META_AGENT_REDIS_CLUSTER_NODES). */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** One command to this node (short-lived connection). */
  command<T = unknown>(...args: (string | number)[]): Promise<T> {
    return command<T>(this.port, args);
  }

  async clusterInfo(): Promise<Record<string, string>> {
    return parseInfo(await this.command<string>('CLUSTER', 'INFO'));
  }

  /** ROLE: ['master', offset, replicas] or ['slave', host, port, state, offset]. */
  async role(): Promise<{ role: 'master' | 'slave' | string; primaryPort?: number; linkState?: string }> {
    const reply = await this.command<unknown[]>('ROLE');
    const role = String(reply[0]);
    if (role === 'slave') return { role, primaryPort: Number(reply[2]), linkState: String(reply[3]) };
    return { role };
  }
}

/**
 * A Redis Cluster on loopback: primaries × (1 + replicasPerPrimary) redis-server (or valkey-server)
 * processes with cluster mode, AOF and their own folders, joined by `redis-cli --cluster create`. start()
 * returns once every node reports cluster_state:ok with all 16384 slots served, every node knows every
 * other, and every replica's link to its primary is up.
 */
export class RedisCluster {
  private constructor(
    readonly all: RedisNode[],
    readonly dir: string,
    readonly nodeTimeoutMs: number,
  ) {}

  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const primaries = options.primaries ?? 3;
    const replicas = options.replicasPerPrimary ?? 1;
    const base = options.basePort ?? 42000;
    const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000;
    const total = primaries * (1 + replicas);
    if (primaries < 3) throw new Error('RedisCluster: Redis Cluster needs at least 3 primaries');
    if (total > 50) throw new Error(`RedisCluster: ${total} nodes do not fit the port span`);
    const bin = options.bin ?? binary('REDIS_SERVER_BIN', 'redis-server');
    const cli = options.cliBin ?? binary('REDIS_CLI_BIN', 'redis-cli');
    const dir = ownDir('redis-cluster-');
    const nodes = Array.from({ length: total }, (_, i) => {
      const port = base + i;
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir, { recursive: true });
      const args = [
        '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no', '--daemonize', 'no',
        '--dir', nodeDir, '--logfile', join(nodeDir, 'redis.log'),
        '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout', String(nodeTimeoutMs), '--cluster-port', String(base + 50 + i),
        '--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'everysec', '--save', '',
        // The recommended hash encoding (docs/OPERATIONS.md "Redis"), as scripts/servers.sh runs Redis.
        '--hash-max-listpack-value', '4096',
        ...(options.extraArgs ?? []),
      ]; // prettier-ignore
      return new RedisNode(i, port, base + 50 + i, nodeDir, bin, args, options.onSpawn);
    });
    const cluster = new RedisCluster(nodes, dir, nodeTimeoutMs);
    const timeoutMs = options.readyTimeoutMs ?? 60000;
    try {
      await Promise.all(nodes.map((n) => n.start(timeoutMs)));
      await execFileAsync(cli, ['--cluster', 'create', ...nodes.map((n) => n.address), '--cluster-replicas', String(replicas), '--cluster-yes'], {
        timeout: timeoutMs,
      }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(`${cli} --cluster create failed: ${error.message}\n${error.stdout ?? ''}${error.stderr ?? ''}`);
      });
      await cluster.waitHealthy(timeoutMs);
    } catch (error) {
      await cluster.stopAll();
      throw error;
    }
    return cluster;
  }

  /** host:port of every node, comma-separated (META_AGENT_REDIS_CLUSTER_NODES). */
  get nodes(): string {
    return this.all.map((n) => n.address).join(',');
  }

  node(port: number): RedisNode {
    const node = this.all.find((n) => n.port === port);
    if (!node) throw new Error(`no Redis node on port ${port}`);
    return node;
  }

  private live(): RedisNode[] {
    return this.all.filter((n) => n.running());
  }

  /** CLUSTER SLOTS as one running node sees it. */
  async slots(from?: RedisNode): Promise<{ start: number; end: number; primary: RedisNode }[]> {
    const asked = from ?? this.live()[0];
    if (!asked) throw new Error('no Redis node is running');
    const ranges = await asked.command<SlotRange[]>('CLUSTER', 'SLOTS');
    return ranges.map(([start, end, primary]) => ({ start: Number(start), end: Number(end), primary: this.node(Number(primary[1])) }));
  }

  /** The node that serves `slot` now (CLUSTER SLOTS of a running node). */
  async primaryForSlot(slot: number): Promise<RedisNode> {
    const range = (await this.slots()).find((r) => slot >= r.start && slot <= r.end);
    if (!range) throw new Error(`slot ${slot} is not served`);
    return range.primary;
  }

  /** CLUSTER KEYSLOT of `key`. */
  async keySlot(key: string): Promise<number> {
    const node = this.live()[0];
    if (!node) throw new Error('no Redis node is running');
    return Number(await node.command('CLUSTER', 'KEYSLOT', key));
  }

  /** The node that serves `key` now. */
  async primaryForKey(key: string): Promise<RedisNode> {
    return this.primaryForSlot(await this.keySlot(key));
  }

  /** The primaries, as CLUSTER SLOTS of a running node says now. */
  async primaries(): Promise<RedisNode[]> {
    return [...new Set((await this.slots()).map((r) => r.primary))].sort((a, b) => a.port - b.port);
  }

  /** A slot each primary served when last seen (waitHealthy, waitFailover): what waitFailover follows. */
  private readonly slotOf = new Map<RedisNode, number>();

  /**
   * Waits until every running node says cluster_state:ok with all slots assigned and ok, knows every
   * running node, and agrees with the others on who serves which slots (running nodes only); and every
   * running replica's link to its primary is up.
   */
  async waitHealthy(timeoutMs = 60000): Promise<void> {
    const agreed = await waitUntil(
      'Redis Cluster to be healthy (cluster_state:ok, all slots served, replicas linked)',
      async () => {
        const live = this.live();
        let view: string | undefined;
        let ranges: Awaited<ReturnType<RedisCluster['slots']>> = [];
        for (const node of live) {
          const info = await node.clusterInfo();
          if (info.cluster_state !== 'ok') return undefined;
          if (Number(info.cluster_slots_assigned) !== CLUSTER_SLOTS || Number(info.cluster_slots_ok) !== CLUSTER_SLOTS) return undefined;
          if (Number(info.cluster_known_nodes) < live.length) return undefined;
          ranges = await this.slots(node);
          if (ranges.some((r) => !r.primary.running())) return undefined;
          const mine = JSON.stringify(ranges.map((r) => [r.start, r.end, r.primary.port]).sort((x, y) => x[0] - y[0]));
          if (view !== undefined && view !== mine) return undefined;
          view = mine;
          const role = await node.role();
          if (role.role === 'slave' && role.linkState !== 'connected') return undefined;
        }
        return ranges.length > 0 ? ranges : undefined;
      },
      timeoutMs,
      200,
    );
    for (const r of agreed) this.slotOf.set(r.primary, r.start);
  }

  /**
   * After `deadPrimary` was killed (or stopped): waits until the slots it served (as last seen by
   * waitHealthy, else as a running node says now) are served by another running node (its replica,
   * promoted), as every other running node sees it, with cluster_state:ok and all slots ok everywhere;
   * returns the new primary.
   */
  async waitFailover(deadPrimary: RedisNode, timeoutMs = 60000): Promise<RedisNode> {
    const others = () => this.live().filter((n) => n !== deadPrimary);
    let slot = this.slotOf.get(deadPrimary);
    if (slot === undefined) {
      const range = (await this.slots(others()[0])).find((r) => r.primary === deadPrimary);
      if (!range) throw new Error(`${deadPrimary.address} serves no slots`);
      slot = range.start;
    }
    const watched = slot;
    const owner = await waitUntil(
      `a new primary for the slots of ${deadPrimary.address} (slot ${watched})`,
      async () => {
        let found: RedisNode | undefined;
        for (const node of others()) {
          const info = await node.clusterInfo();
          if (info.cluster_state !== 'ok' || Number(info.cluster_slots_ok) !== CLUSTER_SLOTS) return undefined;
          const range = (await this.slots(node)).find((r) => watched >= r.start && watched <= r.end);
          if (!range || range.primary === deadPrimary || !range.primary.running()) return undefined;
          if (found && found !== range.primary) return undefined;
          found = range.primary;
        }
        return found;
      },
      timeoutMs,
      100,
    );
    this.slotOf.delete(deadPrimary);
    this.slotOf.set(owner, watched);
    return owner;
  }

  /** One command asked of the node on `port` (a short-lived connection). */
  ask<T = unknown>(port: number, ...args: (string | number)[]): Promise<T> {
    return command<T>(port, args);
  }

  /** Who is who now: the primaries' ports, and each one's replicas' ports (ROLE of every running node). */
  async roles(): Promise<{ primaries: number[]; replicasOf: Map<number, number[]> }> {
    const primaries = (await this.primaries()).map((n) => n.port);
    const replicasOf = new Map(await Promise.all(primaries.map(async (p) => [p, (await this.replicasOf(this.node(p))).map((n) => n.port)] as const)));
    return { primaries, replicasOf };
  }

  /** The replicas of `primary` now (ROLE of every running node). */
  async replicasOf(primary: RedisNode): Promise<RedisNode[]> {
    const out: RedisNode[] = [];
    for (const node of this.live()) {
      const role = await node.role().catch(() => undefined);
      if (role?.role === 'slave' && role.primaryPort === primary.port) out.push(node);
    }
    return out;
  }

  /** Waits until `node` (restarted) is a replica of `primary` with its link up (ROLE). */
  async waitReplicaOf(node: RedisNode, primary: RedisNode, timeoutMs = 60000): Promise<void> {
    await waitUntil(
      `${node.address} to be a replica of ${primary.address} with its link up`,
      async () => {
        const role = await node.role();
        return role.role === 'slave' && role.primaryPort === primary.port && role.linkState === 'connected';
      },
      timeoutMs,
    );
  }

  /** SIGKILLs every node and removes the cluster's folder (unless KEEP=1). Idempotent. */
  async stopAll(): Promise<void> {
    await Promise.all(this.all.map((n) => n.kill()));
    if (existsSync(this.dir)) releaseDir(this.dir);
  }
}
