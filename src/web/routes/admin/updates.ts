import crypto from 'node:crypto';
import { Router, type Response } from 'express';
import type { AppContext } from '../../../context.ts';
import { alertContent } from '../../../alerts/emails.ts';
import { countAlertRecipients, findRecentSameUpdate, latestSameUpdateId, listCaseUpdates, postCaseUpdate, withAlertStats, withdrawCaseUpdate } from '../../../alerts/service.ts';
import { caseUpdateInput } from '../../../alerts/types.ts';
import { getCase } from '../../../cases/service.ts';
import type { Case } from '../../../cases/types.ts';
import type { Db } from '../../../db/index.ts';
import { ConflictError, ValidationError } from '../../../errors.ts';
import { recordAuditOf } from '../../../organizers/service.ts';
import { parseInput } from '../../../validation.ts';
import { formatUtc } from '../../../views.ts';
import { setFlash } from '../../middleware/session.ts';
import { idParam } from '../../forms.ts';
import { formErrors, str, type Render } from './render.ts';

/**
 * A page of a case's updates (the latest, or those before `before`) with each alert's recipients,
 * sent and failed, and the id of the next, older page if there is one.
 */
export async function caseUpdatesWithStats(db: Db, kase: Case, before?: number) {
  const { updates, older } = await listCaseUpdates(db, kase.id, { withWithdrawn: true, before });
  return { updates: await withAlertStats(db, updates), older };
}

/**
 * What a withdrawal did to the update's alerts, for its flash: those sent cannot be taken back;
 * those being sent go only if their worker had written them already; the rest are stopped.
 */
function withdrawnAlerts({ sent, sending, dropped }: { sent: number; sending: number; dropped: number }): string {
  const alerts = (n: number) => `${n} ${n === 1 ? 'alert' : 'alerts'}`;
  if (!sent && !sending) return dropped ? `no alert had gone out, and its ${alerts(dropped)} will not be sent` : 'no alert had gone out, and none will';
  return [
    sent ? `${alerts(sent)} had gone out and cannot be taken back` : '',
    sending ? `${alerts(sending)} ${sending === 1 ? 'was' : 'were'} being sent, and ${sending === 1 ? 'goes' : 'go'} only if already written` : '',
    dropped ? `the other ${alerts(dropped)} will not be sent` : '',
  ].filter(Boolean).join('; ');
}

/**
 * Posting a case update sends an alert to every follower, so it takes two steps: a preview of
 * the email with the number of subscribers it will reach, then the send.
 */
