import { describe, expect, it } from 'vitest';
import { renderDigestLetter } from '../../src/digests/emails.ts';
import { nextDigestAt, nextDigestWords } from '../../src/digests/service.ts';

describe('the subject of a digest', () => {
  const context = {
    target: { name: 'Judge One', title: 'District judge', salutation: 'Your Honour' },
    case: { personName: 'Aigerim', location: 'Almaty' },
    campaign: { title: 'Free Aigerim' },
    date: '4 December 2026',
  };

  it('says how many signed and when', () => {
    expect(renderDigestLetter('About {{case.personName}}', 'Body', context, 3).subject).toBe('About Aigerim (3 supporters, 4 December 2026)');
    // After a right-to-left subject, a mark keeps the count with its word in a right-to-left line.
    expect(renderDigestLetter('ئايگۈلنى قويۇپ بېرىڭ', 'Body', context, 3).subject).toBe('ئايگۈلنى قويۇپ بېرىڭ (\u200e3 supporters, 4 December 2026)');
    expect(renderDigestLetter('About {{case.personName}}', 'Body', context, 1).subject).toBe('About Aigerim (1 supporter, 4 December 2026)');
  });

  it('gives the date once when the template puts it in the subject already', () => {
    expect(renderDigestLetter('Supporters of {{case.personName}} — {{date}}', 'Body', context, 2).subject).toBe('Supporters of Aigerim — 4 December 2026 (2 supporters)');
  });

  it('dates a subject that holds those words for another reason', () => {
    const firstOfJune = { ...context, date: '1 June 2026' };
    expect(renderDigestLetter('Stop the deportation set for 21 June 2026', 'Body', firstOfJune, 2).subject).toBe('Stop the deportation set for 21 June 2026 (2 supporters, 1 June 2026)');
    const arrested = { ...firstOfJune, case: { personName: 'Ann Lee, arrested 11 June 2026', location: '' } };
    expect(renderDigestLetter('Free {{case.personName}}', 'Body', arrested, 2).subject).toBe('Free Ann Lee, arrested 11 June 2026 (2 supporters, 1 June 2026)');
  });
});

describe('when the console says the next digest goes', () => {
  const at = (iso: string) => new Date(iso);

  it('names the hour while it is still to come today', () => {
    expect(nextDigestWords(9, null, at('2026-12-04T07:10:00Z'))).toBe('at 9:00 UTC');
    expect(nextDigestWords(9, at('2026-12-03T09:00:00Z'), at('2026-12-04T08:59:59Z'))).toBe('at 9:00 UTC');
  });

  it('names the next quarter hour once the hour has passed with no digest today', () => {
    expect(nextDigestWords(9, null, at('2026-12-04T15:03:00Z'))).toBe("at 15:15 UTC (today's hour, 9:00 UTC, has passed)");
    expect(nextDigestWords(14, at('2026-12-03T14:00:00Z'), at('2026-12-04T14:45:00Z'))).toBe("at 15:00 UTC (today's hour, 14:00 UTC, has passed)");
    // Past the day's last check (23:45) the next is tomorrow's, which waits for the hour.
    expect(nextDigestWords(9, at('2026-12-05T09:00:00Z'), at('2026-12-06T23:50:00Z'))).toBe('tomorrow at 9:00 UTC');
    expect(nextDigestWords(0, null, at('2026-12-06T23:45:00Z'))).toBe('tomorrow at 0:00 UTC');
  });

  it('says tomorrow once today\'s digest went, whatever the hour is now', () => {
    expect(nextDigestWords(9, at('2026-12-04T09:00:00Z'), at('2026-12-04T15:03:00Z'))).toBe('tomorrow at 9:00 UTC');
    expect(nextDigestWords(15, at('2026-12-04T14:45:00Z'), at('2026-12-04T14:50:00Z'))).toBe('tomorrow at 15:00 UTC');
  });

  // The confirmation page dates the digest letter by it: the day it goes, past midnight too.
  it('gives the time itself, the same rule as the words', () => {
    expect(nextDigestAt(9, null, at('2026-12-04T07:10:00Z')).at).toEqual(at('2026-12-04T09:00:00Z'));
    expect(nextDigestAt(9, null, at('2026-12-04T15:03:00Z')).at).toEqual(at('2026-12-04T15:15:00Z'));
    expect(nextDigestAt(0, null, at('2026-12-06T23:45:00Z')).at).toEqual(at('2026-12-07T00:00:00Z'));
    expect(nextDigestAt(9, at('2026-12-04T09:00:00Z'), at('2026-12-04T15:03:00Z')).at).toEqual(at('2026-12-05T09:00:00Z'));
  });
});
