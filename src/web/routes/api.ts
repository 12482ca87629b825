import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import type { AppContext } from '../../context.ts';
import { changeCampaignStatus, createCampaign, getCampaign, getCampaignStats } from '../../campaigns/service.ts';
import { listTargets, targetsForAudit } from '../../campaigns/targets.ts';
import type { Campaign, Target } from '../../campaigns/types.ts';
import { createCase, getCase } from '../../cases/service.ts';
import type { Case } from '../../cases/types.ts';
import { UnsupportedCharsetError, UnsupportedMediaTypeError, ValidationError } from '../../errors.ts';
import { recordAudit, recordAuditOf } from '../../organizers/service.ts';
import { getAlertStats, postCaseUpdate } from '../../alerts/service.ts';
import { pretendToSubscribe, subscribe } from '../../subscribers/service.ts';
import { pretendToSign, sign, signaturesCsv } from '../../signatures/service.ts';
import { requireApiToken } from '../middleware/auth.ts';
import { publicCors } from '../middleware/cors.ts';
import { jsonObject } from '../middleware/json-object.ts';
import { CHARSET, utf8CharsetAliases } from '../middleware/utf8.ts';
import { honeypotFilled } from '../middleware/honeypot.ts';
import { answerOtherMethods } from '../middleware/method-not-allowed.ts';
import { sendError } from '../middleware/errors.ts';
import { sendCsv } from '../../csv.ts';
import { parseInput, refuseUnknownFields } from '../../validation.ts';
import { caseInput } from '../../cases/types.ts';
import { caseUpdateInput } from '../../alerts/types.ts';
import type { createLimits } from '../middleware/limits.ts';

export const caseJson = (c: Case) => ({
  id: c.id,
  slug: c.slug,
  personName: c.person_name,
  summary: c.summary,
  status: c.status,
  location: c.location,
  language: c.language,
  published: c.published,
  createdAt: c.created_at,
  updatedAt: c.updated_at,
});

export const campaignJson = (c: Campaign, caseSlug: string, targets?: Target[]) => ({
  id: c.id,
  slug: c.slug,
  caseSlug,
  title: c.title,
  summary: c.summary,
  status: c.status,
  discarded: c.discarded,
  deliveryMode: c.delivery_mode,
  digestHour: c.digest_hour,
  goal: c.goal,
  requireConfirmation: c.require_confirmation,
  letter: { subject: c.letter_subject, body: c.letter_body },
  ...(targets && {
    targets: targets.map((t) => ({ name: t.name, title: t.title, email: t.email, salutation: t.salutation, disclose: t.disclose })),
  }),
  createdAt: c.created_at,
  updatedAt: c.updated_at,
});

/** A public post is a signature or an address; anything bigger is not one. */
const PUBLIC_BODY = '32kb';
/**
 * An organizer's post at its largest: a summary and a letter of up to 20,000 characters each, and
 * up to 500 targets of three 200-character fields and an address each, all of it outside ASCII
 * from a client that escapes such characters (`\u0436`, six bytes a character, as JSON.stringify
 * in Python does by default): about 2.9 MB.
 */
const ORGANIZER_BODY = '3mb';
const JSON_TYPES = ['application/json', 'application/*+json'];
/** The body of a request that takes none: nothing, or an empty object. */
const NO_FIELDS = z.object({});

/**
 * Reads a JSON body of up to `limit`. A body of another type is refused with 415: read as nothing,
 * it would be answered that every field is missing. So is one declared in a charset other than
 * UTF-8 (the parser alone would take UTF-16 and UTF-32 too, and refuse `utf8`, UTF-8's common alias,
 * which utf8CharsetAliases names as such).
 */
function jsonBody(limit: string): RequestHandler {
  const parse = jsonObject({ limit, type: JSON_TYPES });
  return (req, res, next) => {
    // No body (null) or an empty one is what the routes without one (launch, pause, close) get.
    if (req.is(JSON_TYPES) === false && req.headers['content-length'] !== '0') {
      next(new UnsupportedMediaTypeError('Send the body as JSON, with the header Content-Type: application/json.'));
      return;
    }
    utf8CharsetAliases(req, res, () => {
      const charset = CHARSET.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
      if (charset !== undefined && charset !== 'utf-8') next(new UnsupportedCharsetError(charset));
      else parse(req, res, next);
    });
  };
}

