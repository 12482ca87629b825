import { isUtf8 } from 'node:buffer';
import cookieParser from 'cookie-parser';
import express, { Router, type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import multer from 'multer';
import type { AppContext } from '../../../context.ts';
import { InvalidEncodingError, RepeatedFieldError, LengthRequiredError, TooLargeError } from '../../../errors.ts';
import { fromThisSite, openedHere, requireCsrf, SignedInAlreadyError, SignedOutError } from '../../middleware/csrf.ts';
import { answerOtherMethods } from '../../middleware/method-not-allowed.ts';
import { mapError, setErrorHeaders, wantsJson } from '../../middleware/errors.ts';
import { loadSession, requireAdmin, requireOrganizer, requireOwnPassword } from '../../middleware/session.ts';
import { FIELD_NAMES_AS_TYPED, formReadError, type StreamedMulterOptions } from '../../middleware/multipart-form.ts';
import { refuseUnreadBody } from '../../middleware/unread-body.ts';
import { utf8CharsetAliases, utf8Form } from '../../middleware/utf8.ts';
import { authRoutes } from './auth.ts';
import { campaignRoutes } from './campaigns.ts';
import { caseRoutes } from './cases.ts';
import { dashboardRoutes } from './dashboard.ts';
import { letterRoutes } from './letter.ts';
import { operationsRoutes } from './operations.ts';
import { peopleRoutes } from './people.ts';
import { queuesBoard } from './queues.ts';
import { consoleLabel, createRender, GIVES_OUT, safeNext, signedInLanding, str, type Render } from './render.ts';
import { SEND_AGAIN, sendAgainAdminOnly, targetRoutes } from './targets.ts';
import { updateRoutes } from './updates.ts';
import { watchRoutes } from './watch.ts';

/**
 * Console forms: a campaign's summary and letter run to 20,000 characters each, and a character
 * outside ASCII is up to 4 bytes of UTF-8, each sent as three (`%E4`): 20,000 in Chinese are 540 kB.
 */
const FORM_LIMIT = '1mb';
declare module 'express-serve-static-core' {
  interface Locals {
    /** A CSV form's chosen file is not UTF-8 (nor UTF-16 with its mark): its text was not used. */
    fileNotUtf8?: boolean;
  }
}

/** Pasted or uploaded target lists: 500 targets fit with room to spare; a 5 MB file gets 413. */
const CSV_BYTES = 1024 * 1024;
/** Room for a CSV form's other fields: as for any console form (FORM_LIMIT). */
const FORM_BYTES = 1024 * 1024;
const CSV_PATHS = ['/campaigns/new', '/campaigns/:slug/targets/import'];
/** File inputs of the CSV forms → the text field whose place a chosen file takes. */
const CSV_FILES: Record<string, string> = { targets_file: 'targets_csv', csv_file: 'csv' };

/**
 * The CSV forms post as multipart/form-data, so a file can be chosen without JavaScript. The file
 * is read in memory and stands in for the pasted text; only one per form. Only a signed-in
 * organizer's body is read, and one that says it is larger than a form with a full CSV is refused
 * before it is: multer's limits are per part, not per body.
 */
function csvUpload(): RequestHandler[] {
  const declared: RequestHandler = (req, _res, next) => {
    // Sent in chunks, a multipart body says no length, and multer's per-part limits would let 30
    // parts of a megabyte each through. A browser always sends the length of a form it posts.
    if (req.headers['content-length'] === undefined && req.is('multipart/form-data')) {
      throw new LengthRequiredError('A form with a file must say its length (Content-Length): send it from its page in the console.');
    }
    if (Number(req.headers['content-length']) > CSV_BYTES + FORM_BYTES) throw new TooLargeError(`The form with its CSV is larger than ${(CSV_BYTES + FORM_BYTES) / (1024 * 1024)} MB.`);
    next();
  };
  // Multer decodes each byte of a text field that is not UTF-8 as U+FFFD, which a browser may also
  // send as a character (pasted from a garbled email). The U+FFFD the body sent as characters are
  // counted on the way in, so a field with more than those holds bytes no browser sends. Multer 2
  // takes streamHandler (StreamedMulterOptions).
  const options: StreamedMulterOptions = {
    storage: multer.memoryStorage(),
    limits: { fileSize: CSV_BYTES, fieldSize: CSV_BYTES, files: 1, fields: 30, parts: 31, ...FIELD_NAMES_AS_TYPED },
    streamHandler: (req, busboy) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => replacementsSent.set(req, countReplacements(Buffer.concat(chunks))));
      req.pipe(busboy);
    },
  };
  const upload = multer(options).fields(Object.keys(CSV_FILES).map((name) => ({ name, maxCount: 1 })));
  const read: RequestHandler = (req, res, next) => upload(req, res, (err?: unknown) => next(formReadError(err)));
  const useFile: RequestHandler = (req, res, next) => {
    const files = (req.files ?? {}) as Record<string, Express.Multer.File[]>;
    const inFiles = Object.values(files).flat().reduce((n, f) => n + countReplacements(f.buffer), 0);
    // A text field that is not UTF-8 a browser's form never sends: refused, as the urlencoded
    // forms refuse such bytes (utf8Form).
    if (replacementsIn(req.body) > (replacementsSent.get(req) ?? 0) - inFiles) throw new InvalidEncodingError();
    for (const [fileField, textField] of Object.entries(CSV_FILES)) {
      const file = files[fileField]?.[0];
      if (!file || file.size === 0) continue;
      // A file saved in another encoding is said so by the form, which keeps the text typed into it.
      const text = fileText(file.buffer);
      if (text === undefined) res.locals.fileNotUtf8 = true;
      else (req.body as Record<string, unknown>)[textField] = text;
    }
    next();
  };
  return [signedInOrTyped, declared, read, useFile];
}

