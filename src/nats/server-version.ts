/**
 * The oldest nats-server the service supports. 2.9 is refused: on 2.9.10 two replicas pulling from the
 * service's filtered durable consumers collapse to a fraction of one replica's rate (docs/PERFORMANCE.md), and
 * 2.10 is the oldest release the compatibility suite runs against (`npm run test:compat`).
 */
export const MIN_NATS_SERVER_VERSION = '2.10.0';

/** The numeric parts of a version (`v2.10.27-beta.1` → [2, 10, 27]), or undefined if it has none. */
function parts(version: string): number[] | undefined {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  return match ? [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)] : undefined;
}

/**
 * Compares two dotted versions numerically (2.10.0 is newer than 2.9.10): negative when `a` is older, 0 when
 * equal, positive when newer. A pre-release (`2.10.0-RC.1`) counts as older than its release. Undefined
 * when either is not a version.
 */
export function compareVersions(a: string, b: string): number | undefined {
  const pa = parts(a);
  const pb = parts(b);
  if (!pa || !pb) return undefined;
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  const preA = /^v?\d+\.\d+(?:\.\d+)?-/.test(a.trim());
  const preB = /^v?\d+\.\d+(?:\.\d+)?-/.test(b.trim());
  return preA === preB ? 0 : preA ? -1 : 1;
}

/**
 * Why start-up must stop for the server version a NATS connection reported (`nc.info.version`), as one
 * line; undefined when it is `minimum` or newer, or when the server reported no version it could read
 * (then nothing is known against it).
 */
export function natsServerVersionProblem(version: string | undefined, minimum = MIN_NATS_SERVER_VERSION): string | undefined {
  if (!version) return undefined;
  const order = compareVersions(version, minimum);
  if (order === undefined || order >= 0) return undefined;
  return `nats-server ${version} is too old: ${minimum} or newer is required`;
}
