import type { ErrorRequestHandler, Request, Response } from 'express';
import multer from 'multer';
import type { Logger } from 'pino';
import { isDatabaseTooSlow, isDatabaseUnavailable, unavailableCause } from '../../db/index.ts';
import { throttledErrorLog } from '../../log.ts';
import type { Views } from '../../views.ts';
import { fromAnotherSite } from './csrf.ts';
import {
  CampaignNotOpenError,
  ConflictError,
  ForbiddenError,
  GoneError,
  InvalidEncodingError,
  MalformedEscapeError,
  BadFormError,
  JsonNotObjectError,
  LetterChangedError,
  MethodNotAllowedError,
  NotFoundError,
  RateLimitedError,
  TargetsChangedError,
  TemplateError,
  TooLargeError,
  LengthRequiredError,
  UnauthorizedError,
  UnreadableFormError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../../errors.ts';

interface Mapped {
  status: number;
  code: string;
  title: string;
  message: string;
  fields?: Record<string, string>;
  /** A page that goes on from here (a page's link; an API client is told in `message`). */
  next?: { href: string; label: string };
}

/** What the per-address limit says of an address that has had its allowance. */
export const ADDRESS_LIMITED = 'has been used in too many requests recently (we limit each address so nobody can flood a mailbox)';

/** A wait in words: minutes up to an hour and a half, then hours (the daily limits' waits). */
export function waitInWords(seconds: number): string {
  const m = Math.max(1, Math.ceil(seconds / 60));
  if (m <= 90) return m === 1 ? 'a minute' : `${m} minutes`;
  return `${Math.ceil(m / 60)} hours`;
}

/**
 * Postgres undid the transaction because another one met it (a deadlock, or a serialization
 * failure): nothing of it was stored, and the same request sent again goes through.
 */
const TRY_AGAIN = new Set(['40P01', '40001']);

const parsesAsJson = (body: unknown) => {
  if (typeof body !== 'string') return false;
  try {
    JSON.parse(body);
    return true;
  } catch {
    return false;
  }
};

/** A request body that could not be read: not JSON, too large, in a format or encoding not taken. */
function unreadableBody(err: unknown): Mapped | undefined {
  const e = err as { type?: string };
  if (e.type === 'entity.parse.failed' || err instanceof JsonNotObjectError) {
    // The JSON parser is strict: `null`, `"text"` or `1` are JSON, and refused as not an object;
    // an array is refused by jsonObject.
    const message = err instanceof JsonNotObjectError || parsesAsJson((err as { body?: unknown }).body)
      ? 'The request body is JSON, but not an object: send one JSON object.'
      : 'The request body is not valid JSON: send one JSON object.';
    return { status: 400, code: 'invalid_json', title: 'Bad request', message };
  }
  if (e.type === 'entity.too.large') return { status: 413, code: 'too_large', title: 'Too large', message: 'The request body is too large.' };
  if (e.type === 'parameters.too.many') return { status: 413, code: 'too_large', title: 'Too large', message: 'The form has more fields than this page takes.' };
  if (err instanceof UnsupportedMediaTypeError) {
    return { status: 415, code: 'unsupported_media_type', title: 'Unsupported', message: err.message || 'The request body is in a format this address does not read.' };
  }
  if (err instanceof LengthRequiredError) return { status: 411, code: 'length_required', title: 'Length required', message: err.message };
  if (err instanceof TooLargeError) return { status: 413, code: 'too_large', title: 'Too large', message: err.message || 'The request body is too large.' };
  if (err instanceof multer.MulterError) {
    if (err.code === 'LIMIT_FILE_SIZE' || err.code === 'LIMIT_FIELD_VALUE') return { status: 413, code: 'too_large', title: 'Too large', message: 'The file or a field of the form is too large.' };
    // As an urlencoded form's too many fields is answered.
    if (err.code === 'LIMIT_FIELD_COUNT' || err.code === 'LIMIT_PART_COUNT') return { status: 413, code: 'too_large', title: 'Too large', message: 'The form has more fields than this page takes.' };
    return { status: 400, code: 'bad_request', title: 'Bad request', message: 'The form has parts this page does not take.' };
  }
  if (err instanceof UnreadableFormError) {
    return { status: 400, code: 'bad_request', title: 'Bad request', message: 'The form could not be read: the upload was cut off or is not a form. Please send it again.' };
  }
  if (err instanceof InvalidEncodingError) {
    return { status: 400, code: 'invalid_encoding', title: 'Bad request', message: 'The request body is not valid UTF-8: send the text as UTF-8.' };
  }
  if (err instanceof BadFormError) {
    return { status: 400, code: 'bad_request', title: 'Bad request', message: `${err.message} Nothing was saved: send the form again from its page.` };
  }
  if (err instanceof MalformedEscapeError) {
    return { status: 400, code: 'invalid_encoding', title: 'Bad request', message: err.message };
  }
  if (e.type === 'charset.unsupported') {
    return { status: 415, code: 'unsupported_encoding', title: 'Unsupported', message: 'The request body must be UTF-8: send it as UTF-8, with charset=utf-8 or no charset in its Content-Type.' };
  }
  if (e.type === 'encoding.unsupported') {
    return { status: 415, code: 'unsupported_encoding', title: 'Unsupported', message: 'The request body is compressed in a way this address does not read: send it uncompressed, or with gzip, deflate or br.' };
  }
  return undefined;
}

/** A value Postgres refused as input. */
function invalidValue(err: unknown): Mapped | undefined {
  // Postgres refuses a NUL character in text (22021) or in JSON (22P05) and a malformed number,
  // date or time zone (22P02, 22007, 22008, 22009): the input is wrong, not the server.
  if (['22021', '22P02', '22P05', '22007', '22008', '22009'].includes((err as { code?: string }).code ?? '')) {
    return { status: 400, code: 'invalid_input', title: 'Bad request', message: 'The request contains a value that is not valid here.' };
  }
  return undefined;
}

/** The failures a person can cause (src/errors.ts). */
function refusedRequest(err: unknown): Mapped | undefined {
  if (err instanceof TemplateError) return { status: 422, code: 'invalid_template', title: 'Template error', message: err.message, fields: err.fields };
  if (err instanceof ValidationError) return { status: 422, code: 'invalid_input', title: 'Check the form', message: err.message, fields: err.fields };
  if (err instanceof NotFoundError) {
    return { status: 404, code: 'not_found', title: 'Not found', message: `This ${err.what} does not exist, or is no longer available.${err.hint ? ` ${err.hint}` : ''}` };
  }
  if (err instanceof CampaignNotOpenError) {
    return err.status === 'closed'
      ? { status: 410, code: 'campaign_closed', title: 'Campaign closed', message: `“${err.campaignTitle}” is closed and no longer takes signatures. Thank you for caring.` }
      : { status: 409, code: 'campaign_paused', title: 'Campaign paused', message: `“${err.campaignTitle}” is paused and not taking signatures right now. Please try again later.` };
  }
  if (err instanceof TargetsChangedError) return { status: 409, code: 'targets_changed', title: 'Conflict', message: err.message };
  if (err instanceof LetterChangedError) return { status: 409, code: 'letter_changed', title: 'Conflict', message: err.message };
  if (err instanceof ConflictError) return { status: 409, code: err.code, title: 'Conflict', message: err.message, ...(err.fields ? { fields: err.fields } : {}) };
  if (err instanceof GoneError) return { status: 410, code: 'gone', title: 'Link no longer valid', message: err.message, ...(err.next ? { next: err.next } : {}) };
  if (err instanceof RateLimitedError) {
    const message = err.by === 'address'
      ? `This email address ${ADDRESS_LIMITED}. Please try again in ${waitInWords(err.retryAfterSeconds)}.`
      : `Too many attempts from your network: people who share a connection (a Tor exit, a mobile carrier, an office) count together. Please try again in ${waitInWords(err.retryAfterSeconds)}.`;
    return { status: 429, code: 'rate_limited', title: 'Too many attempts', message };
  }
  if (err instanceof MethodNotAllowedError) return { status: 405, code: 'method_not_allowed', title: 'Not allowed here', message: err.message };
  if (err instanceof UnauthorizedError) return { status: 401, code: 'unauthorized', title: 'Sign in needed', message: err.message || 'A valid API token is required.' };
  if (err instanceof ForbiddenError) return { status: 403, code: 'forbidden', title: 'Not allowed', message: err.message || 'You may not do this.' };
  return undefined;
}

/** The database undid, cannot take or was too slow for what was sent: worth sending again. */
function databaseAway(err: unknown): Mapped | undefined {
  if (TRY_AGAIN.has(String((err as { code?: unknown } | null)?.code))) {
    return { status: 503, code: 'busy', title: 'Please send it again', message: 'Another request changed the same records at the same moment, so nothing you sent was saved. Please send it again: sending something twice does no harm here.' };
  }
  if (isDatabaseUnavailable(err)) {
    return { status: 503, code: 'unavailable', title: 'Briefly unavailable', message: 'We cannot reach our database right now, so what you sent may not have been saved. Please send it again in a minute: sending something twice does no harm here.' };
  }
  if (isDatabaseTooSlow(err)) {
    return { status: 503, code: 'unavailable', title: 'Briefly unavailable', message: 'Our database took too long to answer, so what you sent may not have been saved. Please send it again in a minute: sending something twice does no harm here.' };
  }
  return undefined;
}

/** A request not understood: a damaged link, or another 4xx from Express or a parser. */
function badRequest(err: unknown): Mapped | undefined {
  const e = err as { status?: number };
  // The router could not decode a part of the address (`%ff`, `%zz`): a link mangled on its way.
  if (err instanceof URIError) {
    return { status: 400, code: 'bad_link', title: 'Damaged link', message: 'Part of this address cannot be read: it was damaged on its way here. If it came in an email, copy the whole link from the email.' };
  }
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return { status: e.status, code: 'bad_request', title: 'Bad request', message: 'The request could not be understood.' };
  }
  return undefined;
}