/**
 * A CSV form sent from a page of this site after its session ended: its text fields are read, files
 * skipped, so that the signed-out page gives back the letter and the list typed into it, as for
 * any console form (requireCsrf). Only a body no larger than any console form's is read for a
 * browser not signed in; any other goes to requireOrganizer unread.
 */
const typedFields = multer({
  storage: multer.memoryStorage(),
  fileFilter: (_req, _file, take) => take(null, false),
  limits: { fieldSize: FORM_BYTES, fields: 30, parts: 31, ...FIELD_NAMES_AS_TYPED },
}).any();
const signedInOrTyped: RequestHandler = (req, res, next) => {
  const readable = req.method === 'POST' && req.is('multipart/form-data') && Number(req.headers['content-length']) <= FORM_BYTES && fromThisSite(req);
  if (res.locals.organizer || !readable) return requireOrganizer(req, res, next);
  typedFields(req, res, (err?: unknown) => {
    if (err) return next(new SignedOutError([]));
    try {
      requireCsrf(req, res, () => next(new SignedOutError([])));
    } catch (refused) {
      next(refused);
    }
  });
};

/**
 * An uploaded file's text: UTF-8, or UTF-16 when it starts with that byte order mark (Excel's
 * "Unicode Text", LibreOffice's Unicode export), as a browser reading the file would take it.
 * Undefined for a file in neither (Excel's "CSV" on Russian or Kazakh Windows is Windows-1251).
 */
function fileText(bytes: Buffer): string | undefined {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes);
  return isUtf8(bytes) ? bytes.toString('utf8') : undefined;
}

/** How many U+FFFD a CSV form's body sent as characters (EF BF BD in UTF-8), counted as it arrived. */
const replacementsSent = new WeakMap<Request, number>();
const REPLACEMENT = Buffer.from('\uFFFD');

function countReplacements(bytes: Buffer): number {
  let n = 0;
  for (let at = bytes.indexOf(REPLACEMENT); at >= 0; at = bytes.indexOf(REPLACEMENT, at + REPLACEMENT.length)) n++;
  return n;
}

/** How many U+FFFD a parsed form's fields hold (multer nests `name[]` fields in arrays and objects). */
function replacementsIn(value: unknown): number {
  if (typeof value === 'string') return value.split('\uFFFD').length - 1;
  if (value && typeof value === 'object') return Object.values(value).reduce<number>((n, v) => n + replacementsIn(v), 0);
  return 0;
}

/** The console page a form was on (same site: fromThisSite), to go back to; the dashboard otherwise. */
function refererPage(req: Request): string {
  const referer = req.get('referer') ?? '';
  return safeNext(URL.canParse(referer) ? new URL(referer).pathname : '/admin');
}

function adminErrors(render: Render): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (err instanceof SignedInAlreadyError && !res.headersSent) return res.redirect(303, signedInLanding(req.body?.next));
    if (err instanceof SignedOutError && !res.headersSent) {
      // Signed in again since the form was opened: 409, as for a form saved meanwhile by someone else.
      const title = err.signedInAgain ? 'Your session changed' : 'You were signed out';
      return render(res, 'signed-out', { title, typed: err.typed.map((t) => ({ ...t, label: consoleLabel(t.name) })), signedInAgain: err.signedInAgain, next: refererPage(req) }, err.signedInAgain ? 409 : 401);
    }
    const mapped = mapError(err);
    // The app's handler logs a 503 and says when to come back (Retry-After).
    if (!mapped || mapped.status === 503 || res.headersSent || wantsJson(req)) return next(err);
    setErrorHeaders(res, err);
    render(res, 'error', { title: mapped.title, status: mapped.status, message: mapped.message, fields: mapped.fields }, mapped.status);
  };
}

