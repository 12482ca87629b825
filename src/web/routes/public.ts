import { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import type { AppContext } from '../../context.ts';
import { DISCLOSE_LEVELS, hiddenFor, letterFingerprint } from '../../campaigns/letter-template.ts';
import { discloseWords, learnsAddress, previewLetterHtml } from '../../campaigns/preview.ts';
import { getPublicCampaign, listPublicCampaigns, type CampaignPage } from '../../campaigns/service.ts';
import { targetsFingerprint } from '../../campaigns/types.ts';
import { getPublicCase } from '../../cases/service.ts';
import { CampaignNotOpenError, ConflictError, LetterChangedError, RateLimitedError, TargetsChangedError, ValidationError } from '../../errors.ts';
import { formatLetterDate, letterToConfirm } from '../../signatures/emails.ts';
import { nextDigestLetter } from '../../digests/emails.ts';
import { confirmSignature, findSignatureByToken, pretendToSign, readSeenPage, seenPageField, sign } from '../../signatures/service.ts';
import { listCaseUpdates } from '../../alerts/service.ts';
import { emailedToken, errorSummary, idParam, timeCursor, timePage, typedValues } from '../forms.ts';
import { ADDRESS_LIMITED, mapError, setErrorHeaders, waitInWords } from '../middleware/errors.ts';
import { fromAnotherSite } from '../middleware/csrf.ts';
import { honeypotFilled } from '../middleware/honeypot.ts';
import type { createLimits } from '../middleware/limits.ts';
import { answerOtherMethods } from '../middleware/method-not-allowed.ts';
import { subscribeForm } from './subscribers.ts';

/** Live campaigns a page of the home page lists, changed last first. */
const HOME_PAGE = 60;

/** Sign form field → service field. The form keeps DESIGN.md's snake_case names. */
const SIGN_FIELDS = { full_name: 'fullName', email: 'email', city: 'city', country: 'country', personal_note: 'personalNote', subscribe: 'subscribe' } as const;

function formToInput(body: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(SIGN_FIELDS).map(([form, key]) => [key, body[form]]));
}

function errorsToForm(fields: Record<string, string>) {
  const byKey = Object.fromEntries(Object.entries(SIGN_FIELDS).map(([form, key]) => [key, form]));
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [byKey[k] ?? k, v]));
}

/**
 * The confirmation page's title and status. A campaign that closed before the signer confirmed
 * takes no more letters, nor does one whose every official it was to go to was taken off since:
 * no button to press. The title says what the heading says, and that a press was refused: a
 * screen reader announces it first.
 */
function confirmPageState(confirmed: boolean, found: { campaignClosed: boolean; noOfficials: boolean }, changed?: string): [title: string, status: number] {
  if (confirmed) return ['Already confirmed', 200];
  if (found.campaignClosed) return ['Campaign closed', 410];
  if (found.noOfficials) return ['No official to write to', 409];
  return changed ? ['Error: Confirm your signature', 409] : ['Confirm your signature', 200];
}

/** A sign form sent back: what was typed, its mistakes, the page it was on (`seen`), or a preview. */
interface CampaignForm {
  values?: Record<string, string>;
  errors?: Record<string, string>;
  seen?: unknown;
  previewed?: boolean;
}

const AND = new Intl.ListFormat('en', { type: 'conjunction' });

/**
 * How the page speaks of where the letter goes: `goes` (to …) and how each official gets it. A
 * closed campaign speaks in the past, or says no letter went when none did.
 */
function whereLettersGo(when: 'goes' | 'went' | 'none', digest: boolean): { goes: string; copies: string } {
  if (when === 'none') return { goes: 'was to go', copies: 'Nobody confirmed a signature before it closed, so no letter was sent.' };
  const past = when === 'went';
  return {
    goes: when,
    copies: digest
      ? `Once a day each official ${past ? 'received' : 'receives'} one copy listing everyone who signed since the last one.`
      : `Each official ${past ? 'received' : 'receives'} their own copy.`,
  };
}

