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
const check = (body: string, subject = 'About {{case.personName}}') => supporterInLink({ letter_subject: subject, letter_body: body }, CONTEXT);

describe('a supporter field inside a link of the letter', () => {
  it('is named, with the link as the template writes it', () => {
    expect(check('Files: https://case-files.example/n?c={{supporter.city}}&s={{supporter.fullName}}\n\n' + SIGN_OFF)).toBe(
      'A link in the letter carries what supporters type (https://case-files.example/n?c={{supporter.city}}&s={{supporter.fullName}}): a mail system that opens links to check them, or one click, hands it to whoever runs that site. Keep supporter fields out of links.',
    );
    expect(check('See www.example.org/{{supporter.personalNote}}\n\n' + SIGN_OFF)).toMatch(/\(www\.example\.org\/\{\{supporter\.personalNote\}\}\)/);
  });

  it('is not a link beside a supporter field, nor one of the case alone', () => {
    expect(check('Read https://case-files.example/person about {{case.personName}}.\n\nFrom {{supporter.city}}: https://example.org {{supporter.fullName}}\n\n' + SIGN_OFF)).toBeNull();
    expect(check('{{supporter.fullName}}\n\n' + SIGN_OFF)).toBeNull();
  });
});
