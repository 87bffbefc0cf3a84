import { createHash } from 'node:crypto';
import type { IndexPosition, ListIndex } from '../workflow/workflow.repository.js';

/**
 * The admin list's cursor: where the next page starts. Opaque to clients (base64url of a small JSON):
 * the index being read, the position in it (score and corr_id of the last entry covered), and a
 * fingerprint of the query's filters, so that a cursor is refused (400) with other filters than its own.
 * Constant size whatever the shard count: shards are merged by position (list-page.ts).
 */
export interface ListCursor {
  index: ListIndex;
  after: IndexPosition | null;
}

export class CursorError extends Error {
  override readonly name = 'CursorError';
}

const VERSION = 1;

/** A short fingerprint of the filters a cursor belongs to. */
export function queryFingerprint(filters: { status?: string; type?: string }): string {
  return createHash('sha256')
    .update(`${filters.status ?? ''}|${filters.type ?? ''}`)
    .digest('base64url')
    .slice(0, 8);
}

export function encodeCursor(cursor: ListCursor, fingerprint: string): string {
  const body = { v: VERSION, f: fingerprint, i: cursor.index, s: cursor.after?.score ?? null, c: cursor.after?.corrId ?? null };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

export function decodeCursor(text: string, fingerprint: string): ListCursor {
  let body: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(text)) throw new Error('not base64url');
    body = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new CursorError('cursor is not one this API returned');
  }
  const b = body as { v?: unknown; f?: unknown; i?: unknown; s?: unknown; c?: unknown };
  if (typeof b !== 'object' || b === null || b.v !== VERSION || (b.i !== 'deadlines' && b.i !== 'recent')) {
    throw new CursorError('cursor is not one this API returned');
  }
  if (b.f !== fingerprint) throw new CursorError('cursor belongs to a query with other filters (status, type): start again without it');
  if (b.s === null && b.c === null) return { index: b.i, after: null };
  if (typeof b.s !== 'number' || !Number.isFinite(b.s) || typeof b.c !== 'string' || b.c.length === 0) {
    throw new CursorError('cursor is not one this API returned');
  }
  return { index: b.i, after: { score: b.s, corrId: b.c } };
}
