import crypto from 'node:crypto';
import type { RequestHandler } from 'express';
import { ForbiddenError } from '../../errors.ts';

declare module 'express-serve-static-core' {
  interface Locals {
    /** The token every state-changing console form carries as `_csrf`. */
    csrfToken?: string;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Form fields never shown back: secrets, and the form's own machinery. */
const NOT_SHOWN = /password|^_csrf$|^request_key$|^step$|^expected$|^back$|^next$|^revision$|^letter_seen$|^question$|^confirmed$|^action$|^target$/;

/**
 * A console form sent from this site by a browser whose session ended meanwhile (8 hours idle, or
 * signed out in another tab), or was replaced (`signedInAgain`: signed in again in another tab, or
 * a password changed, which starts a new session). Nothing was done; `typed` is what the form
 * held, so the page can give it back to copy instead of losing it.
 */
export class SignedOutError extends Error {
  override name = 'SignedOutError';
  constructor(
    readonly typed: { name: string; value: string }[],
    readonly signedInAgain = false,
  ) {
    super('You were signed out, so nothing was saved.');
  }
}

/**
 * A sign-in form of this site sent by a browser that signed in meanwhile (in another tab): there
 * is nothing to do but go where the form was going.
 */
export class SignedInAlreadyError extends Error {
  override name = 'SignedInAlreadyError';
  constructor() {
    super('You are signed in already.');
  }
}

type Req = Parameters<RequestHandler>[0];

/**
 * An Origin naming this site: the Host the request came with, or PUBLIC_URL's (the app's `public
 * host` setting), since a proxy in front may pass on a Host of its own.
 */
function ourOrigin(req: Req, origin: string): boolean {
  if (!URL.canParse(origin)) return false;
  const { host } = new URL(origin);
  return host === req.get('host') || host === req.app.get('public host');
}

/** The browser says the form came from a page of this site (Fetch Metadata, else Origin). */
export function fromThisSite(req: Req): boolean {
  const site = req.get('sec-fetch-site');
  if (site) return site === 'same-origin';
  const origin = req.get('origin');
  return !!origin && ourOrigin(req, origin);
}

/**
 * The browser says another site's page sent the form (Fetch Metadata, else an Origin of another
 * host, or `null`). A client that says neither (curl, a server of one's own) is not counted.
 */
export function fromAnotherSite(req: Req): boolean {
  const site = req.get('sec-fetch-site');
  if (site) return site === 'cross-site';
  const origin = req.get('origin');
  return !!origin && !ourOrigin(req, origin);
}

/**
 * The browser says this page was opened from a page of this site, or it says nothing. Another
 * site's page (`cross-site`), another host of this one (`same-site`), and anything from outside
 * the browser (`none`: a bookmark, a typed address, but also a link in a mail or chat app, or a
 * stranger's link that redirects here) is not here.
 */
export function openedHere(req: Req): boolean {
  const site = req.get('sec-fetch-site');
  return !site || site === 'same-origin';
}

/**
 * A synchronizer token derived from the session it protects: HMAC(secret, kind:session id). It is
 * never stored, changes with every sign-in, and a cross-site page cannot read it.
 * `kind` keeps a signed-in session's token apart from a sign-in form's.
 */
export function csrfTokenFor(secret: string, kind: 'session' | 'login', sessionKey: string): string {
  return crypto.createHmac('sha256', secret).update(`csrf:${kind}:${sessionKey}`).digest('base64url');
}

const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((byte, i) => byte ^ b[i]!));

/**
 * The token as one form shows it: a random pad, then the token XOR the pad, new at every form.
 * A page compressed (by a proxy) with the token beside text the request chose would let someone
 * who makes the browser ask for it again and again, and watches the sizes, guess the token byte
 * by byte (BREACH); masked, its bytes differ on every page, and there is nothing to guess at.
 */
export function maskToken(token: string): string {
  const raw = Buffer.from(token, 'base64url');
  const pad = crypto.randomBytes(raw.length);
  return Buffer.concat([pad, xor(raw, pad)]).toString('base64url');
}

/**
 * The token a form sent, unmasked. One of twice the token's length is masked (maskToken); one of
 * its length is taken as it is, as pages served before tokens were masked sent it.
 */
function unmaskToken(sent: string, expected: string): string {
  const bytes = Buffer.from(sent, 'base64url');
  const length = Buffer.from(expected, 'base64url').length;
  if (bytes.length !== 2 * length) return sent;
  return xor(bytes.subarray(length), bytes.subarray(0, length)).toString('base64url');
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/**
 * Every POST (and other unsafe method) must carry the session's token, masked or not, as the
 * `_csrf` form field or an `X-CSRF-Token` header (admin.js's preview). Without it: 403, and the handler never runs.
 * Needs the session middleware first, which sets `res.locals.csrfToken`.
 */
export const requireCsrf: RequestHandler = (req, res, next) => {
  if (SAFE_METHODS.has(req.method)) return next();
  const expected = res.locals.csrfToken;
  const body = req.body as Record<string, unknown> | undefined;
  const sent = typeof body?._csrf === 'string' ? body._csrf : req.get('x-csrf-token');
  if (!expected || !sent || !same(unmaskToken(sent, expected), expected)) {
    // Signing out with no session left (signed out in another tab already) has nothing to protect.
    if (req.path === '/logout' && !res.locals.organizer) return next();
    if (req.path === '/login' && res.locals.organizer && fromThisSite(req)) {
      // The same organizer: nothing to do. Another: say who is signed in, rather than act as them.
      if (String(body?.email ?? '').trim().toLowerCase() === res.locals.organizer.email.toLowerCase()) throw new SignedInAlreadyError();
      throw new ForbiddenError(`This browser is signed in as ${res.locals.organizer.email} already (in another tab). Sign out first to sign in as someone else.`);
    }
    // A form of an earlier session of this browser: not another site's, so what it held comes back.
    if (sent && fromThisSite(req) && req.path !== '/login') {
      const typed = Object.entries(body ?? {})
        .filter(([name, value]) => !NOT_SHOWN.test(name) && typeof value === 'string' && value.trim() !== '')
        .map(([name, value]) => ({ name, value: value as string }));
      throw new SignedOutError(typed, !!res.locals.organizer);
    }
    throw new ForbiddenError('This form has expired or did not come from this site. Go back, reload the page and try again.');
  }
  next();
};
