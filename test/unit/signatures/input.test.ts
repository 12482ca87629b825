import { describe, expect, it } from 'vitest';
import { signatureInput } from '../../../src/signatures/types.ts';

const base = { email: 'signer@supporter.example' };

describe('the signature form', () => {
  it('takes a name of one character, as some scripts write a whole name', () => {
    for (const fullName of ['李', '김', 'Ó']) expect(signatureInput.parse({ ...base, fullName }).fullName).toBe(fullName);
  });

  it('refuses an empty or blank name, and a name of more than one line', () => {
    for (const fullName of ['', '   ', 'Ann\nBcc: x@evil.example']) expect(signatureInput.safeParse({ ...base, fullName }).success).toBe(false);
    // Marks alone would sign as nobody: the From of every letter would read "via ORG_NAME".
    for (const fullName of ['<@>', '—', '...', '😀']) expect(signatureInput.safeParse({ ...base, fullName }).error?.issues[0]?.message).toBe('please give your name in letters');
  });

  it('refuses a name of characters that show nothing, and drops them at the ends of one that shows', () => {
    for (const fullName of ['\u200b\u200b', '\u3164', ' \ufeff ', '\u2800', '\u200d\u2060']) {
      expect(signatureInput.safeParse({ ...base, fullName }).error?.issues[0]?.message, JSON.stringify(fullName)).toBe('please give your full name');
    }
    expect(signatureInput.parse({ ...base, fullName: '\u200bAigerim N.\u200d', city: '\ufeffAlmaty' })).toMatchObject({ fullName: 'Aigerim N.', city: 'Almaty' });
    // Joiners inside a name stay: they make one emoji, or join letters in some scripts.
    expect(signatureInput.parse({ ...base, fullName: 'Ann 👩\u200d👩\u200d👧 Lee' }).fullName).toBe('Ann 👩\u200d👩\u200d👧 Lee');
  });

  it('refuses the private-use characters the letter marks its fields with, which no keyboard makes, naming the field', () => {
    for (const field of ['fullName', 'city', 'country', 'personalNote']) {
      const result = signatureInput.safeParse({ ...base, fullName: 'Ann', [field]: `A \uE000city\uE001 B` });
      expect(result.error?.issues.map((i) => [i.path[0], i.message]), field).toEqual([[field, 'contains characters that are not text']]);
    }
    // Other private-use characters (a font's icons) are someone's text.
    expect(signatureInput.parse({ ...base, fullName: 'Ann \uF8FF' }).fullName).toBe('Ann \uF8FF');
  });

  it('takes a tab pasted into a one-line field as a space, and a note of nothing visible as no note', () => {
    // Copied from a spreadsheet cell: the field shows one line, so it must not be "more than one line".
    expect(signatureInput.parse({ ...base, fullName: 'Ann\tLee', city: '\tAlmaty\t' })).toMatchObject({ fullName: 'Ann Lee', city: 'Almaty' });
    // It would be an empty paragraph in the letter.
    expect(signatureInput.parse({ ...base, fullName: 'Ann', personalNote: '\u2800\u200b\r\n\u3164 ' }).personalNote).toBe('');
    expect(signatureInput.parse({ ...base, fullName: 'Ann', personalNote: '\u200bFree her.\u200b' }).personalNote).toBe('\u200bFree her.\u200b');
    // Variation selectors and combining marks alone show nothing either; after an emoji they stay.
    for (const personalNote of ['\ufe0f', '\u034f\u17b4', ' \u0301\u180b ']) expect(signatureInput.parse({ ...base, fullName: 'Ann', personalNote }).personalNote, JSON.stringify(personalNote)).toBe('');
    expect(signatureInput.parse({ ...base, fullName: 'Ann', personalNote: 'Free her ❤\ufe0f' }).personalNote).toBe('Free her ❤\ufe0f');
  });

  it('keeps a note\'s Unicode line and paragraph separators as the line break and blank line they show', () => {
    expect(signatureInput.parse({ ...base, fullName: 'Ann', personalNote: 'One\u2028two\u2029three\r\nfour' }).personalNote).toBe('One\ntwo\n\nthree\nfour');
    // Each is one character, as the textarea counted it, though the blank line is two.
    const full = `${'a'.repeat(999)}\u2029${'b'.repeat(1000)}`;
    expect(signatureInput.parse({ ...base, fullName: 'Ann', personalNote: full }).personalNote).toHaveLength(2001);
    expect(signatureInput.safeParse({ ...base, fullName: 'Ann', personalNote: `${full}c` }).success).toBe(false);
    // Separators at either end are trimmed away: they make no room for more text.
    for (const padded of [`${'a'.repeat(2001)}${'\u2029'.repeat(50)}`, `${'\u2029'.repeat(50)}${'a'.repeat(2001)}`]) {
      expect(signatureInput.safeParse({ ...base, fullName: 'Ann', personalNote: padded }).success).toBe(false);
    }
  });

  it('refuses a letter with accents stacked past any script\'s, and takes the marks real names carry', () => {
    const zalgo = signatureInput.safeParse({ ...base, fullName: `Z${'\u0336\u0301\u0316'.repeat(37)}ed` });
    expect(zalgo.error?.issues[0]?.message).toBe('must not stack more than 6 accents or marks on one letter');
    // Vietnamese and vowelled Uyghur or Arabic written with combining marks; Devanagari's signs.
    // Kept composed where Unicode composes them (ễ, ị), as a keyboard types them.
    for (const fullName of ['Nguye\u0302\u0303n Thi\u0323', 'مُحَمَّد', 'ئابدۇرېشىت', 'देवनागरी']) expect(signatureInput.parse({ ...base, fullName }).fullName).toBe(fullName.normalize('NFC'));
    expect(signatureInput.parse({ ...base, fullName: 'Nguye\u0302\u0303n Thi\u0323' }).fullName).toBe('Nguy\u1ec5n Th\u1ecb');
  });

  it('keeps names, places and notes composed, so that a search typed the usual way finds them', () => {
    const decomposed = signatureInput.parse({ ...base, fullName: 'А\u0438\u0306гу\u0308ль', city: 'Алма\u0308ты', personalNote: 'Ко\u0308мек ете\u0301 аласыз ба?' });
    expect(decomposed).toMatchObject({ fullName: 'Айгӱль', city: 'Алмӓты', personalNote: 'Кӧмек ете́ аласыз ба?'.normalize('NFC') });
    expect(decomposed.fullName).toHaveLength(6);
  });

  it('refuses the controls that turn how a name shows around, and takes right-to-left names as typed', () => {
    const reversed = signatureInput.safeParse({ ...base, fullName: 'Ann \u202Eelpmaxe.vog@retsinim' });
    expect(reversed.success).toBe(false);
    expect(reversed.error!.issues[0]!.message).toBe('must not contain text-direction control characters');
    expect(signatureInput.parse({ ...base, fullName: 'ئايگېرىم نۇرلان', city: 'ئۈرۈمچی' }).city).toBe('ئۈرۈمچی');
    // In a note: no override, but the isolates editors put around mixed text are kept.
    expect(signatureInput.safeParse({ ...base, fullName: 'Ann', personalNote: 'Free her \u202Eyadot' }).error?.issues[0]?.message).toBe('must not contain text-direction override characters');
    expect(signatureInput.parse({ ...base, fullName: 'Ann', personalNote: 'She said \u2067ئازاد\u2069 today.' }).personalNote).toBe('She said \u2067ئازاد\u2069 today.');
  });

  it('takes an address on a domain in another script in its ASCII form, and refuses other letters before the @ in words', () => {
    expect(signatureInput.parse({ fullName: 'Ann', email: 'ann@bücher.example' }).email).toBe('ann@xn--bcher-kva.example');
    expect(signatureInput.parse({ fullName: 'Aigerim', email: 'Aigerim@мысал.қаз' }).email).toBe('Aigerim@xn--80awbu3c.xn--80ao21a');
    expect(signatureInput.safeParse({ fullName: 'Aigerim', email: 'айгерім@example.kz' }).error?.issues[0]?.message).toMatch(/^must have only Latin letters/);
    for (const email of ['ann@b', 'ann@-bad-.example', 'not an address']) expect(signatureInput.safeParse({ fullName: 'Ann', email }).error?.issues[0]?.message).toBe('must be a valid email address');
  });

  it('says what to change in an address pasted from a mail client, with a name or beside another', () => {
    const message = (email: string) => signatureInput.safeParse({ fullName: 'Ann', email }).error?.issues[0]?.message;
    expect(message('Айгерим Бек <aigerim@example.org>')).toBe('must be the address alone, without a name or < >');
    expect(message('<aigerim@example.org>')).toBe('must be the address alone, without a name or < >');
    expect(message('aigerim@example.org, dana@example.org')).toBe('must be one address only');
    expect(message('aigerim@example.org;dana@example.org')).toBe('must be one address only');
    expect(message('aigerim@example.org dana@example.org')).toBe('must be one address only');
    expect(message('aigerim example.org')).toBe('must be a valid email address');
  });

  it('takes a domain in ASCII form in capitals, as an old list has it', () => {
    expect(signatureInput.parse({ fullName: 'Ann', email: 'INFO@MAIL.XN--P1AI' }).email).toBe('INFO@MAIL.XN--P1AI');
    expect(signatureInput.parse({ fullName: 'Ann', email: 'user@XN--80A1ACNY.Xn--p1ai' }).email).toBe('user@XN--80A1ACNY.Xn--p1ai');
  });

  it('refuses an address no server could have: over 64 characters before the @, a label of the domain over 63, or one ending in a hyphen', () => {
    const message = (email: string) => signatureInput.safeParse({ fullName: 'Ann', email }).error?.issues[0]?.message;
    expect(message(`${'a'.repeat(64)}@court.kz`)).toBeUndefined();
    expect(message(`${'a'.repeat(65)}@court.kz`)).toBe('must be a valid email address');
    expect(message(`judge@${'b'.repeat(63)}.kz`)).toBeUndefined();
    expect(message(`judge@${'b'.repeat(64)}.kz`)).toBe('must be a valid email address');
    expect(message('judge@court-.kz')).toBe('must be a valid email address');
    expect(message('judge@co-urt.kz')).toBeUndefined();
    expect(message(`${'a'.repeat(60)}@${'b.'.repeat(96)}kz`)).toBe('must be at most 254 characters');
    expect(message('judge@court.xn--p1ai-')).toBe('must be a valid email address');
  });

  it('refuses an address over 254 characters for that alone, before any other check reads it', () => {
    // A body-sized value: `<@@@…` took the check for a pasted name seconds at 30,000 characters.
    for (const email of [`<${'@'.repeat(30_000)}`, `Ann <ann@example.org>, ${'x'.repeat(300)}@example.org`]) {
      expect(signatureInput.safeParse({ fullName: 'Ann', email }).error?.issues.map((i) => i.message)).toEqual(['must be at most 254 characters']);
    }
  });
});
