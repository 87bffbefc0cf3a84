import { jest } from '@jest/globals';
import type { Msg, MsgHdrs, NatsConnection, Status } from '@nats-io/transport-node';
import { JetStreamPublisher, JetStreamPublishError } from './jetstream-publisher.js';

interface Sent {
  subject: string;
  data: string | Uint8Array;
  reply: string;
  headers?: MsgHdrs;
}

/** A NATS connection that records what is published and lets the test answer, disconnect and close. */
class FakeConnection {
  readonly sent: Sent[] = [];
  readonly subscriptions: { subject: string; callback: (err: Error | null, msg: Msg) => void; unsubscribe: jest.Mock<() => void> }[] = [];
  closedFlag = false;
  failPublish: Error | undefined;
  failSubscribe: Error | undefined;
  private resolveClosed!: (err: Error | void) => void;
  private readonly closedPromise = new Promise<Error | void>((resolve) => (this.resolveClosed = resolve));
  private readonly statusQueue: Status[] = [];
  private wake: (() => void) | undefined;
  private statusStopped = false;

  publish(subject: string, data: string | Uint8Array, options: { reply: string; headers?: MsgHdrs }): void {
    if (this.failPublish) throw this.failPublish;
    this.sent.push({ subject, data, reply: options.reply, headers: options.headers });
  }

  subscribe(subject: string, options: { callback: (err: Error | null, msg: Msg) => void }): { unsubscribe: jest.Mock<() => void> } {
    if (this.failSubscribe) throw this.failSubscribe;
    const sub = { subject, callback: options.callback, unsubscribe: jest.fn<() => void>() };
    this.subscriptions.push(sub);
    return sub;
  }

  closed(): Promise<Error | void> {
    return this.closedPromise;
  }

  isClosed(): boolean {
    return this.closedFlag;
  }

  status(): AsyncIterable<Status> & { stop: () => void } {
    const feed = {
      stop: () => {
        this.statusStopped = true;
        this.wake?.();
      },
      [Symbol.asyncIterator]: async function* (this: FakeConnection): AsyncGenerator<Status> {
        while (!this.statusStopped) {
          const next = this.statusQueue.shift();
          if (next) {
            yield next;
            continue;
          }
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = undefined;
        }
      }.bind(this),
    };
    return feed;
  }

  emit(status: Status): void {
    this.statusQueue.push(status);
    this.wake?.();
  }

  close(): void {
    this.closedFlag = true;
    this.resolveClosed();
  }

