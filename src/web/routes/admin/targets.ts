import { Router, type Response } from 'express';
import type { AppContext } from '../../../context.ts';
import { getCampaign, NOT_UTF8_FILE, parseTargetsCsv, TARGET_CSV_COLUMNS } from '../../../campaigns/service.ts';
import { addTargets, getTarget, listTargets, reinstateTarget, removeTarget, targetRevision, targetsForAudit, updateTarget } from '../../../campaigns/targets.ts';
import { MAX_TARGETS, type Campaign, type Target } from '../../../campaigns/types.ts';
import { countLettersByTarget, countSentAgainLately, countSentElsewhere, markSuppressed, sendAgainToCurrentAddress } from '../../../deliveries/service.ts';
import { asciiAddress } from '../../../mail/address.ts';
import { learnsAddress } from '../../../campaigns/preview.ts';
import { ConflictError, EditConflictError, ValidationError, type FieldErrors } from '../../../errors.ts';
import { recordAuditOf } from '../../../organizers/service.ts';
import { adminOnly, setFlash } from '../../middleware/session.ts';
import { idParam } from '../../forms.ts';
import { answerSavedAlready, conflictMessage, formErrors, revisionOf, seesWords, SENT_TWICE_MS, str, type Render } from './render.ts';

const DISCLOSE = [
  { value: 'name_place', label: 'Name, city, country and note (default)' },
  { value: 'name', label: 'Name and note only' },
  { value: 'full', label: 'Name, place, note and email, if the supporter confirmed it (as Reply-To; in a digest, in its list of signers)' },
];

/** The choices of what a target learns, one selected; `full` says when no address can go (learnsAddress). */
const discloseChoices = (campaign: Campaign, selected: unknown) => DISCLOSE.map((d) => ({
  ...d,
  label: d.value === 'full' && !learnsAddress('full', campaign.require_confirmation) ? 'Name, place and note; the email too once this campaign asks supporters to confirm it (it does not now)' : d.label,
  selected: d.value === selected,
}));

/** What a target's edit form sets. */
const TARGET_FIELDS = ['name', 'title', 'email', 'salutation', 'disclose'] as const;

/** Sending letters again to an official's corrected address: an admin's (see the route), refused before it is asked about (index.ts). */
export const SEND_AGAIN = '/campaigns/:slug/targets/:id/send-again';
export const sendAgainAdminOnly = adminOnly('Only an admin may send letters again: they take signers\' names to an address those letters never went to.');