export function apiRoutes(ctx: AppContext, limits: ReturnType<typeof createLimits>): Router {
  const { db } = ctx;
  const router = Router();
  // Answers name supporters, tokens' owners and counts of the moment: no cache keeps them.
  router.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  // The token is checked before a body (up to ORGANIZER_BODY) is read.
  const auth = [requireApiToken(db), jsonBody(ORGANIZER_BODY)] as const;
  const publicBody = jsonBody(PUBLIC_BODY);
  const actor = (req: Request) => (req.res!.locals.organizer?.id ?? null);
  /** What an audit entry adds for an act done with an API token: which one, so a stolen token's acts stand apart from its organizer's. */
  const byToken = (req: Request, detail?: object) => {
    const token = req.res!.locals.apiToken;
    return token ? { ...detail, via: `API token #${token.id} ${JSON.stringify(token.label)}` } : detail;
  };
  const caseSlugOf = async (c: Campaign) => (await db.query<{ slug: string }>('SELECT slug FROM cases WHERE id = $1', [c.case_id])).rows[0]!.slug;

  router.options('/campaigns/:slug/signatures', publicCors);
  router.post(
    '/campaigns/:slug/signatures',
    publicCors,
    limits.perIp,
    publicBody,
    async (req, res) => {
      const slug = String(req.params.slug);
      // Fields it does not take are passed over here, unlike on the organizer routes: a page that
      // embeds the form may post its own (a consent box, a tracking field), and refusing them
      // would lose the signature of someone who cannot fix the page.
      const body = req.body ?? {};
      const result = honeypotFilled(body)
        ? await pretendToSign(db, slug, body)
        : await limits.perEmail(req, body.email, () => sign(db, ctx, slug, body, { via: 'api' }));
      // Signing twice answers like the first time: the answer tells nobody whether an address signed.
      res.status(202).json({ status: result.confirmationRequired ? 'received' : 'signed' });
    },
  );

  router.options('/subscribers', publicCors);
  router.post(
    '/subscribers',
    publicCors,
    limits.perIp,
    publicBody,
    async (req, res) => {
      const body = req.body ?? {};
      // The form's name for the field: passed over like the embed's own fields, it would make
      // this a request for every case.
      if (body.case !== undefined && body.caseSlug === undefined) {
        throw new ValidationError({ caseSlug: 'is how this API names the case (case is the form\'s name for it)' }, 'Name the case with caseSlug, or leave both out for every case.');
      }
      if (honeypotFilled(body)) await pretendToSubscribe(db, body);
      else await limits.perEmail(req, body.email, () => subscribe(db, ctx, body, 'api'));
      // The same answer whether the address was known, active or unsubscribed.
      res.status(202).json({ status: 'received' });
    },
  );

  router.post('/cases/:slug/updates', ...auth, async (req, res) => {
    refuseUnknownFields(caseUpdateInput, req.body);
    const update = await postCaseUpdate(db, ctx, String(req.params.slug), req.body ?? {}, actor(req), req.get('idempotency-key') ?? null);
    // The console's action for the same thing, so the audit log shows every alert however it was posted.
    if (!update.repeated) await recordAuditOf(ctx, actor(req), 'case.update_post', `case:${String(req.params.slug)}`, byToken(req, { update: update.id, recipients: update.recipients }));
    res.status(202).json({ id: update.id, recipients: update.recipients });
  });

  router.get('/alerts/:id', ...auth, async (req, res) => {
    res.json(await getAlertStats(db, /^\d{1,15}$/.test(req.params.id as string) ? Number(req.params.id) : NaN));
  });

  router.post('/cases', ...auth, async (req, res) => {
    refuseUnknownFields(caseInput, req.body);
    const kase = await createCase(db, req.body ?? {});
    await recordAuditOf(ctx, actor(req), 'case.create', `case:${kase.slug}`, byToken(req));
    res.status(201).location(`/api/v1/cases/${kase.slug}`).json(caseJson(kase));
  });

  router.get('/cases/:slug', ...auth, async (req, res) => {
    res.json(caseJson(await getCase(db, String(req.params.slug))));
  });

  router.post('/campaigns', ...auth, async (req, res) => {
    const campaign = await createCampaign(db, req.body ?? {}, { exact: true });
    const targets = await listTargets(db, campaign.id);
    await recordAuditOf(ctx, actor(req), 'campaign.create', `campaign:${campaign.slug}`, byToken(req, { targets: targetsForAudit(targets), ...(campaign.require_confirmation ? {} : { confirmation: 'off' }) }));
    res.status(201).location(`/api/v1/campaigns/${campaign.slug}`).json(campaignJson(campaign, await caseSlugOf(campaign), targets));
  });

  router.get('/campaigns/:slug', ...auth, async (req, res) => {
    const campaign = await getCampaign(db, String(req.params.slug));
    res.json(campaignJson(campaign, await caseSlugOf(campaign), await listTargets(db, campaign.id)));
  });

  for (const action of ['launch', 'pause', 'close'] as const) {
    router.post(`/campaigns/:slug/${action}`, ...auth, async (req, res) => {
      // They take no fields: `{"status": "live"}` sent to /close must not read as done as asked.
      refuseUnknownFields(NO_FIELDS, req.body ?? {});
      parseInput(NO_FIELDS, req.body ?? {});
      const { campaign, changed, done } = await changeCampaignStatus(db, String(req.params.slug), action);
      if (changed) await recordAuditOf(ctx, actor(req), `campaign.${done}`, `campaign:${campaign.slug}`, byToken(req));
      res.json(campaignJson(campaign, await caseSlugOf(campaign), await listTargets(db, campaign.id)));
    });
  }

  router.get('/campaigns/:slug/stats', ...auth, async (req, res) => {
    res.json(await getCampaignStats(db, String(req.params.slug)));
  });

  router.get('/campaigns/:slug/signatures.csv', ...auth, async (req, res) => {
    const campaign = await getCampaign(db, String(req.params.slug));
    await sendCsv(res, signaturesCsv(db, campaign), () => recordAudit(db, actor(req), 'signatures.export', `campaign:${campaign.slug}`, byToken(req)), { bom: false });
  });

  answerOtherMethods(router);
  // Here, not after the site's own form parsers: an address with a typo gets the API's 404,
  // whatever its body, and no body is read without a token.
  router.use((req, res) => sendError(res, req, ctx.views, { status: 404, code: 'not_found', title: 'Not found', message: 'There is no API endpoint at this address.' }));
  return router;
}
