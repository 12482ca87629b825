import { describe, expect, it } from 'vitest';
import { isolate, isolateRightToLeft, isolatesAsBdi, unwrapLoneLines, withoutIsolates } from '../../../src/mail/bidi.ts';

const FSI = '\u2068';
const PDI = '\u2069';
const LRI = '\u2066';
const RLI = '\u2067';

describe('isolating values written right to left', () => {
  it('isolates a line at a time, and only what holds right-to-left text when asked so', () => {
    expect(isolate('a\n\nb')).toBe(`${FSI}a${PDI}\n\n${FSI}b${PDI}`);
    // A note's own isolates are balanced first: one left open is closed, a closing mark of nothing goes.
    expect(isolate(`שלום ${RLI}עולם\n${PDI}x ${LRI}a${PDI}`)).toBe(`${FSI}שלום ${RLI}עולם${PDI}${PDI}\n${FSI}x ${LRI}a${PDI}${PDI}`);
    expect(isolatesAsBdi(isolate(`שלום ${RLI}עולם`)) + ' — деп').toBe('<bdi>שלום <bdi dir="rtl">עולם</bdi></bdi> — деп');
    expect(isolateRightToLeft('Әсел Нұрланқызы')).toBe('Әсел Нұрланқызы');
    expect(isolateRightToLeft('ئايگۈل')).toBe(`${FSI}ئايگۈل${PDI}`);
    expect(isolateRightToLeft('שלום')).toBe(`${FSI}שלום${PDI}`);
  });

  it('unwraps a line that is one isolated value alone, and no other', () => {
    expect(unwrapLoneLines(`${FSI}ئايگۈل${PDI}\nМен, ${FSI}ئايگۈل${PDI}.\n${FSI}a${PDI} ${FSI}b${PDI}`)).toBe(`ئايگۈل\nМен, ${FSI}ئايگۈل${PDI}.\n${FSI}a${PDI} ${FSI}b${PDI}`);
    expect(withoutIsolates(`${FSI}a${PDI}`)).toBe('a');
  });

  it('writes isolates as <bdi> in HTML, pairing marks as the bidi algorithm does', () => {
    expect(isolatesAsBdi('no marks &amp; all')).toBe('no marks &amp; all');
    expect(isolatesAsBdi(`Мен, ${FSI}ئايگۈل${PDI} үшін`)).toBe('Мен, <bdi>ئايگۈل</bdi> үшін');
    // A note's own isolates: a PDI closes the innermost one open, whichever kind.
    expect(isolatesAsBdi(`${FSI}${RLI}שלום${PDI} עולם${PDI} — деп`)).toBe('<bdi><bdi dir="rtl">שלום</bdi> עולם</bdi> — деп');
    expect(isolatesAsBdi(`${FSI}שלום ${LRI}abc${PDI} עולם${PDI} x`)).toBe('<bdi>שלום <bdi dir="ltr">abc</bdi> עולם</bdi> x');
    // A mark without its pair stays a mark.
    expect(isolatesAsBdi(`${FSI}a ${PDI}${PDI} ${FSI}b`)).toBe(`<bdi>a </bdi>${PDI} ${FSI}b`);
  });
});
