import type { StandardSchemaV1 } from '@standard-schema/spec';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { validate } from '../../src/engine/validate.js';
import { ValidationError } from '../../src/errors.js';

function thrown(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('validate', () => {
  it('returns the schema’s output synchronously for a synchronous schema', () => {
    const out = validate(z.object({ n: z.coerce.number() }), { n: '4' }, 'params');
    expect(out).toEqual({ n: 4 });
  });

  it('names every offending field under the given root', () => {
    const err = thrown(() =>
      validate(
        z.object({ a: z.object({ b: z.string() }), list: z.array(z.number()) }),
        { a: { b: 1 }, list: [1, 'x'] },
        'params',
      ),
    );
    expect(err.issues?.map((i) => i.path)).toEqual(['params.a.b', 'params.list.1']);
    expect(err.message).toContain('params.a.b');
  });

  it('waits for an asynchronous schema and rejects the same way', async () => {
    const schema = z.string().refine(async (s) => s.length > 2, 'too short');
    await expect(validate(schema, 'abc', 'input')).resolves.toBe('abc');
    await expect(validate(schema, 'a', 'input')).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      issues: [{ path: 'input', message: 'too short' }],
    });
  });

  it('reports a schema that throws as input that could not be validated', () => {
    const broken: StandardSchemaV1<unknown, unknown> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: () => {
          throw new RangeError('Maximum call stack size exceeded');
        },
      },
    };
    const err = thrown(() => validate(broken, {}, 'input'));
    expect(err.issues).toEqual([{ path: 'input', message: 'could not be validated' }]);
    expect(err.message).toContain('Maximum call stack size exceeded');
  });
});
