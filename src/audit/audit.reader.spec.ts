import type { NatsConfig } from '../config/configuration.js';
import type { NatsConnectionService } from '../nats/nats-connection.service.js';
import { AuditReader } from './audit.reader.js';

/*
 * AuditReader with a scripted stream: a message of a decision (`audit.<corr_id>.decided`) holds several
 * events, each read as its own record, and the read's bound counts events, not messages.
 */

const event = (kind: string, n: number) => ({ v: 1, event: kind, corr_id: 'c1', order: [n, 0, 0] });

function reader(messages: string[]) {
  const stream = messages.map((text, i) => ({ seq: i + 1, string: () => text, info: { timestampNanos: (1_000 + i) * 1e6 } }));
  const nats = {
    manager: { streams: { info: async () => ({ state: { subjects: { 'audit.c1.x': stream.length } } }) } },
    jetstream: {
      consumers: {
        get: async () => ({
          fetch: async ({ max_messages }: { max_messages: number }) =>
            (async function* () {
              yield* stream.slice(0, max_messages);
            })(),
        }),
      },
    },
  };
  const config = { audit: { enabled: true, stream: 'AUDIT', subjectPrefix: 'audit' }, connectTimeoutMs: 1000 };
  return new AuditReader(nats as unknown as NatsConnectionService, config as unknown as NatsConfig);
}

describe('AuditReader', () => {
  const decided = JSON.stringify([event('signal_stored', 3), event('frozen', 4), event('decision_published', 5)]);

  it("reads each event of a decision's message as its own record, with the message's stream sequence", async () => {
    const read = await reader([JSON.stringify(event('trigger_accepted', 1)), decided, 'not json']).read('c1');
    expect(read.truncated).toBe(false);
    expect(read.records.map((r) => [r.event, r.stream_seq])).toEqual([
      ['trigger_accepted', 1],
      ['signal_stored', 2],
      ['frozen', 2],
      ['decision_published', 2],
    ]);
    expect(read.records[1].stored_at).toBe(new Date(1_001).toISOString());
  });

  it('returns at most `limit` events, and says there were more', async () => {
    const messages = [JSON.stringify(event('trigger_accepted', 1)), decided, decided];
    const read = await reader(messages).read('c1', 3);
    expect(read.records.map((r) => r.event)).toEqual(['trigger_accepted', 'signal_stored', 'frozen']);
    expect(read.truncated).toBe(true);
    // Exactly as many events as the limit, and nothing after them: not truncated.
    expect(await reader(messages.slice(0, 2)).read('c1', 4)).toMatchObject({ truncated: false, records: { length: 4 } });
  });
});
