import { BackgroundLoop } from './background-loop.js';

describe('BackgroundLoop', () => {
  it('runs again at once on true, after the ms a step returns, else after the interval; stop() ends the sleep', async () => {
    const at: number[] = [];
    const answers: (boolean | number | void)[] = [true, 50, undefined];
    let fourth!: () => void;
    const reached = new Promise<void>((resolve) => (fourth = resolve));
    const loop = new BackgroundLoop(async () => {
      at.push(performance.now());
      if (at.length === 4) fourth();
      return answers.shift();
    }, 400);
    loop.start();
    await reached;
    // The fourth step asked for the interval: stop() must not wait it out.
    const stopping = performance.now();
    await loop.stop();
    expect(performance.now() - stopping).toBeLessThan(200);
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    expect(gaps[0]).toBeLessThan(200); // true: at once
    expect(gaps[1]).toBeGreaterThanOrEqual(45); // 50 ms asked
    expect(gaps[1]).toBeLessThan(350); // not the 400 ms interval
    expect(gaps[2]).toBeGreaterThanOrEqual(390); // nothing asked: the interval
    expect(at).toHaveLength(4);
  });
});
