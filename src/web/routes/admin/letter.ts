import { Router, type Response } from 'express';
import type { AppContext } from '../../../context.ts';
import { discloseTo, gapsLeft, hiddenFor, LETTER_VARIABLES, letterFingerprint, renderLetter, tooLong, validateLetterTemplate, type LetterContext } from '../../../campaigns/letter-template.ts';
import { getCampaign, updateCampaignDetails } from '../../../campaigns/service.ts';
import { listTargets } from '../../../campaigns/targets.ts';
import type { Campaign, Target } from '../../../campaigns/types.ts';
import { getCaseById } from '../../../cases/service.ts';
import type { Case } from '../../../cases/types.ts';
import { EditConflictError, TemplateError, ValidationError, type FieldErrors } from '../../../errors.ts';
import { recordAuditOf } from '../../../organizers/service.ts';
import { renderDigestLetter, supportersText } from '../../../digests/emails.ts';
import { displayName, letterSender } from '../../../mail/address.ts';
import { isolateRightToLeft } from '../../../mail/bidi.ts';
import { learnsAddress } from '../../../campaigns/preview.ts';
import { formatLetterDate } from '../../../signatures/emails.ts';
import { setFlash } from '../../middleware/session.ts';
import { campaignForm, campaignValues, renameCampaignErrors } from './campaign-form.ts';
import { answerSavedAlready, formErrors, revisionOf, seesWords, str, type Render } from './render.ts';

/** The supporter every preview signs as: invented, and filling every field a letter may use. */
export const SAMPLE_SUPPORTER: LetterContext['supporter'] = {
  fullName: 'Dana Example',
  city: 'Lyon',
  country: 'France',
  personalNote: 'I have followed this case for months and I ask you to act now.',
};

/** Lines of source shown around a compile error. */
const CONTEXT_LINES = 3;

interface Draft {
  subject: string;
  body: string;
}

/** What is wrong with the draft, if anything, and whether that is its template (not only a part too long). */
function check(draft: Draft): { errors?: FieldErrors; compileFailed: boolean } {
  const errors: FieldErrors = {};
  let compileFailed = false;
  for (const field of ['subject', 'body'] as const) {
    const long = tooLong(field, draft[field]);
    if (long) {
      errors[field] = long;
      continue;
    }
    try {
      validateLetterTemplate(field, draft[field]);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      Object.assign(errors, err.fields);
      compileFailed = true;
    }
  }
  if (!Object.keys(errors).length) return { compileFailed };
  return { errors: { ...(errors.subject && { letter_subject: errors.subject }), ...(errors.body && { letter_body: errors.body }) }, compileFailed };
}

/**
 * The status of a console form whose letter is refused: 422 when its template does not compile
 * (as the API answers it), 400 for any other mistake.
 */
export const letterFormStatus = (body: { letter_subject?: unknown; letter_body?: unknown } | undefined): 400 | 422 =>
  check({ subject: str(body?.letter_subject), body: str(body?.letter_body) }).compileFailed ? 422 : 400;

/** The body's lines around the line a compile error names, the bad one marked. */
function sourceAround(body: string, error: string | undefined) {
  const line = Number(/^Line (\d+):/.exec(error ?? '')?.[1]);
  if (!line) return undefined;
  const lines = body.split(/\r?\n/);
  const from = Math.max(1, line - CONTEXT_LINES);
  return lines.slice(from - 1, Math.min(lines.length, line + CONTEXT_LINES)).map((text, i) => ({ n: from + i, text, bad: from + i === line }));
}

/** Signers a digest preview says it carries. */
const SAMPLE_DIGEST_SIGNERS = 3;

/** All of a letter's context but the supporter, as a target of this campaign gets it today. */
export function letterContextFor(campaign: Pick<Campaign, 'title'>, kase: Pick<Case, 'person_name' | 'location'>, target: Pick<Target, 'name' | 'title' | 'salutation'> | undefined) {
  return {
    target: { name: target?.name ?? 'Target Name', title: target?.title ?? '', salutation: target?.salutation ?? 'Dear Sir or Madam' },
    case: { personName: kase.person_name, location: kase.location },
    campaign: { title: campaign.title },
    date: formatLetterDate(new Date()),
  };
}

