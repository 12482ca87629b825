import { Router, type Response } from 'express';
import type { AppContext } from '../../../context.ts';
import {
  campaignStats, canMove, changeCampaignStatus, createCampaign, detailErrors, findCampaign, frozenDetailsChanged, getCampaign, getCampaignDeadline, listCampaignOverview, NOT_UTF8_FILE, parseTargetsCsv,
  deadlineMistake, letterWarnings, unfinishedLetter, updateCampaignDetails, validateCampaignInput, type TargetCsv,
} from '../../../campaigns/service.ts';
import { listTargets, targetsForAudit } from '../../../campaigns/targets.ts';
import type { Campaign, CampaignStatus } from '../../../campaigns/types.ts';
import { LETTER_VARIABLES, SIGNER_PLACE, STARTER_PLACEHOLDER } from '../../../campaigns/letter-template.ts';
import { getCaseById, listCases } from '../../../cases/service.ts';
import { markSuppressed } from '../../../deliveries/service.ts';
import { ConflictError, EditConflictError, ValidationError, type FieldErrors } from '../../../errors.ts';
import { recordAuditOf } from '../../../organizers/service.ts';
import { setFlash } from '../../middleware/session.ts';
import { campaignForm, campaignValues, renameCampaignErrors } from './campaign-form.ts';
import { timeCursor, timePage } from '../../forms.ts';
import { letterFormStatus, warningContext } from './letter.ts';
import { answerSavedAlready, CAMPAIGN_FORM_ORDER, conflictMessage, formErrors, revisionOf, SENT_TWICE_MS, str, type Render } from './render.ts';

export const STARTER_BODY = `{{#if target.salutation}}{{target.salutation}}{{else}}Dear {{target.name}}{{/if}},

I am writing to you about {{case.personName}}{{#if case.location}}, in {{case.location}}{{/if}}.

${STARTER_PLACEHOLDER}

{{#if supporter.personalNote}}
{{supporter.personalNote}}

{{/if}}
Yours sincerely,

{{supporter.fullName}}
${SIGNER_PLACE}
{{date}}`;

const STATUS_FILTERS: CampaignStatus[] = ['draft', 'live', 'paused', 'closed'];
/** Campaigns on one page of the list. */
const CAMPAIGNS_PAGE = 200;

/** What each move does, said before it is done; `digest`, for a digest campaign sent at `hour` UTC. */
const ACTIONS = {
  launch: {
    verb: 'Launch', explain: 'The campaign page becomes public and takes signatures. Each confirmed signature sends a letter to every target.',
    digest: (hour: number) => `The campaign page becomes public and takes signatures. Once a day, at ${hour}:00 UTC, each target gets one letter listing everyone who signed and confirmed since the last one (past 250 of them, in parts of 250, each saying which part it is).`,
  },
  pause: {
    verb: 'Pause', explain: 'The page stays up but takes no new signatures. Signatures already made can still be confirmed, and their letters still go out. You can launch it again.',
    digest: (_hour: number) => 'The page stays up but takes no new signatures. Signatures already made can still be confirmed, and those confirmed go in the next daily digest as usual. You can launch it again.',
  },
  close: {
    verb: 'Close', explain: 'The campaign ends for good: it takes no signatures or confirmations and cannot be launched again. Letters already queued still go out; its letter and the officials it wrote to stay as they are.',
    digest: (_hour: number) => 'The campaign ends for good: it takes no signatures or confirmations and cannot be launched again. Signatures confirmed before it closed still go in the next daily digest; its letter and the officials it wrote to stay as they are.',
  },
} as const;

/** What the page asking to confirm a launch, pause or close says the move does. */
function explainMove(action: keyof typeof ACTIONS, campaign: Campaign): string {
  // A paused campaign's page was public all along: it takes signatures again, nothing more.
  if (action === 'launch' && campaign.status === 'paused') return 'The campaign page takes signatures again; their letters go as before.';
  // A draft closed is put away, not ended: nothing of it was ever public, and nothing will be.
  if (action === 'close' && campaign.status === 'draft') return 'The draft is put away for good: its page, letter and officials never become public, and it cannot be launched. Its case is not announced by it.';
  return campaign.delivery_mode === 'digest' ? ACTIONS[action].digest(campaign.digest_hour) : ACTIONS[action].explain;
}

