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

/** What an issue says where its schema gave no message of its own: zod's defaults speak its types. */
function plainly(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'too_big':
      if (issue.maximum === Number.MAX_SAFE_INTEGER) return 'is too large';
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      if (issue.origin === 'array') return `may have at most ${issue.maximum} entries`;
      return `must be at most ${issue.maximum}`;
    case 'too_small':
      if (issue.minimum === Number.MIN_SAFE_INTEGER) return 'is too small';
      if (issue.origin === 'string') return Number(issue.minimum) <= 1 ? 'is required' : `must be at least ${issue.minimum} characters`;
      if (issue.origin === 'array') return `needs at least ${issue.minimum} entries`;
      return `must be at least ${issue.minimum}`;
    case 'invalid_value':
      return `must be one of: ${issue.values.map(String).join(', ')}`;
    case 'invalid_union':
      return 'is not a value this field takes';
    case 'invalid_format':
      return issue.format === 'email' ? 'must be a valid email address' : `is not a valid ${issue.format}`;
    default:
      return undefined;
  }
}

/**
 * Parses input with a zod schema.
 * @throws ValidationError with one message per field path (`targets.0.email`).
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input, { error: plainly });
  if (result.success) return result.data;
  const fields: FieldErrors = {};
  for (const issue of result.error.issues) {
    const key = issue.path.join('.') || '_';
    // null for a field that is not optional is a missing value, as an absent one is.
    fields[key] ??= issue.code === 'invalid_type' ? (valueAt(input, issue.path) == null ? 'is required' : `must be ${expected(issue.expected)}`) : issue.message;
  }
  throw new ValidationError(fields);
}

type Def = { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType; innerType?: z.ZodType; in?: z.ZodType; out?: z.ZodType };
const defOf = (schema: z.ZodType) => schema._zod.def as unknown as Def;

/** The schema a value must match once wrappers (optional, default, preprocess, pipe) are looked through. */
function unwrapped(schema: z.ZodType | undefined, type: 'object' | 'array'): z.ZodType | undefined {
  if (!schema) return undefined;
  const def = defOf(schema);
  if (def.type === type) return schema;
  if (def.type === 'pipe') return unwrapped(def.in, type) ?? unwrapped(def.out, type);
  return unwrapped(def.innerType, type);
}

/** How many unknown fields an answer names. */
const UNKNOWN_NAMED = 20;

function collectUnknown(schema: z.ZodType, value: unknown, path: string[], found: Map<string, string>): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    const array = unwrapped(schema, 'array');
    const element = array && defOf(array).element;
    if (element) value.forEach((item, i) => collectUnknown(element, item, [...path, String(i)], found));
    return;
  }
  const object = unwrapped(schema, 'object');
  if (!object) return;
  const shape = defOf(object).shape!;
  for (const [key, item] of Object.entries(value)) {
    const at = [...path, key];
    if (Object.hasOwn(shape, key)) collectUnknown(shape[key]!, item, at, found);
    else found.set(at.join('.'), 'is not a field this request takes; check its spelling');
  }
}

/**
 * Refuses a JSON body that carries fields its schema does not name: a misspelt field would be
 * dropped unseen, and some change what is stored or disclosed (`Disclose`, `requireConfirmaton`).
 * Forms are not checked: they carry fields of their own (the CSRF token, buttons).
 * @throws ValidationError naming each unknown field, with the body's other mistakes beside them.
 */
export function refuseUnknownFields(schema: z.ZodType, input: unknown): void {
  // A Map, then fromEntries: assigning `__proto__` to a plain object would set its prototype
  // instead of naming the field, and the body would pass.
  const found = new Map<string, string>();
  collectUnknown(schema, input, [], found);
  if (found.size === 0) return;
  // The first few, by name: a body of 90,000 unknown keys got back an answer of 6.5 MB.
  const named = [...found].slice(0, UNKNOWN_NAMED);
  const unknown: FieldErrors = Object.fromEntries(named);
  const more = found.size - named.length;
  const names = named.map(([name]) => name).join(', ') + (more ? ` and ${more} more` : '');
  let others: FieldErrors = {};
  try {
    parseInput(schema, input);
  } catch (err) {
    if (err instanceof ValidationError) others = err.fields;
    else throw err;
  }
  throw new ValidationError({ ...others, ...unknown }, `Unknown ${found.size === 1 ? 'field' : 'fields'}: ${names}.`);
}