/** What the letter's warnings quote its lines with: the first official still written to. */
export const warningContext = (campaign: Pick<Campaign, 'title'>, kase: Pick<Case, 'person_name' | 'location'>, targets: Target[]) =>
  letterContextFor(campaign, kase, targets.find((t) => t.retired_at === null));

/**
 * The letter one target would get from the sample supporter, with what the target may not see
 * left out; for a digest campaign, the day's letter as the digest sends it (no supporter in it,
 * the list of signers after it).
 */
function previewFor(draft: Draft, campaign: Campaign, kase: Case, target: Target | undefined) {
  const context = letterContextFor(campaign, kase, target);
  if (campaign.delivery_mode === 'digest') {
    const letter = renderDigestLetter(draft.subject, draft.body, context, SAMPLE_DIGEST_SIGNERS);
    return { ...letter, text: `${letter.text}\n[Then the list of everyone who signed since the last digest, and the same list as a CSV file.]\n` };
  }
  const disclose = target?.disclose ?? 'name_place';
  return renderLetter(draft.subject, draft.body, { ...context, supporter: discloseTo(disclose, SAMPLE_SUPPORTER) }, hiddenFor('each', disclose));
}

/** The letter template editor: compile errors at the line, and a preview rendered here, not in the browser. */
export function letterRoutes(ctx: AppContext, render: Render): Router {
  const { db } = ctx;
  const router = Router();

  async function load(slug: string) {
    const campaign = await getCampaign(db, slug);
    const [kase, targets] = await Promise.all([getCaseById(db, campaign.case_id), listTargets(db, campaign.id)]);
    return { campaign, kase: kase!, targets };
  }

  /**
   * The envelope an official sees, as the letter and digest composers write it: who it is from
   * (never the supporter's own address), and whom a reply reaches.
   */
  function headersFor(campaign: Campaign, target: Target | undefined) {
    const digest = campaign.delivery_mode === 'digest';
    const from = letterSender(digest ? supportersText(SAMPLE_DIGEST_SIGNERS) : SAMPLE_SUPPORTER.fullName, ctx.config);
    return {
      from: `"${from.name}" <${from.address}>`,
      to: target ? `"${displayName(target.name)}" <${target.email}>` : undefined,
      // As the sign page says (learnsAddress): without confirmation no official gets the address.
      replyTo: !digest && target && learnsAddress(target.disclose, campaign.require_confirmation) ? `"${SAMPLE_SUPPORTER.fullName}" <the supporter's address, once confirmed>` : undefined,
    };
  }

  function previewData(l: Awaited<ReturnType<typeof load>>, draft: Draft, targetId: unknown) {
    const { errors, compileFailed } = check(draft);
    const target = l.targets.find((t) => String(t.id) === String(targetId)) ?? l.targets[0];
    return {
      errors,
      compileFailed,
      source: sourceAround(draft.body, errors?.letter_body),
      preview: errors ? undefined : previewFor(draft, l.campaign, l.kase, target),
      // A digest's text names nobody: every supporter field is empty in it, gaps or not.
      gaps: errors || l.campaign.delivery_mode === 'digest' ? [] : [
        ...gapsLeft(draft.subject).map((g) => ({ variable: g.variable, where: 'in the subject' })),
        ...gapsLeft(draft.body).map((g) => ({ variable: g.variable, where: `line ${g.line}` })),
      ],
      headers: headersFor(l.campaign, target),
      target,
      targets_options: l.targets.map((t) => ({ value: t.id, label: `${isolateRightToLeft(t.name)}${t.title ? `, ${isolateRightToLeft(t.title)}` : ''} (sees ${seesWords(t.disclose, l.campaign.require_confirmation)})`, selected: t.id === target?.id })),
      sample: SAMPLE_SUPPORTER,
    };
  }

  /**
   * `revision`: what the form carries back, the one it was opened on (see updateCampaignDetails);
   * `letterSeen`: the letter it was opened on (letterFingerprint), the campaign's now when opened
   * afresh; a form sent back keeps what it carried, none included (its revision is checked then).
   */
  const renderEditor = async (res: Response, l: Awaited<ReturnType<typeof load>>, draft: Draft, targetId: unknown, revision: number | null, extra?: FieldErrors, letterSeen?: string) => {
    const p = previewData(l, draft, targetId);
    const digest = l.campaign.delivery_mode === 'digest';
    if (extra) p.errors = { ...extra, ...p.errors };
    render(res, 'letter', {
      title: `Letter of “${l.campaign.title}”`, section: 'campaigns', campaign: l.campaign, values: draft, variables: LETTER_VARIABLES.map((v) => `{{${v}}}`),
      digest, revision: revision ?? l.campaign.revision, letterSeen: letterSeen ?? letterFingerprint(l.campaign.letter_subject, l.campaign.letter_body),
      ...p, ...(p.errors ? formErrors(p.errors) : {}),
    }, extra?.revision ? 409 : p.compileFailed ? 422 : p.errors ? 400 : 200);
  };

  router.get('/campaigns/:slug/letter', async (req, res) => {
    const l = await load(req.params.slug);
    await renderEditor(res, l, { subject: l.campaign.letter_subject, body: l.campaign.letter_body }, req.query.target, l.campaign.revision);
  });

  /** The live preview admin.js asks for as the organizer types: an HTML fragment, nothing saved. */
  router.post('/campaigns/:slug/letter/preview', async (req, res) => {
    const l = await load(req.params.slug);
    const p = previewData(l, { subject: str(req.body?.letter_subject), body: str(req.body?.letter_body) }, req.body?.target);
    res.type('html').send(ctx.views.page('admin/letter-preview', p, false));
  });

  router.post('/campaigns/:slug/letter', async (req, res) => {
    const l = await load(req.params.slug);
    const draft = { subject: str(req.body?.letter_subject), body: str(req.body?.letter_body) };
    // A save of the campaign's other details since the page opened (its goal, say) is no conflict:
    // they are saved as they are now. Only a letter saved meanwhile is, which this would undo.
    const letterSeen = str(req.body?.letter_seen);
    const letterUnchanged = letterSeen === letterFingerprint(l.campaign.letter_subject, l.campaign.letter_body);
    const revision = letterUnchanged ? l.campaign.revision : revisionOf(req.body);
    if (req.body?.action !== 'save' || check(draft).errors) return renderEditor(res, l, draft, req.body?.target, revisionOf(req.body), undefined, letterSeen);
    const { input } = campaignForm({ ...campaignValues(l.campaign, l.kase.slug), letter_subject: draft.subject, letter_body: draft.body });
    try {
      await updateCampaignDetails(db, l.campaign.slug, input, revision);
    } catch (err) {
      // The page comes back with the revision saved meanwhile: saving again replaces it, knowingly.
      if (err instanceof EditConflictError) {
        // The same letter sent twice (a double click): the second answer says saved, as the first did.
        const now = await getCampaign(db, l.campaign.slug);
        const saved = { letter_subject: now.letter_subject, letter_body: now.letter_body };
        if (answerSavedAlready(ctx, res, { saved, typed: req.body, fields: ['letter_subject', 'letter_body'], flash: 'Letter saved.', to: `/admin/campaigns/${l.campaign.slug}/letter` })) return;
        return renderEditor(res, l, draft, req.body?.target, err.revision, { revision: err.message }, letterFingerprint(now.letter_subject, now.letter_body));
      }
      if (!(err instanceof ValidationError)) throw err;
      return renderEditor(res, l, draft, req.body?.target, revisionOf(req.body), renameCampaignErrors(err.fields), letterSeen);
    }
    await recordAuditOf(ctx, res.locals.organizer!.id, 'campaign.letter', `campaign:${l.campaign.slug}`);
    setFlash(ctx, res, 'Letter saved.');
    res.redirect(303, `/admin/campaigns/${l.campaign.slug}/letter`);
  });

  return router;
}
