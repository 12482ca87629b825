import fs from 'node:fs';
import path from 'node:path';
import { endsSentence, lineBreaks } from './cases/types.ts';
import { KIND_NAMES, type DeliveryKind } from './deliveries/types.ts';
import { unicodeAddress } from './mail/address.ts';
import { isolateRightToLeft, isolatesAsBdi } from './mail/bidi.ts';
import { ROOT } from './paths.ts';
import { maskToken } from './web/middleware/csrf.ts';
import { staticUrl } from './web/static-files.ts';
import Handlebars from 'handlebars';

export const TEMPLATES_DIR = path.join(ROOT, 'templates');

export interface Views {
  /** A page in templates/pages inside a layout (default `main`); `false` for none. */
  page(name: string, data: object, layout?: string | false): string;
  /** An email in templates/emails: `<name>.txt.hbs` and, if present, `<name>.html.hbs`, each in its email layout. */
  email(name: string, data: object): { text: string; html?: string };
}

function walk(dir: string, base = dir): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? walk(full, base) : [path.relative(base, full)];
  });
}

/**
 * What may be an http(s) link in plain text: up to the next space, quote or angle bracket, or the
 * next punctuation mark or symbol outside ASCII (see links). A link in Chinese is often followed by
 * the sentence with no space between (`…/123。法院…`), and one in Kazakh or Uyghur by `»` or `،`.
 * Letters of any script stay in it (`…/wiki/Қазақстан`), and so do the hyphens, en dashes, middle
 * dots and apostrophes that join words inside an address (`…/wiki/Israel–Hamas_war`,
 * `…/伊力哈木·土赫提`); an em dash, closed up in English prose (`…/report—it says`), ends it.
 */
