// Rendering a letter template: for each target, for a digest, and for the sign page's preview.
// Other modules import letters from here; its variables, checks and fingerprint are re-exported.
import { collapseBlankRuns, lineBreaks } from '../cases/types.ts';
import { oneLine } from '../mail/address.ts';
import { hasRightToLeft, isolate, unwrapLoneLines } from '../mail/bidi.ts';
import { letters, type Disclose, type LetterContext, type SupporterField } from './letter-variables.ts';

export { DISCLOSE_LEVELS, LETTER_VARIABLES, type Disclose, type LetterContext, type SupporterField } from './letter-variables.ts';
export { gapsLeft, LETTER_MAX_LENGTH, tooLong, validateLetterTemplate } from './letter-checks.ts';
export { letterFingerprint, letterFingerprintSql, SEEN_LETTER_KEPT } from './letter-fingerprint.ts';

/**
 * Where renderMarked puts a supporter field: private-use characters, which cannot come from a
 * template author's intent (the preview drops any typed into a template or a case).
 */
export const fieldMark = (field: SupporterField) => `\uE000${field}\uE001`;

/**
 * The line that places a signer, for the letters Appeal starts with: city, country, either or
 * neither. The country has its own {{#if}} too, so that the page's preview, which shows a field
 * written unconditionally with its placeholder until it is typed, drops it once a city alone is.
 */
export const SIGNER_PLACE = '{{#if supporter.city}}{{supporter.city}}{{#if supporter.country}}, {{/if}}{{/if}}{{#if supporter.country}}{{supporter.country}}{{/if}}';

/** The line of the console's starter letter an organizer must replace; a letter still holding it is not launched. */
export const STARTER_PLACEHOLDER = '[Say what has happened and what you ask the official to do.]';

const compiled = new Map<string, HandlebarsTemplateDelegate>();
const NO_MARKS: ReadonlySet<SupporterField> = new Set();

/**
 * The template compiled once per source (and per set of marked fields, see markFields): a
 * letter is rendered for every message.
 */
function compile(source: string, marked = NO_MARKS, blockMarked = NO_MARKS, unfilled = NO_MARKS): HandlebarsTemplateDelegate {
  const key = marked.size === 0 ? source : `${[...marked].sort().join(',')}+${[...blockMarked].sort().join(',')}+${[...unfilled].sort().join(',')}\u0000${source}`;
  let template = compiled.get(key);
  if (!template) {
    // Parsed (whitespace control applied), then each output of a marked field swapped for its mark.
    const ast = letters.parse(source);
    if (marked.size > 0) markFields(ast, marked, blockMarked, unfilled);
    // Letters are plain text: no HTML escaping here. The HTML part escapes the finished text.
    template = letters.compile(ast, { noEscape: true, strict: false, knownHelpersOnly: true, knownHelpers: { if: true, unless: true } });
    if (compiled.size > 500) compiled.clear();
    compiled.set(key, template);
  }
  return template;
}

/**
 * Swaps each output of a field in `marked` for its mark. A mark also goes before each {{#if}} or
 * {{#unless}} on a field in `blockMarked`, so that a line such a block leaves empty is known to be
 * the field's (renderDropping); the block itself still decides as before. One on a field in
 * `unfilled` gets a blockMark: the preview drops the line it leaves empty, as the letter will,
 * while the field's own outputs stay marks that show its placeholder.
 */
function markFields(program: hbs.AST.Program, marked: ReadonlySet<SupporterField>, blockMarked: ReadonlySet<SupporterField>, unfilled: ReadonlySet<SupporterField>): void {
  const fieldIn = (path: unknown, set: ReadonlySet<SupporterField>) => {
    const name = (path as hbs.AST.PathExpression | undefined)?.original;
    const field = typeof name === 'string' && name.startsWith('supporter.') ? (name.slice('supporter.'.length) as SupporterField) : undefined;
    return field && set.has(field) ? field : undefined;
  };
  const mark = (text: string, loc: hbs.AST.SourceLocation) => {
    return { type: 'ContentStatement', value: text, original: text, loc } as unknown as hbs.AST.ContentStatement;
  };
  program.body = program.body.flatMap((node): hbs.AST.Statement[] => {
    if (node.type === 'BlockStatement') {
      const b = node as hbs.AST.BlockStatement;
      if (b.program) markFields(b.program, marked, blockMarked, unfilled);
      if (b.inverse) markFields(b.inverse, marked, blockMarked, unfilled);
      const field = fieldIn(b.params[0], blockMarked);
      if (field) return [mark(fieldMark(field), b.loc), node];
      const empty = fieldIn(b.params[0], unfilled);
      return empty ? [mark(blockMark(empty), b.loc), node] : [node];
    }
    if (node.type !== 'MustacheStatement') return [node];
    const field = fieldIn((node as hbs.AST.MustacheStatement).path, marked);
    return field ? [mark(fieldMark(field), node.loc)] : [node];
  });
}