/**
 * The headers an error's answer carries besides its status: when to try again (Retry-After) for
 * a limit, which methods there are (Allow) for a wrong one. Nothing once the headers are out.
 */
export function setErrorHeaders(res: Response, err: unknown): void {
  if (res.headersSent) return;
  if (err instanceof RateLimitedError) res.set('Retry-After', String(err.retryAfterSeconds));
  if (err instanceof MethodNotAllowedError) res.set('Allow', err.allowed.join(', '));
}

/** The one place errors become HTTP. Unknown errors are logged and get a generic answer. */
export function mapError(err: unknown): Mapped | undefined {
  return unreadableBody(err) ?? invalidValue(err) ?? refusedRequest(err) ?? databaseAway(err) ?? badRequest(err);
}

/** The path from the site's root: inside a router mounted at /api/v1, `req.path` is what follows it. */
const fullPath = (req: Request) => req.baseUrl + req.path;
const byPath = (req: Request) => {
  const p = fullPath(req);
  // The console's one JSON page: a page address that only ends in .json (an outbox file named so) is a page's.
  return p === '/api' || p.startsWith('/api/') || p.endsWith('/stats.json');
};

export function wantsJson(req: Request): boolean {
  return byPath(req) || (!req.accepts('html') && !!req.accepts('json'));
}

