import type { RequestParamHandler } from 'express';
import { NotFoundError } from '../errors.ts';

/** What a form labels `field`: `labels`' word for it, else its name made readable (`full_name` → "Full name"). */
export const fieldLabel = (field: string, labels: Record<string, string> = {}) => labels[field] ?? capitalized(field.replace(/_/g, ' '));

/**
 * The summary of a form's mistakes, shown above it: each names its field by its label (`labels`,
 * else the field's name made readable: `full_name` → "Full name") and links to it by `id`.
 */
export function errorSummary(errors: Record<string, string>, labels: Record<string, string> = {}) {
  return Object.entries(errors).map(([field, message]) => ({
    field,
    label: fieldLabel(field, labels),
    id: `f-${field.replace(/\W/g, '-')}`,
    message,
  }));
}

const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * What a re-shown form may put back in its fields: the strings that were typed, and nothing
 * else. A body parsed from JSON can hold objects (`{"toString": 1}`) that neither `String()` nor
 * the template's escaping can turn into text; such a field comes back empty.
 */
export function typedValues(body: unknown): Record<string, string> {
  if (!body || typeof body !== 'object') return {};
  const values: Record<string, string> = {};
  for (const [field, value] of Object.entries(body)) {
    if (typeof value === 'string') values[field] = value;
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) values[field] = value.join(', ');
  }
  return values;
}

/**
 * A positive integer from a URL or form, written in plain digits, or a 404: ids in URLs are never
 * guessed at (`Number` alone would read "0x10" as 16, "1e3" as 1000 and " 12 " as 12).
 */
export function idParam(value: unknown, what: string): number {
  if (typeof value !== 'string' || !/^[1-9]\d{0,14}$/.test(value)) throw new NotFoundError(what);
  return Number(value);
}

/**
 * Where a keyset page of a list ordered by time then id starts: the `cursor` of the page before's
 * last row, `<time>~<id>` with the time as Postgres writes it (to the microsecond). Undefined when
 * absent or not such a cursor, which shows the first page.
 */
export function timeCursor(value: unknown): { updatedAt: string; id: number } | undefined {
  const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?[+-](?:0\d|1[0-4])(?::[0-5]\d)?)~(\d{1,15})$/.exec(typeof value === 'string' ? value : '');
  return m ? { updatedAt: m[1]!, id: Number(m[2]) } : undefined;
}

/**
 * A keyset page out of `size + 1` rows asked for: the first `size`, and the cursor of the last of
 * them when there is more (the extra row says so), for the link to the next page.
 */
export function timePage<R extends { cursor: string }>(rows: R[], size: number): { rows: R[]; next: string | undefined } {
  return { rows: rows.slice(0, size), next: rows.length > size ? rows[size - 1]!.cursor : undefined };
}

/**
 * An emailed token as a mail client may have linked it: with the `.`, `)`, `>` or `,` after the
 * link, or a space, taken into it. Tokens are base64url, which has none of those, so what follows
 * its last letter, digit, `-` or `_` goes: a page asked for moves to its right address, a post is
 * read with the token alone. Nothing else it could match: a token is found only by its hash.
 */
export const emailedToken: RequestParamHandler = (req, res, next, token: string) => {
  // Walked back from the end, not a pattern anchored at it: `[^…]+$` is tried from every
  // character of a run that does not end the value, quadratic in a path anyone may send.
  let end = token.length;
  while (end > 0 && !TOKEN_CHARACTER.test(token[end - 1]!)) end -= 1;
  if (end === token.length || end === 0) return next();
  const clean = token.slice(0, end);
  if (req.method === 'GET' || req.method === 'HEAD') {
    // This app's own path, never the request line's (which may name a whole URL, another host's).
    const path = `${req.baseUrl}${req.path}`.replace(/\/+$/, '');
    const at = req.originalUrl.indexOf('?');
    return res.redirect(301, `${path.slice(0, path.lastIndexOf('/') + 1)}${encodeURIComponent(clean)}${at < 0 ? '' : req.originalUrl.slice(at)}`);
  }
  req.params.token = clean;
  next();
};
const TOKEN_CHARACTER = /[A-Za-z0-9_-]/;