const LINK_RUN = /\bhttps?:\/\/(?:[!#-&(-;=?-~]|[^\0-\x7f\s\p{P}\p{S}]|[\u2010\u2011\u2013\p{Pc}\u00b7\u2019\u2027\u30fb](?=[\p{L}\p{N}]))+/gu;

const count = (s: string, c: string) => s.split(c).length - 1;

/** A time as the console shows it: `2026-12-06 13:31 UTC`. */
export const formatUtc = (d: Date | string) => new Date(d).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';

/**
 * The http(s) links in plain text, with where each starts, without the punctuation a sentence
 * puts after it: a trailing `.,;:!?`, and a closing bracket the link did not open, so that
 * `(see https://court.example/x)` links `…/x` while `…/wiki/Camps_(China)` keeps its own.
 */
export function links(text: string): { url: string; index: number }[] {
  const found: { url: string; index: number }[] = [];
  for (const m of text.matchAll(LINK_RUN)) {
    const run = m[0];
    // Brackets counted once and as they are cut off the end: a run of them stays linear.
    const opened = { ')': count(run, '('), ']': count(run, '[') };
    const closed = { ')': count(run, ')'), ']': count(run, ']') };
    let end = run.length;
    for (;;) {
      const last = run[end - 1]!;
      if (last === ')' || last === ']') {
        if (opened[last] >= closed[last]) break;
        closed[last] -= 1;
      } else if (!'.,;:!?'.includes(last)) break;
      end -= 1;
    }
    const url = run.slice(0, end);
    if (!/^https?:\/\/$/.test(url)) found.push({ url, index: m.index });
  }
  return found;
}

/**
 * Plain text, escaped, with its http(s) links made clickable: for what organizers write (a case's
 * summary, its updates), where a link to a news report or a court notice is common. Nothing of the
 * text becomes markup but those links, which open with no referrer.
 */
export function linkify(text: string): string {
  const e = Handlebars.escapeExpression;
  let out = '';
  let last = 0;
  for (const { url, index } of links(text)) {
    out += e(text.slice(last, index)) + `<a href="${e(url)}" rel="nofollow noopener noreferrer">${e(url)}</a>`;
    last = index + url.length;
  }
  return out + e(text.slice(last));
}

function registerHelpers(h: typeof Handlebars): void {
  h.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  h.registerHelper('gt', (a: number, b: number) => a > b);
  h.registerHelper('plural', (n: number, one: string, many: string) => (n === 1 ? one : many));
  h.registerHelper('percent', (n: number, of: number) => (of > 0 ? Math.min(100, Math.round((100 * n) / of)) : 0));
  h.registerHelper('formatDate', (d: Date | string | null) => (d ? formatUtc(d) : ''));
  // The full stop after text that ends a sentence, unless it has one (see endSentence).
  h.registerHelper('fullStop', (s: unknown) => (endsSentence(String(s ?? '')) ? '' : '.'));
  h.registerHelper('humanize', (s: string) => String(s ?? '').replace(/_/g, ' '));
  h.registerHelper('kindName', (kind: string) => KIND_NAMES[kind as DeliveryKind] ?? kind);
  h.registerHelper('encode', (s: string) => encodeURIComponent(String(s ?? '')));
  h.registerHelper('json', (v: unknown) => JSON.stringify(v));
  // Named in our own layouts only; unescaped, so `?v=` is not written `?v&#x3D;`.
  h.registerHelper('static', (name: string) => new h.SafeString(staticUrl(name)));
  // The console's form token, masked anew in each form (csrf.ts maskToken: BREACH).
  h.registerHelper('maskToken', (token: unknown) => (typeof token === 'string' && token ? maskToken(token) : ''));
  // A value in a line of plain text, kept in its place if it is written right to left (bidi.ts).
  h.registerHelper('isolate', (s: unknown) => isolateRightToLeft(String(s ?? '')));
  // ` lang="kk"` on an element whose text is in its case's language (languageTag); nothing for the site's own.
  h.registerHelper('lang', (tag: unknown) => (typeof tag === 'string' && tag ? new h.SafeString(` lang="${h.escapeExpression(tag)}"`) : ''));
  h.registerHelper('letterHtml', (s: unknown) => new h.SafeString(letterBodyHtml(String(s ?? ''))));
  h.registerHelper('linkify', (s: unknown) => new h.SafeString(linkify(String(s ?? ''))));
  // A stored address; one whose domain is kept in ASCII also as it was written, the form sent to
  // beside it (`ann@почта.қаз (ann@xn--80a1acny.xn--80ao21a)`), so that no look-alike hides.
  h.registerHelper('address', (s: unknown) => {
    const address = String(s ?? '');
    const unicode = unicodeAddress(address);
    const e = h.escapeExpression;
    return new h.SafeString(unicode ? `${e(unicode)} <span class="muted small">(${e(address)})</span>` : e(address));
  });
  // Plain text as paragraphs of lines, for an email's HTML part: `white-space: pre-wrap`, which
  // Outlook ignores, ran them together. `{{#each (paragraphs text)}}<div>{{#each this}}<div dir="auto">…`:
  // a line each, so each takes the direction of its own text.
  h.registerHelper('paragraphs', (s: unknown) => paragraphsOf(String(s ?? '')));
}

const paragraphsOf = (text: string) =>
  lineBreaks(text)
    .trim()
    .split(/\n{2,}/)
    .filter(Boolean)
    .map((p) => p.split('\n'));

/**
 * A line's indent and runs of spaces (a note's indented list, a small table), which HTML would
 * fold into one space as the text part does not: a tab as four spaces, an indent all no-break
 * spaces, a run inside the line no-break spaces and one space, where it may still wrap.
 */
const spacesKept = (line: string) =>
  line.includes('  ') || line.includes('\t') || line.startsWith(' ')
    ? line.replace(/\t/g, '    ').replace(/^ +| {2,}/g, (run, at: number) => (at === 0 ? '\u00a0'.repeat(run.length) : `${'\u00a0'.repeat(run.length - 1)} `))
    : line;

/**
 * A letter's text as the HTML part of a letter or digest shows it: paragraphs of lines, each line
 * taking the direction of its own text (a Uyghur note in an English letter reads right to left,
 * the Kazakh line after it left to right), escaped, with its isolated values as `<bdi>`
 * (isolatesAsBdi).
 */
export function letterBodyHtml(text: string): string {
  const line = (l: string) => `<div dir="auto">${isolatesAsBdi(Handlebars.Utils.escapeExpression(spacesKept(l)))}</div>`;
  return paragraphsOf(text).map((p) => `<div style="margin: 0 0 1em">${p.map(line).join('\n')}</div>`).join('\n');
}

/**
 * Loads every page, email and partial once. Pages escape by default; `.txt` emails are plain
 * text and are compiled without HTML escaping. Partials are named by their path under
 * templates/partials without the extension (`signatures/form`).
 */
export function loadViews(dir = TEMPLATES_DIR): Views {
  const html = Handlebars.create();
  const text = Handlebars.create();
  registerHelpers(html);
  registerHelpers(text);
  for (const file of walk(path.join(dir, 'partials'))) {
    const name = file.replace(/\.hbs$/, '');
    const source = fs.readFileSync(path.join(dir, 'partials', file), 'utf8');
    html.registerPartial(name, source);
    text.registerPartial(name, source);
  }
  // Every template is read now, not when first used: a running process must not pick up the files
  // of the next release from its checkout (`git pull` before the restart), whose templates call
  // helpers it does not have, and answered 500 on every page it had not shown yet.
  const sources = new Map(['pages', 'emails', 'layouts'].flatMap((sub) =>
    walk(path.join(dir, sub)).map((file) => [path.join(sub, file).split(path.sep).join('/'), fs.readFileSync(path.join(dir, sub, file), 'utf8')] as const)));
  const cache = new Map<string, HandlebarsTemplateDelegate>();
  const runtime = { allowProtoPropertiesByDefault: false, allowProtoMethodsByDefault: false } as const;
  const get = (file: string) => {
    let t = cache.get(file);
    if (!t) {
      const source = sources.get(file);
      if (source === undefined) return undefined;
      t = file.endsWith('.txt.hbs') ? text.compile(source, { noEscape: true, preventIndent: true }) : html.compile(source, { strict: false, preventIndent: true });
      cache.set(file, t);
    }
    return t;
  };
  const must = (file: string) => {
    const t = get(file);
    if (!t) throw new Error(`template ${file} is missing`);
    return t;
  };
  return {
    page(name, data, layout = 'main') {
      const body = must(`pages/${name}.hbs`)(data, runtime);
      return layout === false ? body : must(`layouts/${layout}.hbs`)({ ...data, body }, runtime);
    },
    email(name, data) {
      const textBody = must(`emails/${name}.txt.hbs`)(data, runtime);
      const out: { text: string; html?: string } = { text: must('layouts/email.txt.hbs')({ ...data, body: textBody }, runtime) };
      const htmlTemplate = get(`emails/${name}.html.hbs`);
      if (htmlTemplate) out.html = must('layouts/email.html.hbs')({ ...data, body: htmlTemplate(data, runtime) }, runtime);
      return out;
    },
  };
}