/** What the target may learn of the supporter; the rest renders empty. */
export function discloseTo(disclose: Disclose, supporter: LetterContext['supporter']): LetterContext['supporter'] {
  if (disclose === 'name') return { ...supporter, city: '', country: '' };
  return supporter;
}

const SUPPORTER_FIELDS: readonly SupporterField[] = ['fullName', 'city', 'country', 'personalNote'];

/**
 * The supporter fields a target's letter leaves empty: what discloseTo hides from it, or, in a
 * digest, every one (its text names nobody; the signers are listed after it). For renderLetter
 * and the sign page's preview alike.
 */
export function hiddenFor(deliveryMode: string, disclose: Disclose): ReadonlySet<SupporterField> {
  if (deliveryMode === 'digest') return new Set(SUPPORTER_FIELDS);
  const shown = discloseTo(disclose, { fullName: 'x', city: 'x', country: 'x', personalNote: 'x' });
  return new Set(SUPPORTER_FIELDS.filter((k) => !shown[k]));
}

const RUNTIME = { allowProtoPropertiesByDefault: false, allowProtoMethodsByDefault: false } as const;

/**
 * Renders a letter. Fields in `hiddenFields` (what a target's `disclose` keeps from it, or every
 * supporter field in a digest) render empty, and a line they (or an {{#if}} on them) leave empty
 * or with nothing but separators ("Oslo, Norway" become ", ") goes: the official reads no empty
 * place line, no stray comma. So does a line of a field the supporter left empty (no city, no
 * note), so a letter reads the same whether a field was hidden or never given. A subject left
 * empty so is the campaign's title.
 */
export function renderLetter(subject: string, body: string, context: LetterContext, hiddenFields: ReadonlySet<SupporterField> = NO_MARKS): { subject: string; text: string } {
  // A field the supporter left empty renders as a hidden one does, and its line goes the same way.
  const left = SUPPORTER_FIELDS.filter((k) => !hiddenFields.has(k) && !context.supporter[k]);
  const hidden = left.length ? new Set([...hiddenFields, ...left]) : hiddenFields;
  const values = isolated(context, body);
  const letter = hidden.size === 0
    ? finish(withoutEmptyBrackets(compile(subject)(values, RUNTIME)), compile(body)(values, RUNTIME))
    : renderDropping(subject, body, values, hidden, hidden);
  return titled(letter, context);
}

/**
 * Whether each template body holds right-to-left text, asked once per body: a letter is rendered
 * for every message, and a search of a long letter in Cyrillic takes ~150 µs (one in Latin letters
 * only is answered at once: V8 knows such a string holds nothing past U+00FF).
 */
const rightToLeftBodies = new Map<string, boolean>();

/**
 * The values written into a letter, each isolated (bidi.ts) where right-to-left text is in play:
 * every value of a letter whose text holds some, else each value that holds some. A letter and
 * values all left to right are as they were, byte for byte. A subject keeps none (subjectLine
 * takes direction controls out of a header).
 */
function isolated(context: LetterContext, body: string): LetterContext {
  let all = rightToLeftBodies.get(body);
  if (all === undefined) {
    if (rightToLeftBodies.size > 500) rightToLeftBodies.clear();
    rightToLeftBodies.set(body, (all = hasRightToLeft(body)));
  }
  const groups = [context.supporter, context.target, context.case, context.campaign] as Record<string, string>[];
  // The common case: nothing right to left anywhere, nothing to do (and nothing to copy).
  if (!all && !hasRightToLeft(context.date) && !groups.some((values) => Object.values(values).some(hasRightToLeft))) return context;
  const one = (value: string) => (value && (all || hasRightToLeft(value)) ? isolate(value) : value);
  const each = <T extends Record<string, string>>(values: T) => Object.fromEntries(Object.entries(values).map(([k, v]) => [k, one(v)])) as T;
  return { supporter: each(context.supporter), target: each(context.target), case: each(context.case), campaign: each(context.campaign), date: one(context.date) };
}

/**
 * A subject made only of fields this target is not told, or the supporter left empty, is the
 * campaign's title: an official should not get a letter with no subject, and the sign page's
 * preview shows the one it gets.
 */
