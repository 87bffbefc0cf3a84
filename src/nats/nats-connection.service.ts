import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Subject, type Observable } from 'rxjs';
import { appConfig, natsConfig, type AppConfig, type NatsConfig } from '../config/configuration.js';
import { redactUrl } from '../config/env-reader.js';
import { JetStreamPublisher } from './jetstream-publisher.js';
import { natsServerVersionProblem } from './server-version.js';

/**
 * Server URLs without credentials, and the credentials a URL carried (`nats://user:pass@host` or
 * `nats://token@host`), which the NATS client does not take from URLs itself.
 */
export function splitNatsUrls(servers: string): { servers: string[]; user?: string; pass?: string; token?: string } {
  const out: { servers: string[]; user?: string; pass?: string; token?: string } = { servers: [] };
  for (const raw of servers.split(',').map((s) => s.trim())) {
    const url = new URL(raw);
    if (url.username) {
      const user = decodeURIComponent(url.username);
      if (url.password) Object.assign(out, { user, pass: decodeURIComponent(url.password) });
      else out.token = user;
      url.username = '';
      url.password = '';
    }
    out.servers.push(url.toString().replace(/\/$/, ''));
  }
  return out;
}

/** Authentication and TLS options from the settings; explicit settings win over URL credentials. */
export function natsSecurityOptions(config: NatsConfig): Partial<ConnectionOptions> {
  const { auth, tls } = config;
  const fromUrl = splitNatsUrls(config.servers);
  const options: Partial<ConnectionOptions> = { servers: fromUrl.servers };
  const explicit = auth.user || auth.token || auth.nkeySeed || auth.credsFile;
  if (!explicit && fromUrl.user) Object.assign(options, { user: fromUrl.user, pass: fromUrl.pass });
  if (!explicit && fromUrl.token) options.token = fromUrl.token;
  if (auth.user && auth.pass) Object.assign(options, { user: auth.user, pass: auth.pass });
  if (auth.token) options.token = auth.token;
  if (auth.nkeySeed) options.authenticator = nkeyAuthenticator(new TextEncoder().encode(auth.nkeySeed));
  if (auth.credsFile) options.authenticator = credsAuthenticator(readFileSync(auth.credsFile));
  if (tls.caFile || tls.certFile) options.tls = { caFile: tls.caFile, certFile: tls.certFile, keyFile: tls.keyFile };
  return options;
}

/** A change of the connection, as the client's `status()` iterator reports it (`server`: redacted). */
export interface NatsConnectionChange {
  type: 'disconnect' | 'reconnecting' | 'reconnect' | 'close';
  server?: string;
}

/**
 * The one NATS connection of the process, shared by the JetStream transport (consuming) and the
 * publishers (decisions, dead letters). Connects at start with a bounded timeout: a NATS server that
 * cannot be reached fails start-up with a clear message instead of hanging. Drains last on shutdown.
 */
@Injectable()
export class NatsConnectionService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Nats');
  private nc?: NatsConnection;
  private js?: JetStreamClient;
  private jsm?: JetStreamManager;
  private disconnected = false;
  private readonly changes = new Subject<NatsConnectionChange>();
  /**
   * The connection's changes after start-up (the connection is up when start-up ends): the JetStream transport
   * reports them as its status and events (`JetStreamServer.status`, `on('disconnect', ...)`).
   */
  readonly connectionChanges: Observable<NatsConnectionChange> = this.changes.asObservable();

  constructor(
    @Inject(natsConfig.KEY) private readonly config: NatsConfig,
    @Inject(appConfig.KEY) private readonly app: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    try {
      this.nc = await connect({
        name: this.app.name,
        timeout: this.config.connectTimeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        waitOnFirstConnect: false,
        // A server that hangs with its socket open (stopped, partitioned) is noticed by pings only.
        pingInterval: this.config.pingIntervalMs,
        maxPingOut: 2,
        // Otherwise every request (each JetStream publish) allocates an Error up front for its stack.
        noAsyncTraces: true,
        ...natsSecurityOptions(this.config),
      });
      this.jsm = await jetstreamManager(this.nc, { timeout: this.config.connectTimeoutMs });
    } catch (error) {
      await this.nc?.close().catch(() => undefined);
      throw new Error(`cannot connect to NATS JetStream at ${redactUrl(this.config.servers)}: ${(error as Error).message}`, { cause: error });
    }
    // A server older than the supported minimum (2.10) stops start-up with one line, not a slow service.
    const tooOld = natsServerVersionProblem(this.nc.info?.version);
    if (tooOld) {
      await this.nc.close().catch(() => undefined);
      throw new Error(tooOld);
    }
    this.js = jetstream(this.nc, { timeout: this.config.connectTimeoutMs });
    this.logger.log({ msg: 'connected', servers: redactUrl(this.config.servers), server_version: this.nc.info?.version });
    void this.watchStatus(this.nc);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      const server = 'server' in s ? redactUrl(String(s.server)) : undefined;
      if (s.type === 'disconnect') this.disconnected = true;
      if (s.type === 'reconnect') this.disconnected = false;
      if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') {
        this.logger.warn({ msg: `nats ${s.type}`, server });
      }
      // The state above is set first: a subscriber that asks isConnected() sees the change it is told of.
      if (s.type === 'disconnect' || s.type === 'reconnecting' || s.type === 'reconnect') this.changes.next({ type: s.type, server });
      if (s.type === 'close') break;
    }
    // The connection is closed (drained at shutdown, or closed for good): no change follows.
    this.changes.next({ type: 'close' });
    this.changes.complete();
  }

  get connection(): NatsConnection {
    if (!this.nc) throw new Error('NATS is not connected yet');
    return this.nc;
  }

  get jetstream(): JetStreamClient {
    if (!this.js) throw new Error('NATS is not connected yet');
    return this.js;
  }

  get manager(): JetStreamManager {
    if (!this.jsm) throw new Error('NATS is not connected yet');
    return this.jsm;
  }

  /** A publisher whose publishes wait for JetStream's acknowledgement (src/nats/jetstream-publisher.ts), on this connection. */
  acknowledgedPublisher(timeoutMs: number): JetStreamPublisher {
    return new JetStreamPublisher(this.connection, { timeoutMs });
  }

  /** Connected now (not closed, draining, or waiting to reconnect). */
  isConnected(): boolean {
    return this.nc !== undefined && !this.nc.isClosed() && !this.nc.isDraining() && !this.disconnected;
  }

  /** The server the connection is on now (`host:port`), for logs and events. */
  serverUrl(): string | undefined {
    return this.nc ? redactUrl(this.nc.getServer()) : undefined;
  }

  /** Connected and JetStream answering (for readiness). */
  async checkJetStream(): Promise<void> {
    if (!this.nc || this.nc.isClosed() || this.nc.isDraining()) throw new Error('NATS connection closed');
    await this.manager.getAccountInfo();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.nc && !this.nc.isClosed()) {
      await this.nc.drain().catch(() => undefined);
    }
  }
}
