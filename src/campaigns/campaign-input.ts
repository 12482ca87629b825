// Checking what an organizer sends for a campaign: its fields and its letter's template errors named
// together, with an unknown case or a taken slug, so a form shows every mistake in one round.
import type { Queryable } from '../db/index.ts';
import { findCase } from '../cases/service.ts';
import { TemplateError, ValidationError, type FieldErrors } from '../errors.ts';
import { parseInput, refuseUnknownFields } from '../validation.ts';
import { tooLong, validateLetterTemplate } from './letter-checks.ts';
import * as q from './queries.ts';
import { campaignInput, newCampaignInput, type CampaignInput } from './types.ts';

const LETTER_DOES_NOT_COMPILE = 'The letter does not compile.';

/** The letter's template errors, named by their path in the input: letter.subject, letter.body. */
function letterTemplateErrors(input: unknown): FieldErrors {
  const letter = (input as { letter?: { subject?: unknown; body?: unknown } } | null)?.letter;
  const fields: FieldErrors = {};
  for (const part of ['subject', 'body'] as const) {
    const source = letter?.[part];
    // One too long is not parsed; its length is what campaignInput says is wrong with it.
    if (typeof source !== 'string' || tooLong(part, source)) continue;
    try {
      validateLetterTemplate(part, source);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      for (const [k, v] of Object.entries(err.fields)) fields[`letter.${k}`] = v;
    }
  }
  return fields;
}

/**
 * Every mistake at once: the input's field errors and the letter's template errors together, so
 * an organizer fixing an empty title learns about the template in the same round.
 * @throws TemplateError when the letter has errors (with any field errors), else ValidationError.
 */
function parseCampaign(input: unknown, schema: typeof campaignInput | typeof newCampaignInput = campaignInput): CampaignInput {
  const templateErrors = letterTemplateErrors(input);
  let c: CampaignInput;
  try {
    c = parseInput(schema, input);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    if (Object.keys(templateErrors).length) throw new TemplateError({ ...err.fields, ...templateErrors }, LETTER_DOES_NOT_COMPILE);
    throw err;
  }
  if (Object.keys(templateErrors).length) throw new TemplateError(templateErrors, LETTER_DOES_NOT_COMPILE);
  return c;
}

/**
 * Field errors for a case slug that names no case and a campaign slug already taken, as the form
 * would read them. A slug already refused (`refused`) is not looked up: it names nothing, and one
 * holding a NUL would make Postgres refuse the query, hiding every other mistake.
 */
export async function unknownOrTaken(db: Queryable, input: unknown, refused: FieldErrors): Promise<FieldErrors> {
  const { caseSlug, slug } = (input ?? {}) as { caseSlug?: unknown; slug?: unknown };
  const fields: FieldErrors = {};
  const lookUp = (field: 'caseSlug' | 'slug', value: unknown): value is string => !refused[field] && typeof value === 'string' && value.trim() !== '';
  if (lookUp('caseSlug', caseSlug) && !(await findCase(db, caseSlug.trim()))) fields.caseSlug = 'no case has this slug';
  if (lookUp('slug', slug) && (await q.getCampaignBySlug(db, slug.trim()))) fields.slug = 'is taken already: choose another';
  return fields;
}

/**
 * Checks a campaign as createCampaign does, without saving, so a form can show every problem at
 * once: its mistakes with an unknown case or a taken slug, not those two only once the rest is
 * mended. (Alone, those two are left to createCampaign, which answers them as it always has.)
 * @throws ValidationError
 */
export async function validateCampaignInput(db: Queryable, input: unknown, { exact = false } = {}): Promise<CampaignInput> {
  try {
    if (exact) refuseUnknownFieldsOfCampaign(input);
    return parseCampaign(input, newCampaignInput);
  } catch (err) {
    if (err instanceof ValidationError) {
      for (const [field, message] of Object.entries(await unknownOrTaken(db, input, err.fields))) err.fields[field] ??= message;
    }
    throw err;
  }
}

/**
 * refuseUnknownFields for a campaign: the body's other mistakes are named beside an unknown field,
 * the letter's template errors too (as parseCampaign names them beside the rest).
 * @throws ValidationError, or TemplateError when the letter does not compile either
 */
function refuseUnknownFieldsOfCampaign(input: unknown): void {
  try {
    refuseUnknownFields(campaignInput, input);
  } catch (err) {
    const templateErrors = err instanceof ValidationError ? letterTemplateErrors(input) : {};
    if (Object.keys(templateErrors).length) throw new TemplateError({ ...(err as ValidationError).fields, ...templateErrors }, LETTER_DOES_NOT_COMPILE);
    throw err;
  }
}

/** A campaign's details as updateCampaignDetails reads them: its slug and targets stay. */
export const parseDetails = (slug: string, input: unknown) => parseCampaign({ ...(input as object), slug, targets: [{ name: 'kept', email: 'kept@example.org' }] });

/**
 * What is wrong with new details for a campaign, field by field, without looking at the database:
 * for a form that found mistakes of its own first and names them all at once.
 */
export function detailErrors(slug: string, input: unknown): FieldErrors {
  try {
    parseDetails(slug, input);
    return {};
  } catch (err) {
    if (err instanceof ValidationError) return err.fields;
    throw err;
  }
}
