import { JetStreamApiCodes, JetStreamApiError, JetStreamError } from '@nats-io/jetstream';
import { ProvisioningError } from './provisioning.js';

/**
 * The transport's status (`JetStreamServer.status`, Nest's status observable of a transport), as Nest's own
 * NATS transport names it: the state of the NATS connection.
 */
export type JetStreamStatus = 'connected' | 'disconnected' | 'reconnecting';

/**
 * The transport's events (`JetStreamServer.on(event, callback)`), after Nest's `NatsEvents`. `server` is the
 * URL without credentials; `consumer` a durable consumer's name.
 */
export type JetStreamEvents = {
  /** The transport started with the connection up (the connect itself happens earlier, at start-up). */
  connect: (server: string | undefined) => void;
  disconnect: (server: string | undefined) => void;
  reconnect: (server: string | undefined) => void;
  /**
   * A pull loop found its consumer (or the consumer's stream) gone: deleted, or missing (with
   * META_AGENT_PROVISION off, or found missing and created again). Nothing is pulled from it until it is back.
   */
  consumer_gone: (consumer: string, reason: string) => void;
  /** The consumer of a pull loop that had found it gone is there again (provisioned again, or made by someone else). */
  consumer_back: (consumer: string) => void;
};

/**
 * Why a failed pull or look-up means that the consumer is gone, or undefined when it says nothing of the
 * kind (NATS away, a timeout, a JetStream without a leader: tried again as before).
 *  - a pull ended by the server's `409 Consumer Deleted` (the consumer, or its stream, was deleted). The client
 *    gives no code for it but the status description, which it compares itself (`isConsumerDeleted()`);
 *  - a look-up answered "consumer not found" or "stream not found" (JetStream API error codes);
 *  - provisioning found the stream or consumer missing or not as the settings need it (META_AGENT_PROVISION off).
 * A pull on a consumer that no longer exists gets no answer at all (`503 no responders`, as when JetStream is
 * away): not taken for gone here; the look-up after it tells.
 */
export function consumerGoneReason(error: unknown): string | undefined {
  if (error instanceof ProvisioningError) return error.message;
  if (error instanceof JetStreamApiError) {
    if (error.code === JetStreamApiCodes.ConsumerNotFound) return 'consumer not found';
    if (error.code === JetStreamApiCodes.StreamNotFound) return 'stream not found';
    return undefined;
  }
  if (error instanceof JetStreamError && (error as { code?: unknown }).code === 409) {
    const description = error.message.toLowerCase();
    if (description === 'consumer deleted' || description === 'stream deleted') return description;
  }
  return undefined;
}
