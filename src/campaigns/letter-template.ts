import crypto from 'node:crypto';
import Handlebars from 'handlebars';
import { collapseBlankRuns, NOT_PROSE, NOT_TEXT, proseText, trimBlank } from '../cases/types.ts';
import { TemplateError } from '../errors.ts';
import { oneLine } from '../mail/address.ts';

/** The variables a letter may use (DESIGN.md); anything else is a compile error. */
export const LETTER_VARIABLES = [
  'supporter.fullName',
  'supporter.city',
  'supporter.country',
  'supporter.personalNote',
  'target.name',
  'target.title',
  'target.salutation',
  'case.personName',
  'case.location',
  'campaign.title',
  'date',
] as const;
const ALLOWED = new Set<string>(LETTER_VARIABLES);
const BLOCK_HELPERS = new Set(['if', 'unless']);

/** What a target may learn of a supporter, least first. */
export const DISCLOSE_LEVELS = ['name', 'name_place', 'full'] as const;
export type Disclose = (typeof DISCLOSE_LEVELS)[number];

export interface LetterContext {
  supporter: { fullName: string; city: string; country: string; personalNote: string };
  target: { name: string; title: string; salutation: string };
  case: { personName: string; location: string };
  campaign: { title: string };
  date: string;
}

export type SupporterField = keyof LetterContext['supporter'];

/** The longest each part of a letter may be (campaignInput's limits; CRLF counts as one character). */
export const LETTER_MAX_LENGTH = { subject: 300, body: 20_000 } as const;
/** How deeply {{#if}} and {{#unless}} blocks may nest: far beyond any letter, far below what overflows the renderer. */
const MAX_DEPTH = 30;

/**
 * What is wrong with a part of a letter longer than it may be, if it is: no template is parsed
 * then. Measured as campaignInput measures it (line, prose), so a part refused here is refused
 * there, and one whose template is not checked is never saved.
 */
export function tooLong(field: 'subject' | 'body', source: string): string | undefined {
  const max = LETTER_MAX_LENGTH[field];
  const length = (field === 'subject' ? trimBlank(source) : proseText(source)).length;
  return length > max ? `must be at most ${max} characters` : undefined;
}

/** The 1-based line of `text` that position `index` is on. */
const lineAt = (text: string, index: number) => text.slice(0, index).split('\n').length;

/**
 * The line where blocks first nest deeper than MAX_DEPTH, if they do, counted by their tags as
 * Handlebars' parser nests them: a block opens one level, each `{{else if …}}` of its chain one
 * more, and its closing tag ends them all. Tags in comments, and escaped ones (`\{{`, but not
 * `\\{{`, a backslash before a tag), open and close nothing.
 */
