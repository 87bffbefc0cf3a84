import { buildMessage, isISO8601, ValidateBy, type ValidationOptions } from 'class-validator';

/** The form agents send (RFC 3339: `2026-11-29T13:45:00.123Z`, `...+02:00`), checked without a regex engine backtrack or a Date. */
const CANONICAL = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Whether `value` is an ISO 8601 date string as `isISO8601(value, { strict: true })` judges it (calendar
 * dates checked, 2026-02-30 refused), faster: the common RFC 3339 form is recognised directly (every string
 * it accepts, isISO8601 strict accepts too), anything else goes to isISO8601. One message's timestamp check
 * was about 5 % of the service's CPU with isISO8601 alone.
 */
export function isTimestamp(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const m = CANONICAL.exec(value);
  if (m) {
    const year = Number(m[1]);
    const month = Number(m[2]);
    const day = Number(m[3]);
    if (month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month)) return true;
  }
  return isISO8601(value, { strict: true });
}

/** `@IsISO8601({ strict: true })`, with the same verdicts and message, checked faster (isTimestamp). */
export function IsTimestamp(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isIso8601',
      validator: {
        validate: (value): boolean => isTimestamp(value),
        defaultMessage: buildMessage((eachPrefix) => eachPrefix + '$property must be a valid ISO 8601 date string', options),
      },
    },
    options,
  );
}
