import type { StandardSchemaV1 } from '@standard-schema/spec';
import { toErrorInfo, ValidationError } from '../errors.js';

/**
 * Validates `value` against a Standard Schema (zod, valibot, arktype …). Synchronous when the
 * schema is: this runs once per task, and awaiting a value that is already there still costs a
 * promise and a microtask turn.
 * @throws {ValidationError} naming each offending field under `field`
 */
export function validate<T>(
  schema: StandardSchemaV1<unknown, T>,
  value: unknown,
  field: string,
): T | Promise<T> {
  let result: StandardSchemaV1.Result<T> | Promise<StandardSchemaV1.Result<T>>;
  try {
    result = schema['~standard'].validate(value);
  } catch (cause) {
    throw couldNotValidate(field, cause);
  }
  if (result instanceof Promise)
    return result.then(
      (r) => validationResult(r, field),
      (cause: unknown) => {
        throw couldNotValidate(field, cause);
      },
    );
  return validationResult(result, field);
}

/** A schema library that throws (a stack overflow on hostile nesting, a bug) is still bad input. */
function couldNotValidate(field: string, cause: unknown): ValidationError {
  return new ValidationError(
    `invalid ${field}: the schema could not validate it (${toErrorInfo(cause).message})`,
    [{ path: field, message: 'could not be validated' }],
    { cause },
  );
}

function validationResult<T>(result: StandardSchemaV1.Result<T>, field: string): T {
  if (!result.issues) return result.value;
  const issues = result.issues.map((issue) => {
    const path = (issue.path ?? []).map((p) =>
      String(typeof p === 'object' && p !== null ? p.key : p),
    );
    return { path: [field, ...path].join('.'), message: issue.message };
  });
  throw new ValidationError(
    `invalid ${field}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    issues,
  );
}
