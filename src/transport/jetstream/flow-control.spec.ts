import { ALL_ROUTES, FlowControl } from './flow-control.js';

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

  it('stop() lets every waiter go', async () => {
    const flow = new FlowControl();
    flow.pause('a', 'r', true);
    const waiting = flow.waitOpen('a');
    flow.stop();
    await expect(waiting).resolves.toBeUndefined();
  });
});
