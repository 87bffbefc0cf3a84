import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { appConfig, natsConfig, type AppConfig, type NatsConfig } from '../config/configuration.js';
import { redactUrl } from '../config/env.schema.js';

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

  constructor(
    @Inject(natsConfig.KEY) private readonly config: NatsConfig,
    @Inject(appConfig.KEY) private readonly app: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    const servers = this.config.servers.split(',').map((s) => s.trim());
    try {
      this.nc = await connect({
        servers,
        name: this.app.name,
        timeout: this.config.connectTimeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        waitOnFirstConnect: false,
      });
      this.jsm = await jetstreamManager(this.nc, { timeout: this.config.connectTimeoutMs });
    } catch (error) {
      await this.nc?.close().catch(() => undefined);
      throw new Error(
        `cannot connect to NATS JetStream at ${redactUrl(this.config.servers)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.js = jetstream(this.nc, { timeout: this.config.connectTimeoutMs });
    this.logger.log({ msg: 'connected', servers: redactUrl(this.config.servers) });
    void this.watchStatus(this.nc);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') {
        this.logger.warn({ msg: `nats ${s.type}`, server: 'server' in s ? redactUrl(String(s.server)) : undefined });
      }
    }
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
