import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { parseSettings } from '../../config/env.schema.js';
import { provisionJetStream } from './provisioning.js';

/** A JetStreamManager holding streams in memory (consumers always exist), recording adds and updates. */
function fakeManager(existing: Partial<StreamConfig>[]) {
  const streams = new Map(existing.map((c) => [c.name!, { ...c }]));
  const added: Partial<StreamConfig>[] = [];
  const updated: Partial<StreamConfig>[] = [];
  const jsm = {
    streams: {
      info: (name: string) => {
        const config = streams.get(name);
        if (config) return Promise.resolve({ config });
        return Promise.reject(new JetStreamApiError({ code: 404, err_code: JetStreamApiCodes.StreamNotFound, description: 'stream not found' }));
      },
      add: (config: Partial<StreamConfig>) => (added.push(config), streams.set(config.name!, config), Promise.resolve({ config })),
      update: (name: string, config: Partial<StreamConfig>) => (updated.push(config), streams.set(name, config), Promise.resolve({ config })),
    },
    consumers: {
      info: () => Promise.resolve({ config: { filter_subject: 'x', max_deliver: 30, ack_wait: nanos(30000) } }),
    },
  } as unknown as JetStreamManager;
  return { jsm, added, updated };
}

function streamsAsProvisioned(replicas: number): Partial<StreamConfig>[] {
  const dedupe = nanos(120000);
  return [
    { name: 'SIGNALS', subjects: ['signals.>'], num_replicas: replicas },
    { name: 'DECISIONS', subjects: ['orchestrated.>'], num_replicas: replicas, duplicate_window: dedupe },
    { name: 'DEADLETTER', subjects: ['deadletter.>'], num_replicas: replicas, duplicate_window: dedupe },
    { name: 'AUDIT', subjects: ['audit.>'], num_replicas: replicas },
  ];
}

describe('provisionJetStream: stream replicas (META_AGENT_STREAM_REPLICAS)', () => {
  it('creates the streams with num_replicas, the audit stream too', async () => {
    const { jsm, added } = fakeManager([]);
    await provisionJetStream(jsm, parseSettings({ META_AGENT_STREAM_REPLICAS: '3' }).nats, []);
    expect(added.map((c) => [c.name, c.num_replicas])).toEqual([
      ['SIGNALS', 3],
      ['DECISIONS', 3],
      ['DEADLETTER', 3],
      ['AUDIT', 3],
    ]);
  });

  it('raises an existing stream with fewer replicas when provisioning, keeping the rest of its config', async () => {
    const existing = streamsAsProvisioned(1).map((c) => ({ ...c, max_msgs: 42 }));
    const { jsm, updated } = fakeManager(existing);
    await provisionJetStream(jsm, parseSettings({ META_AGENT_STREAM_REPLICAS: '3' }).nats, []);
    expect(updated.map((c) => [c.name, c.num_replicas, c.max_msgs])).toEqual([
      ['SIGNALS', 3, 42],
      ['DECISIONS', 3, 42],
      ['DEADLETTER', 3, 42],
      ['AUDIT', 3, 42],
    ]);
  });

  it('refuses start-up when provisioning is off, naming the stream and the setting', async () => {
    const { jsm, updated } = fakeManager(streamsAsProvisioned(1));
    await expect(provisionJetStream(jsm, parseSettings({ META_AGENT_STREAM_REPLICAS: '3', META_AGENT_PROVISION: 'false' }).nats, [])).rejects.toThrow(
      'stream SIGNALS has 1 replica, below META_AGENT_STREAM_REPLICAS (3): raise it (nats stream edit SIGNALS --replicas 3) or lower the setting',
    );
    expect(updated).toEqual([]);
  });

  it('with the audit trail off (META_AGENT_AUDIT=false), neither creates nor needs the audit stream', async () => {
    const { jsm, added } = fakeManager([]);
    await provisionJetStream(jsm, parseSettings({ META_AGENT_AUDIT: 'false' }).nats, []);
    expect(added.map((c) => c.name)).toEqual(['SIGNALS', 'DECISIONS', 'DEADLETTER']);
    const without = fakeManager(streamsAsProvisioned(1).filter((c) => c.name !== 'AUDIT'));
    await provisionJetStream(without.jsm, parseSettings({ META_AGENT_AUDIT: 'false', META_AGENT_PROVISION: 'false' }).nats, []);
    expect(without.added).toEqual([]);
  });

  it('META_AGENT_AUDIT_STREAM_REPLICAS gives the audit stream its own count, and names itself when it is not met', async () => {
    const { jsm, added } = fakeManager([]);
    await provisionJetStream(jsm, parseSettings({ META_AGENT_STREAM_REPLICAS: '3', META_AGENT_AUDIT_STREAM_REPLICAS: '1' }).nats, []);
    expect(added.map((c) => [c.name, c.num_replicas])).toEqual([
      ['SIGNALS', 3],
      ['DECISIONS', 3],
      ['DEADLETTER', 3],
      ['AUDIT', 1],
    ]);
    const lower = streamsAsProvisioned(3).map((c) => (c.name === 'AUDIT' ? { ...c, num_replicas: 1 } : c));
    await expect(
      provisionJetStream(fakeManager(lower).jsm, parseSettings({ META_AGENT_AUDIT_STREAM_REPLICAS: '3', META_AGENT_PROVISION: 'false' }).nats, []),
    ).rejects.toThrow('stream AUDIT has 1 replica, below META_AGENT_AUDIT_STREAM_REPLICAS (3)');
  });

  it('leaves streams with as many replicas or more alone', async () => {
    const { jsm, updated } = fakeManager(streamsAsProvisioned(5));
    await provisionJetStream(jsm, parseSettings({ META_AGENT_STREAM_REPLICAS: '3', META_AGENT_PROVISION: 'false' }).nats, []);
    await provisionJetStream(jsm, parseSettings({}).nats, []);
    expect(updated).toEqual([]);
  });
});

describe('provisionJetStream: consumers', () => {
  it('returns the consumers it had to create (a running transport learns so that its consumer was gone)', async () => {
    const { jsm } = fakeManager(streamsAsProvisioned(1));
    const config = parseSettings({}).nats;
    const route = (durable: string) => ({ pattern: 'p', stream: 'SIGNALS', durable, filterSubject: 'x' });
    const existing = new Set(['kept']);
    const added: string[] = [];
    Object.assign(jsm.consumers, {
      info: (_stream: string, durable: string) =>
        existing.has(durable)
          ? Promise.resolve({ config: { filter_subject: 'x', max_deliver: config.maxDeliveries + 10, ack_wait: nanos(config.ackWaitMs) } })
          : Promise.reject(new JetStreamApiError({ code: 404, err_code: JetStreamApiCodes.ConsumerNotFound, description: 'consumer not found' })),
      add: (_stream: string, c: { durable_name: string }) => (added.push(c.durable_name), Promise.resolve({})),
    });
    expect(await provisionJetStream(jsm, config, [route('kept'), route('gone')])).toEqual(['gone']);
    expect(added).toEqual(['gone']);
    expect(await provisionJetStream(jsm, config, [route('kept')])).toEqual([]);
  });
});