/** Forms that undo something for good: the page's script asks before sending, or askFirst does. */
const ASK_FIRST = ['/cases/:slug/updates/:id/withdraw', '/campaigns/:slug/targets/:id/remove', SEND_AGAIN, '/organizers/:id/remove', '/organizers/:id/password', '/tokens/:id/revoke'];

/**
 * A destructive form sent without its confirmation (no script ran in the browser) is answered
 * with a page that asks, in the form's own words, and sends it again confirmed.
 */
function askFirst(render: Render): RequestHandler {
  return (req, res, next) => {
    if (str(req.body?.confirmed) === '1') return next();
    render(res, 'ask-first', {
      title: 'Are you sure?',
      question: str(req.body?.question) || 'This cannot be undone.',
      action: req.originalUrl,
      back: refererPage(req),
      // The form's own key, so that the form sent again confirmed is still the one form.
      requestKey: str(req.body?.request_key),
    });
  };
}

/**
 * Opened from outside the console, such a page asks first: a stranger's page (a link, a script
 * moving the tab: the session cookie goes along with SameSite=Lax) could otherwise save a supporter
 * list on the organizer's device, and record the export in their name. Outside includes `none`: a
 * link in an email or a chat opened in the browser says so, and so does a stranger's page that
 * redirects there. A bookmark asks first too (one more click); a browser that says nothing is let
 * through.
 */
function askedHere(render: Render): RequestHandler {
  return (req, res, next) => {
    if (openedHere(req)) return next();
    render(res, 'asked-elsewhere', { title: 'Open it from the console', again: req.originalUrl }, 403);
  };
}

/**
 * The organizer console at /admin. Mounted before the public body parsers: it parses its own
 * bodies with larger limits. The chain: cookies → session → (queues board) → body → CSRF →
 * sign-in pages → signed-in only → own password chosen → (admin only, where it applies) →
 * destructive forms asked about first → the pages.
 */
export function adminRoutes(ctx: AppContext): Router {
  const router = Router();
  const render = createRender(ctx);
  router.use((_req, res, next) => {
    // Console pages hold supporters' names and addresses: no shared cache keeps them.
    res.set('Cache-Control', 'no-store');
    res.set('X-Robots-Tag', 'noindex');
    next();
  });
  router.use(cookieParser(ctx.secret));
  router.use(loadSession(ctx));
  // Behind the same gates as every console page: an organizer given a password by someone else
  // chooses their own before anything else, this board too.
  router.use('/queues', requireOrganizer, requireOwnPassword, requireAdmin, queuesBoard(ctx));
  router.use(utf8CharsetAliases);
  router.use(CSV_PATHS, ...csvUpload(), express.urlencoded({ extended: false, limit: CSV_BYTES + FORM_BYTES, parameterLimit: 50, verify: utf8Form }));
  router.use(express.urlencoded({ extended: false, limit: FORM_LIMIT, parameterLimit: 100, verify: utf8Form }));
  // Before the CSRF check, which would call a body it could not read an expired form.
  router.use(refuseUnreadBody('Console forms are sent as application/x-www-form-urlencoded, as the page itself sends them.'));
  router.use(oneValueEach);
  router.use(requireCsrf);
  const signIn = authRoutes(ctx, render);
  router.use(signIn);
  router.use(requireOrganizer);
  router.use(requireOwnPassword);
  // Admin-only forms are refused before they are asked about.
  router.post(['/organizers/:id/remove', '/organizers/:id/password', '/tokens/:id/revoke'], requireAdmin);
  router.post(SEND_AGAIN, sendAgainAdminOnly);
  router.post(ASK_FIRST, askFirst(render));
  router.get(GIVES_OUT.map((page) => page.path), askedHere(render));
  const areas = [dashboardRoutes, caseRoutes, updateRoutes, campaignRoutes, targetRoutes, letterRoutes, watchRoutes, operationsRoutes, peopleRoutes].map((area) => area(ctx, render));
  for (const area of areas) router.use(area);
  // A console address asked with a method it does not take: 405 with Allow, not "no such page".
  answerOtherMethods(router, {}, [signIn, ...areas]);
  router.use((_req, res) => render(res, 'error', { title: 'Not found', status: 404, message: 'There is no console page at this address.' }, 404));
  router.use(adminErrors(render));
  return router;
}

/**
 * Every console form has each field once: one sent twice (by hand; no page does) is refused, not
 * read as empty, which would save a ticked box as unticked or a role as the lesser one.
 */
const oneValueEach: RequestHandler = (req, _res, next) => {
  const body = req.body as Record<string, unknown> | undefined;
  const repeated = body && typeof body === 'object' ? Object.keys(body).find((k) => Array.isArray(body[k])) : undefined;
  next(repeated === undefined ? undefined : new RepeatedFieldError(repeated));
};
