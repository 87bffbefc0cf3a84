/**
 * A string payload as UTF-8 bytes for `nc.publish`. Given a string, nats.js encodes it with `TextEncoder`,
 * which gives every payload an ArrayBuffer of its own; `Buffer.from` writes a small one (under 4 KiB) into
 * Node's shared pool instead, about half the cost per publish and one garbage-collected buffer per 8 KiB
 * rather than one per message (docs/PERFORMANCE.md, "Issue 20"). The bytes are the same.
 */
export function utf8(payload: string | Uint8Array): Uint8Array {
  return typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
}
