import { describe, expect, it } from 'vitest';
import { expandVariants, previewLetterHtml } from '../../../src/campaigns/preview.ts';
import { hiddenFor, renderLetter, SIGNER_PLACE } from '../../../src/campaigns/letter-template.ts';

const base = {
  target: { name: 'Judge One', title: 'District judge', salutation: 'Your Honour' },
  case: { personName: 'Aigerim', location: 'Almaty' },
  campaign: { title: 'Free Aigerim' },
  date: '1 May 2026',
};
const BODY = '{{target.salutation}},\n{{supporter.personalNote}}\n{{supporter.fullName}}, {{supporter.city}} {{supporter.country}}';

describe('the letter preview', () => {
  it('marks each supporter field with a span the page script fills, showing a placeholder until typed', () => {
    const { subject, body } = previewLetterHtml('From {{supporter.fullName}}', BODY, base);
    expect(subject).toBe('From <span class="fill empty" data-field="full_name" data-placeholder="[your name]">[your name]</span>');
    expect(body).toContain('Your Honour,');
    for (const [field, placeholder] of [['personal_note', '[your note]'], ['full_name', '[your name]'], ['city', '[your city]'], ['country', '[your country]']]) {
      // Each one-line field laid out on its own; the note, whose lines the letter isolates one by one, not as a whole.
      expect(body).toContain(`<span class="fill empty" data-field="${field}" data-placeholder="${placeholder}"${field === 'personal_note' ? '' : ' dir="auto"'}>${placeholder}</span>`);
    }
  });

  it('drops the brackets an empty value leaves in the subject, in the preview and the letter alike, however many fields are typed', () => {
    const subject = 'To {{target.name}} ({{target.title}}): {{supporter.fullName}}';
    const untitled = { ...base, target: { ...base.target, title: '' } };
    const full = { fullName: 'Dana Four', city: 'Lyon', country: 'France', personalNote: 'A note.' };
    const preview = previewLetterHtml(subject, BODY, untitled, full).subject.replace(/<[^>]+>/g, '');
    expect(renderLetter(subject, BODY, { ...untitled, supporter: full }).subject).toBe(preview);
    expect(renderLetter(subject, BODY, { ...untitled, supporter: { ...full, personalNote: '' } }).subject).toBe(preview);
    expect(preview).toBe('To Judge One : Dana Four');
  });

  it("shows the campaign's title as the subject where nothing of it is left for the target, as its letter has it", () => {
    expect(previewLetterHtml('{{supporter.city}}', BODY, base, {}, hiddenFor('each', 'name')).subject).toBe('Free Aigerim');
    expect(renderLetter('{{supporter.city}}', BODY, { ...base, supporter: { fullName: 'A', city: 'Lyon', country: '', personalNote: '' } }, hiddenFor('each', 'name')).subject).toBe('Free Aigerim');
  });

  it('leaves empty what the first target is not shown, as its letter does', () => {
    const { body } = previewLetterHtml('s', BODY, base, { city: 'Lyon' }, hiddenFor('each', 'name'));
    expect(body).toContain('data-field="full_name"');
    // Shown to this target, but left empty once something is typed: as the letter will have it.
    expect(body).not.toContain('data-field="personal_note"');
    expect(previewLetterHtml('s', BODY, base, { personalNote: 'Hello' }, hiddenFor('each', 'name')).body).toContain('data-field="personal_note"');
    expect(body).not.toContain('data-field="city"');
    expect(body).not.toContain('Lyon');
    expect(body).not.toContain('data-field="country"');
  });

  it('drops the line a hidden field leaves empty, as that target\'s letter does, and keeps a line with a field it is shown', () => {
    const starter = `Yours,\n\n{{supporter.fullName}}\n${SIGNER_PLACE}\n{{date}}`;
    const nameOnly = previewLetterHtml('s', starter, base, { fullName: 'Dana', city: 'Lyon' }, hiddenFor('each', 'name'));
    expect(nameOnly.body).toBe('Yours,\n\n<span class="fill" data-field="full_name" data-placeholder="[your name]" dir="auto">Dana</span>\n1 May 2026\n');
    expect(nameOnly.variants).toBeUndefined();
    // The line with the name and the hidden city stays, the city empty in it.
    expect(previewLetterHtml('s', '{{supporter.fullName}}, {{supporter.city}}', base, {}, hiddenFor('each', 'name')).body).toContain('data-field="full_name"');
  });

  it('drops the line an {{#if}} on a field left empty leaves, as the letter does, while the whole letter shows before anything is typed', async () => {
    const { renderLetter } = await import('../../../src/campaigns/letter-template.ts');
    const body = `Dear judge,\n{{#if supporter.city}}Writing from {{supporter.city}}.{{/if}}\n{{#if supporter.personalNote}}{{supporter.personalNote}}{{else}}I have nothing to add.{{/if}}\n\nYours,\n{{supporter.fullName}}\n${SIGNER_PLACE}\n{{date}}`;
    const strip = (html: string) => html.replace(/<[^>]+>/g, '');
    const nameOnly = previewLetterHtml('s', body, base, { fullName: 'Aru' });
    const letter = renderLetter('s', body, { ...base, supporter: { fullName: 'Aru', city: '', country: '', personalNote: '' } });
    expect(strip(nameOnly.body)).toBe(letter.text);
    expect(letter.text).toBe('Dear judge,\nI have nothing to add.\n\nYours,\nAru\n1 May 2026\n');
    // The version the page's script shows for the name alone is that one too.
    const variants = nameOnly.variants!;
    const nameBit = 1 << variants.fields.indexOf('full_name');
    expect(strip(expandVariants(variants)[variants.masks[nameBit]!]!.body).replace('[your name]', 'Aru')).toBe(letter.text);
    // A subject's fields are not isolated in any version, as the subject sent has none.
    expect(previewLetterHtml('From {{supporter.fullName}}', body, base).variants!.subjects.join('')).not.toContain('dir=');
    // Before anything is typed, every line shows, with its placeholders.
    expect(strip(previewLetterHtml('s', body, base).body)).toContain('Writing from [your city].\n[your note]\n\nYours,\n[your name]\n[your city], [your country]\n');
  });

  it('takes a value as the signature will hold it: invisible ends trimmed, one space at a time in the subject', () => {
    const body = '{{supporter.fullName}}\n{{#if supporter.city}}Writing from {{supporter.city}}.{{/if}}\nEnd';
    // A Hangul filler, a zero-width space: the form stores no city, so the letter has no such line.
    for (const city of ['\u3164', '\u200b ']) expect(previewLetterHtml('s', body, base, { fullName: 'Kim', city }).body).not.toContain('Writing from');
    expect(previewLetterHtml('s', body, base, { fullName: 'سارا\u200f' }).body).toContain('>سارا</span>');
    expect(previewLetterHtml('From {{supporter.fullName}}', body, base, { fullName: 'Ana  María' }).subject).toContain('>Ana María</span>');
    // Spaced as the letter's subject is: a single ideographic or no-break space stays, a line break is a space.
    const subject = 'From {{supporter.fullName}} in {{supporter.city}}: {{supporter.personalNote}}';
    for (const typed of [{ fullName: '山田\u3000太郎', city: 'Oslo\u00a0Nord', personalNote: 'One.\nTwo.\r\n\r\nThree.' }, { fullName: 'Ana \t María', city: 'A\u2028B', personalNote: 'x' }]) {
      const letter = renderLetter(subject, 'b', { ...base, supporter: { country: '', ...typed } });
      expect(previewLetterHtml(subject, 'b', base, typed).subject.replace(/<[^>]+>/g, '')).toBe(letter.subject);
    }
    // A note of nothing visible is no note, as the form stores it; one that shows keeps its invisible ends.
    const withNote = '{{#if supporter.personalNote}}{{supporter.personalNote}}{{else}}Please act now.{{/if}}';
    for (const personalNote of ['  \u200b\u2800', '\ufe0f']) expect(previewLetterHtml('s', withNote, base, { fullName: 'Kim', personalNote }).body).toContain('Please act now.');
    expect(previewLetterHtml('s', withNote, base, { fullName: 'Kim', personalNote: ' \u200bAct.' }).body).toContain('>\u200bAct.</span>');
    // A tab in a one-line field is a space, as the form stores it.
    expect(previewLetterHtml('s', body, base, { fullName: 'Ann\tLee' }).body).toContain('>Ann Lee</span>');
  });

  it('shows a note with no more than one blank line in a row, as the letter has it', () => {
    const { body } = previewLetterHtml('s', BODY, base, { personalNote: 'One.\r\n\r\n\r\n\r\nTwo.' });
    expect(body).toContain('>One.\n\nTwo.</span>');
  });

  it('leaves every supporter field empty for a digest, which lists its signers below the letter', () => {
    const { subject, body } = previewLetterHtml('From {{supporter.fullName}}', BODY, base, { fullName: 'Dana' }, hiddenFor('digest', 'full'));
    expect(subject).toBe('From');
    expect(body).not.toContain('data-field');
    expect(body).not.toContain('Dana');
  });

  it('shows typed values, escaped, in place of the placeholders', () => {
    const { body } = previewLetterHtml('s', BODY, base, { fullName: ' Dana ', personalNote: '<script>alert(1)</script>', city: '"><img src=x onerror=alert(1)>' });
    expect(body).toContain('<span class="fill" data-field="full_name" data-placeholder="[your name]" dir="auto">Dana</span>');
    expect(body).toContain('>&lt;script&gt;alert(1)&lt;/script&gt;</span>');
    expect(body).toContain('>&quot;&gt;&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;</span>');
    expect(body).not.toMatch(/<script|<img/);
  });

  it('escapes markup in the template and in the case', () => {
    const { subject, body } = previewLetterHtml('<b>{{case.personName}}</b>', '<i>{{case.location}}</i>', { ...base, case: { personName: '<u>A</u>', location: "O'Brien & co" } });
    expect(subject).toBe('&lt;b&gt;&lt;u&gt;A&lt;/u&gt;&lt;/b&gt;');
    expect(body).toBe('&lt;i&gt;O&#x27;Brien &amp; co&lt;/i&gt;\n');
  });

  it('treats marker characters typed into a template or a case as nothing, never as a field', () => {
    const { subject, body } = previewLetterHtml('A \uE000nope\uE001 B', 'For {{case.personName}}', {
      ...base,
      case: { personName: '\uE000fullName\uE001 X', location: '' },
    });
    expect(subject).toBe('A nope B');
    expect(body).toBe('For fullName X\n');
  });

  describe('with {{#if}} on a supporter field', () => {
    const PLACE = 'Yours,\n{{supporter.fullName}}\n{{#if supporter.city}}{{supporter.city}}, {{/if}}{{supporter.country}}';
    const text = (html: string) => html.replace(/<[^>]+>/g, '');

    it('shows the whole letter with placeholders before anything is typed', () => {
      expect(text(previewLetterHtml('s', PLACE, base).body)).toBe('Yours,\n[your name]\n[your city], [your country]\n');
    });

    it('decides as the letter will for what is typed: a country alone comes without the city', () => {
      const { body } = previewLetterHtml('s', PLACE, base, { fullName: 'Dana', country: 'Kazakhstan' });
      expect(text(body)).toBe('Yours,\nDana\nKazakhstan\n');
    });

    it('sends every version for the page to choose from as fields are filled in, once each', () => {
      const { variants } = previewLetterHtml('s', PLACE, base);
      // Before anything is typed; then with and without a city, with and without a country.
      expect(expandVariants(variants!)).toHaveLength(4);
      expect(variants!.masks).toHaveLength(16);
      expect(variants!.fields).toEqual(['full_name', 'city', 'country', 'personal_note']);
      const cityBit = 1 << 1;
      for (const [bits, index] of variants!.masks.entries()) {
        const withCity = bits === 0 || (bits & cityBit) !== 0;
        expect(text(expandVariants(variants!)[index]!.body).includes('[your city]')).toBe(withCity);
      }
    });

    it('shows, for every set of fields typed with the name, the words the letter will have, fields left empty included', () => {
      const typed = { fullName: 'Dana', city: 'Lyon', country: 'France', personalNote: 'Let her stay.' } as const;
      const keys = ['fullName', 'city', 'country', 'personalNote'] as const;
      const letter = 'Dear {{target.name}},\n{{supporter.personalNote}}\n\n{{supporter.fullName}}\n{{supporter.city}}, {{supporter.country}}\n({{supporter.city}})\nFrom {{supporter.city}} in {{supporter.country}}.';
      const { variants } = previewLetterHtml('S {{supporter.city}}', letter, base);
      for (let bits = 1; bits < 16; bits += 2) {
        const supporter = Object.fromEntries(keys.map((k, i) => [k, bits & (1 << i) ? typed[k] : ''])) as Record<(typeof keys)[number], string>;
        const version = expandVariants(variants!)[variants!.masks[bits]!]!;
        // The page's script puts each typed value in its span.
        const filled = (html: string) => text(html.replace(/<span class="fill[^"]*" data-field="(\w+)"[^>]*>[^<]*<\/span>/g, (_, field: string) => supporter[keys[variants!.fields.indexOf(field)]!]));
        const sent = renderLetter('S {{supporter.city}}', letter, { ...base, supporter });
        expect([filled(version.subject), filled(version.body)]).toEqual([sent.subject, sent.text]);
      }
    });

    it('shows the starter letters\' place line as it will read, a city typed alone with no country placeholder after it', () => {
      const place = `Yours,\n{{supporter.fullName}}\n${SIGNER_PLACE}`;
      expect(text(previewLetterHtml('s', place, base).body)).toBe('Yours,\n[your name]\n[your city], [your country]\n');
      expect(text(previewLetterHtml('s', place, base, { city: '上海' }).body)).toBe('Yours,\n[your name]\n上海\n');
      expect(text(previewLetterHtml('s', place, base, { country: 'Kazakhstan' }).body)).toBe('Yours,\n[your name]\nKazakhstan\n');
      expect(text(previewLetterHtml('s', place, base, { city: 'Almaty', country: 'Kazakhstan' }).body)).toBe('Yours,\n[your name]\nAlmaty, Kazakhstan\n');
    });

    it('sends a long letter\'s versions with each line once, however many fields it writes', () => {
      const paragraphs = Array.from({ length: 40 }, (_, i) => `Paragraph ${i} about the case, `.repeat(12)).join('\n\n');
      const letter = `${paragraphs}\n{{#if supporter.personalNote}}A word from me: {{supporter.personalNote}}\n{{/if}}${PLACE}\n{{supporter.personalNote}}`;
      const { variants } = previewLetterHtml('s', letter, base);
      expect(expandVariants(variants!).length).toBeGreaterThanOrEqual(8);
      // About one letter's weight, not one per version.
      expect(JSON.stringify(variants).length).toBeLessThan(letter.length * 1.5);
    });

    it('sends the versions of one long paragraph that writes fields at its start and its end, its sentences once', () => {
      const middle = Array.from({ length: 300 }, (_, i) => `Sentence ${i} of the case, told at length.`).join(' ');
      const letter = `Dear {{target.name}}, I am {{supporter.fullName}} of {{supporter.city}} ({{supporter.country}}). ${middle} {{#if supporter.personalNote}}In my own words: {{supporter.personalNote}}{{/if}} Yours, {{supporter.fullName}}, {{supporter.city}}.`;
      const { variants } = previewLetterHtml('s', letter, base);
      expect(expandVariants(variants!).length).toBeGreaterThanOrEqual(8);
      expect(JSON.stringify(variants).length).toBeLessThan(letter.length * 2);
    });

    it('sends no versions of a letter too long to send in all of them: the page shows the whole letter', () => {
      // Its one long run of words, with no sentence's end, is different in each version.
      const long = `${'many words about the case '.repeat(1600)}{{#if supporter.city}}from {{supporter.city}}{{/if}}{{#if supporter.personalNote}}, {{supporter.personalNote}}{{/if}}\n${PLACE}`;
      const preview = previewLetterHtml('s', long, base, { country: 'Kazakhstan' });
      expect(preview.variants).toBeUndefined();
      // What is typed still decides the version shown when the page is made.
      expect(text(preview.body)).not.toContain('[your city]');
    });

    it('sends no versions when nothing in the letter depends on what is typed but the name, nor for fields a target does not see', () => {
      expect(previewLetterHtml('s', '{{target.salutation}},\n{{supporter.fullName}}', base).variants).toBeUndefined();
      expect(previewLetterHtml('s', '{{#if case.location}}in {{case.location}}{{/if}}', base).variants).toBeUndefined();
      expect(previewLetterHtml('s', PLACE, base, {}, hiddenFor('each', 'name')).variants).toBeUndefined();
    });
  });
});
