// Checking a letter template an organizer wrote: its length, its syntax, the variables and blocks
// it may use, and the gaps it leaves where an optional field is empty. Rendering is letter-template.ts.
import { NOT_PROSE, NOT_TEXT, proseText, trimBlank } from '../cases/types.ts';
import { TemplateError } from '../errors.ts';
import { LETTER_VARIABLES, letters } from './letter-variables.ts';

const ALLOWED = new Set<string>(LETTER_VARIABLES);
const BLOCK_HELPERS = new Set(['if', 'unless']);

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

function fail(field: string, message: string, line?: number): never {
  throw new TemplateError({ [field]: line ? `Line ${line}: ${message}` : message }, `The letter ${field} does not compile.`);
}

/** How often a template writes each supporter field, and the first that it writes more than MAX_WRITES times, where. */
interface Writes {
  times: Map<string, number>;
  over?: { name: string; line?: number };
}

function checkNode(field: string, node: hbs.AST.Node, writes: Writes): void {
  const line = node.loc?.start.line;
  switch (node.type) {
    case 'Program':
      for (const s of (node as hbs.AST.Program).body) checkNode(field, s, writes);
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
      const name = (m.path as hbs.AST.PathExpression).original;
      if (name.startsWith('supporter.')) {
        const n = (writes.times.get(name) ?? 0) + 1;
        writes.times.set(name, n);
        if (n > MAX_WRITES) writes.over ??= { name, line };
      }
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
      // `as |name|` names nothing an if block gives: a variable under that name inside the block
      // failed as every letter was rendered (the page's preview, which writes marks, did not).
      if (b.program?.blockParams?.length || b.inverse?.blockParams?.length) {
        fail(field, `{{${open}${helper}}} takes no "as |…|": write {{${open}${helper} ${(b.params[0] as hbs.AST.PathExpression).original}}}`, line);
      }
      if (b.program) checkNode(field, b.program, writes);
      if (b.inverse) checkNode(field, b.inverse, writes);
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
    // A string literal as typed, in its quotes: `lookup target "email"`, not `lookup target email`.
    if (e.type === 'StringLiteral') return JSON.stringify(original);
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
  const writes: Writes = { times: new Map() };
  checkNode(field, ast, writes);
  const { over } = writes;
  if (over) fail(field, `{{${over.name}}} is written ${writes.times.get(over.name)} times: a letter may write each supporter field at most ${MAX_WRITES} times`, over.line);
}

/**
 * How many times a letter may write one supporter field. Anyone may fill a note with 2,000
 * characters: a template writing it 740 times (within the body's 20,000) made a 27 MB letter,
 * which took a worker past its heap, and again on every restart.
 */
export const MAX_WRITES = 5;

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