export function updateRoutes(ctx: AppContext, render: Render): Router {
  const { db } = ctx;
  const router = Router();

  /** The alert as a follower of this case will read it (text part), with stand-in links. */
  function previewEmail(kase: Case, u: { title: string; body: string }) {
    const { subject, text } = alertContent(ctx.config, ctx.views, {
      personName: kase.person_name, followsCase: true, location: kase.location, caseStatus: kase.status, language: kase.language,
      title: u.title, body: u.body, publishedAt: new Date(), caseSlug: kase.slug,
    }, '…');
    return { subject, text };
  }

  /** The form again with what was typed, for a case unpublished since the form was shown. */
  function unpublished(res: Response, kase: Case, values: { title: string; body: string }, message: string) {
    render(res, 'case-update', { title: `Post an update on ${kase.person_name}`, section: 'cases', case: kase, values, ...formErrors({ case_slug: message }) }, 409);
  }

  /**
   * The preview: the alert as followers will read it, how many get it, and the same text posted
   * already if it was (its preview sent again with Back and Resend, typed again, or posted by
   * another organizer meanwhile). `heldBack`: a Post that was not sent, because such an update was
   * posted after this organizer's preview was made, which did not say so.
   */
  async function renderPreview(res: Response, kase: Case, values: { title: string; body: string }, heldBack = false) {
    const u = parseInput(caseUpdateInput, values);
    const posted = await findRecentSameUpdate(db, kase.id, u, res.locals.organizer!.id);
    // Only the one who posted it may send its key again: postCaseUpdate refuses another's. Reused,
    // the key makes pressing Post send nothing more.
    const own = posted && posted.published_by === res.locals.organizer!.id ? posted : undefined;
    render(res, 'case-update', {
      title: `Post an update on ${kase.person_name}`, section: 'cases', case: kase, values,
      email: previewEmail(kase, u), recipients: await countAlertRecipients(db, kase.slug),
      posted: posted && { at: posted.published_at, recipients: posted.recipients, byYou: !!own, again: !own?.request_key, heldBack },
      // What this preview told of: Post goes ahead unless another same update, anyone's, comes after it.
      seenPosted: posted ? await latestSameUpdateId(db, kase.id, u) : 0,
      // One key per preview: pressing Send twice posts one update.
      requestKey: own?.request_key ?? crypto.randomUUID(),
    }, heldBack ? 409 : 200);
  }

  router.post('/cases/:slug/updates/preview', async (req, res) => {
    const kase = await getCase(db, req.params.slug);
    const values = { title: str(req.body?.title), body: str(req.body?.body) };
    if (!kase.published) return unpublished(res, kase, values, `The case of ${kase.person_name} is not published: publish it first (on its page), then post the update.`);
    try {
      await renderPreview(res, kase, values);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      render(res, 'case-update', { title: `Post an update on ${kase.person_name}`, section: 'cases', case: kase, values, ...formErrors(err.fields) }, 400);
    }
  });

  router.post('/cases/:slug/updates', async (req, res) => {
    const kase = await getCase(db, req.params.slug);
    const values = { title: str(req.body?.title), body: str(req.body?.body) };
    const key = str(req.body?.request_key).trim() || null;
    // The same text posted since this form's preview was made (by another organizer, or from
    // another tab): everyone would get the alert twice, and this preview did not warn of it. The
    // preview comes back saying so; pressing Post on it then is a choice made knowingly. A form
    // without the field (a page from before it) counts as one that saw none.
    const seen = Number(str(req.body?.seen_posted));
    let update;
    try {
      update = await postCaseUpdate(db, ctx, kase.slug, values, res.locals.organizer!.id, key, { sameSince: Number.isSafeInteger(seen) ? seen : 0 });
    } catch (err) {
      if (err instanceof ConflictError && err.code === 'case_unpublished') return unpublished(res, kase, values, err.message);
      if (err instanceof ConflictError && err.code === 'update_posted_meanwhile') return renderPreview(res, kase, values, true);
      throw err;
    }
    if (!update.repeated) await recordAuditOf(ctx, res.locals.organizer!.id, 'case.update_post', `case:${kase.slug}`, { update: update.id, recipients: update.recipients });
    const expected = Number(str(req.body?.expected));
    const changed = Number.isInteger(expected) && expected !== update.recipients ? ` (the list changed since the preview, which said ${expected})` : '';
    const subscribers = `${update.recipients} ${update.recipients === 1 ? 'subscriber' : 'subscribers'}`;
    setFlash(ctx, res, update.repeated
      ? `“${update.title}” was posted already, at ${formatUtc(update.published_at)}: its alert went to ${subscribers}, and is not sent again.`
      : `Update posted: the alert is going to ${subscribers}${changed}.`);
    // To the top, where the flash says what happened: at #updates it stood out of view, and a
    // status already on the page when it opens is not read out.
    res.redirect(303, `/admin/cases/${kase.slug}`);
  });

  router.post('/cases/:slug/updates/:id/withdraw', async (req, res) => {
    const id = idParam(req.params.id, 'update');
    const { update, already, ...alerts } = await withdrawCaseUpdate(db, String(req.params.slug), id, res.locals.organizer!.id);
    if (!already) await recordAuditOf(ctx, res.locals.organizer!.id, 'case.update_withdraw', `case:${String(req.params.slug)}`, { update: update.id, title: update.title, ...alerts });
    // A mistake in it is put right by another update, which its followers get as they got this one.
    const correct = alerts.sent || alerts.sending ? ' A correction posted as a new update is emailed to the case’s followers again.' : '';
    setFlash(ctx, res, already ? `“${update.title}” was withdrawn already.` : `“${update.title}” is withdrawn: it is off the case page, ${withdrawnAlerts(alerts)}.${correct}`);
    res.redirect(303, `/admin/cases/${String(req.params.slug)}`);
  });

  return router;
}
