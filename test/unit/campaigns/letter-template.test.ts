import { describe, expect, it } from 'vitest';
import { discloseTo, gapsLeft, hiddenFor, LETTER_VARIABLES, renderLetter, RENDERED_SUBJECT_MAX, SIGNER_PLACE, validateLetterTemplate, type LetterContext } from '../../../src/campaigns/letter-template.ts';
import { TemplateError } from '../../../src/errors.ts';

const context: LetterContext = {
  supporter: { fullName: 'Dana Signer', city: 'Lyonville', country: 'Freedonia', personalNote: 'Free her.' },
  target: { name: 'Judge One', title: 'District judge', salutation: 'Your Honour' },
  case: { personName: 'Aigerim', location: 'Almaty' },
  campaign: { title: 'Free Aigerim' },
  date: '1 May 2026',
};

/** The field messages of the TemplateError `source` raises. */
function errorsOf(source: string, field: 'subject' | 'body' = 'body'): Record<string, string> {
  try {
    validateLetterTemplate(field, source);
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    return (err as TemplateError).fields;
  }
  throw new Error('the template compiled');
}

describe('validating a letter template', () => {
  it('accepts every documented variable, with if, unless and else', () => {
    const source = LETTER_VARIABLES.map((v) => `{{${v}}}`).join('\n') +
      '\n{{#if supporter.city}}from {{supporter.city}}{{else if supporter.country}}{{supporter.country}}{{else}}-{{/if}}' +
      '\n{{#unless target.salutation}}Dear {{target.name}}{{/unless}}{{!-- a comment --}}{{{supporter.fullName}}}';
    expect(() => validateLetterTemplate('body', source)).not.toThrow();
  });

  it('names the line of a syntax error, in words', () => {
    expect(errorsOf('Dear {{target.name}},\n\n{{#if supporter.city}}\nfrom {{supporter.city}}')).toEqual({
      body: 'Line 3: syntax error: the {{#if}} block opened here is never closed with {{/if}}',
    });
    expect(errorsOf('one\ntwo {{target.name')).toEqual({ body: 'Line 2: syntax error: a tag is not closed with }}' });
    // A tag opened at the very end, with no block open: said as such, not as a block left open.
    for (const end of ['{{', '{{{', '{{#']) {
      expect(errorsOf(`Dear {{target.name}},\nThanks ${end}`), end).toEqual({ body: 'Line 2: syntax error: the template ends inside a tag: close it with }}' });
    }
    expect(errorsOf('one\n\n{{else}}').body).toMatch(/^Line 3: syntax error: \{\{else\}\} outside/);
    expect(errorsOf('{{#if supporter.city}}\nx\n{{/unless}}')).toEqual({ body: 'Line 3: syntax error: {{/unless}} does not close the {{#if}} block opened on line 1' });
  });

  it('names the line of the tag left unclosed or closed wrongly, not the line where Handlebars gave up', () => {
    const letter = '{{target.salutation}},\n\nI write about {{case.personName}}.\nShe is held in {{case.location.\nPlease act.\n\nMore.\nAnd more.\n\nYours,\n{{supporter.fullName}}';
    expect(errorsOf(letter)).toEqual({ body: 'Line 4: syntax error: a tag is not closed with }}' });
    expect(errorsOf('Dear,\n\nx\nfrom {{supporter.city\nYours\n')).toEqual({ body: 'Line 4: syntax error: the template ends inside a tag: close it with }}' });
    // An escaped mustache is text, not a tag left open.
    expect(errorsOf('A\n\\{{ literal\n{{date}\n').body).toMatch(/^Line 3: /);
    // A comment's braces are not tags.
    expect(errorsOf('{{!-- {{ --}}\n{{!-- x --}}\nHi {{target.name\nBye\n{{date}}').body).toMatch(/^Line 3: /);
    expect(errorsOf('Dear\n\n{{#if supporter.city}}\nA\n' + 'B\n'.repeat(20) + '{{/iff}}\n')).toEqual({
      body: 'Line 25: syntax error: {{/iff}} does not close the {{#if}} block opened on line 3',
    });
    expect(errorsOf('a\n{{#if supporter.city}}\n{{#unless supporter.country}}\nx\n{{/if}}\n{{/unless}}')).toEqual({
      body: 'Line 5: syntax error: {{/if}} does not close the {{#unless}} block opened on line 3',
    });
  });

  it('finds the optional supporter fields written outside an {{#if}} on them, with other words on their line', () => {
    expect(gapsLeft('Dear,\nI live in {{supporter.city}}, {{supporter.country}}.\n{{supporter.personalNote}}\n{{supporter.fullName}}')).toEqual([
      { variable: 'supporter.city', line: 2 }, { variable: 'supporter.country', line: 2 },
    ]);
    // Inside an #if on another field, still a gap; inside its own, or #unless's else, not.
    expect(gapsLeft('{{#if supporter.city}}I live in {{supporter.city}}, {{supporter.country}}.{{/if}}')).toEqual([{ variable: 'supporter.country', line: 1 }]);
    expect(gapsLeft('{{#if supporter.city}}in {{supporter.city}}{{#if supporter.country}}, {{supporter.country}}{{/if}}.{{/if}}')).toEqual([]);
    expect(gapsLeft('{{#unless supporter.city}}somewhere{{else}}in {{supporter.city}}{{/unless}}')).toEqual([]);
    // Alone on its line, or with separators and other tags only, the line is dropped when it is empty.
    expect(gapsLeft('Note:\n  {{supporter.personalNote}}  \nP.S. {{supporter.personalNote}}')).toEqual([{ variable: 'supporter.personalNote', line: 3 }]);
    for (const alone of ['{{{supporter.city}}}\nBye', '{{supporter.city}} {{! where }}', '({{supporter.city}})', '{{#if supporter.country}}{{supporter.city}}{{/if}}', '{{supporter.city}} {{supporter.country}}']) {
      expect(gapsLeft(alone), alone).toEqual([]);
    }
    // An #if that holds the field alone keeps the words outside it: no guard.
    expect(gapsLeft('I live in {{#if supporter.city}}{{supporter.city}}{{/if}}.')).toEqual([{ variable: 'supporter.city', line: 1 }]);
    expect(gapsLeft('Thanks {{')).toEqual([]);
  });

  it('refuses a template too long or nested too deeply at once, before parsing it (which took minutes)', () => {
    const nested = (n: number) => '{{#if date}}'.repeat(n) + 'x' + '{{/if}}'.repeat(n);
    const started = performance.now();
    expect(errorsOf(nested(50_000))).toEqual({ body: 'must be at most 20000 characters' });
    expect(errorsOf(`Dear {{target.name}},\n${nested(31)}`)).toEqual({ body: 'Line 2: blocks nested more than 30 deep' });
    expect(errorsOf('{{^if date}}'.repeat(40))).toEqual({ body: 'Line 1: blocks nested more than 30 deep' });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(errorsOf('x'.repeat(301), 'subject')).toEqual({ subject: 'must be at most 300 characters' });
    // Line breaks as a browser sends them count once, as the field's own limit counts them.
    expect(() => validateLetterTemplate('body', 'line\r\n'.repeat(3_999))).not.toThrow();
    expect(() => validateLetterTemplate('body', nested(30) + '{{#if date}}a{{^}}b{{/if}}{{#unless date}}c{{else}}d{{/unless}}'.repeat(100))).not.toThrow();
    // Tags in comments, or escaped, open and close nothing.
    expect(() => validateLetterTemplate('body', `{{!-- ${'{{#if date}}'.repeat(40)} --}}{{! {{#if x}} }}x`)).not.toThrow();
    expect(errorsOf(`${'\\{{/if}}'.repeat(40)}${nested(31)}`)).toEqual({ body: 'Line 1: blocks nested more than 30 deep' });
    // A backslash escaped before a tag leaves the tag a tag; a chain of {{else if}} nests as deep.
    expect(errorsOf('\\\\{{#if date}}'.repeat(31) + 'x' + '{{/if}}'.repeat(31))).toEqual({ body: 'Line 1: blocks nested more than 30 deep' });
    expect(errorsOf(`{{#if date}}a${'{{else if date}}b'.repeat(30)}{{/if}}`)).toEqual({ body: 'Line 1: blocks nested more than 30 deep' });
    expect(() => validateLetterTemplate('body', `{{#if date}}a${'{{else if date}}b'.repeat(29)}{{else}}c{{/if}}`.repeat(3))).not.toThrow();
    // Measured as the subject's field measures it: blank characters at the ends do not count.
    expect(errorsOf(`{{#each x}}{{/each}}${'\u200b'.repeat(300)}`, 'subject').subject).toMatch(/\{\{#each\}\} is not available/);
  });

  it('says a NUL or another control character is not text, not a syntax error, and where it is', () => {
    expect(errorsOf('Dear {{target.name}},\nfree\u0000 her')).toEqual({ body: 'Line 2: contains characters that are not text' });
    expect(errorsOf('About \u001b[31m{{case.personName}}', 'subject')).toEqual({ subject: 'Line 1: contains characters that are not text' });
    expect(errorsOf('half \ud800 a character')).toEqual({ body: 'Line 1: contains characters that are not text' });
    expect(() => validateLetterTemplate('body', 'Tabs\tand\r\nline breaks are text')).not.toThrow();
  });

  it('names the block left open, on the line it opens, when several are', () => {
    const source = 'Dear {{target.name}},\n{{#if supporter.city}}from {{supporter.city}}{{/if}}\n{{#unless supporter.country}}\n{{!-- {{/unless}} --}}\n{{#if supporter.personalNote}}{{supporter.personalNote}}{{/if}}\n';
    expect(errorsOf(source).body).toBe('Line 3: syntax error: the {{#unless}} block opened here is never closed with {{/unless}}');
  });

  it('tells an organizer what is wrong with a tag in words they used', () => {
    expect(errorsOf('{{uppercase case.personName}}').body).toMatch(/^Line 1: "\{\{uppercase case.personName\}\}" is not a variable: a tag holds one variable's name, with no spaces/);
    expect(errorsOf('Signed,\n{{supporter.full name}}').body).toMatch(/^Line 2: "\{\{supporter.full name\}\}" is not a variable/);
    expect(errorsOf('{{date "DD.MM.YYYY"}}').body).toMatch(/"\{\{date "DD.MM.YYYY"\}\}" is not a variable/);
    expect(errorsOf('{{#if}}x{{/if}}').body).toBe('Line 1: {{#if}} needs the variable it tests, as in {{#if supporter.city}}');
    expect(errorsOf('{{#unless supporter.city supporter.country}}x{{/unless}}').body).toMatch(/^Line 1: \{\{#unless\}\} tests one variable, as in \{\{#unless supporter.city\}\}; to test two, put one block inside the other$/);
  });

  it('takes an inverted block ({{^if}}, {{^unless}}) and renders it', () => {
    const subject = 'Letter{{^if supporter.city}} (no city){{/if}}';
    const body = '{{^if supporter.city}}No city given.{{/if}}\n{{^unless supporter.country}}Has a country.{{/unless}}{{^unless supporter.personalNote}}A note.{{/unless}}';
    expect(() => validateLetterTemplate('subject', subject)).not.toThrow();
    expect(() => validateLetterTemplate('body', body)).not.toThrow();
    const letter = renderLetter(subject, body, { ...context, supporter: { ...context.supporter, city: '', country: '' } });
    // {{^unless x}} is {{#if x}}: no country, so not its words; a note, so these.
    expect(letter).toEqual({ subject: 'Letter (no city)', text: 'No city given.\nA note.\n' });
  });

  it('names the field it checked', () => {
    expect(Object.keys(errorsOf('About {{case.nme}}', 'subject'))).toEqual(['subject']);
  });

  it('refuses a whole variable in brackets, which Handlebars reads as one key and renders empty', () => {
    expect(errorsOf('Signed, {{[supporter.fullName]}}').body).toMatch(/^Line 1: write {{supporter\.fullName}} without square brackets/);
    expect(() => validateLetterTemplate('body', 'Signed, {{[supporter].fullName}} {{supporter.[fullName]}}')).not.toThrow();
  });

  it('refuses an unknown variable, naming it and the line', () => {
    expect(errorsOf('Dear {{target.name}},\n\nreply to {{supporter.email}}').body).toMatch(/^Line 3: unknown variable "supporter\.email"; use one of: supporter\.fullName/);
    expect(errorsOf('{{#if supporter.email}}x{{/if}}').body).toMatch(/^Line 1: unknown variable "supporter\.email"/);
  });

  it('refuses anything that reaches past the variables: prototype, parent, root, this', () => {
    for (const source of ['{{constructor}}', '{{supporter.constructor}}', '{{__proto__}}', '{{supporter.__proto__.polluted}}',
      '{{constructor.constructor}}', '{{supporter.fullName.length}}', '{{this}}', '{{@root.supporter.fullName}}', '{{../supporter.fullName}}']) {
      expect(errorsOf(source).body, source).toMatch(/^Line 1: unknown variable/);
    }
  });

  it('refuses helpers, other blocks, partials and decorators', () => {
    expect(errorsOf('{{lookup supporter "email"}}').body).toMatch(/^Line 1: "\{\{lookup supporter "email"\}\}" is not a variable/);
    expect(errorsOf('{{log supporter}}').body).toMatch(/"\{\{log supporter\}\}" is not a variable/);
    expect(errorsOf('{{#each case}}x{{/each}}').body).toBe('Line 1: {{#each}} is not available: only {{#if variable}} and {{#unless variable}} blocks are allowed');
    expect(errorsOf('{{#with supporter}}{{city}}{{/with}}').body).toMatch(/\{\{#with\}\} is not available/);
    expect(errorsOf('{{#if (lookup supporter "email")}}x{{/if}}').body).toMatch(/only variables/);
    expect(errorsOf('{{#if supporter.city includeZero=supporter.constructor}}x{{/if}}').body).toMatch(/\{\{#if\}\} tests one variable/);
    expect(errorsOf('x\n{{> footer}}').body).toBe('Line 2: partials and decorators are not available in letters');
    expect(errorsOf('{{#*inline "x"}}y{{/inline}}').body).toMatch(/partials and decorators/);
  });

  it('refuses a template that writes a supporter field more than five times, which anyone could fill to make a letter of megabytes', () => {
    const note = '{{supporter.personalNote}}\n';
    expect(() => validateLetterTemplate('body', `Dear {{target.name}},\n${note.repeat(5)}{{#if supporter.city}}{{supporter.city}}{{/if}}`)).not.toThrow();
    expect(errorsOf(`Dear {{target.name}},\n${note.repeat(700)}`).body).toBe('Line 7: {{supporter.personalNote}} is written 700 times: a letter may write each supporter field at most 5 times');
    expect(errorsOf(`{{#if supporter.city}}${note.repeat(3)}{{else}}${note.repeat(3)}{{/if}}`).body).toMatch(/personalNote\}\} is written 6 times/);
  });

  // Accepted, `as |supporter|` made {{supporter.city}} inside the block fail at every letter.
  it('refuses block parameters, which an if block never gives', () => {
    expect(errorsOf('a\n{{#if supporter.city as |supporter|}}I write from {{supporter.city}}.{{/if}}').body).toBe('Line 2: {{#if}} takes no "as |…|": write {{#if supporter.city}}');
    expect(errorsOf('{{#if supporter.fullName as |supporter|}}From {{supporter.fullName}}{{/if}}', 'subject').subject).toMatch(/takes no "as \|…\|"/);
    expect(errorsOf('{{#if target.title}}a{{else if supporter.city as |date|}}{{date}}{{/if}}').body).toMatch(/takes no "as \|…\|"/);
    expect(errorsOf('{{#unless date as |target|}}{{target.name}}{{/unless}}').body).toMatch(/\{\{#unless\}\} takes no/);
  });
});

describe('rendering a letter', () => {
  it('fills in the variables as plain text, markup included as typed', () => {
    const letter = renderLetter('About {{case.personName}}', '{{target.salutation}},\n\n<b>{{supporter.personalNote}}</b>\n{{supporter.fullName}}, {{date}}', {
      ...context,
      supporter: { ...context.supporter, personalNote: 'Tom & <Jerry>' },
    });
    expect(letter).toEqual({ subject: 'About Aigerim', text: 'Your Honour,\n\n<b>Tom & <Jerry></b>\nDana Signer, 1 May 2026\n' });
  });

  it('breaks lines where a note stored before has Unicode\'s line or paragraph separator, so both parts of the email break them', () => {
    const letter = renderLetter('s', '{{supporter.personalNote}}\n{{supporter.fullName}}', { ...context, supporter: { ...context.supporter, personalNote: 'One\u2028two\u2029three' } });
    expect(letter.text).toBe('One\ntwo\n\nthree\nDana Signer\n');
  });

  // A Uyghur signer's name beside a Uyghur detainee's name in a Kazakh sentence: without
  // isolates the bidi algorithm joins them into one right-to-left run, and the names swap places.
  it('isolates each value that is written right to left, so that it keeps its place in the sentence', () => {
    const FSI = '\u2068';
    const PDI = '\u2069';
    const signer = 'ئابدۇرېھىم ئەخمەتوۋ';
    const detainee = 'ئايگۈل Айгүл Сәрсенбайқызы';
    const letter = renderLetter('{{supporter.fullName}} – {{case.personName}}', 'Мен, {{supporter.fullName}}, {{case.personName}} үшін жазамын.\n{{supporter.city}}, {{date}}', {
      ...context,
      supporter: { ...context.supporter, fullName: signer, city: 'Алматы' },
      case: { ...context.case, personName: detainee },
    });
    expect(letter.text).toBe(`Мен, ${FSI}${signer}${PDI}, ${FSI}${detainee}${PDI} үшін жазамын.\nАлматы, 1 May 2026\n`);
    // A header holds no direction control.
    expect(letter.subject).toBe(`${signer} – ${detainee}`);
  });

  it('isolates every value of a letter written right to left, a note a line at a time, and leaves an all left-to-right letter as it was', () => {
    const uyghur = renderLetter('s', 'ھۆرمەتلىك {{target.name}}،\n{{supporter.personalNote}}\n{{supporter.fullName}} {{date}}', {
      ...context,
      supporter: { ...context.supporter, personalNote: 'Free her.\n\nNow.' },
    });
    // A value alone on its line has nothing beside it, and bare it takes its own direction.
    expect(uyghur.text).toBe('ھۆرمەتلىك \u2068Judge One\u2069،\nFree her.\n\nNow.\n\u2068Dana Signer\u2069 \u20681 May 2026\u2069\n');
    const alone = renderLetter('s', 'Free her.\n{{supporter.fullName}}\n{{supporter.personalNote}}', { ...context, supporter: { ...context.supporter, fullName: 'ئابدۇرېھىم', personalNote: 'ئۇنى قويۇپ بېرىڭ.\nPlease.' } });
    expect(alone.text).toBe('Free her.\nئابدۇرېھىم\nئۇنى قويۇپ بېرىڭ.\nPlease.\n');
    const latin = renderLetter('s', '{{target.salutation}},\n{{supporter.personalNote}}\n{{supporter.fullName}}, {{supporter.city}}', { ...context, supporter: { ...context.supporter, fullName: 'Әсел Нұрланқызы' } });
    expect(latin.text).toBe('Your Honour,\nFree her.\nӘсел Нұрланқызы, Lyonville\n');
  });

  it('keeps the subject on one line whatever the variables hold', () => {
    const letter = renderLetter('From {{supporter.personalNote}} to {{target.name}}', 'x', {
      ...context,
      supporter: { ...context.supporter, personalNote: 'a\r\nBcc: victim@evil.example\n\tX-Injected: yes' },
    });
    expect(letter.subject).toBe('From a Bcc: victim@evil.example X-Injected: yes to Judge One');
  });

  it('leaves no encoded word nor direction control a supporter typed in the subject', () => {
    const letter = renderLetter('Letter from {{supporter.fullName}}', 'x', {
      ...context,
      supporter: { ...context.supporter, fullName: '=?utf-8?b?TWluaXN0ZXIgPG1pbmlzdGVyQGdvdi5rej4=?= \u202Eevil' },
    });
    expect(letter.subject).toBe('Letter from = ?utf-8?b?TWluaXN0ZXIgPG1pbmlzdGVyQGdvdi5rej4= ?= evil');
  });

  it('collapses runs of blank lines that empty variables leave', () => {
    const letter = renderLetter('s', 'Dear,\n\n{{supporter.city}}\n\n\n\n{{supporter.fullName}}\n\n', { ...context, supporter: { ...context.supporter, city: '' } });
    expect(letter.text).toBe('Dear,\n\nDana Signer\n');
  });

  // Mail clients grey out what follows `-- ` and leave it out of a reply: here the closing and the name.
  it('keeps a note line of `-- ` from starting an email signature', () => {
    const letter = renderLetter('s', '{{supporter.personalNote}}\n\nYours sincerely,\n{{supporter.fullName}}', { ...context, supporter: { ...context.supporter, personalNote: 'Free her.\n-- \nI sign off here' } });
    expect(letter.text).toBe('Free her.\n--\nI sign off here\n\nYours sincerely,\nDana Signer\n');
    // In a letter holding right-to-left text too, where the note's lines are isolated.
    const uyghur = renderLetter('s', '{{supporter.personalNote}}\n\nYours sincerely,\n{{supporter.fullName}}', { ...context, supporter: { ...context.supporter, personalNote: 'ئىلھام توختىنى قويۇپ بېرىڭ\n-- \nAli' } });
    expect(uyghur.text).toBe('ئىلھام توختىنى قويۇپ بېرىڭ\n--\nAli\n\nYours sincerely,\nDana Signer\n');
  });

  it('reads nothing from the prototype, even from a template that was never validated', () => {
    const letter = renderLetter('[{{supporter.constructor.name}}]', '[{{constructor}}][{{supporter.__proto__}}][{{supporter.toString}}]', context);
    // The subject's empty brackets go, and a subject left with nothing is the campaign's title.
    expect(letter).toEqual({ subject: context.campaign.title, text: '[][][]\n' });
  });
});

describe('a subject with a field the target may not see', () => {
  it('loses the separators the hidden field leaves, inside the subject as at its ends', () => {
    const subject = (template: string) => renderLetter(template, 'x', context, hiddenFor('each', 'name')).subject;
    expect(subject('Appeal — {{supporter.fullName}}, {{supporter.city}} 🙏')).toBe('Appeal — Dana Signer 🙏');
    expect(subject('{{case.personName}} – {{supporter.city}} – {{campaign.title}}')).toBe('Aigerim – Free Aigerim');
    expect(subject('{{supporter.city}}: free her')).toBe('free her');
    expect(subject('Free her ({{supporter.city}}, {{supporter.country}})')).toBe('Free her');
    expect(subject('Free her – ({{supporter.city}})')).toBe('Free her');
    expect(errorsOf('{{^if}}x{{/if}}').body).toBe('Line 1: {{^if}} needs the variable it tests, as in {{^if supporter.city}}');
    const digest = (template: string) => renderLetter(template, 'x', context, hiddenFor('digest', 'full')).subject;
    expect(digest('Appeal — {{supporter.fullName}}, {{supporter.city}} 🙏')).toBe('Appeal 🙏');
    expect(digest('Free her – {{supporter.fullName}}')).toBe('Free her');
    expect(digest('Free her — [{{supporter.fullName}}]')).toBe('Free her');
  });

  it('loses the Arabic, ideographic and full-width separators a hidden field leaves as it loses a comma', () => {
    const nameOnly = { ...context, supporter: discloseTo('name', context.supporter) };
    const render = (subject: string, body = 'x') => renderLetter(subject, body, nameOnly, hiddenFor('each', 'name'));
    expect(render('Free her — {{supporter.fullName}}، {{supporter.city}}').subject).toBe('Free her — Dana Signer');
    expect(render('{{supporter.city}}، {{supporter.country}}：释放她').subject).toBe('释放她');
    expect(render('释放她（{{supporter.city}}）').subject).toBe('释放她');
    const lines = ['{{supporter.city}}, {{supporter.country}}', '{{supporter.city}}، {{supporter.country}}', '{{supporter.city}}؛ {{supporter.country}}', '{{supporter.city}}、{{supporter.country}}', '{{supporter.city}}，{{supporter.country}}', '（{{supporter.city}}）', '{{supporter.city}} — {{supporter.country}}'];
    expect(render('S', `{{supporter.fullName}}\n${lines.join('\n')}\nEND`).text).toBe('Dana Signer\nEND\n');
    // Shown, the fields keep their separators.
    expect(renderLetter('S', `${lines[1]}\n${lines[3]}`, context, hiddenFor('each', 'name_place')).text).toBe('Lyonville، Freedonia\nLyonville、Freedonia\n');
  });

  it('is cut at RENDERED_SUBJECT_MAX characters, with an ellipsis, when a field writes out a long note in it', () => {
    const note = `${'Қазақстан 👩🏽‍⚖️ '.repeat(200)}end`;
    const subject = renderLetter('{{supporter.personalNote}}', 'x', { ...context, supporter: { ...context.supporter, personalNote: note } }).subject;
    const graphemes = [...new Intl.Segmenter('und', { granularity: 'grapheme' }).segment(subject)];
    expect(graphemes.length).toBeLessThanOrEqual(RENDERED_SUBJECT_MAX);
    expect(subject.endsWith('…')).toBe(true);
    expect(note.startsWith(subject.slice(0, -1))).toBe(true);
    expect(renderLetter('{{supporter.personalNote}}', 'x', { ...context, supporter: { ...context.supporter, personalNote: 'Short.' } }).subject).toBe('Short.');
  });

  it("is the campaign's title when nothing of it is left: no letter goes with no subject", () => {
    expect(renderLetter('{{supporter.city}}', 'x', context, hiddenFor('each', 'name')).subject).toBe('Free Aigerim');
    expect(renderLetter('– {{supporter.personalNote}}', 'x', { ...context, supporter: { ...context.supporter, personalNote: '' } }).subject).toBe('Free Aigerim');
    expect(renderLetter('{{supporter.fullName}}', 'x', context, hiddenFor('digest', 'full')).subject).toBe('Free Aigerim');
    expect(renderLetter('{{supporter.city}}', 'x', context, hiddenFor('each', 'name_place')).subject).toBe('Lyonville');
  });
});

describe('what a target learns of the supporter', () => {
  it('hides city and country from a `name` target', () => {
    expect(discloseTo('name', context.supporter)).toEqual({ fullName: 'Dana Signer', city: '', country: '', personalNote: 'Free her.' });
  });

  it('shows them to `name_place` and `full` targets', () => {
    expect(discloseTo('name_place', context.supporter)).toEqual(context.supporter);
    expect(discloseTo('full', context.supporter)).toEqual(context.supporter);
  });

  it('drops a line a disclosure leaves with nothing but punctuation, and empty brackets in the subject', () => {
    const body = 'Dear judge,\n\nFree her.\n\n{{supporter.fullName}}\n{{supporter.city}}, {{supporter.country}}\n({{supporter.city}})\n{{date}}\n';
    const hidden = renderLetter('From {{supporter.fullName}} ({{supporter.city}})', body, { ...context, supporter: discloseTo('name', context.supporter) }, hiddenFor('each', 'name'));
    expect(hidden).toEqual({ subject: 'From Dana Signer', text: 'Dear judge,\n\nFree her.\n\nDana Signer\n1 May 2026\n' });
    // A line that says something besides stays, the hidden field empty in it; shown fields are untouched.
    expect(renderLetter('S', 'Written in {{supporter.city}} today.', { ...context, supporter: discloseTo('name', context.supporter) }, hiddenFor('each', 'name')).text).toBe('Written in  today.\n');
    expect(renderLetter('S', body, context, hiddenFor('each', 'name_place')).text).toContain('Dana Signer\nLyonville, Freedonia\n(Lyonville)\n');
    // The starter letters write the place line inside {{#if}}s: it goes too, leaving no empty line.
    const starter = `Yours,\n\n{{supporter.fullName}}\n${SIGNER_PLACE}\n{{date}}`;
    expect(renderLetter('S', starter, { ...context, supporter: discloseTo('name', context.supporter) }, hiddenFor('each', 'name')).text).toBe('Yours,\n\nDana Signer\n1 May 2026\n');
    expect(renderLetter('S', starter, context, hiddenFor('each', 'name_place')).text).toBe('Yours,\n\nDana Signer\nLyonville, Freedonia\n1 May 2026\n');
    // A separator line of the letter's own after such a block stays.
    expect(renderLetter('S', 'A\n{{#if supporter.city}}\nfrom {{supporter.city}}\n{{/if}}\n--\nB', { ...context, supporter: discloseTo('name', context.supporter) }, hiddenFor('each', 'name')).text).toBe('A\n--\nB\n');
  });

  it('drops the line of a field the supporter left empty as it drops a hidden one, so every official reads the same', () => {
    const starter = `Dear judge,\n\n{{supporter.personalNote}}\n\nYours,\n\n{{supporter.fullName}}\n${SIGNER_PLACE}\n{{date}}`;
    const nameOnly = { ...context, supporter: { ...context.supporter, city: '', country: '', personalNote: '' } };
    const expected = 'Dear judge,\n\nYours,\n\nDana Signer\n1 May 2026\n';
    for (const disclose of ['name', 'name_place', 'full'] as const) {
      expect(renderLetter('S', starter, { ...nameOnly, supporter: discloseTo(disclose, nameOnly.supporter) }, hiddenFor('each', disclose)).text).toBe(expected);
    }
    // Country alone: the comma goes with the city, the line stays.
    const countryOnly = { ...context, supporter: { ...context.supporter, city: '' } };
    expect(renderLetter('S', starter, countryOnly, hiddenFor('each', 'full')).text).toContain('Dana Signer\nFreedonia\n1 May 2026');
    expect(renderLetter('From {{supporter.fullName}} ({{supporter.city}})', 'B', nameOnly, hiddenFor('each', 'full')).subject).toBe('From Dana Signer');
    // A dash or comma a hidden field leaves at either end of the subject goes too; one of the subject's own stays.
    expect(renderLetter('Free her – {{supporter.fullName}}', 'B', context, hiddenFor('digest', 'full')).subject).toBe('Free her');
    expect(renderLetter('{{supporter.city}}: free her', 'B', nameOnly, hiddenFor('each', 'full')).subject).toBe('free her');
    expect(renderLetter('Free her –', 'B', context, hiddenFor('digest', 'full')).subject).toBe('Free her –');
  });

  it('never offers the email as a variable', () => {
    expect(LETTER_VARIABLES.some((v) => /email/i.test(v))).toBe(false);
  });
});

describe('the letters Appeal starts organizers with', () => {
  // The demo campaigns' sign-off and the console's starter letter: a country typed without a city
  // was dropped, and a city without a country left a dangling comma.
  it.each([
    ['demo', async () => (await import('../../../src/demo.ts')).SIGN_OFF],
    ['starter', async () => (await import('../../../src/web/routes/admin/campaigns.ts')).STARTER_BODY],
  ])('places a signer by what they gave (%s)', async (_name, load) => {
    const body = await load();
    const place = (city: string, country: string) => renderLetter('S', body, { ...context, supporter: { ...context.supporter, city, country } }).text;
    expect(place('Lyonville', 'Freedonia')).toContain('Dana Signer\nLyonville, Freedonia\n');
    expect(place('', 'Freedonia')).toContain('Dana Signer\nFreedonia\n');
    expect(place('Lyonville', '')).toContain('Dana Signer\nLyonville\n');
    expect(place('', '')).toMatch(/Dana Signer\n\n?1 May 2026/);
  });

  it('greets an official with no salutation by name (starter)', async () => {
    const { STARTER_BODY } = await import('../../../src/web/routes/admin/campaigns.ts');
    expect(renderLetter('S', STARTER_BODY, context).text).toMatch(/^Your Honour,\n/);
    expect(renderLetter('S', STARTER_BODY, { ...context, target: { ...context.target, salutation: '' } }).text).toMatch(/^Dear Judge One,\n/);
  });
});

describe('missingSalutation', () => {
  const target = (name: string, salutation: string, retired = false) => ({ name, title: '', salutation, retired_at: retired ? new Date() : null });
  const campaign = (body: string) => ({ letter_subject: 'About {{case.personName}}', letter_body: body });
  const SAMPLE_CONTEXT = { target: { name: 'Official', title: '', salutation: '' }, case: { personName: 'Person', location: 'Place' }, campaign: { title: 'Campaign' }, date: 'Date' };

  it('warns, quoting the line, when officials with no salutation would get a letter opening with a bare comma or "Dear ,"', async () => {
    const { missingSalutation } = await import('../../../src/campaigns/service.ts');
    const warning = missingSalutation(campaign('{{target.salutation}},\n\nFree her.'), [target('Court', 'Your Honour'), target('Deputy Ospanov', ''), target('Ministry', ' ')], SAMPLE_CONTEXT);
    expect(warning).toContain('Deputy Ospanov, Ministry have no salutation, so their letters open with “,”');
    expect(warning).toContain('{{#if target.salutation}}');
    expect(missingSalutation(campaign('Dear {{target.salutation}},\n\nFree her.'), [target('Deputy Ospanov', '')], SAMPLE_CONTEXT)).toContain('their letter opens with “Dear ,”');
    expect(missingSalutation(campaign('{{target.salutation}}:\n\nFree her.'), [target('Deputy Ospanov', '')], SAMPLE_CONTEXT)).toContain('with “:”');
    // A letter holding right-to-left text, whose values are isolated, an empty one not.
    expect(missingSalutation(campaign('{{target.salutation}},\n\nFree Aigul (ئايگۈل).'), [target('Deputy Ospanov', '')], SAMPLE_CONTEXT)).toContain('their letter opens with “,”');
  });

  it('says nothing when every official still written to has one, the letter has a fallback, or does not use it', async () => {
    const { missingSalutation } = await import('../../../src/campaigns/service.ts');
    const { STARTER_BODY } = await import('../../../src/web/routes/admin/campaigns.ts');
    const none = [target('Deputy Ospanov', '')];
    expect(missingSalutation(campaign('{{target.salutation}},\n\nFree her.'), [target('Court', 'Your Honour'), target('Former minister', '', true)], SAMPLE_CONTEXT)).toBeNull();
    expect(missingSalutation(campaign(STARTER_BODY), none, SAMPLE_CONTEXT)).toBeNull();
    expect(missingSalutation(campaign('{{#if target.salutation}}{{target.salutation}},{{/if}}\nFree her.'), none, SAMPLE_CONTEXT)).toBeNull();
    expect(missingSalutation(campaign('Free her.\n{{target.salutation}}'), none, SAMPLE_CONTEXT)).toBeNull();
    // A line starting with punctuation that is not the salutation's doing.
    expect(missingSalutation(campaign('Dear {{target.name}},\n\nFree him.\n...and so on.'), none, SAMPLE_CONTEXT)).toBeNull();
  });
});
