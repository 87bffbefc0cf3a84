/*
 * Audit subjects: `<prefix>.<corr_id token>.<event>`. A corr_id is 1-128 characters of `A-Z a-z 0-9 . _ : -`;
 * a NATS subject token may hold any of them but `.` (the token separator). `.` is written `~`, which no
 * corr_id contains, so the mapping is one-to-one and a history read filters on one exact token.
 */

export function corrIdToken(corrId: string): string {
  return corrId.includes('.') ? corrId.replaceAll('.', '~') : corrId;
}

export function corrIdOfToken(token: string): string {
  return token.replaceAll('~', '.');
}

export function auditSubject(prefix: string, corrId: string, event: string): string {
  return `${prefix}.${corrIdToken(corrId)}.${event}`;
}

/** Every event of one corr_id. */
export function auditFilter(prefix: string, corrId: string): string {
  return `${prefix}.${corrIdToken(corrId)}.*`;
}