/** What an audit entry says of a campaign's details saved: what changed, and the safeguards' new values. */
function detailsChanged(was: Campaign, now: Campaign, deadline: boolean): { changed: string; confirmation?: 'on' | 'off'; mode?: string } | undefined {
  const confirmation = was.require_confirmation !== now.require_confirmation;
  const mode = was.delivery_mode !== now.delivery_mode;
  const fields: [string, boolean][] = [
    ['title', was.title !== now.title], ['summary', was.summary !== now.summary], ['case', was.case_id !== now.case_id],
    ['letter', was.letter_subject !== now.letter_subject || was.letter_body !== now.letter_body],
    ['delivery mode', mode], ['digest hour', was.digest_hour !== now.digest_hour],
    ['goal', was.goal !== now.goal], ['confirmation', confirmation], ['deadline', deadline],
  ];
  const changed = fields.filter(([, yes]) => yes).map(([name]) => name);
  if (!changed.length) return undefined;
  return {
    changed: changed.join(', '),
    // Turning confirmation off lets anyone sign in anyone's name: the log says so in so many words.
    ...(confirmation ? { confirmation: now.require_confirmation ? 'on' : 'off' } : {}),
    ...(mode ? { mode: now.delivery_mode } : {}),
  };
}

export function campaignRoutes(ctx: AppContext, render: Render): Router {
  const { db } = ctx;
  const router = Router();
  const actor = (res: Response) => res.locals.organizer!.id;

  const renderForm = async (res: Response, data: { editing?: string; savedTitle?: string; values: Record<string, unknown>; errors?: FieldErrors; csv?: ReturnType<typeof parseTargetsCsv> }, status = 200) => {
    const chosen = typeof data.values.case_slug === 'string' ? data.values.case_slug : undefined;
    const cases = (await listCases(db, chosen)).map((c) => ({ value: c.slug, label: `${c.person_name} (${c.slug})`, selected: c.slug === chosen }));
    render(res, 'campaign-form', {
      // The heading names the campaign as saved: what is typed may be empty or a mistake.
      title: data.editing ? `Edit “${data.savedTitle}”` : 'New campaign',
      savedTitle: data.savedTitle,
      section: 'campaigns',
      editing: data.editing,
      values: data.values,
      cases,
      variables: LETTER_VARIABLES.map((v) => `{{${v}}}`),
      csv: data.csv,
      csvErrors: data.csv?.rows.filter((r) => r.errors.length),
      ...(data.errors ? formErrors(data.errors, {}, CAMPAIGN_FORM_ORDER) : {}),
    }, status);
  };

  const createdFlash = (targets: number) => `Draft campaign created with ${targets} ${targets === 1 ? 'target' : 'targets'}. Check the letter, then launch it.`;

  /**
   * The slug taken moments ago by this very form (a double press without the page's script): the
   * second answer says created, as the first did, not "exists already", which would have the
   * organizer change the slug and make the campaign twice.
   * @returns whether it answered.
   */
  async function answerMadeAlready(res: Response, slug: string, typed: unknown, csv: TargetCsv): Promise<boolean> {
    const made = slug ? await findCampaign(db, slug) : undefined;
    if (!made || Date.now() - made.created_at.getTime() >= SENT_TWICE_MS) return false;
    // Every target as typed: a row corrected after going Back is no double press, and answered
    // "created" it would be dropped unseen.
    const targetKey = (t: { name: string; title?: string | null; email: string; salutation?: string | null; disclose?: string }) =>
      [t.name, t.title ?? '', t.email.toLowerCase(), t.salutation ?? '', t.disclose].join('\u001f');
    const typedTargets = csv.rows.map((r) => (r.target ? targetKey(r.target) : '')).sort();
    const madeTargets = (await listTargets(db, made.id)).map(targetKey).sort();
    if (typedTargets.join('\n') !== madeTargets.join('\n')) return false;
    const saved = { ...campaignValues(made, (await getCaseById(db, made.case_id))!.slug), deadline: (await getCampaignDeadline(db, made.slug)) ?? '' };
    const fields = CAMPAIGN_FORM_ORDER.filter((f) => !['revision', 'slug', 'targets_csv'].includes(f));
    return answerSavedAlready(ctx, res, { saved, typed, fields, flash: createdFlash(madeTargets.length), to: `/admin/campaigns/${made.slug}` });
  }

  router.get('/campaigns', async (req, res) => {
    const status = STATUS_FILTERS.find((s) => s === req.query.status);
    // The list's order puts live campaigns first: its cursor says which part a page ends in.
    const cursor = /^([01])~(.+)$/.exec(typeof req.query.before === 'string' ? req.query.before : '');
    const at = cursor ? timeCursor(cursor[2]) : undefined;
    const before = at && { live: cursor![1] === '1', ...at };
    // One more than a page is asked for, to know whether there is a next one.
    const { rows: campaigns, next } = timePage(await listCampaignOverview(db, { status }, { limit: CAMPAIGNS_PAGE + 1, before }), CAMPAIGNS_PAGE);
    render(res, 'campaigns', {
      title: status ? `Campaigns: ${status}` : 'Campaigns', section: 'campaigns', campaigns, status, filtered: status, next, paged: !!before,
      filters: [{ value: '', label: 'All', current: !status }, ...STATUS_FILTERS.map((s) => ({ value: s, label: s, current: s === status }))],
    });
  });

  router.get('/campaigns/new', async (req, res) => {
    await renderForm(res, { values: { case_slug: str(req.query.case), delivery_mode: 'each', digest_hour: '9', require_confirmation: 'on', letter_body: STARTER_BODY } });
  });

  router.post('/campaigns/new', async (req, res) => {
    const { input, errors } = campaignForm(req.body);
    const csv = res.locals.fileNotUtf8 ? NOT_UTF8_FILE : parseTargetsCsv(str(req.body?.targets_csv));
    if (await answerMadeAlready(res, str(req.body?.slug).trim(), req.body, csv)) return;
    const all: FieldErrors = { ...errors };
    try {
      await validateCampaignInput(db, { ...input, targets: csv.rows.map((r, i) => r.target ?? { name: 'row', email: `row-${i}@example.org` }) });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      Object.assign(all, { ...renameCampaignErrors(err.fields), ...errors });
    }
    if (!csv.valid) all.targets_csv = csv.fileError ?? 'some rows need attention; see the table below';
    const deadline = str(req.body?.deadline);
    const deadlineError = deadlineMistake(deadline, null);
    if (deadlineError) all.deadline = deadlineError;
    if (Object.keys(all).length === 0) {
      try {
        const campaign = await createCampaign(db, { ...input, targets: csv.rows.map((r) => r.target) }, { deadline });
        // Made without confirming by email, anyone can sign in anyone's name: the log says so.
        await recordAuditOf(ctx, actor(res), 'campaign.create', `campaign:${campaign.slug}`, {
          targets: targetsForAudit(await listTargets(db, campaign.id)), ...(campaign.require_confirmation ? {} : { confirmation: 'off' }),
        });
        setFlash(ctx, res, createdFlash(csv.rows.length));
        return res.redirect(303, `/admin/campaigns/${campaign.slug}`);
      } catch (err) {
        // Made by this very form sent at the same moment: the other sending's answer, not "exists already".
        if (err instanceof ConflictError && (await answerMadeAlready(res, str(req.body?.slug).trim(), req.body, csv))) return;
        if (err instanceof ConflictError) all.slug = err.message;
        else if (err instanceof ValidationError) Object.assign(all, renameCampaignErrors(err.fields));
        else throw err;
      }
    }
    await renderForm(res, { values: req.body ?? {}, errors: all, csv: csv.rows.length ? csv : undefined }, letterFormStatus(req.body));
  });

  router.get('/campaigns/:slug/edit', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    const kase = (await getCaseById(db, campaign.case_id))!;
    await renderForm(res, { editing: campaign.slug, savedTitle: campaign.title, values: { ...campaignValues(campaign, kase.slug), deadline: (await getCampaignDeadline(db, campaign.slug)) ?? '' } });
  });

  router.post('/campaigns/:slug/edit', async (req, res) => {
    const existing = await getCampaign(db, req.params.slug);
    const { input, errors } = campaignForm(req.body);
    try {
      const deadline = str(req.body?.deadline);
      const deadlineWas = (await getCampaignDeadline(db, existing.slug)) ?? '';
      const deadlineError = deadlineMistake(deadline, deadlineWas);
      if (deadlineError) errors.deadline = deadlineError;
      // Every mistake at once: the form's own (numbers, the date) and those the details have.
      if (Object.keys(errors).length) throw new ValidationError({ ...detailErrors(existing.slug, input), ...errors });
      const campaign = await updateCampaignDetails(db, existing.slug, input, revisionOf(req.body), deadline);
      await recordAuditOf(ctx, actor(res), 'campaign.update', `campaign:${campaign.slug}`, detailsChanged(existing, campaign, deadlineWas !== (deadline ?? '')));
      setFlash(ctx, res, 'Campaign saved.');
      res.redirect(303, `/admin/campaigns/${campaign.slug}`);
    } catch (err) {
      // The form now carries the revision saved meanwhile: saving it again replaces that, knowingly.
      if (err instanceof EditConflictError) {
        const now = await getCampaign(db, existing.slug);
        const saved = { ...campaignValues(now, (await getCaseById(db, now.case_id))!.slug), deadline: (await getCampaignDeadline(db, now.slug)) ?? '' };
        const fields = CAMPAIGN_FORM_ORDER.filter((f) => !['revision', 'slug', 'targets_csv'].includes(f));
        if (answerSavedAlready(ctx, res, { saved, typed: req.body, fields, flash: 'Campaign saved.', to: `/admin/campaigns/${existing.slug}` })) return;
        const message = conflictMessage(err.message, saved, req.body, fields);
        return renderForm(res, { editing: existing.slug, savedTitle: existing.title, values: { ...req.body, slug: existing.slug, revision: String(err.revision) }, errors: { revision: message } }, 409);
      }
      if (!(err instanceof ValidationError)) throw err;
      // Every mistake at once: a case or mode that may no longer change too, not after the rest is fixed.
      const frozen = await frozenDetailsChanged(db, existing, input);
      await renderForm(res, { editing: existing.slug, savedTitle: existing.title, values: { ...req.body, slug: existing.slug }, errors: { ...renameCampaignErrors({ ...frozen, ...err.fields }), ...errors } }, letterFormStatus(req.body));
    }
  });

  for (const [action, a] of Object.entries(ACTIONS) as [keyof typeof ACTIONS, (typeof ACTIONS)[keyof typeof ACTIONS]][]) {
    router.get(`/campaigns/:slug/${action}`, async (req, res) => {
      const campaign = await getCampaign(db, String(req.params.slug));
      const targets = await listTargets(db, campaign.id);
      const allowed = canMove(campaign.status, action);
      // A paused campaign is launched again: the organizer resumes it.
      const verb = action === 'launch' && campaign.status === 'paused' ? 'Resume' : a.verb;
      const kase = action === 'launch' && allowed ? (await getCaseById(db, campaign.case_id))! : undefined;
      // Closed, a signature still waiting for its signer's confirmation can no longer be confirmed.
      const unconfirmed = action === 'close' && allowed ? (await campaignStats(db, campaign.id)).signatures.pending : 0;
      render(res, 'campaign-status', {
        title: `${verb} “${campaign.title}”?`, section: 'campaigns', campaign, action, verb, resume: verb === 'Resume',
        explain: explainMove(action, campaign),
        caseUnpublished: kase && !kase.published ? kase : undefined,
        // An official whose address bounced is listed so, as on the Targets page: no letter goes to it.
        allowed, targets: action === 'launch' ? await markSuppressed(db, targets) : targets, unconfirmed, publicUrl: `${ctx.config.publicUrl}/c/${campaign.slug}`,
        unfinished: allowed && action === 'launch' ? unfinishedLetter(campaign) : null,
        ...(kase ? letterWarnings(campaign, targets, warningContext(campaign, kase, targets)) : {}),
      });
    });
    router.post(`/campaigns/:slug/${action}`, async (req, res) => {
      let moved: Awaited<ReturnType<typeof changeCampaignStatus>>;
      try {
        moved = await changeCampaignStatus(db, String(req.params.slug), action);
      } catch (err) {
        if (!(err instanceof ConflictError) || err.code !== 'case_unpublished') throw err;
        setFlash(ctx, res, err.message);
        return res.redirect(303, `/admin/campaigns/${String(req.params.slug)}`);
      }
      const { campaign, changed } = moved;
      if (changed) await recordAuditOf(ctx, actor(res), `campaign.${moved.done}`, `campaign:${campaign.slug}`);
      setFlash(ctx, res, `“${campaign.title}” is ${changed ? 'now' : 'already'} ${campaign.status}.`);
      res.redirect(303, `/admin/campaigns/${campaign.slug}`);
    });
  }

  return router;
}
