import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Logger } from '@nestjs/common';
import { nanos } from '@nats-io/transport-node';
import type { NatsConfig } from '../../config/configuration.js';

/**
 * The streams or consumers are not as the settings need them (missing with provisioning off, another filter,
 * too few replicas, ...): start-up stops. Anything else a provisioning call throws (a JetStream briefly without
 * a leader, a timeout) is worth another try.
 */
export class ProvisioningError extends Error {
  override readonly name = 'ProvisioningError';
}

/** How long start-up keeps trying while JetStream answers that it is unavailable (a cluster electing leaders). */
const START_RETRY_MS = 30_000;
const START_RETRY_EVERY_MS = 1000;

/**
 * provisionJetStream at start-up: a cluster that lost a node answers "JetStream system temporarily unavailable"
 * or times out for the seconds its leaders take to be elected again; a replica started meanwhile waits for that
 * (up to 30 s) instead of failing. A ProvisioningError fails at once.
 */
export async function provisionAtStart(jsm: JetStreamManager, config: NatsConfig, routes: ConsumerRoute[], onRetry: (error: unknown) => void): Promise<void> {
  const deadline = Date.now() + START_RETRY_MS;
  for (;;) {
    try {
      await provisionJetStream(jsm, config, routes);
      return;
    } catch (error) {
      if (error instanceof ProvisioningError || Date.now() >= deadline) throw error;
      onRetry(error);
      await new Promise((resolve) => setTimeout(resolve, START_RETRY_EVERY_MS));
    }
  }
}

/** One durable pull consumer the transport reads from, and the handler pattern it feeds. */
export interface ConsumerRoute {
  /** The `@EventPattern` whose handler gets this consumer's messages. */
  pattern: string;
  stream: string;
  durable: string;
  filterSubject: string;
}

function isNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && (error.code === JetStreamApiCodes.StreamNotFound || error.code === JetStreamApiCodes.ConsumerNotFound);
}

/** The info, or null when the stream or consumer does not exist; other errors propagate. */
async function infoOrNull<T>(lookup: Promise<T>): Promise<T | null> {
  try {
    return await lookup;
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

const logger = new Logger('JetStream');

/**
 * Consumers' max_deliver = MAX_DELIVERIES + this: the transport counts failures and convicts poison messages
 * itself (isolation.ts), so deliveries lost to dying replicas never reach this; the server's limit is a
 * backstop, and the transport dead-letters a message on that last delivery rather than let the server drop it.
 */
export const MAX_DELIVER_BACKSTOP = 10;

/** `replicasSetting`: the variable that asked for `num_replicas`, for the messages. */
async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string; subjects: string[] },
  provision: boolean,
  replicasSetting = 'META_AGENT_STREAM_REPLICAS',
): Promise<void> {
  const info = await infoOrNull(jsm.streams.info(config.name));
  if (info) {
    const missing = config.subjects.filter((s) => !info.config.subjects?.includes(s));
    if (missing.length > 0) {
      throw new ProvisioningError(`stream ${config.name} exists but does not capture ${missing.join(', ')} (it has ${info.config.subjects?.join(', ')})`);
    }
    // A shorter de-duplication window than configured would let a re-published decision be stored twice
    // sooner than the service assumes (docs/ARCHITECTURE.md, "Decision identity"): widen it, or refuse.
    const wanted = config.duplicate_window ?? 0;
    const has = info.config.duplicate_window ?? 0;
    const update: Partial<StreamConfig> = {};
    if (wanted > has) {
      if (!provision) {
        throw new ProvisioningError(
          `stream ${config.name} has a duplicate window of ${Math.round(has / 1e6)} ms, below META_AGENT_DUPLICATE_WINDOW_MS (${Math.round(wanted / 1e6)} ms): widen it or lower the setting`,
        );
      }
      update.duplicate_window = wanted;
    }
    // Fewer replicas than asked: a stream that one server's loss takes away. Raised when provisioning
    // (JetStream copies it to the new peers), refused otherwise; more replicas than asked are left alone.
    const replicas = config.num_replicas ?? 1;
    const hasReplicas = info.config.num_replicas || 1;
    if (replicas > hasReplicas) {
      const what = `stream ${config.name} has ${hasReplicas} replica${hasReplicas === 1 ? '' : 's'}, below ${replicasSetting} (${replicas})`;
      if (!provision) throw new ProvisioningError(`${what}: raise it (nats stream edit ${config.name} --replicas ${replicas}) or lower the setting`);
      logger.log({ msg: `${what}: raising it to ${replicas}`, stream: config.name });
      update.num_replicas = replicas;
    }
    if (Object.keys(update).length > 0) await jsm.streams.update(config.name, { ...info.config, ...update });
    return;
  }
  if (!provision) throw new ProvisioningError(`stream ${config.name} does not exist and META_AGENT_PROVISION is off`);
  await jsm.streams.add(config);
}

