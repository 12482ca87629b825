import { describe, expect, it } from 'vitest';
import { brokenFieldLine } from '../../../src/campaigns/service.ts';
import type { Disclose } from '../../../src/campaigns/letter-template.ts';
import { SIGN_OFF } from '../../../src/demo.ts';
import { STARTER_BODY } from '../../../src/web/routes/admin/campaigns.ts';

type Written = { disclose: Disclose; retired_at: null }[];
const toName: Written = [{ disclose: 'name', retired_at: null }];
const toPlace: Written = [{ disclose: 'name_place', retired_at: null }];
/** The letter's context but the supporter, as the console builds it from a campaign (letterContextFor). */
const SAMPLE_CONTEXT = {
  target: { name: 'Official', title: 'Title', salutation: 'Salutation' },
  case: { personName: 'Person', location: 'Place' },
  campaign: { title: 'Campaign' },
  date: 'Date',
};
const check = (body: string, targets = toName, deliveryMode: 'each' | 'digest' = 'each', context = SAMPLE_CONTEXT) =>
  brokenFieldLine({ letter_subject: 'About {{case.personName}}', letter_body: body, delivery_mode: deliveryMode }, targets, context);

describe('brokenFieldLine', () => {
  it('quotes a line an optional field written into it unguarded leaves broken, and says who gets it so', () => {
    const body = 'Dear {{target.name}},\n\nI am writing from {{supporter.city}}, {{supporter.country}} about {{case.personName}}.\n\n{{supporter.fullName}}';
    expect(check(body)).toBe(
      'For a supporter who leaves out their city (and in every letter to an official told the name only), this line of the letter reads ' +
        '“I am writing from , Kazakhstan about Person.” Put {{supporter.city}} on a line of its own, or inside {{#if supporter.city}}…{{/if}}.',
    );
    // No official told the name only: only a supporter's own empty field breaks it.
    expect(check(body, toPlace)).toMatch(/^For a supporter who leaves out their city, this line/);
    expect(check('Dear x,\n\nMy words: {{supporter.personalNote}}\n\n{{supporter.fullName}}')).toMatch(/their personal note, this line of the letter reads “My words:”/);
    expect(check('Dear x,\n\nI write from {{supporter.city}} about her.')).toMatch(/“I write from  about her\.”/);
  });

  it('finds the broken line of a letter that holds right-to-left text too, whose values are isolated', () => {
    const body = 'Dear x,\n\nI write from {{supporter.city}}, {{supporter.country}} about Aigul (ئايگۈل).\n\n{{supporter.fullName}}';
    // The line quoted isolated, so that it reads in its own direction in the console's sentence.
    expect(check(body)).toMatch(/^For a supporter who leaves out their city .*reads “\u2068I write from , Kazakhstan about Aigul \(ئايگۈل\)\.\u2069”/);
  });

  it('does not say a letter to an official told the name only is broken when its line goes with both fields', () => {
    const body = 'Dear x,\n\n{{#if supporter.city}}{{supporter.city}}, {{/if}}{{supporter.country}}\n\n{{supporter.fullName}}';
    expect(check(body)).toBe(
      'For a supporter who leaves out their country, this line of the letter reads “Almaty,” Put {{supporter.country}} on a line of its own, or inside {{#if supporter.country}}…{{/if}}.',
    );
    // Guarded the other way round, the name-only letter's line is left broken: said so.
    expect(check('Dear x,\n\nI write from {{supporter.city}}{{#if supporter.country}} in {{supporter.country}}{{/if}}, please.')).toMatch(
      /^For a supporter who leaves out their city \(and in every letter to an official told the name only\), this line of the letter reads “I write from  in Kazakhstan, please\.”/,
    );
  });

  it('says nothing of a letter that reads well without the field: guarded, or on its own line', () => {
    expect(check(STARTER_BODY)).toBeNull();
    expect(check(`Dear x,\n\nFree her.\n\n${SIGN_OFF}`)).toBeNull();
    expect(check('Dear x,\n\n{{#if supporter.city}}I live in {{supporter.city}}.{{/if}}\n\n{{supporter.fullName}}')).toBeNull();
    expect(check('Dear x,\n\n{{supporter.personalNote}}\n\n{{supporter.fullName}}\n{{supporter.city}} {{supporter.country}}')).toBeNull();
    // Two spaces after a full stop were there before the field: not its doing.
    expect(check('Dear x,\n\nPlease free him.  I care.  {{supporter.personalNote}}')).toBeNull();
  });

  it('quotes a line as the officials will read it, with the campaign\'s case and official, not stand-ins', () => {
    const context = { ...SAMPLE_CONTEXT, target: { name: 'Judge Serikova', title: 'Presiding judge', salutation: 'Your Honour' }, case: { personName: 'Erlan Qasymbek', location: 'Almaty' } };
    expect(check('Signed, {{supporter.fullName}} of {{supporter.city}}, for {{case.personName}}', toPlace, 'digest', context)).toContain('as “Signed,  of , for Erlan Qasymbek”');
    expect(check('{{target.salutation}},\n\nI write from {{supporter.city}}, {{supporter.country}} about {{case.personName}} in {{case.location}}.', toPlace, 'each', context))
      .toContain('reads “I write from , Kazakhstan about Erlan Qasymbek in Almaty.”');
  });

  it('quotes a digest letter\'s line with a supporter field in it: a digest has every one empty', () => {
    expect(check('Dear x,\n\nI am writing from {{supporter.city}}, {{supporter.country}}.', toName, 'digest')).toBe(
      'A digest lists its signers below the letter, so every {{supporter.…}} in the letter is empty: this line reaches every official as ' +
        '“I am writing from , .” Take the supporter\'s fields out of the letter.',
    );
    expect(check('Dear x,\n\nFree him. Supporter: {{supporter.fullName}} of {{supporter.city}}.', toPlace, 'digest')).toMatch(/“Free him\. Supporter:  of \.”/);
    // At either end of a line, in the subject, and in a block that shows when the fields are empty.
    const digest = (subject: string, body: string) =>
      brokenFieldLine({ letter_subject: subject, letter_body: body, delivery_mode: 'digest' }, toPlace, SAMPLE_CONTEXT);
    expect(digest('About her', 'Dear x,\n\n{{supporter.fullName}} from {{supporter.city}}\n\nFree her.')).toMatch(/as “from” Take/);
    // A subject names no signer in a digest: any supporter field in it is said, with the subject as
    // officials get it, whether the words around it still read or not, in any script.
    for (const [subject, sent] of [
      ['Free her – {{supporter.fullName}}', 'Free her'],
      ['Letter from {{supporter.fullName}} about {{case.personName}}', 'Letter from about Person'],
      ['Letter from {{#if supporter.fullName}}{{supporter.fullName}}{{/if}} about her', 'Letter from about her'],
      ["{{supporter.fullName}}'s letter about her", "'s letter about her"],
      ['来自{{supporter.fullName}}的信', '来自的信'],
    ]) {
      expect(digest(subject!, 'Dear x,\n\nFree her.'), subject).toMatch(new RegExp(`the subject, which names no signer, reaches every official as “${sent!.replace(/[()]/g, '\\$&')}” Take`));
    }
    expect(digest('Free her', 'Dear x,\n\nFree her.')).toBeNull();
    // Both at once: said together, not one after the other is fixed.
    expect(digest('From {{supporter.city}}', 'Dear x,\n\nI am from {{supporter.city}}.')).toMatch(/this line reaches every official as “I am from \.” and the subject, which names no signer, reaches them as “From” Take/);
    expect(digest('About her', 'Dear x,\n\n{{#if supporter.city}}I live in {{supporter.city}}.{{else}}I live far away from {{supporter.country}}.{{/if}}')).toMatch(/as “I live far away from \.” Take/);
    expect(digest('About her', 'Dear x,\n\n{{#unless supporter.city}}I do not say where I live, {{supporter.fullName}}.{{/unless}}')).toMatch(/as “I do not say where I live, \.” Take/);
    expect(digest('About her', 'Dear x,\n\nI live in {{{supporter.city}}}.')).toMatch(/as “I live in \.” Take/);
    // Guarded, on their own lines, or not there: the digest's letter drops them whole.
    for (const body of [STARTER_BODY, `Dear x,\n\nFree her.\n\n${SIGN_OFF}`, 'Dear x,\n\n{{#if supporter.city}}I live in {{supporter.city}}.{{/if}}\n\n{{supporter.fullName}}\n{{supporter.city}}, {{supporter.country}}']) {
      expect(check(body, toPlace, 'digest')).toBeNull();
    }
  });
});
