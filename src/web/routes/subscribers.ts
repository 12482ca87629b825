import { Router, type Request, type RequestHandler, type Response } from 'express';
import { answerOtherMethods } from '../middleware/method-not-allowed.ts';
import type { AppContext } from '../../context.ts';
import { getPublicCase } from '../../cases/service.ts';
import type { Case } from '../../cases/types.ts';
import { NotFoundError, ValidationError } from '../../errors.ts';
import {
  casesToChooseFrom,
  confirmSubscription,
  consentWording,
  findByManageToken,
  findOptin,
  OPTIN_ALREADY_CONFIRMED,
  getPreferences,
  pretendToSubscribe,
  subscribe,
  unsubscribe,
  updatePreferences,
} from '../../subscribers/service.ts';
import { PREFERENCES_WORDING, type ConsentSource } from '../../subscribers/types.ts';
import { emailedToken, errorSummary, typedValues } from '../forms.ts';
import { honeypotFilled } from '../middleware/honeypot.ts';
import type { createLimits } from '../middleware/limits.ts';

/** The page's title when the form comes back with mistakes: a screen reader hears it first. */
const FORM_ERROR_TITLE = 'Error: Case alerts';

/** Form field → service field: the form says `case`, the service and API say `caseSlug`. */
const FIELD_NAMES: Record<string, string> = { caseSlug: 'case' };

/** The page a subscribe form is on, as its `source` field says, for the consent record. */
const FORM_SOURCES: Record<string, ConsentSource> = { case: 'case page', subscribe: 'subscribe page' };

/**
 * What templates/partials/subscribers/form.hbs renders: for one case, or for all when `kase` is
 * absent; `on` is the page it is on (the subscribe page also offers one case, from `?case=`).
 */
export function subscribeForm(kase?: Pick<Case, 'slug' | 'person_name'>, form: { values?: object; errors?: Record<string, string> } = {}, on: keyof typeof FORM_SOURCES = 'subscribe') {
  return {
    source: on,
    caseSlug: kase?.slug,
    personName: kase?.person_name,
    consentText: consentWording(kase?.person_name),
    values: form.values ?? {},
    errors: form.errors,
    errorList: form.errors && errorSummary(form.errors),
  };
}

/** The form's page; a page served before forms said so posts none, and the case tells it then. */
const formSource = (source: unknown, kase: unknown): ConsentSource =>
  (typeof source === 'string' && Object.hasOwn(FORM_SOURCES, source) ? FORM_SOURCES[source] : undefined) ?? (kase ? 'case page' : 'subscribe page');

const asList = (v: unknown): string[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === 'string');

