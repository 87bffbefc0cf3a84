import { Injectable, type ArgumentMetadata, type PipeTransform } from '@nestjs/common';
import { validateSync, type ValidationError } from 'class-validator';
import { BadInputError } from '../../common/errors.js';
import { compileCheck, type FastCheck } from './compiled-validation.js';

function describe(errors: ValidationError[], path = ''): string[] {
  return errors.flatMap((e) => {
    const here = path ? `${path}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {});
    return [...own.map((m) => (m.startsWith(e.property) ? m : `${here}: ${m}`)), ...describe(e.children ?? [], here)];
  });
}

/**
 * Validates message DTOs with their class-validator decorators; a failure is
 * `BadInputError('validation_failed')`, which the transport's settlement dead-letters. The handler gets
 * the original object (unknown fields kept, nothing coerced).
 *
 * Leaner than Nest's ValidationPipe on this hot path: a valid message passes the DTO's compiled check
 * (compiled-validation.ts) and only a refused one goes through validateSync, for its messages. The DTOs
 * are flat, so the payload is given the DTO's prototype instead of going through class-transformer, and
 * validation is synchronous. The payload is a fresh object from JSON.parse (with prototype-reaching keys
 * already refused), so re-prototyping it is safe.
 */
@Injectable()
export class MessageValidationPipe implements PipeTransform {
  /** Per DTO class: its compiled check (compiled-validation.ts), or null where only validateSync will do. */
  private readonly checks = new Map<unknown, FastCheck | null>();

  transform(value: unknown, { metatype }: ArgumentMetadata): unknown {
    if (!metatype || typeof value !== 'object' || value === null) return value;
    let check = this.checks.get(metatype);
    if (check === undefined) {
      check = compileCheck(metatype as new () => object);
      this.checks.set(metatype, check);
    }
    // Most messages are valid: the compiled check says so without class-validator's per-call work.
    if (check?.(value as Record<string, unknown>)) return value;
    const instance = Object.setPrototypeOf({ ...value }, metatype.prototype as object) as object;
    const errors = validateSync(instance, { forbidUnknownValues: false, validationError: { target: false, value: false } });
    if (errors.length > 0) throw new BadInputError('validation_failed', describe(errors).join('; ') || 'invalid message');
    return value;
  }
}

export const messageValidationPipe = new MessageValidationPipe();
