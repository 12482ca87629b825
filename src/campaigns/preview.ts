import Handlebars from 'handlebars';
import { oneLineText, showsSomething } from '../cases/types.ts';
import { letterText, renderMarked, subjectLine, type Disclose, type LetterContext, type SupporterField } from './letter-template.ts';

/** Supporter fields the sign form fills in, with the form field names and placeholders. */
export const PREVIEW_FIELDS = [
  { key: 'fullName', field: 'full_name', placeholder: '[your name]' },
  { key: 'city', field: 'city', placeholder: '[your city]' },
  { key: 'country', field: 'country', placeholder: '[your country]' },
  { key: 'personalNote', field: 'personal_note', placeholder: '[your note]' },
] as const;

const escapeHtml = Handlebars.Utils.escapeExpression;

export type { SupporterField };

/** A rendered preview: the subject and body as HTML, each supporter field in a `<span data-field>`. */
export interface PreviewHtml {
  subject: string;
  body: string;
}

type Rendered = { subject: string; text: string };

/**
 * Every version of a letter as HTML with placeholders, for the page's script. Versions share most
 * of their text, so it is sent in pieces, each once: the text between fields and line breaks, and
 * each field's span. A version's body is `pieces` at the indexes in `bodies[i]`, joined
 * (expandVariants; public/app.js does the same). Whole lines were sent once each at first, but a
 * long paragraph with a field in it differed in every version.
 */
export interface Variants {
  /** The form fields the bits of a mask stand for, in order. */
  fields: string[];
  /** `masks[bits]`: the version for that set of filled-in fields. */
  masks: number[];
  subjects: string[];
  pieces: string[];
  bodies: number[][];
}

/** A letter's versions: `texts`, with field markers, and `masks[bits]`, the index of the one for that set of filled-in fields. */
interface Versions {
  masks: number[];
  texts: Rendered[];
  /** Absent when there is one version, or they are too long to send. */
  variants?: Variants;
}

const ALL_FIELDS = (1 << PREVIEW_FIELDS.length) - 1;
/**
 * Where a version's HTML is cut into pieces: around each field's span (fillFields) and each line
 * break, and after each sentence, so that a long paragraph whose end differs between versions (an
 * {{#if}} on the note there) shares its sentences before.
 */
const PIECES = /(<span class="fill[^"]*"[^>]*>[^<]*<\/span>|\n)|(?<=[.!?])(?= )/;
/** Most the versions of one letter may weigh on its page; past it the page shows the whole letter. */
const VARIANTS_MAX_CHARS = 100_000;

/**
 * Each page view of a campaign asks for the same versions until the letter, the target it is
 * shown as sent to, or the date change: sixteen renders of a long letter took a few milliseconds
 * a view.
 */
const versionsCache = new Map<string, Versions>();

function versionsOf(subject: string, body: string, context: Omit<LetterContext, 'supporter'>, shown: ReadonlySet<SupporterField>): Versions {
  const key = JSON.stringify([subject, body, context, [...shown]]);
  const hidden = new Set(PREVIEW_FIELDS.map((f) => f.key).filter((k) => !shown.has(k)));
  const cached = versionsCache.get(key);
  if (cached) return cached;
  const texts: Rendered[] = [];
  const seen = new Map<string, number>();
  const masks = Array.from({ length: ALL_FIELDS + 1 }, (_, bits) => {
    // A filled-in field is any non-empty text for the conditions; where it is written, its marker.
    const on = bits === 0 ? ALL_FIELDS : bits;
    const supporter = Object.fromEntries(PREVIEW_FIELDS.map((f, i) => [f.key, shown.has(f.key) && on & (1 << i) ? 'x' : ''])) as LetterContext['supporter'];
    // A line an {{#if}} on a field not typed leaves empty goes, as it will from the letter.
    const unfilled = new Set(PREVIEW_FIELDS.filter((f) => shown.has(f.key) && !supporter[f.key]).map((f) => f.key));
    // Once something is typed, a field that may be left empty (all but the name, which a signature
    // needs) and is renders as the letter will have it: no placeholder, and its line gone if it
    // leaves nothing there. Before anything is typed every placeholder shows where it goes.
    const left = bits === 0 ? [] : [...unfilled].filter((k) => k !== 'fullName');
    const version = renderMarked(subject, body, { ...context, supporter }, left.length ? new Set([...hidden, ...left]) : hidden, unfilled);
    const id = `${version.subject}\u0000${version.text}`;
    if (!seen.has(id)) {
      seen.set(id, texts.length);
      texts.push(version);
    }
    return seen.get(id)!;
  });
  const versions: Versions = { masks, texts };
  if (texts.length > 1) {
    const pieces: string[] = [];
    const pieceIndex = new Map<string, number>();
    const indexOf = (piece: string) => {
      let i = pieceIndex.get(piece);
      if (i === undefined) pieceIndex.set(piece, (i = pieces.push(piece) - 1));
      return i;
    };
    const subjects = texts.map((t) => fillFields(t.subject, {}, true));
    const bodies = texts.map((t) => fillFields(t.text, {}).split(PIECES).filter(Boolean).map(indexOf));
    const weight = subjects.join('').length + pieces.join('').length + bodies.reduce((n, b) => n + b.length * 4, 0);
    if (weight <= VARIANTS_MAX_CHARS) versions.variants = { fields: PREVIEW_FIELDS.map((f) => f.field), masks, subjects, pieces, bodies };
  }
  if (versionsCache.size >= 200) versionsCache.clear();
  versionsCache.set(key, versions);
  return versions;
}