function tooDeep(source: string): number | undefined {
  const chains: number[] = [];
  let depth = 0;
  const tags = /\{\{~?!--[\s\S]*?--~?\}\}|\{\{~?!(?!--)[\s\S]*?\}\}|(?<!\\)\\\{\{|\{\{~?\s*(#|\^\s*[^\s}~]|else\s+[^\s}~]|\/)/g;
  for (const tag of source.matchAll(tags)) {
    const kind = tag[1];
    if (!kind) continue;
    if (kind === '/') {
      depth -= chains.pop() ?? 0;
      continue;
    }
    if (kind.startsWith('else')) {
      if (chains.length === 0) continue;
      chains[chains.length - 1]! += 1;
    } else chains.push(1);
    depth += 1;
    if (depth > MAX_DEPTH) return lineAt(source, tag.index);
  }
  return undefined;
}

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

// Letters get their own Handlebars with no partials and only if/unless: an organizer's
// template can read the listed variables and nothing else.
const letters = Handlebars.create();
for (const name of ['each', 'with', 'lookup', 'log']) letters.unregisterHelper(name);

function fail(field: string, message: string, line?: number): never {
  throw new TemplateError({ [field]: line ? `Line ${line}: ${message}` : message }, `The letter ${field} does not compile.`);
}

function checkNode(field: string, node: hbs.AST.Node): void {
  const line = node.loc?.start.line;
  switch (node.type) {
    case 'Program':
      for (const s of (node as hbs.AST.Program).body) checkNode(field, s);
      return;
    case 'ContentStatement':
    case 'CommentStatement':
      return;
    case 'MustacheStatement': {
      const m = node as hbs.AST.MustacheStatement;
      if (m.params.length || m.hash) {
        fail(field, `"{{${tagText(m)}}}" is not a variable: a tag holds one variable's name, with no spaces and nothing else; use one of: ${LETTER_VARIABLES.join(', ')}`, line);
      }
      checkPath(field, m.path, line);
      return;
    }
    case 'BlockStatement': {
      const b = node as hbs.AST.BlockStatement;
      const helper = (b.path as hbs.AST.PathExpression).original;
      // {{^if x}}…{{/if}} has only an inverse: its program is absent.
      const open = b.program ? '#' : '^';
      if (!BLOCK_HELPERS.has(helper)) fail(field, `{{${open}${helper}}} is not available: only {{#if variable}} and {{#unless variable}} blocks are allowed`, line);
      if (b.params.length === 0) fail(field, `{{${open}${helper}}} needs the variable it tests, as in {{${open}${helper} supporter.city}}`, line);
      if (b.params.length > 1 || b.hash) {
        fail(field, `{{${open}${helper}}} tests one variable, as in {{${open}${helper} supporter.city}}; to test two, put one block inside the other`, line);
      }
      checkPath(field, b.params[0]!, line);
      if (b.program) checkNode(field, b.program);
      if (b.inverse) checkNode(field, b.inverse);
      return;
    }
    default:
      fail(field, 'partials and decorators are not available in letters', line);
  }
}

/** A mustache as an organizer typed it, near enough to recognise: `uppercase case.personName`. */
function tagText(m: hbs.AST.MustacheStatement): string {
  const words = [m.path, ...m.params].map((e) => {
    const { original } = e as { original?: unknown };
    return typeof original === 'string' || typeof original === 'number' || typeof original === 'boolean' ? String(original) : '…';
  });
  if (m.hash) words.push(...m.hash.pairs.map((p) => `${p.key}=…`));
  return words.join(' ');
}

function checkPath(field: string, expr: hbs.AST.Expression, line?: number): void {
  if (expr.type !== 'PathExpression') fail(field, 'only variables can be used here', line);
  const { original: name, parts } = expr as hbs.AST.PathExpression;
  // Brackets are stripped from `original`: {{[supporter.fullName]}} reads as one key with a dot in
  // it, which renders empty, so each part must be a segment of an allowed name.
  if (!ALLOWED.has(name) || parts.join('.') !== name || parts.some((p) => p.includes('.'))) {
    if (ALLOWED.has(name)) fail(field, `write {{${name}}} without square brackets: in brackets it names no variable`, line);
    fail(field, `unknown variable "${name}"; use one of: ${LETTER_VARIABLES.join(', ')}`, line);
  }
}

/**
 * Handlebars' parser names grammar tokens ("Expecting 'ID', got 'EOF'"); an organizer needs to
 * hear which tag is wrong instead.
 */
function describeParseError(message: string): string {
  const got = /got '(\w+)'\s*$/.exec(message)?.[1];
  // Reached only when no block is left open (validateLetterTemplate names one that is): the
  // template ends inside a tag, `Thanks {{` or `{{#`.
  if (got === 'EOF') return 'the template ends inside a tag: close it with }}';
  if (got === 'INVALID') return 'a tag is not closed with }}';
  if (got === 'INVERSE' || got === 'OPEN_INVERSE_CHAIN') return '{{else}} outside an {{#if}} or {{#unless}} block';
  if (got === 'CLOSE') return 'a tag ends too early';
  if (got) return `unexpected ${got.toLowerCase().replace(/_/g, ' ')}`;
  // Lexer errors and mismatched blocks ("if doesn't match unless - 2:5") say it in words already.
  return message.split('\n')[0]!.replace(/^(Parse|Lexical) error on line \d+[.:]?\s*/, '').replace(/\s+-\s+\d+:\d+$/, '');
}

/** Comments may hold tags: blanked out, keeping their line breaks. */
const blankComments = (source: string) => source.replace(/\{\{!--[\s\S]*?--\}\}|\{\{![\s\S]*?\}\}/g, (c) => c.replace(/[^\n]/g, ' '));
/** A block's opening (`{{#if`, `{{^if`) or closing (`{{/if`) tag, with its helper. */
const BLOCK_TAG = /\{\{~?\s*([#^/])\s*([\w.-]+)/g;

/**
 * The template's blocks, opened and closed in order: the innermost one it leaves open, and the
 * first closing tag that names another block than the one open (`{{#if …}}` … `{{/iff}}`), with
 * both lines. Handlebars reports the end of the template for the first, which in a letter with
 * three {{#if}} blocks says nothing of which one, and the opening tag's line only for the second.
 */
function blocksOf(source: string) {
  const text = blankComments(source);
  const open: { helper: string; line: number }[] = [];
  let mismatched: { opened: string; openLine: number; closed: string; line: number } | undefined;
  for (const tag of text.matchAll(BLOCK_TAG)) {
    const [, kind, helper] = tag;
    const line = lineAt(text, tag.index);
    if (kind !== '/') open.push({ helper: helper!, line });
    else {
      const top = open.pop();
      if (top && top.helper !== helper) mismatched ??= { opened: top.helper, openLine: top.line, closed: helper!, line };
    }
  }
  return { unclosed: open.at(-1), mismatched };
}

/**
 * The line of the first tag a template opens and never closes (`{{case.location.` with no `}}`
 * before the next `{{`): Handlebars reports the line where it gave up, often lines further down.
 */
function unclosedTagLine(source: string): number | undefined {
  const text = blankComments(source);
  // `\{{` is text, not a tag.
  for (const tag of text.matchAll(/(?<!\\)\{\{/g)) {
    const from = tag.index + 2;
    const close = text.indexOf('}}', from);
    const next = text.indexOf('{{', from);
    if (close < 0 || (next >= 0 && next < close)) return lineAt(text, tag.index);
  }
  return undefined;
}

/**
 * Checks a letter subject or body: Handlebars syntax, the allowed variables, if/unless only.
 * @throws TemplateError naming the field and the line.
 */
export function validateLetterTemplate(field: 'subject' | 'body', source: string): void {
  // Before parsing: Handlebars' parser takes time growing with the cube of how deeply blocks
  // nest, and the whole process waits for it (a megabyte of nested {{#if}} took hours).
  const long = tooLong(field, source);
  if (long) fail(field, long);
  const deep = tooDeep(source);
  if (deep) fail(field, `blocks nested more than ${MAX_DEPTH} deep`, deep);
  // A NUL or another control character is no syntax error the organizer could see: say what it is.
  const bad = NOT_PROSE.exec(source);
  if (bad) fail(field, NOT_TEXT, lineAt(source, bad.index));
  let ast: hbs.AST.Program;
  try {
    ast = letters.parse(source);
  } catch (err) {
    const e = err as { message: string; lineNumber?: number };
    const atEnd = /got 'EOF'\s*$/.test(e.message);
    const blocks = blocksOf(source);
    const open = atEnd ? blocks.unclosed : undefined;
    if (open) fail(field, `syntax error: the {{#${open.helper}}} block opened here is never closed with {{/${open.helper}}}`, open.line);
    const wrong = /doesn't match/.test(e.message) ? blocks.mismatched : undefined;
    if (wrong) fail(field, `syntax error: {{/${wrong.closed}}} does not close the {{#${wrong.opened}}} block opened on line ${wrong.openLine}`, wrong.line);
    const line = e.lineNumber ?? Number(/line (\d+)/.exec(e.message)?.[1]);
    // A tag left open is what Handlebars stumbles on, wherever it gives up (an `{{` further down).
    const unclosed = unclosedTagLine(source);
    if (unclosed && (!line || unclosed <= line)) {
      fail(field, `syntax error: ${atEnd ? describeParseError(e.message) : 'a tag is not closed with }}'}`, unclosed);
    }
    fail(field, `syntax error: ${describeParseError(e.message)}`, line || undefined);
  }
  checkNode(field, ast);
}

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

/** The supporter fields a supporter may leave empty, or an official may not see. */
const OPTIONAL_FIELDS = ['supporter.city', 'supporter.country', 'supporter.personalNote'];

/**
 * The optional supporter fields a letter template writes outside an {{#if}} on them, with words
 * on the line, and the first such line: where the field is empty (left out by the supporter, or
 * hidden from the official) the words around it stay, with a gap ("I live in , ."). A line
 * with no letters or digits but its tags is not one: a line left empty or of separators only is
 * dropped. Nor is an {{#if}} that holds the field alone a guard: the words stay outside it. For
 * the console's hint; [] for a template that does not compile (its errors are said instead).
 */
export function gapsLeft(source: string): { variable: string; line: number }[] {
  let ast: hbs.AST.Program;
  try {
    ast = letters.parse(source);
  } catch {
    return [];
  }
  const lines = source.split('\n');
  const found = new Map<string, number>();
  const pathOf = (node: hbs.AST.Node) => ((node as hbs.AST.MustacheStatement).path as hbs.AST.PathExpression).original;
  const walk = (node: hbs.AST.Node | undefined, guarded: ReadonlySet<string>): void => {
    if (!node) return;
    if (node.type === 'Program') for (const s of (node as hbs.AST.Program).body) walk(s, guarded);
    else if (node.type === 'MustacheStatement') {
      const name = pathOf(node);
      if (!OPTIONAL_FIELDS.includes(name) || guarded.has(name) || found.has(name) || !node.loc) return;
      const line = node.loc.start.line;
      // Its words: the line without its tags (variables, blocks, comments).
      const words = (lines[line - 1] ?? '').replace(/\{\{[^}]*\}\}\}?/g, '');
      if (/[\p{L}\p{N}]/u.test(words)) found.set(name, line);
    } else if (node.type === 'BlockStatement') {
      const b = node as hbs.AST.BlockStatement;
      const helper = pathOf(b);
      const tested = (b.params[0] as hbs.AST.PathExpression | undefined)?.original;
      // {{#if supporter.city}}{{supporter.city}}{{/if}} keeps nothing out that the field would not.
      const bare = b.program?.body.every((s) => (s.type === 'ContentStatement' ? !(s as hbs.AST.ContentStatement).value.trim() : s.type === 'MustacheStatement' && pathOf(s) === tested));
      const filled = tested && !bare ? new Set([...guarded, tested]) : guarded;
      walk(b.program, helper === 'if' ? filled : guarded);
      walk(b.inverse, helper === 'unless' && tested ? new Set([...guarded, tested]) : guarded);
    }
  };
  walk(ast, new Set());
  return [...found].map(([variable, line]) => ({ variable, line }));
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
  const letter = hidden.size === 0
    ? finish(withoutEmptyBrackets(compile(subject)(context, RUNTIME)), compile(body)(context, RUNTIME))
    : renderDropping(subject, body, context, hidden, hidden);
  return titled(letter, context);
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
  return titled(renderDropping(subject, body, context, new Set(SUPPORTER_FIELDS), hidden, unfilled), context);
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
    .filter((line) => !(line.search(gone) >= 0 && /^[\s,;:·()[\]/]*$/u.test(line.replace(gone, ''))))
    .join('\n')
    .replace(gone, '');
  const withMarks = compile(subject, marked)(context, RUNTIME);
  let title = withoutEmptyBrackets(dropFromSubject(withMarks, ofDropped));
  // Brackets the field was in are gone now: "Free her – ({{supporter.city}})" ends in a dash.
  if (withMarks.search(ofDropped) >= 0) title = title.replace(/^[\s,;:–—-]+|[\s,;–—-]+$/gu, '');
  return finish(title, text);
}

/**
 * A subject without the brackets a value left empty, "To Ministry ()" of an official with no title,
 * whether or not a supporter field was left empty too (the letter's one way or the other).
 */
const withoutEmptyBrackets = (subject: string) => subject.replace(/\(\s*\)|\[\s*\]/g, '');

const SEPARATOR = '[\\s,;:·/–—-]';
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

/**
 * Names a letter's text: the sign page carries the one it showed, so a signature made while an
 * organizer saved a new letter is bound to the text its signer read (bindSeenLetter).
 */
export const letterFingerprint = (subject: string, body: string) =>
  crypto.createHash('sha256').update(subject).update('\u0000').update(body).digest('base64url').slice(0, 22);

/** SQL: letterFingerprint of the letter in row `row` (a campaign or a letter version). */
export const letterFingerprintSql = (row: string) =>
  `left(translate(encode(sha256(convert_to(${row}.letter_subject, 'UTF8') || '\\x00'::bytea || convert_to(${row}.letter_body, 'UTF8')), 'base64'), '+/', '-_'), 22)`;

/**
 * How long a sign page's letter is honoured after an organizer replaced it: time enough to read
 * the page and write a note, not for a saved page (or its hidden field, replayed) to go on
 * sending a text the organizer withdrew. An older one is refused (LetterChangedError).
 */
export const SEEN_LETTER_KEPT = '1 hour';

/** Text as a letter holds it: LF line ends, no more than one blank line in a row, trimmed. */
export const letterText = (text: string) =>
  text
    .replace(/\r\n?/g, '\n')
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

function finish(subject: string, text: string): { subject: string; text: string } {
  return {
    subject: subjectLine(subject),
    text: letterText(text) + '\n',
  };
}


