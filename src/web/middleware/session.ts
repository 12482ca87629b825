import type { CookieOptions, Request, RequestHandler, Response } from 'express';
import type { AppContext } from '../../context.ts';
import { ForbiddenError } from '../../errors.ts';
import { createSession, endSession, findSession } from '../../organizers/service.ts';
import { randomToken } from '../../tokens.ts';
import { csrfTokenFor, fromThisSite, SignedOutError } from './csrf.ts';

/** The console session: a random id, signed; the database holds only its hash. */
export const SESSION_COOKIE = 'appeal_session';
/** Before sign-in: a random value the sign-in form's CSRF token is derived from. */
export const LOGIN_COOKIE = 'appeal_login';
const FLASH_COOKIE = 'appeal_flash';

declare module 'express-serve-static-core' {
  interface Locals {
    /** The raw id of the console session, to end or keep it. */
    sessionId?: string;
    flash?: string;
  }
}

/**
 * HttpOnly so no script reads it, SameSite=Lax so another site's form posts arrive without it,
 * Secure behind https, and scoped to /admin. No max-age: it ends with the browser, and the
 * server ends it sooner (src/organizers/sessions.ts).
 */
export function cookieOptions(ctx: Pick<AppContext, 'config'>): CookieOptions {
  return { httpOnly: true, sameSite: 'lax', secure: ctx.config.publicUrl.startsWith('https:'), path: '/admin', signed: true };
}

const signedCookie = (req: Request, name: string): string | undefined => {
  const value = (req.signedCookies as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' && value ? value : undefined;
};

/**
 * Loads the organizer of the session cookie into `res.locals.organizer`, with the CSRF token of
 * the session (or, signed out, of the sign-in cookie) and a one-time flash message.
 * Needs cookie-parser with the server secret before it.
 */
export function loadSession(ctx: AppContext): RequestHandler {
  return async (req, res, next) => {
    const sessionId = signedCookie(req, SESSION_COOKIE);
    // A page's background poll (admin.js reads a campaign's counts every few seconds; the queues
    // board reads its API every 5 s) keeps no session alive: a console left open on either page
    // would otherwise never sign out.
    const poll = req.method === 'GET' && (req.path.endsWith('.json') || req.path.startsWith('/queues/api/'));
    const organizer = sessionId ? await findSession(ctx.db, sessionId, !poll) : undefined;
    if (organizer && sessionId) {
      res.locals.organizer = organizer;
      res.locals.sessionId = sessionId;
      res.locals.csrfToken = csrfTokenFor(ctx.secret, 'session', sessionId);
    } else {
      if (sessionId) res.clearCookie(SESSION_COOKIE, cookieOptions(ctx));
      const loginKey = signedCookie(req, LOGIN_COOKIE);
      if (loginKey) res.locals.csrfToken = csrfTokenFor(ctx.secret, 'login', loginKey);
    }
    const flash = signedCookie(req, FLASH_COOKIE);
    if (flash) {
      res.locals.flash = flash;
      res.clearCookie(FLASH_COOKIE, cookieOptions(ctx));
    }
    next();
  };
}

/** Gives a signed-out browser the cookie its sign-in form's token is tied to. */
export function ensureLoginCookie(ctx: AppContext, res: Response): void {
  if (res.locals.csrfToken) return;
  const key = randomToken(24);
  res.cookie(LOGIN_COOKIE, key, cookieOptions(ctx));
  res.locals.csrfToken = csrfTokenFor(ctx.secret, 'login', key);
}

/** A new session id at every sign-in, so an id planted before sign-in is worth nothing after. */
export async function startSession(ctx: AppContext, res: Response, organizerId: number): Promise<void> {
  const id = await createSession(ctx.db, organizerId);
  res.cookie(SESSION_COOKIE, id, cookieOptions(ctx));
  res.clearCookie(LOGIN_COOKIE, cookieOptions(ctx));
}

export async function stopSession(ctx: AppContext, res: Response): Promise<void> {
  if (res.locals.sessionId) await endSession(ctx.db, res.locals.sessionId);
  res.clearCookie(SESSION_COOKIE, cookieOptions(ctx));
}

/** A message shown once on the next page (after a redirect). */
export function setFlash(ctx: AppContext, res: Response, message: string): void {
  res.cookie(FLASH_COOKIE, flashText(message), { ...cookieOptions(ctx), maxAge: 60_000 });
}

/** How long a flash may be once percent-encoded: a cookie holds about 4 kB with its name and signature. */
const FLASH_ENCODED_MAX = 3_000;

/**
 * A flash message as its cookie can carry it: whole when it fits, else cut between characters
 * with an ellipsis. Cut inside a character (an emoji), the cookie could not be encoded, and the
 * page after an action that had been done answered with an error.
 */
export function flashText(message: string): string {
  let text = '';
  let size = 0;
  for (const char of message.replace(/\p{Cs}/gu, '\uFFFD')) {
    const encoded = encodeURIComponent(char).length;
    if (size + encoded > FLASH_ENCODED_MAX) return `${text}…`;
    text += char;
    size += encoded;
  }
  return text;
}

/**
 * Signed-out visitors go to the sign-in page and come back afterwards; other methods get 403, or,
 * for a form this site's page sent after its session ended, the signed-out page (SignedOutError;
 * a form read before this check gives back what was typed, see requireCsrf).
 */
export const requireOrganizer: RequestHandler = (req, res, next) => {
  if (res.locals.organizer) return next();
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    if (fromThisSite(req)) throw new SignedOutError([]);
    throw new ForbiddenError('Sign in first.');
  }
  const back = req.originalUrl.startsWith('/admin') && !req.originalUrl.startsWith('/admin/login') ? req.originalUrl : '/admin';
  res.redirect(303, `/admin/login?next=${encodeURIComponent(back)}`);
};

/**
 * An organizer signed in with a password someone else was shown (generated when an admin added
 * them in the console) sees the change-password page first, whatever they open; signing out still
 * works.
 */
export const requireOwnPassword: RequestHandler = (req, res, next) => {
  // The full path: this also guards routers mounted deeper (the queues board at /admin/queues).
  const path = req.baseUrl + req.path;
  if (!res.locals.organizer?.password_must_change || path === '/admin/password' || path === '/admin/logout') return next();
  // Then on to the page they opened (the one a sign-in led to), as a page, not as a form sent again.
  const opened = req.method === 'GET' && req.originalUrl !== '/admin' ? `?next=${encodeURIComponent(req.originalUrl)}` : '';
  res.redirect(303, `/admin/password${opened}`);
};

/** Refuses an organizer who is not an admin, saying `why`. */
export function adminOnly(why: string): RequestHandler {
  return (_req, res, next) => {
    if (res.locals.organizer?.role !== 'admin') throw new ForbiddenError(why);
    next();
  };
}

/** Admin-only pages: organizers and API tokens, the queues. */
export const requireAdmin = adminOnly('Only an admin may open this page.');
