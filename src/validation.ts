import type { z } from 'zod';
import { ValidationError, type FieldErrors } from './errors.ts';

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
    fields[key] ??= issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
  }
  throw new ValidationError(fields);
}
