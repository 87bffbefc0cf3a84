import { ALL_ROUTES, blamePart, FlowControl } from './flow-control.js';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('FlowControl', () => {
  it('a route is open until paused, for one reason or for all routes, and waitOpen resolves only when every reason is gone', async () => {
    const flow = new FlowControl();
    expect(flow.isOpen('a')).toBe(true);
    flow.pause('a', 'backpressure', true);
    flow.pause(ALL_ROUTES, 'redis_unavailable', true);
    expect(flow.isOpen('a')).toBe(false);
    expect(flow.isOpen('b')).toBe(false);
    let opened = false;
    const waiting = flow.waitOpen('a').then(() => (opened = true));
    flow.resume(ALL_ROUTES, 'redis_unavailable', true);
    await tick();
    expect(flow.isOpen('b')).toBe(true);
    expect(opened).toBe(false);
    flow.resume('a', 'backpressure', true);
    await waiting;
    expect(opened).toBe(true);
  });

  it('a failing probe pauses every route and keeps probing; the routes open again when it answers', async () => {
    const flow = new FlowControl();
    let up = false;
    let probes = 0;
    flow.registerProbe('redis', async () => {
      probes++;
      if (!up) throw new Error('ECONNREFUSED');
    });
    expect(await flow.dependenciesUp()).toBe(false);
    expect(flow.isOpen('x')).toBe(false);
    // While the probe loop runs, others are told "down" at once, without another probe.
    const before = probes;
    expect(await flow.dependenciesUp()).toBe(false);
    expect(probes).toBe(before);
    up = true;
    await flow.waitOpen('x');
    expect(flow.isOpen('x')).toBe(true);
    expect(await flow.dependenciesUp()).toBe(true);
    flow.stop();
  });

  it('a failure blamed on one part holds only what failed there: nothing is paused, and the hold ends when that part answers', async () => {
    const flow = new FlowControl();
    const down = new Set(['{ma:1}']);
    const probed: string[] = [];
    let wholeProbes = 0;
    flow.registerProbe(
      'redis',
      async () => {
        wholeProbes++;
        if (down.size > 0) throw new Error('a primary is down');
      },
      async (part) => {
        probed.push(part);
        if (down.has(part)) throw new Error(`${part}: connection closed`);
      },
    );
    const outage = await flow.outage('route', blamePart(new Error('connection closed'), 'redis', '{ma:1}'));
    expect(outage?.part).toBe('redis {ma:1}');
    const held = outage!.over;
    // No route is paused: the other shards' messages keep coming.
    expect(flow.isOpen('route')).toBe(true);
    expect(wholeProbes).toBe(0);
    // Another message of the same part joins the same hold without probing again.
    const count = probed.length;
    expect((await flow.outage('route', blamePart(new Error('timeout'), 'redis', '{ma:1}')))?.over).toBe(held);
    expect(probed.length).toBe(count);
    // A failure on a part that answers is the message's own: retried as usual.
    expect(await flow.outage('route', blamePart(new Error('script error'), 'redis', '{ma:2}'))).toBeNull();
    let over = false;
    void held.then(() => (over = true));
    await tick();
    expect(over).toBe(false);
    down.delete('{ma:1}');
    await held;
    expect(probed.filter((p) => p === '{ma:1}').length).toBeGreaterThan(1);
    flow.stop();
  });

  it('a failure blamed on no part (or on a dependency without part probes) waits for every probe, with pulling paused', async () => {
    const flow = new FlowControl();
    let up = false;
    flow.registerProbe('redis', async () => {
      if (!up) throw new Error('ECONNREFUSED');
    });
    const outage = await flow.outage('route', blamePart(new Error('x'), 'redis', '{ma:1}'));
    expect(outage?.part).toBeNull();
    expect(flow.isOpen('route')).toBe(false);
    up = true;
    await outage!.over;
    expect(flow.isOpen('route')).toBe(true);
    expect(await flow.outage('route', new Error('its own'))).toBeNull();
    flow.stop();
  });

  it('stop() ends a part hold', async () => {
    const flow = new FlowControl();
    flow.registerProbe(
      'redis',
      async () => undefined,
      async () => {
        throw new Error('down');
      },
    );
    const outage = await flow.outage('route', blamePart(new Error('x'), 'redis', '{ma:0}'));
    flow.stop();
    await expect(outage!.over).resolves.toBeUndefined();
  });

  it('stop() lets every waiter go', async () => {
    const flow = new FlowControl();
    flow.pause('a', 'r', true);
    const waiting = flow.waitOpen('a');
    flow.stop();
    await expect(waiting).resolves.toBeUndefined();
  });
});