/** The versions of `variants` whole, as the page's script rebuilds them. */
export function expandVariants(variants: Variants): PreviewHtml[] {
  return variants.subjects.map((subject, i) => ({ subject, body: variants.bodies[i]!.map((p) => variants.pieces[p]).join('') }));
}

/**
 * A typed value as the stored signature will hold it: blank ends trimmed as the form's validation
 * trims them (a one-line field's zero-width and Hangul fillers too, and its tabs as spaces; a
 * note's white space only, or all of it when nothing in it shows), blank lines as the letter has
 * them, and in a subject, which is one line, as the letter's (letter-template's finish): line
 * breaks a space, and each run of two or more spaces one space (a single ideographic or no-break
 * space stays as typed).
 */
const asSigned = (key: SupporterField, typed: string, inSubject: boolean) => {
  const text = letterText(typed);
  const value = key !== 'personalNote' ? oneLineText(text) : showsSomething(text) ? text : '';
  return inSubject ? subjectLine(value) : value;
};

/** Escapes a rendered text and puts each field marker's span in, holding what was typed or its placeholder. */
function fillFields(text: string, values: Partial<Record<SupporterField, string>>, inSubject = false): string {
  return escapeHtml(text).replace(/\uE000(\w+)\uE001/g, (_, key: string) => {
    const f = PREVIEW_FIELDS.find((p) => p.key === key)!;
    const typed = values[f.key];
    const value = typed === undefined ? undefined : asSigned(f.key, typed, inSubject);
    // A one-line field in the body is laid out on its own, as the letter's isolates lay it
    // (bidi.ts). Not the note, whose lines the letter isolates one by one (a span's direction would
    // be its first line's), nor the subject, which keeps none.
    const isolated = !inSubject && f.key !== 'personalNote';
    return `<span class="fill${value ? '' : ' empty'}" data-field="${f.field}" data-placeholder="${escapeHtml(f.placeholder)}"${isolated ? ' dir="auto"' : ''}>${escapeHtml(value || f.placeholder)}</span>`;
  });
}

/**
 * The letter as HTML with each supporter field in a `<span data-field>`, so the page's script can
 * fill in what is typed. A field in `hidden` renders empty, as in the letter its reader gets (a
 * target's `disclose`, or a digest, which lists its signers below the letter instead).
 *
 * {{#if}} and {{#unless}} on supporter fields decide as in the letter for the fields typed so far
 * (before anything is typed, as if every field were filled in, so the whole letter shows with its
 * placeholders). When they change what the letter says, `variants` holds every version, one per
 * set of filled-in fields (`masks[bits]` is the index of that set's version; bit i is the form
 * field `fields[i]`), so the page's script shows the one for what is typed.
 */
export function previewLetterHtml(
  subject: string,
  body: string,
  base: Omit<LetterContext, 'supporter'>,
  values: Partial<Record<SupporterField, string>> = {},
  hidden: ReadonlySet<SupporterField> = new Set(),
): PreviewHtml & { variants?: Versions['variants'] } {
  // Marker characters typed into a template or a case are dropped, so every marker left is ours.
  const unmark = (s: string) => s.replace(/[\uE000-\uE002]/g, '');
  const context = {
    target: { name: unmark(base.target.name), title: unmark(base.target.title), salutation: unmark(base.target.salutation) },
    case: { personName: unmark(base.case.personName), location: unmark(base.case.location) },
    campaign: { title: unmark(base.campaign.title) },
    date: base.date,
  };
  const shown = new Set(PREVIEW_FIELDS.map((f) => f.key).filter((k) => !hidden.has(k)));
  const versions = versionsOf(unmark(subject), unmark(body), context, shown);
  const typed = PREVIEW_FIELDS.reduce((bits, f, i) => (values[f.key] && asSigned(f.key, values[f.key]!, false) ? bits | (1 << i) : bits), 0);
  const current = versions.texts[versions.masks[typed]!]!;
  return { subject: fillFields(current.subject, values, true), body: fillFields(current.text, values), ...(versions.variants && { variants: versions.variants }) };
}

const DISCLOSE_WORDS: Record<Disclose, string> = {
  name: 'your name and note',
  name_place: 'your name, city, country and note',
  full: 'your name, city, country, note and email address (to reply to you)',
};

/**
 * Whether a target gets the supporter's address (as Reply-To): a `full` one, and only of an
 * address its owner confirmed, so only where the campaign asks for confirmation.
 */
export const learnsAddress = (disclose: Disclose, requireConfirmation: boolean) => disclose === 'full' && requireConfirmation;

/**
 * A `full` target of a digest campaign gets no Reply-To (one letter names many signers): the
 * address is in the list of signers, and in the spreadsheet attached to the daily letter.
 */
const FULL_IN_DIGEST = 'your name, city, country, note and email address (listed with the other signers in the daily letter and its spreadsheet)';

/**
 * What a target learns of a supporter, in words for the sign page: without the address
 * (learnsAddress), `full` shows what `name_place` does.
 */
export function discloseWords(disclose: Disclose, requireConfirmation: boolean, digest = false): string {
  const learns = disclose === 'full' && !learnsAddress(disclose, requireConfirmation) ? 'name_place' : disclose;
  return learns === 'full' && digest ? FULL_IN_DIGEST : DISCLOSE_WORDS[learns];
}
