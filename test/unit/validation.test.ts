import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import { parseInput, refuseUnknownFields } from '../../src/validation.ts';
import { campaignInput } from '../../src/campaigns/types.ts';

const schema = z.object({ name: z.string(), tags: z.array(z.object({ label: z.string() })), age: z.number().optional() });

/** The field messages of the ValidationError `act` throws; none when it throws nothing. */
const fieldsThrownBy = (act: () => unknown) => {
  try {
    act();
  } catch (err) {
    if (err instanceof ValidationError) return err.fields;
    throw err;
  }
  return {};
};
const fieldsOf = (input: unknown, of: z.ZodType = schema) => fieldsThrownBy(() => parseInput(of, input));

describe('field messages of parsed input', () => {
  it('says a missing field is required, whether absent or null', () => {
    expect(fieldsOf({ tags: [] })).toEqual({ name: 'is required' });
    expect(fieldsOf({ name: null, tags: [] })).toEqual({ name: 'is required' });
  });

  it('says what a field of the wrong type should be, also deep in a list', () => {
    expect(fieldsOf({ name: 123, tags: [{ label: ['x'] }], age: 'old' })).toEqual({
      name: 'must be text',
      'tags.0.label': 'must be text',
      age: 'must be a number',
    });
  });
});

describe("a campaign's numbers", () => {
  const numbers = campaignInput.pick({ goal: true, digestHour: true });
  const fields = (input: unknown) => fieldsOf(input, numbers);

  it('are refused in words an organizer can act on, not the schema library’s', () => {
    expect(fields({ goal: -5, digestHour: 25 })).toEqual({ goal: 'must be a whole number of at least 1', digestHour: 'must be an hour from 0 to 23' });
    expect(fields({ goal: 1.5, digestHour: 9 })).toEqual({ goal: 'must be a whole number' });
  });
});

describe("a campaign's case", () => {
  const fields = (input: unknown) => fieldsOf(input, campaignInput.pick({ caseSlug: true }));

  it('asks for one when none was chosen, and for a slug when one was typed wrong', () => {
    expect(fields({ caseSlug: '' })).toEqual({ caseSlug: 'choose the case this campaign is about' });
    expect(fields({ caseSlug: 'Not A Slug' })).toEqual({ caseSlug: 'use Latin letters a–z (lowercase), digits and single hyphens' });
    expect(fields({ caseSlug: 'aigerim' })).toEqual({});
  });
});

describe('fields a JSON body may not carry', () => {
  const refused = (input: unknown) => fieldsThrownBy(() => refuseUnknownFields(campaignInput, input));
  const body = { slug: 'free-her', caseSlug: 'her', title: 'T', letter: { subject: 'S', body: 'B' }, targets: [{ name: 'N', email: 'n@gov.example' }] };

  it('passes a body with only fields the schema names, optional ones absent', () => {
    expect(refused(body)).toEqual({});
  });

  it('names unknown fields at any depth, through optional, default and preprocessed fields', () => {
    expect(refused({ ...body, extra: 1, letter: { ...body.letter, html: 'x' }, targets: [{ ...body.targets[0], Disclose: 'name' }] })).toEqual({
      extra: expect.stringContaining('not a field'),
      'letter.html': expect.stringContaining('not a field'),
      'targets.0.Disclose': expect.stringContaining('not a field'),
    });
  });

  it('names the first twenty of many unknown fields and counts the rest, so the answer stays small', () => {
    const many = { ...body, ...Object.fromEntries(Array.from({ length: 90_000 }, (_, i) => [`x${i}`, 1])) };
    let message = '';
    try {
      refuseUnknownFields(campaignInput, many);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^Unknown fields: x0, x1, .*, x19 and 89980 more\.$/);
    expect(Object.keys(refused(many))).toHaveLength(20);
  });

  it('names a __proto__ key as JSON.parse keeps it (an own field), rather than losing it to the prototype setter', () => {
    const { letter: _, ...rest } = body;
    const fields = refused(JSON.parse(`{"__proto__": {"x": 1}, "letter": {"subject": "S", "body": "B", "__proto__": null}, ${JSON.stringify(rest).slice(1)}`));
    expect(Object.keys(fields).sort()).toEqual(['__proto__', 'letter.__proto__']);
  });
});