function titled(letter: { subject: string; text: string }, context: LetterContext) {
  if (!letter.subject) letter.subject = subjectLine(context.campaign.title);
  return letter;
}

/**
 * The letter as the sign page's preview shows it: where a field not in `hidden` is written, its
 * fieldMark stands, whatever its value, so the page can put in what is typed; {{#if}} and
 * {{#unless}} read the values in `context`, so they decide as they will in the letter. A line
 * that a field in `hidden` leaves empty goes, as in the letter that target gets, and so does one
 * that an {{#if}} on a field in `unfilled` (not typed yet) leaves empty, as it will in the letter
 * if the field stays empty.
 */
export function renderMarked(subject: string, body: string, context: LetterContext, hidden: ReadonlySet<SupporterField>, unfilled = NO_MARKS): { subject: string; text: string } {
  return titled(renderDropping(subject, body, isolated(context, body), new Set(SUPPORTER_FIELDS), hidden, unfilled), context);
}

/** Where renderMarked puts an {{#if}} on a field not typed yet; never in the text it returns. */
const blockMark = (field: SupporterField) => `\uE002${field}\uE001`;

/** The marks of `fields`, one pattern per set of them: a letter is rendered for every message. */
const markPatterns = new Map<string, RegExp>();
function marksOf(fields: ReadonlySet<SupporterField>, unfilled = NO_MARKS): RegExp {
  const key = [...fields].sort().join('|');
  const blocks = [...unfilled].sort().join('|');
  const id = `${key}+${blocks}`;
  let pattern = markPatterns.get(id);
  if (!pattern) markPatterns.set(id, (pattern = new RegExp(`\uE000(?:${key})\uE001${blocks ? `|\uE002(?:${blocks})\uE001` : ''}`, 'g')));
  return pattern;
}

/**
 * Renders with every field in `marked` written as its mark, then drops each line that a field in
 * `dropped` (or an {{#if}} on one) leaves with nothing but separators, and the marks of `dropped`.
 * A mark of another field on a line is something the line says, so the line stays.
 */
function renderDropping(subject: string, body: string, context: LetterContext, marked: ReadonlySet<SupporterField>, dropped: ReadonlySet<SupporterField>, unfilled = NO_MARKS) {
  const ofDropped = marksOf(dropped);
  const gone = unfilled.size ? marksOf(dropped, unfilled) : ofDropped;
  const text = compile(body, marked, dropped, unfilled)(context, RUNTIME)
    .split('\n')
    .filter((line) => !(line.search(gone) >= 0 && SEPARATORS_ONLY.test(line.replace(gone, ''))))
    .join('\n')
    .replace(gone, '');
  const withMarks = compile(subject, marked)(context, RUNTIME);
  let title = withoutEmptyBrackets(dropFromSubject(withMarks, ofDropped));
  // Brackets the field was in are gone now: "Free her – ({{supporter.city}})" ends in a dash.
  if (withMarks.search(ofDropped) >= 0) title = title.replace(SEPARATOR_ENDS, '');
  return finish(title, text);
}

/**
 * A subject without the brackets a value left empty, "To Ministry ()" of an official with no title,
 * whether or not a supporter field was left empty too (the letter's one way or the other).
 */
const withoutEmptyBrackets = (subject: string) => subject.replace(/\(\s*\)|\[\s*\]|（\s*）/g, '');

/**
 * What separates the fields of a line or a subject, in the scripts letters are written in: Latin
 * punctuation, the Arabic comma and semicolon (Uyghur), the ideographic and full-width ones
 * (Chinese), and dashes. A field left empty goes with them.
 */
const COMMAS = ',;\u060c\u061b\u3001\u30fb\uff0c\uff1b';
const COLONS = ':\uff1a';
const DASHES = '–—\\-';
const SEPARATOR = `[\\s${COMMAS}${COLONS}·/${DASHES}]`;
/**
 * A line with nothing but separators and brackets once the dropped fields are gone. A run of
 * dashes ("--", "———") is a rule the letter draws itself, there whatever a field held.
 */
const SEPARATORS_ONLY = new RegExp(`^(?:[\\s${COMMAS}${COLONS}·/()[\\]（）]|(?<![${DASHES}])[${DASHES}](?![${DASHES}]))*$`, 'u');
/**
 * Separators at a subject's ends, once a dropped field took the words between them away; a colon
 * ending it may be the subject's own ("Free her:"), not a field's.
 */
const SEPARATOR_ENDS = new RegExp(`^[\\s${COMMAS}${COLONS}${DASHES}]+|[\\s${COMMAS}${DASHES}]+$`, 'gu');
const LEADING_SEPARATORS = new RegExp(`^${SEPARATOR}*`, 'u');
const TRAILING_SEPARATORS = new RegExp(`${SEPARATOR}*$`, 'u');

