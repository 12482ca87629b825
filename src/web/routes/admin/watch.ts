import { Router, type Response } from 'express';
import type { AppContext } from '../../../context.ts';
import { campaignPage, campaignStats, countSignaturesPerDay, countWaitingForDigest, getCampaign, getCampaignDeadline, letterWarnings, searchSignatures, unfinishedLetter } from '../../../campaigns/service.ts';
import { nextDigestWords } from '../../../digests/service.ts';
import { listTargets } from '../../../campaigns/targets.ts';
import { getCaseById } from '../../../cases/service.ts';
import { listCampaignLetters, listFailedDeliveries, retryFailedDelivery, type RetryOutcome } from '../../../deliveries/service.ts';
import { DELIVERY_STATUSES } from '../../../deliveries/types.ts';
import { adminsToAsk, recordAudit, recordAuditOf } from '../../../organizers/service.ts';
import { signaturesCsv } from '../../../signatures/service.ts';
import { setFlash } from '../../middleware/session.ts';
import { sendCsv } from '../../../csv.ts';
import { signatureChart } from './chart.ts';
import { warningContext } from './letter.ts';
import { idParam } from '../../forms.ts';
import { campaignView } from '../public.ts';
import { isLaunched } from '../../../campaigns/types.ts';
import { failedAsShown, safeNext, str, type Render } from './render.ts';

const CHART_DAYS = 30;
const PAGE = 50;

/** What the console says after a retry, by outcome. */
const RETRY_FLASH: Record<RetryOutcome, string> = {
  queued: 'The delivery is queued again.',
  'not-failed': 'That delivery is not failed any more; nothing to retry.',
  suppressed: 'Not retried: its address is on the suppression list. Take it off the list first if the cause is fixed.',
  retired: 'Not retried: its official was removed from the campaign and gets no new letters. Write to it again from the campaign’s Targets page first.',
  'held-back': 'Not retried: this confirmation was held back because its address had been sent as many as Appeal sends one address (someone may be posting it on forms). The signer gets a new one by signing again.',
};

/**
 * What a digest campaign's page says of the signers waiting for the next digest; its counts poll
 * (stats.json) says it again, so it never reads "none waits" beside a new confirmed signature.
 */
async function digestWaitingWords(db: AppContext['db'], campaign: { id: number; delivery_mode: string; digest_hour: number }): Promise<string | undefined> {
  if (campaign.delivery_mode !== 'digest') return undefined;
  const { waiting, lastDigestAt } = await countWaitingForDigest(db, campaign.id);
  if (waiting === 0) return 'No confirmed signature waits for the next digest.';
  return `${waiting} confirmed ${waiting === 1 ? 'signature waits' : 'signatures wait'} for the next digest, ${nextDigestWords(campaign.digest_hour, lastDigestAt)}.`;
}

