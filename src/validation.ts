import type { z } from 'zod';
import { ValidationError, type FieldErrors } from './errors.ts';

/** zod 4 issues do not carry the input, so a missing field is told from a wrong one here. */
function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function expected(type: string): string {
  return ({ string: 'text', number: 'a number', int: 'a whole number', boolean: 'true or false', array: 'a list', object: 'an object' } as Record<string, string>)[type] ?? `of type ${type}`;
}

/**
 * Parses input with a zod schema.
 * @throws ValidationError with one message per field path (`targets.0.email`).
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const fields: FieldErrors = {};
  for (const issue of result.error.issues) {
    const key = issue.path.join('.') || '_';
    fields[key] ??= issue.code === 'invalid_type' ? (valueAt(input, issue.path) === undefined ? 'is required' : `must be ${expected(issue.expected)}`) : issue.message;
  }
  throw new ValidationError(fields);
}
