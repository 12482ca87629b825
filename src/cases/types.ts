import { z } from 'zod';

export const CASE_STATUSES = ['detained', 'at_risk', 'on_trial', 'released', 'granted_stay', 'deported', 'missing'] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];
/**
 * Outcomes after which a campaign asking officials to act on the person is likely out of date: the
 * console asks its organizers to pause, close or rewrite a live one.
 */
export const SETTLED_STATUSES: ReadonlySet<CaseStatus> = new Set(['released', 'granted_stay', 'deported']);

export interface Case {
  id: number;
  /** Saves so far (see updateCase). */
  revision: number;
  slug: string;
  person_name: string;
  summary: string;
  status: CaseStatus;
  location: string;
  /** The language it is written in, a BCP 47 tag (`kk`, `ru`, `ug`); empty for the site's own, English. */
  language: string;
  /** Whether its page is public; one being prepared is not (see publishCase). */
  published: boolean;
  created_at: Date;
  updated_at: Date;
}

export const slug = z
  .string()
  .trim()
  .min(2, 'must be at least 2 characters')
  .max(80, 'must be at most 80 characters')
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'use Latin letters a–z (lowercase), digits and single hyphens');


/**
 * Blank at either end: white space, and characters that show nothing (zero-width spaces and
 * joiners, the byte-order mark, Hangul and Braille blanks). A name of only these would pass a
 * plain trim and sign a letter as nobody.
 */
const BLANK = '[\\s\\p{Cf}\\u115f\\u1160\\u3164\\u2800\\uffa0]';
const LEADING_BLANKS = new RegExp(`^${BLANK}+`, 'u');
const ONE_BLANK = new RegExp(`^${BLANK}$`, 'u');
const BLANKS = new RegExp(BLANK, 'gu');
// Not the tag characters (U+E0020–E007F, format characters too): after 🏴 they spell a flag (Scotland's).
const BLANK_RUNS = new RegExp(`(?:(?![\\u{E0000}-\\u{E007F}])${BLANK}){2,}`, 'gu');

/**
 * Runs of blanks as one space, for a name in a header: a signer named "Ministry of Justice"
 * followed by fifty Braille blanks pushed "via Appeal" out of the From column of a mail client.
 * One blank is left as it is: a joiner belongs inside an emoji or a word of some scripts.
 */
export const collapseBlankRuns = (v: string) => v.replace(BLANK_RUNS, ' ');

/** 🏴 and the tag characters that make it a subdivision's flag (U+E0020–E007E, then CANCEL TAG). */
const FLAG_AT_END = /\u{1F3F4}[\u{E0020}-\u{E007E}]+\u{E007F}$/u;
/** Code units such a flag takes at most: 🏴, up to six tag letters and the cancel tag, two units each. */
const FLAG_MAX_UNITS = 16;

/**
 * The text without its blank ends. The end is walked back one character at a time: a pattern
 * for it (`BLANK+$`) is tried from every blank of the text, and a long run of spaces inside it
 * took seconds, in a request anyone may send.
 */
export function trimBlank(v: string): string {
  const s = v.replace(LEADING_BLANKS, '');
  let end = s.length;
  while (end > 0) {
    // A subdivision's flag (Scotland's: 🏴 and tag characters) ends in format characters that show it.
    if (FLAG_AT_END.test(s.slice(Math.max(0, end - FLAG_MAX_UNITS), end))) break;
    // One character back: two code units for a surrogate pair.
    const pair = end >= 2 && /[\udc00-\udfff]/.test(s[end - 1]!) && /[\ud800-\udbff]/.test(s[end - 2]!);
    const start = pair ? end - 2 : end - 1;
    if (!ONE_BLANK.test(s.slice(start, end))) break;
    end = start;
  }
  return s.slice(0, end);
}

/**
 * A one-line field as kept: a tab is a space (one pasted from a spreadsheet cell shows as one in
 * the field), and blank ends go. Text is kept composed (NFC), as most keyboards type it, so that
 * a name sent with its accents as separate marks ("и" and a breve for "й") is found by a search
 * typed the usual way.
 */
export const oneLineText = (v: string) => trimBlank(v.replace(/\t/g, ' ').normalize('NFC'));

export const NOT_TEXT = 'contains characters that are not text';
/**
 * Half of a character: JSON can spell one (`"\\ud800"`), UTF-8 cannot, and Postgres would store it
 * as U+FFFD, so a name would reach officials with a replacement character in it.
 */
const wellFormed = (v: string) => !/\p{Cs}/u.test(v);

const MAX_MARKS = 6;
const STACKED_MARKS = new RegExp(`\\p{M}{${MAX_MARKS + 1}}`, 'u');

/** One line of text: no control characters, so it can never break a header or a CSV row. */
export const line = (max: number) =>
  z
    .string()
    .overwrite(oneLineText)
    .max(max, `must be at most ${max} characters`)
    // C0 and C1 control characters and Unicode's line and paragraph separators: all break lines somewhere.
    .refine((v) => !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(v), 'must be one line of text')
    // They turn how the text shows around (an address read backwards); no name needs them.
    .refine((v) => !/[\u202a-\u202e\u2066-\u2069]/.test(v), 'must not contain text-direction control characters')
    // Accents stacked by the dozen draw over the lines above and below (in the console's lists,
    // an official's inbox); no script's letter carries more than a few.
    .refine((v) => !STACKED_MARKS.test(v), `must not stack more than ${MAX_MARKS} accents or marks on one letter`)
    .refine(wellFormed, NOT_TEXT);