/** Watching a campaign: counts, the chart, deliveries, signatures; retrying what failed. */
export function watchRoutes(ctx: AppContext, render: Render): Router {
  const { db } = ctx;
  const router = Router();
  const actor = (res: Response) => res.locals.organizer!.id;

  async function signaturesPage(campaignId: number, query: Record<string, unknown>, limit: number) {
    const search = str(query.q).trim().slice(0, 100) || undefined;
    const before = query.before ? idParam(query.before, 'page') : undefined;
    const rows = await searchSignatures(db, campaignId, { search, beforeId: before, limit: limit + 1 });
    const more = rows.length > limit;
    const shown = rows.slice(0, limit);
    return { search, signatures: shown, older: more ? shown[shown.length - 1]!.id : undefined, paged: !!before };
  }

  /**
   * The public page of a campaign not launched yet, as supporters will see it, for its organizers:
   * the case, the letter, what each official learns, the form (which signs nothing here). A
   * launched campaign's page is its public one.
   */
  router.get('/campaigns/:slug/page', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    if (isLaunched(campaign)) return res.redirect(303, `/c/${encodeURIComponent(campaign.slug)}`);
    // A draft put away (closed, never launched) reads as the draft it was, not as a campaign that wrote.
    const view = campaignView(await campaignPage(db, { ...campaign, status: 'draft' }));
    const data = { ...view, title: `Preview: ${view.title}`, orgName: ctx.config.orgName, notLaunched: true, open: true };
    res.type('html').send(ctx.views.page('campaign', data));
  });

  router.get('/campaigns/:slug', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    const [kase, targets, stats, perDay, failed, retrying, sigs, deadline, waitingForDigest] = await Promise.all([
      getCaseById(db, campaign.case_id),
      listTargets(db, campaign.id),
      campaignStats(db, campaign.id),
      countSignaturesPerDay(db, campaign.id, CHART_DAYS),
      listFailedDeliveries(db, { campaignId: campaign.id, limit: 20 }),
      listCampaignLetters(db, campaign.id, { status: 'retry', limit: 20 }),
      // The newest ten only: searching and paging signers is the list's, which records each view.
      signaturesPage(campaign.id, {}, 10),
      getCampaignDeadline(db, campaign.slug),
      digestWaitingWords(db, campaign),
    ]);
    render(res, 'campaign', {
      title: campaign.title, section: 'campaigns', campaign, deadline, case: kase, targets, stats, retrying,
      failed: failedAsShown(failed, res.locals.organizer!.role === 'admin'),
      // Names and statuses only, at a glance: the page is opened all day, and recording each
      // opening as a view of signers would bury the views that matter. A page polled by a script
      // would otherwise collect every new signer's address and home town with no entry in the
      // audit log; the list of signers (recorded) has them.
      signatures: sigs.signatures.map(({ email: _email, city: _city, country: _country, ...shown }) => shown), glance: true,
      unfinished: unfinishedLetter(campaign),
      // A closed campaign sends no more letters: nothing left to fix.
      ...(campaign.status === 'closed' ? {} : letterWarnings(campaign, targets, warningContext(campaign, kase!, targets))),
      // A digest campaign's confirmed signers wait for the day's digest: counted, or the page reads "0 letters".
      waitingForDigest,
      chart: signatureChart(perDay, CHART_DAYS),
      back: `/admin/campaigns/${campaign.slug}`,
      publicUrl: `${ctx.config.publicUrl}/c/${campaign.slug}`,
      canLaunch: campaign.status === 'draft' || campaign.status === 'paused',
      canPause: campaign.status === 'live',
      canClose: campaign.status !== 'closed',
    });
  });

  /** What admin.js polls to keep the campaign page's counts current without a reload. */
  router.get('/campaigns/:slug/stats.json', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    const [stats, waitingForDigest] = await Promise.all([campaignStats(db, campaign.id), digestWaitingWords(db, campaign)]);
    res.json({ ...stats, waitingForDigest });
  });

  router.get('/campaigns/:slug/signatures', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    // HEAD shows no one (sendCsv does the same): nothing is read, and nothing recorded.
    if (req.method === 'HEAD') return void res.type('html').end();
    const sigs = await signaturesPage(campaign.id, req.query, PAGE);
    // Every signer's name and address, page by page: read as much as an export, so recorded as
    // one (whether it searched, not what: a search term can be a person's name).
    await recordAudit(db, actor(res), 'signatures.view', `campaign:${campaign.slug}`, { search: !!sigs.search, older: sigs.paged });
    const askAdmin = res.locals.organizer!.role === 'admin' ? undefined : await adminsToAsk(db);
    render(res, 'signatures', { title: `Signatures of “${campaign.title}”`, section: 'campaigns', campaign, askAdmin, ...sigs });
  });

  /** Every letter of the campaign: which official got which, when, and what the relay said. */
  router.get('/campaigns/:slug/letters', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    const status = DELIVERY_STATUSES.find((s) => s === req.query.status);
    const before = req.query.before ? idParam(req.query.before, 'page') : undefined;
    const rows = await listCampaignLetters(db, campaign.id, { status, beforeId: before, limit: PAGE + 1 });
    const letters = rows.slice(0, PAGE);
    const label = (s: (typeof DELIVERY_STATUSES)[number]) => (s === 'retry' ? 'retrying' : s);
    render(res, 'letters', {
      title: `Letters of “${campaign.title}”${status ? `: ${label(status)}` : ''}`, section: 'campaigns', campaign, letters, status, paged: before !== undefined,
      older: rows.length > PAGE ? letters[letters.length - 1]!.id : undefined,
      filters: [{ value: '', label: 'All', current: !status }, ...DELIVERY_STATUSES.map((s) => ({ value: s, label: label(s), current: s === status }))],
    });
  });

  router.get('/campaigns/:slug/signatures.csv', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    await sendCsv(res, signaturesCsv(db, campaign), () => recordAudit(db, actor(res), 'signatures.export', `campaign:${campaign.slug}`));
  });

  router.post('/deliveries/:id/retry', async (req, res) => {
    const id = idParam(req.params.id, 'delivery');
    const outcome = await retryFailedDelivery(db, ctx, id);
    if (outcome === 'queued') await recordAuditOf(ctx, actor(res), 'delivery.retry', `delivery:${id}`);
    setFlash(ctx, res, RETRY_FLASH[outcome]);
    res.redirect(303, safeNext(req.body?.back));
  });

  return router;
}