/** True when it created the consumer (it did not exist). */
async function ensureConsumer(jsm: JetStreamManager, route: ConsumerRoute, config: NatsConfig, provision: boolean): Promise<boolean> {
  const info = await infoOrNull(jsm.consumers.info(route.stream, route.durable));
  const maxDeliver = config.maxDeliveries + MAX_DELIVER_BACKSTOP;
  if (info) {
    if (info.config.filter_subject !== route.filterSubject) {
      throw new ProvisioningError(
        `consumer ${route.durable} on ${route.stream} filters "${info.config.filter_subject}", expected "${route.filterSubject}": delete it or change the settings`,
      );
    }
    // Consumers made by an earlier version (unlimited max_deliver) or with another ack wait follow the settings.
    if (provision && (info.config.max_deliver !== maxDeliver || info.config.ack_wait !== nanos(config.ackWaitMs))) {
      await jsm.consumers.update(route.stream, route.durable, { max_deliver: maxDeliver, ack_wait: nanos(config.ackWaitMs) });
    }
    return false;
  }
  if (!provision) throw new ProvisioningError(`consumer ${route.durable} on stream ${route.stream} does not exist and META_AGENT_PROVISION is off`);
  await jsm.consumers.add(route.stream, {
    durable_name: route.durable,
    filter_subject: route.filterSubject,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(config.ackWaitMs),
    // A backstop: the transport dead-letters on MAX_DELIVERIES failures and convicts poison messages itself.
    max_deliver: maxDeliver,
    max_ack_pending: Math.max(config.maxInFlight * 16, 1000),
  });
  return true;
}

/**
 * Creates the streams and durable consumers the service needs when provisioning is on; when it is off,
 * checks that they exist. Existing ones are left as they are (they may be managed elsewhere), but a
 * consumer filtering another subject is an error, not a silent surprise. Returns the durable names of the
 * consumers it created (a running transport that re-provisions learns so that its consumer was gone).
 */
export async function provisionJetStream(jsm: JetStreamManager, config: NatsConfig, routes: ConsumerRoute[]): Promise<string[]> {
  const p = config.provision;
  const limits = { max_age: nanos(config.streamMaxAgeSeconds * 1000), num_replicas: config.streamReplicas };
  const dedupe = { duplicate_window: nanos(config.duplicateWindowMs) };
  await ensureStream(jsm, { name: config.streams.signals, subjects: [config.subjects.signals], ...limits }, p);
  await ensureStream(jsm, { name: config.streams.decisions, subjects: [config.subjects.decisions], ...limits, ...dedupe }, p);
  await ensureStream(jsm, { name: config.streams.deadLetter, subjects: [config.subjects.deadLetters], ...limits, ...dedupe }, p);
  // The audit trail (src/audit/): only when it is on; its own retention, as history and replay read far back;
  // replicated as the others unless META_AGENT_AUDIT_STREAM_REPLICAS says otherwise.
  const { audit } = config;
  if (audit.enabled) {
    const own = audit.streamReplicas > 0;
    const auditLimits = { max_age: nanos(audit.maxAgeSeconds * 1000), num_replicas: own ? audit.streamReplicas : config.streamReplicas };
    const replicasSetting = own ? 'META_AGENT_AUDIT_STREAM_REPLICAS' : undefined;
    await ensureStream(jsm, { name: audit.stream, subjects: [`${audit.subjectPrefix}.>`], ...auditLimits }, p, replicasSetting);
  }
  const created: string[] = [];
  for (const route of routes) if (await ensureConsumer(jsm, route, config, p)) created.push(route.durable);
  return created;
}