/**
 * Takes the dropped fields' marks out of a subject with the separators they leave: "Free her –
 * {{supporter.fullName}}" with the name hidden would end in a dash (and a digest's subject read
 * "Free her – (3 supporters, …)"), and "… – {{supporter.fullName}}, {{supporter.city}} 🙏" with
 * the city hidden would keep its comma. A run of marks and separators goes altogether at either
 * end of the subject; inside it, one of the separators around it stays, a space if either is one.
 */
function dropFromSubject(withMarks: string, ofDropped: RegExp): string {
  const run = new RegExp(`${SEPARATOR}*(?:${ofDropped.source}${SEPARATOR}*)+`, 'gu');
  return withMarks.replace(run, (found: string, at: number) => {
    if (at === 0 || at + found.length === withMarks.length) return '';
    const lead = LEADING_SEPARATORS.exec(found)![0];
    const trail = TRAILING_SEPARATORS.exec(found)![0];
    if (/^\s+$/.test(lead) || /^\s+$/.test(trail)) return ' ';
    return lead || trail;
  });
}

/**
 * The first line of a digest letter's text that writes a supporter field into more words, as the
 * digest has it: a digest renders every supporter field empty (renderDigestLetter), with its
 * blocks deciding as for empty fields, so such a line reaches every official with a gap. A line
 * the fields fill alone is dropped there, and is none. The subject: see digestSubjectFields.
 */
export function digestFieldLine(body: string, context: Omit<LetterContext, 'supporter'>): string | null {
  const all = new Set(SUPPORTER_FIELDS);
  const empty = { ...context, supporter: { fullName: '', city: '', country: '', personalNote: '' } };
  const marks = marksOf(all);
  const lines = compile(body, all)(empty, RUNTIME).split('\n');
  const line = lines.find((l) => l.search(marks) >= 0 && /[\p{L}\p{N}]/u.test(l.replace(marks, '')));
  return line === undefined ? null : line.replace(marks, '').trim();
}

/**
 * A digest's subject as every official gets it (before its count of supporters), when the subject
 * uses a supporter field at all: in a digest every one is empty, and whether the words around it
 * still read (in any script, with any quotes or marks about it) is not for a rule to judge.
 */
export function digestSubjectFields(subject: string, context: Omit<LetterContext, 'supporter'>): string | null {
  if (!/\{\{[^}]*\bsupporter\s*\./.test(subject)) return null;
  const empty = { ...context, supporter: { fullName: '', city: '', country: '', personalNote: '' } };
  return renderLetter(subject, '', empty, new Set(SUPPORTER_FIELDS)).subject;
}

/** Text as a letter holds it: LF line ends (lineBreaks), no more than one blank line in a row, trimmed. */
export const letterText = (text: string) =>
  lineBreaks(text)
    // `-- ` alone on a line starts an email's signature: mail clients grey out or drop what follows
    // (the rest of a note, the closing, the name) and leave it out of a reply's quote.
    .replace(/^-- +$/gm, '--')
    .replace(/\n{3,}/g, '\n\n')
    .trim();

/**
 * Text as a subject holds it: a header must be one line, and hold no encoded word or direction
 * control, whatever a supporter typed (see oneLine); each run of two or more blanks, visible or
 * not, is one space (collapseBlankRuns).
 */
export const subjectLine = (text: string) => collapseBlankRuns(oneLine(text));

/**
 * The longest subject a letter goes with, in characters as a person counts them. A subject that
 * writes out a supporter's note could run to 20,000 (190 kB of header once encoded, past what
 * Postfix keeps of a message's headers): what passes this is cut, with an ellipsis.
 */
export const RENDERED_SUBJECT_MAX = 400;

function capped(subject: string): string {
  if (subject.length <= RENDERED_SUBJECT_MAX) return subject;
  const graphemes = [...new Intl.Segmenter('und', { granularity: 'grapheme' }).segment(subject)].map((g) => g.segment);
  return graphemes.length <= RENDERED_SUBJECT_MAX ? subject : `${graphemes.slice(0, RENDERED_SUBJECT_MAX - 1).join('').trimEnd()}…`;
}

function finish(subject: string, text: string): { subject: string; text: string } {
  return {
    subject: capped(subjectLine(subject)),
    // Unwrapped before letterText, whose rules read a line's words: a note's `-- ` line, isolated, is one.
    text: letterText(unwrapLoneLines(text)) + '\n',
  };
}
