import { getMetadataStorage, ValidationTypes, type ValidationArguments } from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata.js';

/** Whether an object passes every class-validator constraint of its DTO; false means "ask validateSync why". */
export type FastCheck = (object: Record<string, unknown>) => boolean;

interface PropertyCheck {
  property: string;
  /** `@IsOptional()` and friends: the property is checked only when all of them say so. */
  conditions: ((object: object, value: unknown) => boolean)[];
  constraints: { metadata: ValidationMetadata; validate: (value: unknown, args: ValidationArguments) => unknown }[];
}

/**
 * Compiles a DTO's class-validator metadata into one check that calls the same constraint implementations
 * (`isString`, `matches`, `isNumber`, ...) directly, without class-validator's per-call work (looking the
 * metadata up again, building a ValidationError per property, the error messages). The decorators stay the
 * one description of a valid message: this only answers "valid?" faster, and a message it refuses is given
 * to validateSync for the messages. Returns null (always use validateSync) when the DTO uses anything the
 * check does not reproduce exactly: nested or `each` validation, groups, `@IsDefined`, async constraints.
 */
export function compileCheck(dto: new () => object): FastCheck | null {
  const storage = getMetadataStorage();
  const metadatas = storage.getTargetValidationMetadatas(dto, '', true, false);
  const byProperty = new Map<string, PropertyCheck>();
  for (const m of metadatas) {
    if (m.each || (m.groups && m.groups.length > 0) || m.always) return null;
    let check = byProperty.get(m.propertyName);
    if (!check) {
      check = { property: m.propertyName, conditions: [], constraints: [] };
      byProperty.set(m.propertyName, check);
    }
    if (m.type === ValidationTypes.CONDITIONAL_VALIDATION) {
      check.conditions.push(m.constraints[0] as (object: object, value: unknown) => boolean);
    } else if (m.type === ValidationTypes.CUSTOM_VALIDATION) {
      for (const c of storage.getTargetValidatorConstraints(m.constraintCls)) {
        if (c.async) return null;
        const instance = c.instance as { validate: (value: unknown, args: ValidationArguments) => unknown };
        check.constraints.push({ metadata: m, validate: instance.validate.bind(instance) });
      }
    } else {
      return null;
    }
  }
  const checks = [...byProperty.values()];
  const targetName = dto.name;
  return (object) => {
    for (const { property, conditions, constraints } of checks) {
      const value = object[property];
      if (!conditions.every((condition) => condition(object, value))) continue;
      for (const { metadata, validate } of constraints) {
        if (metadata.validateIf && !metadata.validateIf(object, value)) continue;
        const args: ValidationArguments = { targetName, property, object, value, constraints: metadata.constraints };
        if (validate(value, args) !== true) return false;
      }
    }
    return true;
  };
}