/** Targets one by one, and from CSV with a preview before anything is saved. */
export function targetRoutes(ctx: AppContext, render: Render): Router {
  const { db } = ctx;
  const router = Router();
  const actor = (res: Response) => res.locals.organizer!.id;
  const isAdmin = (res: Response) => res.locals.organizer!.role === 'admin';

  const renderTargets = async (res: Response, campaign: Campaign, form: { values?: Record<string, unknown>; errors?: FieldErrors } = {}, status = 200) => {
    const values = form.values ?? { disclose: 'name_place' };
    // An official whose server refused a letter for good gets no more until the address is fixed.
    const targets = await markSuppressed(db, await listTargets(db, campaign.id, { withRetired: true }));
    // Letters the relay took for an address since corrected: the old mailbox may never have had them.
    const [elsewhere, letters] = await Promise.all([countSentElsewhere(db, campaign.id), countLettersByTarget(db, campaign.id)]);
    render(res, 'targets', {
      title: `Targets of “${campaign.title}”`, section: 'campaigns', campaign, values,
      targets: targets.map((t) => ({ ...t, sees: seesWords(t.disclose, campaign.require_confirmation), sentElsewhere: elsewhere.get(t.id), letters: letters.get(t.id) ?? { sent: 0, waiting: 0, failed: 0 } })),
      canSendAgain: isAdmin(res),
      disclose: discloseChoices(campaign, values.disclose),
      ...(form.errors ? formErrors(form.errors) : {}),
    }, status);
  };

  router.get('/campaigns/:slug/targets', async (req, res) => {
    await renderTargets(res, await getCampaign(db, req.params.slug));
  });

  router.post('/campaigns/:slug/targets', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    const b = req.body ?? {};
    try {
      const { added } = await addTargets(db, campaign.slug, [{ name: str(b.name), title: str(b.title), email: str(b.email), salutation: str(b.salutation), disclose: str(b.disclose) || undefined }]);
      if (added.length === 0) {
        const retired = (await listTargets(db, campaign.id, { withRetired: true })).find((t) => t.retired_at && t.email.toLowerCase() === asciiAddress(str(b.email)).toLowerCase());
        throw new ValidationError({ email: retired ? 'is a target this campaign no longer writes to: press “Write to it again” in the list above' : 'this campaign writes to this address already' });
      }
      await recordAuditOf(ctx, actor(res), 'target.add', `campaign:${campaign.slug}`, targetsForAudit(added)[0]!);
      setFlash(ctx, res, `${added[0]!.name} added.`);
      res.redirect(303, `/admin/campaigns/${campaign.slug}/targets`);
    } catch (err) {
      if (err instanceof ConflictError) return renderTargets(res, campaign, { values: b, errors: { email: err.message } }, 409);
      if (!(err instanceof ValidationError)) throw err;
      await renderTargets(res, campaign, { values: b, errors: err.fields }, 400);
    }
  });

  const renderEdit = (res: Response, campaign: Campaign, target: Target, form: { values: Record<string, unknown>; errors?: FieldErrors }, status = 200) => {
    render(res, 'target-edit', {
      title: `Edit ${target.name}`, section: 'campaigns', campaign, target, values: form.values,
      disclose: discloseChoices(campaign, form.values.disclose),
      ...(form.errors ? formErrors(form.errors) : {}),
    }, status);
  };

  router.get('/campaigns/:slug/targets/:id/edit', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    const target = await getTarget(db, campaign, idParam(req.params.id, 'target'));
    renderEdit(res, campaign, target, { values: { ...target, revision: String(targetRevision(target)) } });
  });

  /** A correction: a misspelt name, an address that bounced, an official told too much. */
  router.post('/campaigns/:slug/targets/:id/edit', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    const before = await getTarget(db, campaign, idParam(req.params.id, 'target'));
    const b = req.body ?? {};
    try {
      const { target, failedMoved } = await updateTarget(db, campaign, before.id, { name: str(b.name), title: str(b.title), email: str(b.email), salutation: str(b.salutation), disclose: str(b.disclose) || undefined }, revisionOf(b), { admin: isAdmin(res) });
      const changed = TARGET_FIELDS.filter((k) => before[k] !== target[k]);
      // Letters signed for this official now go to the address saved: which one it was is kept.
      if (changed.length) {
        await recordAuditOf(ctx, actor(res), 'target.edit', `campaign:${campaign.slug}`, {
          target: target.id, changed, ...(changed.includes('email') ? { from: before.email, to: target.email } : {}),
        });
      }
      const wentBefore = changed.includes('email') ? ((await countSentElsewhere(db, campaign.id)).get(target.id)?.n ?? 0) : 0;
      setFlash(ctx, res, !changed.length ? 'Nothing changed.'
        : `${target.name} saved${changed.includes('email') ? ': letters not sent yet go to the new address' : ''}.${failedMoved
          ? ` ${failedMoved} ${failedMoved === 1 ? 'letter that failed names' : 'letters that failed name'} it now: send ${failedMoved === 1 ? 'it' : 'them'} again from Failed.` : ''}${wentBefore
          ? ` ${wentBefore} ${wentBefore === 1 ? 'letter' : 'letters'} went to the old address already; if it did not work, ${isAdmin(res) ? '' : 'an admin can '}send ${wentBefore === 1 ? 'it' : 'them'} again from this list.` : ''}`);
      res.redirect(303, `/admin/campaigns/${campaign.slug}/targets`);
    } catch (err) {
      // The form comes back with what is saved now as its revision: saving again replaces it, knowingly.
      if (err instanceof EditConflictError) {
        const saved = await getTarget(db, campaign, before.id);
        const savedValues = Object.fromEntries(TARGET_FIELDS.map((k) => [k, saved[k] ?? '']));
        // The same form sent twice (a double click): the first saved it, and so says the second.
        const to = `/admin/campaigns/${campaign.slug}/targets`;
        if (answerSavedAlready(ctx, res, { saved: savedValues, typed: b, fields: TARGET_FIELDS, flash: `${saved.name} saved.`, to })) return;
        const message = conflictMessage(err.message, savedValues, b, TARGET_FIELDS);
        return renderEdit(res, campaign, saved, { values: { ...b, revision: String(err.revision) }, errors: { revision: message } }, 409);
      }
      if (!(err instanceof ValidationError)) throw err;
      renderEdit(res, campaign, before, { values: b, errors: err.fields }, 400);
    }
  });

  /**
   * Admins only: it sends every signer's letter, with what the official may see of them, to an
   * address those letters never went to. An organizer's account taken over (or turned) could
   * otherwise point an official at a mailbox of its own and collect the whole list in one click.
   */
  router.post(SEND_AGAIN, sendAgainAdminOnly, async (req, res) => {
    const campaign = await getCampaign(db, String(req.params.slug));
    const target = await getTarget(db, campaign, idParam(req.params.id, 'target'));
    const n = await sendAgainToCurrentAddress(db, ctx, campaign.id, target.id);
    if (n) await recordAuditOf(ctx, actor(res), 'target.send_again', `campaign:${campaign.slug}`, { target: target.id, to: target.email, letters: n });
    // Nothing made: the button pressed twice (or by two admins) finds what its first press made.
    const lately = n ? 0 : await countSentAgainLately(db, campaign.id, target.id, SENT_TWICE_MS / 1000);
    setFlash(ctx, res, n ? `${n} ${n === 1 ? 'letter goes' : 'letters go'} again, to ${target.email}.`
      : lately ? `${lately} ${lately === 1 ? 'letter was' : 'letters were'} sent again to ${target.email} moments ago: nothing more to send.`
      : `No letter of ${target.name} went to another address: nothing to send again.`);
    res.redirect(303, `/admin/campaigns/${campaign.slug}/targets`);
  });

  router.post('/campaigns/:slug/targets/:id/remove', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    try {
      const { target, retired, dropped, changed } = await removeTarget(db, campaign.slug, idParam(req.params.id, 'target'));
      if (changed) await recordAuditOf(ctx, actor(res), retired ? 'target.retire' : 'target.remove', `campaign:${campaign.slug}`, { target: target.id, name: target.name, ...(retired || dropped ? { dropped } : {}) });
      const notSent = dropped ? `: ${dropped} ${dropped === 1 ? 'letter' : 'letters'} not yet sent will not be sent` : '';
      setFlash(ctx, res, retired ? `${target.name} gets no more letters${notSent}. Letters went to it or were tried already, so it stays on record.` : `${target.name} removed${notSent}.`);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      setFlash(ctx, res, err.message);
    }
    res.redirect(303, `/admin/campaigns/${campaign.slug}/targets`);
  });

  router.post('/campaigns/:slug/targets/:id/reinstate', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    try {
      const { target, changed } = await reinstateTarget(db, campaign, idParam(req.params.id, 'target'));
      if (changed) await recordAuditOf(ctx, actor(res), 'target.reinstate', `campaign:${campaign.slug}`, { target: target.id, name: target.name });
      setFlash(ctx, res, `${target.name} is written to again: letters of signatures made from now on go to it, not of those made while it was off (their page did not name it).`);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      setFlash(ctx, res, err.message);
    }
    res.redirect(303, `/admin/campaigns/${campaign.slug}/targets`);
  });

  router.get('/campaigns/:slug/targets/import', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    render(res, 'targets-import', { title: `Import targets into “${campaign.title}”`, section: 'campaigns', campaign, columns: TARGET_CSV_COLUMNS, values: {} });
  });

  /** `step=preview` shows what would be imported; `step=import` saves, and only a file with no bad row. */
  router.post('/campaigns/:slug/targets/import', async (req, res) => {
    const campaign = await getCampaign(db, req.params.slug);
    const text = str(req.body?.csv);
    const csv = res.locals.fileNotUtf8 ? NOT_UTF8_FILE : parseTargetsCsv(text);
    const listed = await listTargets(db, campaign.id, { withRetired: true });
    const existing = new Set(listed.map((t) => t.email.toLowerCase()));
    const rows = csv.rows.map((r) => ({ ...r, exists: existing.has((r.target?.email ?? r.values.email).toLowerCase()) }));
    const fresh = rows.filter((r) => r.target && !r.exists).length;
    // Said at the preview, with how many fit, and the import not offered: not a bare error after it.
    const room = MAX_TARGETS - listed.filter((t) => !t.retired_at).length;
    let refused: string | undefined = fresh > room
      ? `A campaign takes at most ${MAX_TARGETS} targets: this one has ${MAX_TARGETS - room}, so ${room > 0 ? `at most ${room} more fit` : 'no more fit'}, and this CSV adds ${fresh}.`
      : undefined;
    if (req.body?.step === 'import' && csv.valid && !refused) {
      try {
        const { added, skipped } = await addTargets(db, campaign.slug, rows.map((r) => r.target!));
        await recordAuditOf(ctx, actor(res), 'target.import', `campaign:${campaign.slug}`, { added: added.length, skipped, targets: targetsForAudit(added) });
        setFlash(ctx, res, `${added.length} ${added.length === 1 ? 'target' : 'targets'} imported${skipped ? `; ${skipped} already on the list ${skipped === 1 ? 'was' : 'were'} skipped` : ''}.`);
        return res.redirect(303, `/admin/campaigns/${campaign.slug}/targets`);
      } catch (err) {
        // Targets added meanwhile (another tab) took the room: the form comes back as it was.
        if (err instanceof ValidationError) refused = Object.values(err.fields).join('; ');
        else if (err instanceof ConflictError) refused = err.message;
        else throw err;
      }
    }
    const bad = rows.filter((r) => r.errors.length).length;
    const errors = refused ? { csv: refused }
      : csv.fileError ? { csv: csv.fileError }
      : !csv.valid ? { csv: `${bad} ${bad === 1 ? 'row needs' : 'rows need'} attention; nothing is imported until every row is right.` } : undefined;
    render(res, 'targets-import', {
      title: `Import targets into “${campaign.title}”`, section: 'campaigns', campaign, columns: TARGET_CSV_COLUMNS, values: { csv: text },
      rows, fresh, duplicates: rows.filter((r) => r.exists).length, preview: rows.length > 0, canImport: csv.valid && fresh > 0 && !refused,
      ...(errors ? formErrors(errors) : {}),
    }, refused ? 409 : errors ? 400 : 200);
  });

  return router;
}
