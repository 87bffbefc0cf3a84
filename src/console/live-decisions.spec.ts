import { EventEmitter } from 'node:events';
import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Msg } from '@nats-io/transport-node';
import type { Response } from 'express';
import { parseSettings } from '../config/env.schema.js';
import type { NatsConnectionService } from '../nats/nats-connection.service.js';
import { LIVE_MAX_BUFFERED_BYTES, LIVE_MAX_STREAMS, LiveDecisions, sseFrame } from './live-decisions.js';

/** A response that records what is written, with a settable amount of bytes waiting in its socket. */
class FakeResponse extends EventEmitter {
  status = 0;
  headers: Record<string, string> = {};
  chunks: string[] = [];
  writableLength = 0;
  writableEnded = false;

  writeHead(status: number, headers: Record<string, string>): this {
    this.status = status;
    this.headers = headers;
    return this;
  }

  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }

  end(): void {
    this.writableEnded = true;
  }

  get text(): string {
    return this.chunks.join('');
  }
}

type Callback = (error: Error | null, msg: Msg) => void;

function connection() {
  const subs: { subject: string; callback: Callback; unsubscribe: jest.Mock<() => void> }[] = [];
  const nc = {
    subscribe: (subject: string, options: { callback: Callback }) => {
      const sub = { subject, callback: options.callback, unsubscribe: jest.fn<() => void>() };
      subs.push(sub);
      return sub;
    },
    flush: jest.fn(() => Promise.resolve()),
  };
  return { nats: { connection: nc } as unknown as NatsConnectionService, subs };
}

function msg(data: string, id?: string): Msg {
  return { string: () => data, headers: id ? { get: (name: string) => (name === 'Nats-Msg-Id' ? id : '') } : undefined } as unknown as Msg;
}

const config = parseSettings({}).nats;

// The streams' open/close log lines are not what these tests check.
beforeAll(() => Logger.overrideLogger(false));

describe('sseFrame', () => {
  it('writes the event, the id on one line, and one data line per line', () => {
    expect(sseFrame('decision', '{"a":1}', 'trading:c-1@5')).toBe('id: trading:c-1@5\nevent: decision\ndata: {"a":1}\n\n');
    expect(sseFrame('decision', 'one\ntwo\r\nthree')).toBe('event: decision\ndata: one\ndata: two\ndata: three\n\n');
    expect(sseFrame('decision', 'x', 'bad\nid')).toBe('id: badid\nevent: decision\ndata: x\n\n');
  });
});

describe('LiveDecisions', () => {
  it(`refuses a stream past ${LIVE_MAX_STREAMS} open ones`, async () => {
    const { nats } = connection();
    const live = new LiveDecisions(nats, config);
    for (let i = 0; i < LIVE_MAX_STREAMS; i++) {
      expect(live.refusal()).toBeUndefined();
      await live.serve(new FakeResponse() as unknown as Response, 'ops');
    }
    expect(live.refusal()).toMatch(/at most 32/);
  });

  it('subscribes on the decision subject, says ready once the server has the subscription, and forwards each decision with its id', async () => {
    const { nats, subs } = connection();
    const live = new LiveDecisions(nats, config);
    const res = new FakeResponse();
    await live.serve(res as unknown as Response, 'ops');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(subs.map((s) => s.subject)).toEqual(['orchestrated.decision']);
    expect(res.text).toContain('event: ready\n');
    subs[0].callback(null, msg('{"corr_id":"c-1"}', 'trading:c-1@42'));
    expect(res.text).toContain('id: trading:c-1@42\nevent: decision\ndata: {"corr_id":"c-1"}\n\n');
    expect(live.open).toBe(1);
  });

  it('unsubscribes when the client goes, and ends every stream when the service stops', async () => {
    const { nats, subs } = connection();
    const live = new LiveDecisions(nats, config);
    const a = new FakeResponse();
    const b = new FakeResponse();
    await live.serve(a as unknown as Response, 'ops');
    await live.serve(b as unknown as Response, 'ops');
    a.emit('close');
    expect(subs[0].unsubscribe).toHaveBeenCalledTimes(1);
    expect(subs[1].unsubscribe).not.toHaveBeenCalled();
    expect(live.open).toBe(1);
    live.onModuleDestroy();
    expect(subs[1].unsubscribe).toHaveBeenCalledTimes(1);
    expect(b.writableEnded).toBe(true);
    expect(live.open).toBe(0);
    // A client reconnecting while the service stops is refused (it would keep the HTTP server from closing).
    expect(live.refusal()).toBe('the service is stopping');
    // A decision arriving after the close (already in the client's hands) writes nothing.
    const before = b.chunks.length;
    subs[1].callback(null, msg('{}'));
    expect(b.chunks.length).toBe(before);
  });

  it('skips decisions while the client has more than the bound waiting, then says how many it skipped', async () => {
    const { nats, subs } = connection();
    const live = new LiveDecisions(nats, config);
    const res = new FakeResponse();
    await live.serve(res as unknown as Response, 'ops');
    res.writableLength = LIVE_MAX_BUFFERED_BYTES + 1;
    for (let i = 0; i < 5; i++) subs[0].callback(null, msg(`{"n":${i}}`));
    expect(res.text).not.toContain('"n":');
    res.writableLength = 0;
    subs[0].callback(null, msg('{"n":5}'));
    expect(res.text).toMatch(/event: dropped\ndata: \{"count":5\}\n\n[^]*event: decision\ndata: \{"n":5\}/);
  });

  it('a client gone before the subscription was made leaves no subscription behind', async () => {
    const { nats, subs } = connection();
    const res = new FakeResponse();
    (nats.connection as unknown as { flush: () => Promise<void> }).flush = () => {
      res.emit('close');
      return Promise.resolve();
    };
    const live = new LiveDecisions(nats, config);
    await live.serve(res as unknown as Response, 'ops');
    expect(subs[0].unsubscribe).toHaveBeenCalledTimes(1);
    expect(res.text).not.toContain('event: ready');
    expect(live.open).toBe(0);
  });

  it('NATS not connected: an error event, and the stream ends', async () => {
    const nats = {
      get connection(): never {
        throw new Error('NATS is not connected yet');
      },
    } as unknown as NatsConnectionService;
    const live = new LiveDecisions(nats, config);
    const res = new FakeResponse();
    await live.serve(res as unknown as Response, 'ops');
    expect(res.text).toContain('event: error\n');
    expect(res.writableEnded).toBe(true);
    expect(live.open).toBe(0);
  });
});
