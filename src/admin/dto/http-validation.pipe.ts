import { BadRequestException, Injectable, type ArgumentMetadata, type PipeTransform } from '@nestjs/common';
import { validateSync, type ValidationError } from 'class-validator';

const PRIMITIVES = new Set<unknown>([String, Number, Boolean, Array, Object]);

function messages(errors: ValidationError[]): string[] {
  return errors.flatMap((e) => [...Object.values(e.constraints ?? {}), ...messages(e.children ?? [])]);
}

/**
 * Validates an HTTP body or query against its DTO's class-validator decorators; a refusal is 400 with every
 * message. Unknown properties are refused (a misspelt `limt` must not be ignored silently). Query values are
 * strings: one whose DTO property is a number is converted when it is written as a number (`limit=20`), and
 * left as it is otherwise, for the validator to refuse. Returns an instance of the DTO.
 *
 * (Nest's ValidationPipe needs class-transformer, which the project does not otherwise use; the message
 * pipe of the transport, dto/validation.pipe.ts, is for messages and dead-letters what it refuses.)
 */
@Injectable()
export class HttpValidationPipe implements PipeTransform {
  transform(value: unknown, { metatype, type }: ArgumentMetadata): unknown {
    if ((type !== 'body' && type !== 'query') || !metatype || PRIMITIVES.has(metatype)) return value;
    const given: unknown = value ?? {};
    if (typeof given !== 'object' || given === null || Array.isArray(given)) throw new BadRequestException(['the body must be a JSON object']);
    const instance = new (metatype as new () => Record<string, unknown>)();
    for (const [key, raw] of Object.entries(given)) {
      const designType: unknown = Reflect.getMetadata('design:type', instance, key);
      instance[key] = type === 'query' && designType === Number && typeof raw === 'string' && /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
    }
    const errors = validateSync(instance, {
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: false,
      // One message per property: the first constraint it fails (its type before its range).
      stopAtFirstError: true,
      validationError: { target: false, value: false },
    });
    if (errors.length > 0) throw new BadRequestException(messages(errors));
    return instance;
  }
}