/**
 * The campaign page's data; with `form`, a form sent back: what was typed, its mistakes, and `seen`,
 * the `letter` field it carried. Where letters go without confirmation, a form from a page that
 * listed other targets says so, whatever else sent it back: the page it comes back on lists them
 * as they are, so the next post would not be refused for it (TargetsChangedError). A form
 * from a page that showed another letter says that too: it comes back with the letter as it is.
 */
export function campaignView(c: CampaignPage, form: CampaignForm = {}, status = 200) {
  const seen = readSeenPage(form.seen);
  const targetsChanged = !c.campaign.require_confirmation && seen !== undefined && seen.targets !== targetsFingerprint(c.targets);
  const letterChanged = !!seen?.letter && seen.letter !== letterFingerprint(c.campaign.letter_subject, c.campaign.letter_body);
  const values = form.values ?? {};
  // The letter as the official told the most reads it, so every field a supporter types shows
  // where it goes (a name-only court first in the list would hide the city and country); the
  // page says what each official learns.
  const shownTo = c.targets.reduce<(typeof c.targets)[number] | undefined>(
    (best, t) => (!best || DISCLOSE_LEVELS.indexOf(t.disclose) > DISCLOSE_LEVELS.indexOf(best.disclose) ? t : best),
    undefined,
  );
  const digest = c.campaign.delivery_mode === 'digest';
  const preview = previewLetterHtml(
    c.campaign.letter_subject,
    c.campaign.letter_body,
    {
      target: { name: shownTo?.name ?? '', title: shownTo?.title ?? '', salutation: shownTo?.salutation ?? '' },
      case: { personName: c.case.person_name, location: c.case.location },
      campaign: { title: c.campaign.title },
      date: formatLetterDate(new Date()),
    },
    { fullName: values.full_name ?? '', city: values.city ?? '', country: values.country ?? '', personalNote: values.personal_note ?? '' },
    hiddenFor(c.campaign.delivery_mode, shownTo?.disclose ?? 'name_place'),
  );
  return {
    // A screen reader hears the title first: it says the form came back refused.
    // A preview (the form's Preview button, without scripts) says so: nothing was signed.
    title: status >= 400 ? `Error: ${c.campaign.title}` : form.previewed ? `Preview of your letter: ${c.campaign.title}` : c.campaign.title,
    previewed: form.previewed,
    campaign: c.campaign,
    case: c.case,
    targets: c.targets.map((t) => ({ ...t, learns: discloseWords(t.disclose, c.campaign.require_confirmation, digest) })),
    // The officials the email field's note names as getting the address.
    replyTo: AND.format(c.targets.filter((t) => learnsAddress(t.disclose, c.campaign.require_confirmation)).map((t) => t.name)),
    digest,
    confirmFirst: c.campaign.require_confirmation,
    signatures: c.signatures,
    open: c.campaign.status === 'live',
    ...whereLettersGo(c.campaign.status === 'closed' ? (c.lettersWent ? 'went' : 'none') : 'goes', digest),
    preview,
    // What the page shows, as a signature made from it carries it back: the letter (bindSeenLetter)
    // and the targets with what each learns (TargetsChangedError).
    seenLetter: seenPageField(c.campaign, c.targets),
    targetsChanged,
    letterChanged,
    // Sent back for the campaign's status: the notice, not the top of the page, is where to look.
    refused: form.values !== undefined && !form.previewed,
    values,
    errors: form.errors,
    errorList: form.errors && errorSummary(form.errors),
  };
}

