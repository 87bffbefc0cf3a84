import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { NatsConfig } from '../../config/configuration.js';

/** One durable pull consumer the transport reads from, and the handler pattern it feeds. */
export interface ConsumerRoute {
  /** The `@EventPattern` whose handler gets this consumer's messages. */
  pattern: string;
  stream: string;
  durable: string;
  filterSubject: string;
}

function isNotFound(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamNotFound || error.code === JetStreamApiCodes.ConsumerNotFound)
  );
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

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string; subjects: string[] }, provision: boolean): Promise<void> {
  const info = await infoOrNull(jsm.streams.info(config.name));
  if (info) {
    const missing = config.subjects.filter((s) => !info.config.subjects?.includes(s));
    if (missing.length > 0) {
      throw new Error(`stream ${config.name} exists but does not capture ${missing.join(', ')} (it has ${info.config.subjects?.join(', ')})`);
    }
    return;
  }
  if (!provision) throw new Error(`stream ${config.name} does not exist and META_AGENT_PROVISION is off`);
  await jsm.streams.add(config);
}

async function ensureConsumer(jsm: JetStreamManager, route: ConsumerRoute, config: NatsConfig, provision: boolean): Promise<void> {
  const info = await infoOrNull(jsm.consumers.info(route.stream, route.durable));
  if (info) {
    if (info.config.filter_subject !== route.filterSubject) {
      throw new Error(
        `consumer ${route.durable} on ${route.stream} filters "${info.config.filter_subject}", expected "${route.filterSubject}": delete it or change the settings`,
      );
    }
    return;
  }
  if (!provision) throw new Error(`consumer ${route.durable} on stream ${route.stream} does not exist and META_AGENT_PROVISION is off`);
  await jsm.consumers.add(route.stream, {
    durable_name: route.durable,
    filter_subject: route.filterSubject,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(config.ackWaitMs),
    // Unlimited here: the settlement policy counts deliveries and dead-letters on the last one,
    // so that no message is silently given up by the server.
    max_deliver: -1,
    max_ack_pending: Math.max(config.maxInFlight * 16, 1000),
  });
}

/**
 * Creates the streams and durable consumers the service needs when provisioning is on; when it is off,
 * checks that they exist. Existing ones are left as they are (they may be managed elsewhere), but a
 * consumer filtering another subject is an error, not a silent surprise.
 */
export async function provisionJetStream(jsm: JetStreamManager, config: NatsConfig, routes: ConsumerRoute[]): Promise<void> {
  const p = config.provision;
  const limits = { max_age: nanos(config.streamMaxAgeSeconds * 1000) };
  const dedupe = { duplicate_window: nanos(config.duplicateWindowMs) };
  await ensureStream(jsm, { name: config.streams.signals, subjects: [config.subjects.signals], ...limits }, p);
  await ensureStream(jsm, { name: config.streams.decisions, subjects: [config.subjects.decisions], ...limits, ...dedupe }, p);
  await ensureStream(jsm, { name: config.streams.deadLetter, subjects: [config.subjects.deadLetters], ...limits, ...dedupe }, p);
  for (const route of routes) await ensureConsumer(jsm, route, config, p);
}