  /** Answers the i-th publish on its reply subject. */
  answer(i: number, body: string | { status: number }): void {
    const { reply } = this.sent[i];
    const data = typeof body === 'string' ? new TextEncoder().encode(body) : new Uint8Array(0);
    const msg = {
      subject: reply,
      data,
      headers: typeof body === 'string' ? undefined : ({ code: body.status } as MsgHdrs),
      json: () => JSON.parse(new TextDecoder().decode(data)) as unknown,
    } as unknown as Msg;
    for (const s of this.subscriptions) {
      if (reply.startsWith(s.subject.slice(0, -1))) s.callback(null, msg);
    }
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('JetStreamPublisher', () => {
  let nc: FakeConnection;
  let publisher: JetStreamPublisher;

  beforeEach(() => {
    nc = new FakeConnection();
    publisher = new JetStreamPublisher(nc as unknown as NatsConnection, { timeoutMs: 5000 });
  });

  afterEach(() => {
    publisher.close();
  });

  it('publishes with Nats-Msg-Id and a reply on one wildcard inbox subscription, and resolves with the PubAck', async () => {
    const first = publisher.publish('decisions.x', '{"a":1}', 'wf-1');
    const second = publisher.publish('decisions.x', '{"a":2}', 'wf-2');
    expect(nc.subscriptions).toHaveLength(1);
    expect(nc.subscriptions[0].subject).toMatch(/^_INBOX\.[A-Za-z0-9]+\.\*$/);
    expect(nc.sent.map((s) => s.headers?.get('Nats-Msg-Id'))).toEqual(['wf-1', 'wf-2']);
    expect(nc.sent[0].reply).not.toBe(nc.sent[1].reply);
    expect(nc.sent[0].reply.startsWith(nc.subscriptions[0].subject.slice(0, -1))).toBe(true);
    expect(publisher.inFlight).toBe(2);

    nc.answer(1, '{"stream":"DECISIONS","seq":8}');
    nc.answer(0, '{"stream":"DECISIONS","seq":7,"domain":"hub"}');
    await expect(first).resolves.toEqual({ stream: 'DECISIONS', seq: 7, duplicate: false, domain: 'hub' });
    await expect(second).resolves.toEqual({ stream: 'DECISIONS', seq: 8, duplicate: false });
    expect(publisher.inFlight).toBe(0);
  });

  it('publishes without headers when no msgId is given', async () => {
    const p = publisher.publish('decisions.x', 'x');
    expect(nc.sent[0].headers).toBeUndefined();
    nc.answer(0, '{"stream":"S","seq":1}');
    await expect(p).resolves.toMatchObject({ seq: 1 });
  });

  it('reports a duplicate', async () => {
    const p = publisher.publish('decisions.x', 'x', 'wf-1');
    nc.answer(0, '{"stream":"DECISIONS","seq":7,"duplicate":true}');
    await expect(p).resolves.toEqual({ stream: 'DECISIONS', seq: 7, duplicate: true });
  });

  it("rejects with JetStream's error reply", async () => {
    const p = publisher.publish('decisions.x', 'x', 'wf-1');
    nc.answer(0, '{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"}}');
    const error = await p.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamPublishError);
    expect(error).toMatchObject({ message: 'message size exceeds maximum allowed', code: 400, errCode: 10054 });
  });

  it('rejects an acknowledgement that is not JSON or has no stream', async () => {
    const a = publisher.publish('decisions.x', 'x', 'a');
    const b = publisher.publish('decisions.x', 'x', 'b');
    nc.answer(0, 'not json');
    nc.answer(1, '{"seq":3}');
    await expect(a).rejects.toThrow('invalid acknowledgement (not JSON)');
    await expect(b).rejects.toThrow('invalid acknowledgement');
  });

  it('rejects on no responders (503 status: no stream takes the subject)', async () => {
    const p = publisher.publish('nowhere', 'x', 'wf-1');
    nc.answer(0, { status: 503 });
    await expect(p).rejects.toMatchObject({
      name: 'JetStreamPublishError',
      code: 503,
      message: expect.stringContaining('no responders for nowhere') as unknown,
    });
  });

  it('rejects at once when the client refuses the publish', async () => {
    nc.failPublish = new Error('invalid subject');
    await expect(publisher.publish('bad subject', 'x')).rejects.toThrow('invalid subject');
    expect(publisher.inFlight).toBe(0);
  });

  it('rejects, never throws, when the inbox cannot be subscribed (connection draining)', async () => {
    nc.failSubscribe = new Error('connection draining');
    const p = publisher.publish('decisions.x', 'x', 'wf-1');
    await expect(p).rejects.toThrow('connection draining');
    nc.failSubscribe = undefined;
    const q = publisher.publish('decisions.x', 'x', 'wf-2');
    nc.answer(0, '{"stream":"S","seq":1}');
    await expect(q).resolves.toMatchObject({ seq: 1 });
  });

  it('times out with one sweeping timer, and ignores a late acknowledgement', async () => {
    const quick = new JetStreamPublisher(nc as unknown as NatsConnection, { timeoutMs: 40, sweepIntervalMs: 10 });
    const started = performance.now();
    const a = quick.publish('decisions.x', 'x', 'a');
    const b = quick.publish('decisions.x', 'x', 'b');
    await expect(a).rejects.toThrow('timeout: no acknowledgement within 40 ms');
    await expect(b).rejects.toThrow('timeout');
    expect(performance.now() - started).toBeGreaterThanOrEqual(39);
    expect(performance.now() - started).toBeLessThan(1000);
    nc.answer(0, '{"stream":"S","seq":1}'); // late: nothing to resolve any more
    const c = quick.publish('decisions.x', 'x', 'c');
    nc.answer(2, '{"stream":"S","seq":2}');
    await expect(c).resolves.toMatchObject({ seq: 2 });
    quick.close();
  });

  it('rejects everything awaited at a disconnect and refuses until reconnected', async () => {
    const p = publisher.publish('decisions.x', 'x', 'wf-1');
    nc.emit({ type: 'disconnect', server: 'nats://h:4222' });
    await expect(p).rejects.toThrow('NATS disconnected before the acknowledgement');
    await expect(publisher.publish('decisions.x', 'x', 'wf-2')).rejects.toThrow('NATS is disconnected');
    nc.emit({ type: 'reconnect', server: 'nats://h:4222' });
    await settle();
    const q = publisher.publish('decisions.x', 'x', 'wf-2');
    nc.answer(nc.sent.length - 1, '{"stream":"S","seq":2}');
    await expect(q).resolves.toMatchObject({ seq: 2 });
  });

  it('rejects the publishes awaited on a subject the server refused (permissions violation), not the others', async () => {
    const refused = publisher.publish('decisions.x', 'x', 'wf-1');
    const other = publisher.publish('decisions.y', 'x', 'wf-2');
    const error = Object.assign(new Error("Permissions Violation for Publish to 'decisions.x'"), { operation: 'publish', subject: 'decisions.x' });
    nc.emit({ type: 'error', error });
    await expect(refused).rejects.toThrow('publish refused: Permissions Violation');
    expect(publisher.inFlight).toBe(1);
    nc.answer(1, '{"stream":"S","seq":1}');
    await expect(other).resolves.toMatchObject({ seq: 1 });
  });

  it('rejects everything awaited when the connection closes, and every later publish', async () => {
    const p = publisher.publish('decisions.x', 'x', 'wf-1');
    nc.close();
    await expect(p).rejects.toThrow('NATS connection closed');
    await expect(publisher.publish('decisions.x', 'x', 'wf-2')).rejects.toThrow('NATS connection closed');
    expect(nc.sent).toHaveLength(1);
  });

  it('close() rejects what is awaited and unsubscribes', async () => {
    const p = publisher.publish('decisions.x', 'x', 'wf-1');
    publisher.close();
    await expect(p).rejects.toBeInstanceOf(JetStreamPublishError);
    expect(nc.subscriptions[0].unsubscribe).toHaveBeenCalledTimes(1);
    await expect(publisher.publish('decisions.x', 'x')).rejects.toThrow('closed');
  });

  it('rejects everything awaited when the inbox subscription fails', async () => {
    const p = publisher.publish('decisions.x', 'x', 'wf-1');
    nc.subscriptions[0].callback(new Error('Permissions Violation for Subscription'), {} as Msg);
    await expect(p).rejects.toThrow('acknowledgement subscription failed: Permissions Violation');
  });
});