export function publicRoutes(ctx: AppContext, limits: ReturnType<typeof createLimits>): Router {
  const { db, views } = ctx;
  const router = Router();
  router.param('token', emailedToken);
  const page = (res: Response, name: string, data: object, status = 200) =>
    res.status(status).type('html').send(views.page(name, { ...res.locals, ...data }));

  /** The campaign page; with `form`, a form sent back (see campaignView). */
  async function renderCampaign(res: Response, slug: string, form: CampaignForm = {}, status = 200) {
    page(res, 'campaign', campaignView(await getPublicCampaign(db, slug), form, status), status);
  }

  // A bare 303: res.redirect negotiates a body for the Accept header that no browser shows, and on
  // the busiest public route that was a few per cent of each request's CPU (`npm run bench`).
  const seeOther = (res: Response, url: string) => res.status(303).location(url).end();
  const checkEmail = (slug: string, res: Response) => seeOther(res, `/c/${encodeURIComponent(slug)}/check-email`);

  router.get('/', async (req, res) => {
    const before = timeCursor(req.query.before);
    const { rows, next } = timePage(await listPublicCampaigns(db, { status: 'live' }, { before, limit: HOME_PAGE + 1 }), HOME_PAGE);
    page(res, 'home', { title: 'Campaigns', campaigns: rows, paged: !!before, next });
  });

  router.get('/c/:slug', async (req, res) => {
    await renderCampaign(res, req.params.slug);
  });

  /**
   * What a sign form sent back shows of what was typed. Another site's form (its browser says so)
   * gets the campaign without it, as /preview does: a page of ours must not show a letter in
   * anyone's name worded by a stranger's form, and a form with a mistake in it would otherwise.
   */
  const typedBack = (req: Request) => (fromAnotherSite(req) ? {} : typedValues(req.body));

  /**
   * A sign form refused for its address's limit comes back with what was typed, as a form
   * with mistakes does (still 429, with Retry-After): a personal note should not have to be
   * written twice. So does the note of one refused because the campaign paused or closed
   * meanwhile. A client over the per-IP limit gets the plain error page: rendering the campaign
   * for a flood would undo what the limit is for.
   */
  const keepTyped: ErrorRequestHandler = async (err, req, res, next) => {
    // Paused or closed since the page was opened: the campaign as it is now, with the note typed.
    if (err instanceof CampaignNotOpenError) {
      return renderCampaign(res, String(req.params.slug), { values: typedBack(req), seen: req.body?.letter }, mapError(err)!.status);
    }
    // The targets and the letter as they are now, with what was typed, to be read and signed again.
    if (err instanceof TargetsChangedError || err instanceof LetterChangedError) return renderCampaign(res, String(req.params.slug), { values: typedBack(req), seen: req.body?.letter }, 409);
    if (!(err instanceof RateLimitedError) || err.by !== 'address') return next(err);
    setErrorHeaders(res, err);
    const email = `this address ${ADDRESS_LIMITED}; please try again in ${waitInWords(err.retryAfterSeconds)}`;
    await renderCampaign(res, String(req.params.slug), { values: typedBack(req), errors: { email }, seen: req.body?.letter }, 429);
  };

  router.post(
    '/c/:slug/sign',
    limits.perIp,
    async (req: Request, res: Response) => {
      const slug = String(req.params.slug);
      const input = formToInput(req.body ?? {});
      // Which letter the page showed (hidden field `letter`): the signature carries that text.
      const seen = readSeenPage(req.body?.letter);
      try {
        const result = honeypotFilled(req.body)
          ? await pretendToSign(db, slug, input)
          : await limits.perEmail(req, input.email, () => sign(db, ctx, slug, input, { via: 'sign form', seen }));
        // Alerts still need the opt-in email: the page says it is coming (said of the ticked box
        // alone, so it tells nothing of whether the address signed or subscribed before).
        if (!result.confirmationRequired) return seeOther(res, `/c/${encodeURIComponent(slug)}/thanks${result.alertsAsked ? '?alerts=1' : ''}`);
        checkEmail(slug, res);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        await renderCampaign(res, slug, { values: typedBack(req), errors: errorsToForm(err.fields), seen: req.body?.letter }, 400);
      }
    },
    keepTyped,
  );

  /**
   * The letter with what was typed in it, signing nothing: the page's script shows it as one types,
   * and without scripts the form's Preview button asks for it here. Nothing is stored or counted.
   * Asked by another site's page (its browser says so), the campaign is shown without the text:
   * a page of ours must not show a letter in anyone's name worded by a stranger's form.
   */
  router.post('/c/:slug/preview', async (req, res) => {
    if (fromAnotherSite(req)) return seeOther(res, `/c/${encodeURIComponent(String(req.params.slug))}`);
    await renderCampaign(res, String(req.params.slug), { values: typedValues(req.body), seen: req.body?.letter, previewed: true });
  });

  // The form's address is in the address bar after a form came back with mistakes; opening it
  // again (a reload, a bookmark) shows the campaign, not an error about methods.
  router.get(['/c/:slug/sign', '/c/:slug/preview'], (req, res) => seeOther(res, `/c/${encodeURIComponent(String(req.params.slug))}`));

  router.get('/c/:slug/check-email', async (req, res) => {
    const c = await getPublicCampaign(db, req.params.slug);
    // Closed since the form was sent (or the address kept): its confirmation email is not sent, nor a letter.
    if (c.campaign.status === 'closed') return page(res, 'check-email', { title: `Campaign closed: ${c.campaign.title}`, campaign: c.campaign, case: c.case, closed: true }, 410);
    page(res, 'check-email', { title: `Check your email to confirm your signature: ${c.campaign.title}`, campaign: c.campaign, case: c.case });
  });

  router.get('/c/:slug/thanks', async (req, res) => {
    const c = await getPublicCampaign(db, req.params.slug);
    const url = `${ctx.config.publicUrl}/c/${c.campaign.slug}`;
    page(res, 'thanks', {
      title: `Thank you for signing: ${c.campaign.title}`, campaign: c.campaign, case: c.case, signatures: c.signatures, shareUrl: url, shareText: `${c.campaign.title}: add your name`,
      alertsAsked: req.query.alerts === '1',
    });
  });

  const confirmPage = async (res: Response, token: string, changed?: string) => {
    const found = await findSignatureByToken(db, token);
    const confirmed = found.signature.status === 'confirmed';
    // City and country apart, each isolated on the page: a Uyghur city before a Latin-script country
    // would otherwise swap places with it.
    const place = [found.signature.city, found.signature.country].filter(Boolean);
    const [title, status] = confirmPageState(confirmed, found, changed);
    // What the button sends, word for word: to the first official, as the page lists them.
    const first = !confirmed && !found.campaignClosed ? found.targets[0] : undefined;
    const letter = first && (found.digest ? await nextDigestLetter(db, first.id, found.signature.id) : await letterToConfirm(db, found.signature.id, first.id));
    page(res, 'confirm', { title, token, ...found, place, confirmed, changed, letter }, status);
  };

  router.get('/confirm/:token', async (req, res) => confirmPage(res, req.params.token));

  router.post('/confirm/:token', async (req, res) => {
    // The version of the signature the page showed. A post without one did not come from the page
    // (a client of its own, which chose): it confirms the signature as it is, from the newest link.
    // Anything but text or a number (a JSON client's object) is a version no page showed.
    const v: unknown = req.body?.v;
    const shown = v === undefined || v === '' ? undefined : (typeof v === 'string' || typeof v === 'number') && /^\d{1,9}$/.test(String(v)) ? Number(v) : -1;
    // The officials it listed; a page from before the button carried them confirms without the check.
    const targetsSeen = typeof req.body?.t === 'string' && /^[0-9a-f]{16}$/.test(req.body.t) ? req.body.t : undefined;
    try {
      const result = await confirmSignature(db, ctx, req.params.token, shown, targetsSeen);
      res.redirect(303, `/c/${encodeURIComponent(result.campaignSlug)}/thanks`);
    } catch (err) {
      // Closed while the page was open: the page as it now is says what that means for the letter.
      if (err instanceof CampaignNotOpenError) return confirmPage(res, req.params.token);
      if (!(err instanceof ConflictError) || !['signature_changed', 'targets_changed', 'no_officials'].includes(err.code)) throw err;
      await confirmPage(res, req.params.token, err.message);
    }
  });

  router.get('/cases/:slug', async (req, res) => {
    const kase = await getPublicCase(db, req.params.slug);
    const campaigns = await listPublicCampaigns(db, { caseId: kase.id });
    // Older updates a page at a time (`?before=<id>`): a case's whole history stays readable.
    const before = req.query.before === undefined ? undefined : idParam(req.query.before, 'page');
    const { updates, older } = await listCaseUpdates(db, kase.id, { before });
    page(res, 'case', { title: kase.person_name, case: kase, campaigns, updates, older, newer: before !== undefined, subscribeForm: subscribeForm(kase, {}, 'case') });
  });

  answerOtherMethods(router);
  return router;
}