export function sendError(res: Response, req: Request, views: Views, m: Mapped): void {
  if (m.status === 401 && fullPath(req).startsWith('/api/')) res.set('WWW-Authenticate', 'Bearer');
  // Chosen by what the client accepts: a cache that keeps a 404 must not give a browser the JSON.
  if (!byPath(req)) res.vary('Accept');
  if (wantsJson(req)) {
    res.status(m.status).json({ error: { code: m.code, message: m.message, ...(m.fields ? { fields: m.fields } : {}) } });
    return;
  }
  // A sign form's answers are never cached, so the Back button may bring the form back empty: the
  // note someone wrote (the one long thing on it) is on the page, to be copied. Not a note another
  // site's page posted: a page of ours would show words a stranger wrote, as if Appeal said them.
  const note = req.method === 'POST' && !fromAnotherSite(req) && typeof req.body?.personal_note === 'string' && req.body.personal_note.trim() ? req.body.personal_note : undefined;
  let page: string;
  try {
    page = views.page('error', { ...res.locals, title: m.title, status: m.status, message: m.message, fields: m.fields, note, next: m.next });
  } catch {
    // The page could not be made (its template unreadable with every file descriptor in use, say):
    // the answer in plain words, never Express's own page with a stack trace and file paths.
    res.status(m.status).type('text').send(`${m.title}\n\n${m.message}\n`);
    return;
  }
  res.status(m.status).type('html').send(page);
}

export function errorHandler(views: Views, log: Logger): ErrorRequestHandler {
  // While the database is away every request fails alike: one line per kind and route every 10 s,
  // with how many were left out, not hundreds a second. The error's code only, as before.
  const codeOnly = (obj: Record<string, unknown>, msg: string) => {
    const { err, ...rest } = obj;
    log.warn({ code: (err as { code?: string } | undefined)?.code, ...rest }, msg);
  };
  const databaseAwayLog = throttledErrorLog(
    { warn: codeOnly, error: codeOnly },
    (err) => (mapError(err)?.code === 'busy' ? 'request failed: undone by the database for meeting another (send again)' : `request failed: ${isDatabaseTooSlow(err) ? 'database too slow' : 'database unavailable'}: ${unavailableCause(err)}`),
    10_000,
    'warn',
  );
  return (err, req, res, _next) => {
    // Headers out already (a download cut off): there is nothing left to set, only to log.
    const set = (name: string, value: string) => void (res.headersSent || res.set(name, value));
    setErrorHeaders(res, err);
    let mapped = mapError(err);
    // Someone who only opened a page sent nothing that could be lost.
    if (mapped?.code === 'unavailable' && (req.method === 'GET' || req.method === 'HEAD')) {
      const what = wantsJson(req) ? 'This cannot be answered' : 'This page cannot be shown';
      mapped = { ...mapped, message: `${what} right now: our database is unavailable. Please try again in a minute.` };
    }
    if (mapped?.status === 503) {
      const busy = mapped.code === 'busy';
      set('Retry-After', busy ? '1' : '30');
      databaseAwayLog(err as Error, { method: req.method, path: req.route?.path ?? 'unmatched' });
    }
    if (!mapped) {
      // Never the request body: it may hold a supporter's details.
      log.error({ err, method: req.method, path: req.route?.path ?? 'unmatched' }, 'request failed');
    }
    if (res.headersSent) return;
    sendError(res, req, views, mapped ?? { status: 500, code: 'internal', title: 'Something went wrong', message: 'Something went wrong on our side. Please try again in a moment; if it keeps happening, tell the organizers.' });
  };
}