/**
 * What paragraphs of text may not hold: control characters other than line breaks and tabs
 * (Postgres refuses a NUL, and none belongs in a letter or an alert), and half characters.
 */
export const NOT_PROSE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]|\p{Cs}/u;

/**
 * Text that ends a sentence, with a full stop after it unless it ends with one of its own: a
 * person named by initials ("Aigul T.") read "for Aigul T.." in the emails about them.
 */
export const endSentence = (text: string) => (endsSentence(text) ? text : `${text}.`);
export const endsSentence = (text: string) => /[.!?…。！？؟][\p{Pf}\p{Pe}"']*$/u.test(text);

/**
 * Whether text shows anything: a letter, digit, symbol (an emoji) or punctuation mark other than
 * the blanks above. Those, variation selectors and combining marks alone show nothing.
 */
export const showsSomething = (v: string) => /[\p{L}\p{N}\p{S}\p{P}]/u.test(v.replace(BLANKS, ''));

/**
 * Paragraphs as they are kept: line breaks as LF, composed (NFC, as oneLineText), no blank ends,
 * and nothing at all when there is nothing to see (it would be an empty paragraph in a letter).
 */
export const proseText = (v: string) => {
  const text = lineBreaks(v).normalize('NFC').trim();
  return showsSomething(text) ? text : '';
};

/**
 * Text with every line break as LF: CR LF and CR as a browser or a file may send them, and
 * Unicode's line and paragraph separators (U+2028, U+2029, a blank line), which some phones'
 * keyboards and pasted documents carry. Readers break a line there, but an email's HTML part,
 * which breaks lines on LF alone, ran them together.
 */
export const lineBreaks = (v: string) => lineEnds(v).replace(/\u2029/g, '\n\n');
/** lineBreaks but for the paragraph separator, left one character, as a textarea counts it. */
const lineEnds = (v: string) => v.replace(/\r\n?|\u2028/g, '\n');

/**
 * Paragraphs of text (see NOT_PROSE). A browser sends each line break as CRLF; it counts as one
 * character, as the textarea's maxlength counted it.
 */
export const prose = (max: number) =>
  z
    .string()
    .transform((v, ctx) => {
      const text = proseText(v);
      // Measured before a paragraph separator becomes the blank line it is kept as: it is one
      // character in the textarea too.
      if (text && lineEnds(v).normalize('NFC').trim().length > max) {
        ctx.addIssue({ code: 'custom', message: `must be at most ${max} characters` });
        return z.NEVER;
      }
      return text;
    })
    .refine((v) => !NOT_PROSE.test(v), NOT_TEXT);

/** An optional field a JSON client may send as null for "none": null is taken as absent. */
export const nullAsAbsent = <S extends z.ZodType>(schema: S) => z.preprocess((v) => (v === null ? undefined : v), schema);

/**
 * A language as a BCP 47 tag (`kk`, `ru`, `ug`, `kk-Cyrl`, `zh-Hans`), lower case but for a script
 * or region subtag as the standard writes them; empty for none. It goes into `lang` attributes.
 */
export const languageTag = z
  .string()
  .trim()
  .max(35, 'must be at most 35 characters')
  .transform((tag, ctx) => {
    if (!tag) return '';
    const canonical = canonicalTag(tag);
    // A tag of the right shape names no language when its first part is none (`kz` is
    // Kazakhstan's country code; Kazakh is `kk`): a screen reader would fall back to its default.
    if (!canonical || !LANGUAGE_NAMES.of(canonical.split('-')[0]!)) {
      ctx.addIssue({ code: 'custom', message: 'must be a language tag such as kk (Kazakh), ru (Russian), ug (Uyghur) or en (English)' });
      return z.NEVER;
    }
    return canonical;
  });

/** Languages by their code, in English; undefined for a code that is no language's. */
const LANGUAGE_NAMES = new Intl.DisplayNames(['en'], { type: 'language', fallback: 'none' });

/** A BCP 47 tag as the standard writes it (`kk-Cyrl`, `zh-Hans-CN`); undefined for one that is not a tag. */
function canonicalTag(tag: string): string | undefined {
  try {
    return /^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$/.test(tag) ? Intl.getCanonicalLocales(tag)[0] : undefined;
  } catch {
    return undefined;
  }
}

export const caseStatus = z
  .string()
  .transform((v) => v.trim().toLowerCase().replace(/[\s-]+/g, '_'))
  .pipe(z.enum(CASE_STATUSES, { message: `must be one of: ${CASE_STATUSES.join(', ')}` }));

export const caseInput = z.object({
  slug,
  personName: line(200).pipe(z.string().min(1, 'is required')),
  summary: prose(20_000).pipe(z.string().min(1, 'is required')),
  status: caseStatus,
  location: nullAsAbsent(line(200).optional().default('')),
  language: nullAsAbsent(languageTag.optional().default('')),
});

/**
 * A slug for a new case or campaign: not a word the console's own pages take in its place
 * (/admin/cases/new is the form for a new one), which would leave it without a page. Only new
 * ones: one named so before is still saved under its name.
 */
export const newSlug = slug.refine((s) => s !== 'new', 'is the address of the console\'s form for a new one: choose another');

/** A case as it is created (see newSlug). */
export const newCaseInput = caseInput.extend({ slug: newSlug });
