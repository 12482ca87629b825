import { Router, type RequestHandler } from 'express';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { AppContext } from '../../../context.ts';
import { RateLimitedError, ValidationError } from '../../../errors.ts';
import { changePassword, checkLogin, endOtherSessions, LOCKOUT_SECONDS } from '../../../organizers/service.ts';
import { hashIdentifier } from '../../../tokens.ts';
import { ensureLoginCookie, requireOrganizer, setFlash, startSession, stopSession } from '../../middleware/session.ts';
import { formErrors, safeNext, str, type Render } from './render.ts';

/** Failed sign-ins one address may make per window, across every account. */
const LOGIN_FAILURES_PER_IP = 20;
const LOGIN_WINDOW_SECONDS = 15 * 60;
/** One message for every failure: it must not tell an unknown email from a wrong password or a lockout. */
export const LOGIN_FAILED = `Wrong email or password. After several failed attempts sign-in pauses for ${LOCKOUT_SECONDS / 60} minutes.`;

/** Counts failed sign-ins per IP in Redis (keyed hash, like the public limits); success costs nothing. */
function loginLimiter(ctx: AppContext) {
  const limiter = new RateLimiterRedis({
    storeClient: ctx.redis.client,
    keyPrefix: `${ctx.config.queuePrefix}:rl:login`,
    points: LOGIN_FAILURES_PER_IP,
    duration: LOGIN_WINDOW_SECONDS,
  });
  const key = (ip: string | undefined) => hashIdentifier(ctx.secret, ip ?? 'unknown');
  const check: RequestHandler = async (req, _res, next) => {
    const state = await limiter.get(key(req.ip));
    if (state && state.consumedPoints >= LOGIN_FAILURES_PER_IP) throw new RateLimitedError(Math.ceil(state.msBeforeNext / 1000));
    next();
  };
  return { check, fail: (ip: string | undefined) => limiter.penalty(key(ip), 1) };
}

/** Sign-in, sign-out and the organizer's own password. */
export function authRoutes(ctx: AppContext, render: Render): Router {
  const router = Router();
  const limiter = loginLimiter(ctx);

  router.get('/login', (req, res) => {
    if (res.locals.organizer) return res.redirect(303, safeNext(req.query.next));
    ensureLoginCookie(ctx, res);
    render(res, 'login', { title: 'Sign in', next: safeNext(req.query.next), values: {} });
  });

  router.post('/login', limiter.check, async (req, res) => {
    const email = str(req.body?.email);
    const result = await checkLogin(ctx.db, email, str(req.body?.password));
    if (result.kind === 'failed') {
      await limiter.fail(req.ip);
      return render(res, 'login', { title: 'Sign in', next: safeNext(req.body?.next), values: { email }, failed: LOGIN_FAILED }, 401);
    }
    await startSession(ctx, res, result.organizer.id);
    res.redirect(303, safeNext(req.body?.next));
  });

  router.post('/logout', async (_req, res) => {
    if (res.locals.organizer) {
      await stopSession(ctx, res);
      setFlash(ctx, res, 'You are signed out.');
    }
    res.redirect(303, '/admin/login');
  });

  router.get('/password', requireOrganizer, (_req, res) => {
    render(res, 'password', { title: 'Change your password', section: 'account' });
  });

  router.post('/password', requireOrganizer, async (req, res) => {
    try {
      await changePassword(ctx.db, res.locals.organizer!, {
        current: str(req.body?.current_password),
        next: str(req.body?.new_password),
        confirm: str(req.body?.confirm_password),
      });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      return render(res, 'password', { title: 'Change your password', section: 'account', ...formErrors(err.fields) }, 400);
    }
    // A stolen session must not outlive the password it was stolen with: all end, this one restarts.
    await endOtherSessions(ctx.db, res.locals.organizer!.id);
    await startSession(ctx, res, res.locals.organizer!.id);
    setFlash(ctx, res, 'Your password is changed. Any other browser signed in as you is signed out.');
    res.redirect(303, '/admin');
  });

  return router;
}
