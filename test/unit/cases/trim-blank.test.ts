import { describe, expect, it } from 'vitest';
import { trimBlank } from '../../../src/cases/types.ts';

describe('trimBlank', () => {
  it('takes blanks off both ends, invisible ones and those outside the basic plane too, and keeps the inside', () => {
    expect(trimBlank('  Aigerim  Test \t')).toBe('Aigerim  Test');
    expect(trimBlank('\u200b\ufeffАйгерім\u200d\u3164')).toBe('Айгерім');
    // A language tag (U+E0001) is a format character written as two code units.
    expect(trimBlank('\u{E0001}name\u{E0001}\u{E0001}')).toBe('name');
    expect(trimBlank('name 😀')).toBe('name 😀');
    // A subdivision's flag ends in tag characters, format characters that are part of it.
    const scotland = '🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}';
    expect(trimBlank(`Amnesty Scotland ${scotland}`)).toBe(`Amnesty Scotland ${scotland}`);
    expect(trimBlank(`Amnesty Scotland ${scotland}\u200b `)).toBe(`Amnesty Scotland ${scotland}`);
    expect(trimBlank('name\u{E0067}\u{E007F}')).toBe('name');
    expect(trimBlank('\u2800\u115f \u1160')).toBe('');
    expect(trimBlank('')).toBe('');
    // Half a character at the end is not blank: it is left for the field's own check.
    expect(trimBlank('a\ud800')).toBe('a\ud800');
  });

  it('trims a field with a long run of blanks inside in one pass', () => {
    // A pattern for the end was tried from every blank: 200,000 spaces took minutes, in a request
    // anyone may send (every sign form field and its preview go through here).
    const inside = ' '.repeat(200_000);
    expect(trimBlank(`a${inside}a`)).toBe(`a${inside}a`);
    expect(trimBlank(`a${'\u200b'.repeat(200_000)}`)).toBe('a');
  });
});
