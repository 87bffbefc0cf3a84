import { BackgroundLoop } from './background-loop.js';

/** The loop's interval: long enough that "at once" and "50 ms" cannot be mistaken for it on a loaded machine. */
const INTERVAL_MS = 2000;
/** "Not the interval": anything under half of it (a stalled process takes some ms, never a second). */
const WELL_BELOW_INTERVAL_MS = INTERVAL_MS / 2;

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
    }, INTERVAL_MS);
    loop.start();
    await reached;
    // The fourth step asked for the interval: stop() must not wait it out.
    const stopping = performance.now();
    await loop.stop();
    expect(performance.now() - stopping).toBeLessThan(WELL_BELOW_INTERVAL_MS);
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    expect(gaps[0]).toBeLessThan(WELL_BELOW_INTERVAL_MS); // true: at once
    expect(gaps[1]).toBeGreaterThanOrEqual(45); // 50 ms asked
    expect(gaps[1]).toBeLessThan(WELL_BELOW_INTERVAL_MS); // not the interval
    expect(gaps[2]).toBeGreaterThanOrEqual(INTERVAL_MS - 10); // nothing asked: the interval
    expect(at).toHaveLength(4);
  });
});
