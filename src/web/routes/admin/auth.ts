import { Router, type Request, type Response } from 'express';
import type { AppContext } from '../../../context.ts';
import { RateLimitedError, ValidationError } from '../../../errors.ts';
import { changePassword, checkLogin, deviceTag, findOrganizerByEmail, isTrustedDevice, LOCKOUT_SECONDS, recordAuditOf, type Organizer } from '../../../organizers/service.ts';
import { randomToken } from '../../../tokens.ts';
import { budget, localBudget } from '../../../budgets.ts';
import { clientNetwork } from '../../middleware/limits.ts';
import { cookieOptions, ensureLoginCookie, requireOrganizer, setFlash, startSession, stopSession } from '../../middleware/session.ts';
import { formErrors, safeNext, signedInLanding, str, type Render } from './render.ts';

/** Failed sign-ins one address may make per window, across every account, from untrusted browsers. */
const LOGIN_FAILURES_PER_IP = 20;
/** Failed sign-ins one trusted device may make per day before it counts as untrusted. */
const LOGIN_FAILURES_PER_DEVICE = 5;
const DEVICE_WINDOW_SECONDS = 24 * 3600;
/** Wrong current passwords per organizer per window on the change-password form. */
const PASSWORD_FAILURES = 5;
const LOGIN_WINDOW_SECONDS = 15 * 60;
/** One message for every failure: it must not tell an unknown email from a wrong password or a lockout. */
export const LOGIN_FAILED = `Wrong email or password. After several failed attempts sign-in pauses for ${LOCKOUT_SECONDS / 60} minutes.`;
/**
 * A browser the organizer signed in from: their own device keeps working while a stranger's
 * guesses lock the account (OWASP, "device cookies"). Signed, so only the server mints it.
 */
export const DEVICE_COOKIE = 'appeal_device';
const DEVICE_MAX_AGE_MS = 365 * 24 * 3600 * 1000;

interface Device {
  organizerId: number;
  nonce: string;
  /** Ties the cookie to the password it was earned with: a new password ends every device's trust. */
  tag: string;
}

function readDevice(req: Request): Device | undefined {
  const value = (req.signedCookies as Record<string, unknown> | undefined)?.[DEVICE_COOKIE];
  const m = typeof value === 'string' ? /^(\d{1,12})\.([\w-]{16,64})\.([\w-]{8,64})$/.exec(value) : null;
  return m ? { organizerId: Number(m[1]), nonce: m[2]!, tag: m[3]! } : undefined;
}

/**
 * A device cookie for a browser that has just shown the organizer's current password: it still
 * gets in while someone else's guesses hold the account locked, until the password changes.
 */
function trustDevice(ctx: AppContext, res: Response, organizer: Pick<Organizer, 'id' | 'password_hash'>): void {
  const value = `${organizer.id}.${randomToken(24)}.${deviceTag(ctx.secret, organizer)}`;
  res.cookie(DEVICE_COOKIE, value, { ...cookieOptions(ctx), maxAge: DEVICE_MAX_AGE_MS });
}

/** Sign-in, sign-out and the organizer's own password. */
export function authRoutes(ctx: AppContext, render: Render): Router {
  const router = Router();
  const perIp = localBudget(ctx, 'login', LOGIN_FAILURES_PER_IP, LOGIN_WINDOW_SECONDS);
  const perDevice = budget(ctx, 'login-device', LOGIN_FAILURES_PER_DEVICE, DEVICE_WINDOW_SECONDS);
  const perOrganizer = budget(ctx, 'password', PASSWORD_FAILURES, LOGIN_WINDOW_SECONDS);

  router.get('/login', (req, res) => {
    if (res.locals.organizer) return res.redirect(303, signedInLanding(req.query.next));
    ensureLoginCookie(ctx, res);
    render(res, 'login', { title: 'Sign in', next: safeNext(req.query.next), values: {} });
  });

  router.post('/login', async (req, res) => {
    const email = str(req.body?.email);
    // A field left empty is a slip, not a guess: said as such, and not counted against anyone.
    if (email.trim() === '' || str(req.body?.password) === '') {
      const missing = email.trim() === '' ? (str(req.body?.password) === '' ? 'your email and password' : 'your email') : 'your password';
      return render(res, 'login', { title: 'Error: Sign in', next: safeNext(req.body?.next), values: { email }, failed: `Enter ${missing}.` }, 400);
    }
    const device = readDevice(req);
    // Trusted: a device cookie earned by this email's organizer with their current password, and
    // with failures left (one that keeps failing falls back under the per-IP limit and the lockout).
    const owner = device && (await findOrganizerByEmail(ctx.db, email.trim()));
    const trusted = !!device && !!owner && isTrustedDevice(ctx.secret, owner, device) && (await perDevice.take(device.nonce)) === undefined;
    if (!trusted) {
      const wait = await perIp.take(clientNetwork(req.ip ?? 'unknown'));
      if (wait !== undefined) throw new RateLimitedError(wait);
    }
    const result = await checkLogin(ctx.db, email, str(req.body?.password), { trustedDeviceOf: trusted ? device!.organizerId : undefined });
    if (result.kind === 'failed') {
      return render(res, 'login', { title: 'Error: Sign in', next: safeNext(req.body?.next), values: { email }, failed: LOGIN_FAILED }, 401);
    }
    await (trusted ? perDevice.giveBack(device!.nonce) : perIp.giveBack(clientNetwork(req.ip ?? 'unknown')));
    if (!device || !isTrustedDevice(ctx.secret, result.organizer, device)) trustDevice(ctx, res, result.organizer);
    await startSession(ctx, res, result.organizer.id);
    res.redirect(303, signedInLanding(req.body?.next));
  });

  router.post('/logout', async (_req, res) => {
    const organizer = res.locals.organizer;
    if (organizer) {
      await stopSession(ctx, res);
      await recordAuditOf(ctx, organizer.id, 'logout', `organizer:${organizer.id}`);
      setFlash(ctx, res, 'You are signed out.');
    }
    res.redirect(303, '/admin/login');
  });

  router.get('/password', requireOrganizer, (req, res) => {
    render(res, 'password', { title: 'Change your password', section: 'account', mustChange: res.locals.organizer!.password_must_change, next: safeNext(req.query.next) });
  });

  router.post('/password', requireOrganizer, async (req, res) => {
    // A stolen session must not become a way to guess the password it was stolen without.
    const organizerId = String(res.locals.organizer!.id);
    const wait = await perOrganizer.take(organizerId);
    if (wait !== undefined) throw new RateLimitedError(wait);
    let changed;
    try {
      changed = await changePassword(ctx.db, res.locals.organizer!, {
        current: str(req.body?.current_password),
        next: str(req.body?.new_password),
        confirm: str(req.body?.confirm_password),
      });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      if (!err.fields.current_password) await perOrganizer.giveBack(organizerId);
      return render(res, 'password', { title: 'Change your password', section: 'account', mustChange: res.locals.organizer!.password_must_change, next: safeNext(req.body?.next), ...formErrors(err.fields, {}, ['current_password', 'new_password', 'confirm_password']) }, 400);
    }
    await perOrganizer.giveBack(organizerId);
    // The change ended every session of theirs, this one too: this browser starts a new one, and,
    // having shown the password, is trusted with the new one as a sign-in would make it (its
    // device cookie was earned with the old password, which no longer counts).
    trustDevice(ctx, res, changed);
    await startSession(ctx, res, res.locals.organizer!.id);
    setFlash(ctx, res, 'Your password is changed. Any other browser signed in as you is signed out.');
    res.redirect(303, signedInLanding(req.body?.next));
  });

  return router;
}