/** Subscribe (double opt-in), confirm, preferences and unsubscribe pages. */
export function subscriberRoutes(ctx: AppContext, limits: ReturnType<typeof createLimits>): Router {
  const { db, views } = ctx;
  const router = Router();
  router.param('token', emailedToken);
  const page = (res: Response, name: string, data: object, status = 200) =>
    res.status(status).type('html').send(views.page(name, { ...res.locals, ...data }));
  const checkEmail = (_req: Request, res: Response) => res.redirect(303, '/subscribe/check-email');
  const alreadyConfirmed = (res: Response) => page(res, 'subscribe-confirm', { title: 'Subscription confirmed', already: OPTIN_ALREADY_CONFIRMED });
  const caseOf = async (slug: unknown) => (typeof slug === 'string' && slug ? getPublicCase(db, slug) : undefined);

  /** The subscribe page: for one case, or for every case with the cases to follow one by one listed. */
  const subscribePage = async (res: Response, kase: Case | undefined, form: Parameters<typeof subscribeForm>[1] = {}, status = 200) =>
    page(res, 'subscribe', {
      title: form.errors ? FORM_ERROR_TITLE : 'Case alerts',
      subscribeForm: subscribeForm(kase, form),
      cases: kase ? undefined : await casesToChooseFrom(db),
    }, status);

  router.get('/subscribe', async (req, res) => {
    await subscribePage(res, await caseOf(req.query.case));
  });

  router.post('/subscribe', limits.perIp, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const typed = typedValues(body);
    // A case is one slug, or nothing for all cases; a list or a number (from a JSON body) is neither.
    if (body.case != null && typeof body.case !== 'string') {
      return subscribePage(res, undefined, { values: { email: typed.email }, errors: { case: 'choose one case, or none for all cases' } }, 400);
    }
    let kase: Awaited<ReturnType<typeof caseOf>>;
    try {
      kase = await caseOf(body.case);
    } catch (err) {
      // A case taken down since the page was opened: the form again, with what was typed.
      if (!(err instanceof NotFoundError)) throw err;
      const errors = { case: 'this case is no longer listed; subscribe without it to hear about every case' };
      return subscribePage(res, undefined, { values: { email: typed.email }, errors }, 404);
    }
    try {
      const input = { email: body.email, caseSlug: kase?.slug };
      // A bot that filled the honeypot is answered as a person would be, mistakes included.
      if (honeypotFilled(body)) await pretendToSubscribe(db, input);
      else await limits.perEmail(req, body.email, () => subscribe(db, ctx, input, formSource(body.source, kase)));
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const errors = Object.fromEntries(Object.entries(err.fields).map(([k, v]) => [FIELD_NAMES[k] ?? k, v]));
      return subscribePage(res, kase, { values: typed, errors }, 400);
    }
    checkEmail(req, res);
  });

  router.get('/subscribe/check-email', (_req, res) => {
    page(res, 'subscribe-check-email', { title: 'Check your email to confirm your subscription' });
  });

  // Mail scanners open links: the emailed link shows a button, and only its POST confirms.
  router.get('/subscribe/confirm/:token', async (req, res) => {
    const found = await findOptin(db, req.params.token);
    if (found.pending.length === 0) return alreadyConfirmed(res);
    page(res, 'subscribe-confirm', { title: 'Confirm your subscription', token: req.params.token, pending: found.pending });
  });

  // Answered with a redirect to the subscriber's own page, which says what they now follow: a
  // reload asks for that page again instead of posting the button again.
  router.post('/subscribe/confirm/:token', async (req, res) => {
    const confirmed = await confirmSubscription(db, ctx, req.params.token);
    // A second press (a double click) is answered as a page to GET, not one a reload posts again.
    if (confirmed === 'already-confirmed') return res.redirect(303, `/subscribe/confirm/${encodeURIComponent(req.params.token)}`);
    res.redirect(303, `/preferences/${encodeURIComponent(confirmed.manageToken)}?subscribed=1`);
  });

  router.get('/preferences/:token', async (req, res) => {
    const prefs = await getPreferences(db, req.params.token);
    if (req.query.subscribed === '1' && prefs.active) {
      return page(res, 'subscribe-confirmed', { title: 'You are subscribed', manageToken: req.params.token, following: prefs.following });
    }
    const followsNothing = !prefs.followsAll && !prefs.cases.some((c) => c.followed);
    page(res, 'preferences', {
      title: 'Your case alerts', token: req.params.token, saved: req.query.saved === '1', followsNothing, ...prefs, listed: prefs.cases.map((c) => c.id).join(' '),
      bounced: prefs.subscriber.status === 'bounced', keepDays: ctx.config.retentionUnsubscribedDays, wording: PREFERENCES_WORDING,
    });
  });

  router.post('/preferences/:token', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    // The ids the page listed; a form without them (a page from before they were sent) decides what would be listed now.
    const listed = typeof body.listed === 'string' && /^(\d{1,15}( \d{1,15})*)?$/.test(body.listed) ? body.listed.split(' ').filter(Boolean).map(Number) : undefined;
    const saved = await updatePreferences(db, req.params.token, { all: asList(body.all).includes('on'), caseSlugs: asList(body.cases), listed });
    res.redirect(303, `/preferences/${encodeURIComponent(req.params.token)}${saved ? '?saved=1' : ''}`);
  });

  router.get('/unsubscribe/:token', async (req, res) => {
    const subscriber = await findByManageToken(db, req.params.token);
    if (req.query.done === '1' && subscriber.status === 'unsubscribed') return page(res, 'unsubscribe-done', { title: 'You are unsubscribed' });
    // A bounced subscriber has not left: lifting the suppression would bring the alerts back.
    page(res, 'unsubscribe', { title: 'Unsubscribe', token: req.params.token, active: subscriber.status !== 'unsubscribed' });
  });

  answerOtherMethods(router, { '/unsubscribe/:token': ['POST'] });
  return router;
}

/**
 * RFC 8058 one-click: a mailbox provider POSTs `List-Unsubscribe=One-Click` with no cookie and no
 * way to answer a question, so the POST alone unsubscribes, whatever its body. Mounted as
 * `POST /unsubscribe/:token` before the body parsers: a body in a charset or encoding they refuse
 * must not keep anyone subscribed. (A handler, not a router: a router would answer OPTIONS for the
 * path itself, with only POST in Allow.)
 */
export function oneClickUnsubscribe(ctx: AppContext): RequestHandler {
  return async (req, res) => {
    await unsubscribe(ctx.db, String(req.params.token));
    // The page's button, in a browser: a page to GET, so a reload or Forward does not post again.
    // A mailbox provider's one-click POST gets its answer at once.
    if (req.get('sec-fetch-mode') === 'navigate') return res.redirect(303, `/unsubscribe/${encodeURIComponent(String(req.params.token))}?done=1`);
    res.type('html').send(ctx.views.page('unsubscribe-done', { ...res.locals, title: 'You are unsubscribed' }));
  };
}
