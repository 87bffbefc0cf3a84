import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A background loop that cannot overlap itself: run a step, sleep, repeat, until stopped. `stop()`
 * cancels the sleep and waits for the step in progress. A step returning `true` asks to run again at
 * once (more work is waiting), a number to run again after that many ms instead of the interval. Steps
 * must handle their own errors: one that throws ends the loop.
 */
export class BackgroundLoop {
  private readonly abort = new AbortController();
  private running?: Promise<void>;

  constructor(
    private readonly step: () => Promise<boolean | number | void>,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.abort.signal.aborted) {
      const again = await this.step();
      if (again === true) continue;
      const ms = typeof again === 'number' ? again : this.intervalMs;
      await sleep(ms, undefined, { signal: this.abort.signal }).catch(() => undefined);
    }
  }
}
