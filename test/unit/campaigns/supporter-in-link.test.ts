import { describe, expect, it } from 'vitest';
import { supporterInLink } from '../../../src/campaigns/service.ts';
import { SIGN_OFF } from '../../../src/demo.ts';

/** The letter's context but the supporter, as the console builds it from a campaign (letterContextFor). */
const CONTEXT = {
  target: { name: 'Official', title: 'Title', salutation: 'Salutation' },
  case: { personName: 'Person', location: 'Place' },
  campaign: { title: 'Campaign' },
  date: 'Date',
};
type Written = { disclose: 'name' | 'name_place' | 'full'; retired_at: null }[];
const toPlace: Written = [{ disclose: 'name_place', retired_at: null }];
const check = (body: string, subject = 'About {{case.personName}}', targets = toPlace, mode: 'each' | 'digest' = 'each') =>
  supporterInLink({ letter_subject: subject, letter_body: body, delivery_mode: mode }, targets, CONTEXT);

describe('a supporter field inside a link of the letter', () => {
  it('is named, with the link as the template writes it', () => {
    expect(check('Files: https://case-files.example/n?c={{supporter.city}}&s={{supporter.fullName}}\n\n' + SIGN_OFF)).toBe(
      'A link in the letter carries what supporters type (https://case-files.example/n?c={{supporter.city}}&s={{supporter.fullName}}): a mail system that opens links to check them, or one click, hands it to whoever runs that site. Keep supporter fields out of links.',
    );
    expect(check('See http://example.org/{{supporter.personalNote}}\n\n' + SIGN_OFF)).toMatch(/\(http:\/\/example\.org\/\{\{supporter\.personalNote\}\}\)/);
  });

  it('is found in the subject too', () => {
    expect(check(SIGN_OFF, 'Read https://example.org/?n={{supporter.fullName}}')).toMatch(/^A link in the letter carries what supporters type \(https:\/\/example\.org\/\?n=\{\{supporter\.fullName\}\}\)/);
  });

  it('is not a field no official is told: a digest names no supporter, and the place is empty for officials told the name only', () => {
    const body = 'See https://example.org/?c={{supporter.city}}\n\n' + SIGN_OFF;
    expect(check(body, undefined, toPlace, 'digest')).toBeNull();
    expect(check(body, undefined, [{ disclose: 'name', retired_at: null }])).toBeNull();
    expect(check(body)).not.toBeNull();
  });

  it('ends a link where the letter\'s HTML ends it: at punctuation of another script, as in Chinese', () => {
    expect(check('见 https://example.org/report。{{supporter.fullName}}\n\n' + SIGN_OFF)).toBeNull();
  });

  it('is not a link beside a supporter field, nor one of the case alone', () => {
    expect(check('Read https://case-files.example/person about {{case.personName}}.\n\nFrom {{supporter.city}}: https://example.org {{supporter.fullName}}\n\n' + SIGN_OFF)).toBeNull();
    expect(check('{{supporter.fullName}}\n\n' + SIGN_OFF)).toBeNull();
  });
});
