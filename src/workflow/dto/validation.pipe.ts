import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { BadInputError } from '../../common/errors.js';

function describe(errors: ValidationError[], path = ''): string[] {
  return errors.flatMap((e) => {
    const here = path ? `${path}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {});
    return [...own.map((m) => (m.startsWith(e.property) ? m : `${here}: ${m}`)), ...describe(e.children ?? [], here)];
  });
}

/**
 * Validates message DTOs; a failure is `BadInputError('validation_failed')`, which the transport's
 * settlement dead-letters. The handler gets the original object (unknown fields kept, nothing coerced).
 */
export const messageValidationPipe = new ValidationPipe({
  transform: false,
  forbidUnknownValues: false,
  validationError: { target: false, value: false },
  exceptionFactory: (errors) => new BadInputError('validation_failed', describe(errors).join('; ') || 'invalid message'),
});
