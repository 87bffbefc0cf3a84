import type { JetStreamManager, MsgRequest } from '@nats-io/jetstream';

/**
 * JetStream's time (ms) up to which a durable consumer has processed its messages: every message it
 * filters that JetStream stored before this time has been acked. Now when nothing is pending; otherwise
 * the stored time of the oldest message at or after the ack floor. 0 when it cannot tell.
 */
export async function consumerWatermark(jsm: JetStreamManager, stream: string, durable: string, filterSubject: string): Promise<number> {
  const info = await jsm.consumers.info(stream, durable);
  if (info.num_pending === 0 && info.num_ack_pending === 0) return Date.now();
  try {
    // The server answers `next_by_subj` (the first message on the subject at or after `seq`); the client's type omits it.
    const request = { seq: info.ack_floor.stream_seq + 1, next_by_subj: filterSubject } as unknown as MsgRequest;
    const oldest = await jsm.streams.getMessage(stream, request);
    return oldest ? oldest.time.getTime() : 0;
  } catch {
    return 0;
  }
}
