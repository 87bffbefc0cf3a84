/** Where the test servers are: `scripts/test.sh` starts them and exports these. */
export const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:14222';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:16379';

export function uniqueId(prefix = 't'): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Thrown by a probe of waitFor (or waitUntil) when waiting longer is pointless (the process it waits for has exited). */
export class GiveUp extends Error {}

/**
 * Polls `probe` until it gives a value (not undefined, null or false); errors count as "not yet", except
 * GiveUp, which ends the wait at once. The default deadline is generous: a loaded machine.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 30000, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < until) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}
