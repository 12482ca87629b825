import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import { parseInput } from '../../src/validation.ts';

const schema = z.object({ name: z.string(), tags: z.array(z.object({ label: z.string() })), age: z.number().optional() });

const fieldsOf = (input: unknown) => {
  try {
    parseInput(schema, input);
  } catch (err) {
    if (err instanceof ValidationError) return err.fields;
    throw err;
  }
  return {};
};

describe('field messages of parsed input', () => {
  it('says a missing field is required', () => {
    expect(fieldsOf({ tags: [] })).toEqual({ name: 'is required' });
  });

  it('says what a field of the wrong type should be, also deep in a list', () => {
    expect(fieldsOf({ name: 123, tags: [{ label: ['x'] }], age: 'old' })).toEqual({
      name: 'must be text',
      'tags.0.label': 'must be text',
      age: 'must be a number',
    });
  });
});
