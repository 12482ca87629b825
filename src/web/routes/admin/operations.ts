import fs from 'node:fs/promises';
import { Router, type Response } from 'express';
import type { AppContext } from '../../../context.ts';
import { countFailed, countOtherSuppressions, listFailedDeliveries, listSuppressions, OFFICIAL_KINDS, recipientOf, removeSuppression, retryAllFailed } from '../../../deliveries/service.ts';
import { NotFoundError, ValidationError } from '../../../errors.ts';
import { getCampaign } from '../../../campaigns/service.ts';
import { getTarget } from '../../../campaigns/targets.ts';
import { NOT_PROSE, NOT_TEXT } from '../../../cases/types.ts';
import { listAudit, recordAudit, recordAuditOf } from '../../../organizers/service.ts';
import { requireAdmin, setFlash } from '../../middleware/session.ts';
import { listOutbox, outboxPath, readOutbox } from './outbox.ts';
import { idParam, timeCursor, timePage } from '../../forms.ts';
import { failedAsShown, formErrors, str, type Render } from './render.ts';

const PAGE = 100;
/** The dev outbox, failed deliveries, the suppression list and the audit log. */
export function operationsRoutes(ctx: AppContext, render: Render): Router {
  const { db } = ctx;
  const router = Router();
  const actor = (res: Response) => res.locals.organizer!.id;

  // The outbox holds every email's links (confirmation, unsubscribe) and recipients, subscribers
  // among them, whom only admins may see (the subscriber list is theirs too).
  router.use('/outbox', requireAdmin);
  router.get('/outbox', async (_req, res) => {
    const dir = ctx.mailer.outboxDir;
    const { messages, total } = dir ? await listOutbox(dir) : { messages: [], total: 0 };
    render(res, 'outbox', { title: 'Outbox', section: 'outbox', dir, messages, total, more: total > messages.length });
  });

  router.get('/outbox/:file', async (req, res) => {
    const dir = ctx.mailer.outboxDir;
    if (!dir) return res.redirect(303, '/admin/outbox');
    if (req.query.download === '1') {
      // The whole file, not the viewer's first 512 KB. Sent relative to the outbox as root: an
      // absolute path would be refused under a DATA_DIR such as ~/.appeal (send ignores dot-paths).
      await fs.access(outboxPath(dir, req.params.file)).catch(() => {
        throw new NotFoundError('message');
      });
      return res.type('message/rfc822').attachment(req.params.file).sendFile(req.params.file, { root: dir });
    }
    const message = await readOutbox(dir, req.params.file);
    render(res, 'outbox-message', { title: message.headers.subject || req.params.file, section: 'outbox', file: req.params.file, ...message });
  });

  router.get('/deliveries/failed', async (req, res) => {
    const before = timeCursor(req.query.before);
    const [found, counts] = await Promise.all([listFailedDeliveries(db, { before, limit: PAGE + 1 }), countFailed(db)]);
    const { rows, next } = timePage(found, PAGE);
    const shown = failedAsShown(rows, res.locals.organizer!.role === 'admin');
    render(res, 'failed', {
      title: 'Failed deliveries', section: 'failed', back: '/admin/deliveries/failed', failed: shown, showCampaign: true,
      counts, retryable: counts.retryable, paged: !!before, next,
    });
  });

  router.post('/deliveries/failed/retry-all', async (_req, res) => {
    const queued = await retryAllFailed(db, ctx);
    if (queued) await recordAuditOf(ctx, actor(res), 'delivery.retry_all', 'deliveries', { queued });
    setFlash(ctx, res, queued ? `${queued} failed ${queued === 1 ? 'delivery is' : 'deliveries are'} queued again.` : 'Nothing to retry.');
    res.redirect(303, '/admin/deliveries/failed');
  });

  // Officials' addresses are every organizer's to manage; a supporter's or a subscriber's are for
  // admins, as the subscriber list is: the list, its search and its removal alike, or a search
  // would tell whether an address is on it.
  const officialsOnly = (res: Response) => res.locals.organizer!.role !== 'admin';
  const renderSuppressions = async (res: Response, query: Record<string, unknown>, form: { values?: Record<string, unknown>; errors?: Record<string, string> } = {}, status = 200) => {
    // From a failed delivery's badge, or a target's: its address, found here, so the link carries
    // none (a proxy logs the URL); a supporter's or subscriber's only for whom the list shows it.
    const from = query.delivery !== undefined ? await recipientOf(db, idParam(query.delivery, 'delivery')) : undefined;
    const fromShown = from && (!officialsOnly(res) || OFFICIAL_KINDS.includes(from.kind)) ? from.recipient : undefined;
    const target = query.target !== undefined ? await getTarget(db, await getCampaign(db, str(query.campaign)), idParam(query.target, 'target')) : undefined;
    const search = str(query.q).trim().slice(0, 200) || fromShown || target?.email || undefined;
    const page = /^[1-9]\d{0,5}$/.test(str(query.page)) ? Number(query.page) : 1;
    const rows = await listSuppressions(db, { search, offset: (page - 1) * PAGE, officialsOnly: officialsOnly(res), limit: PAGE + 1 });
    render(res, 'suppressions', {
      hiddenFromYou: officialsOnly(res) ? await countOtherSuppressions(db) : 0,
      title: 'Suppression list', section: 'suppressions', search, suppressions: rows.slice(0, PAGE),
      next: rows.length > PAGE ? page + 1 : undefined, values: form.values ?? {}, ...(form.errors ? formErrors(form.errors) : {}),
    }, status);
  };

  router.get('/suppressions', async (req, res) => renderSuppressions(res, req.query));

  router.post('/suppressions/remove', async (req, res) => {
    const email = str(req.body?.email).trim();
    const reason = str(req.body?.reason).trim();
    try {
      if (reason.length < 3) throw new ValidationError({ [`reason`]: 'say why this address may get mail again' });
      if (NOT_PROSE.test(reason)) throw new ValidationError({ reason: NOT_TEXT });
      // Lifted with its audit entry or not at all: no suppression goes without a record of who and why.
      const removed = await db.transaction(async (tx) => {
        const gone = await removeSuppression(tx, email, officialsOnly(res));
        if (gone) await recordAudit(tx, actor(res), 'suppression.remove', `suppression:${gone.email}`, { reason: reason.slice(0, 500), was: gone.reason.slice(0, 200), kind: gone.kind });
        return gone;
      });
      if (!removed) throw new ValidationError({ reason: 'this address is not on the list (any more)' });
      // Not naming it: the flash rides in a cookie, which is no place for an address.
      setFlash(ctx, res, 'The address can get mail again; the audit log has your reason.');
      res.redirect(303, '/admin/suppressions');
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      await renderSuppressions(res, { q: email }, { values: { email, reason }, errors: err.fields }, 400);
    }
  });

  router.get('/audit', async (req, res) => {
    const action = str(req.query.action).trim().slice(0, 60) || undefined;
    const actor = str(req.query.by).trim().slice(0, 320) || undefined;
    const before = req.query.before ? idParam(req.query.before, 'page') : undefined;
    const rows = await listAudit(db, { action, actor, beforeId: before, limit: PAGE + 1 });
    const entries = rows.slice(0, PAGE).map((e) => {
      // A subscriber's or supporter's address taken off the suppression list is for admins only,
      // as on the list itself; an official's is not. An entry from before kinds were kept is hidden.
      const hidden = officialsOnly(res) && e.action === 'suppression.remove' && !OFFICIAL_KINDS.includes(String(e.detail?.kind));
      if (hidden) return { ...e, object: 'suppression: an address only admins see', detailText: '' };
      // A value of its own parts (an edit's from and to, the targets a campaign was made with) as JSON, not "[object Object]".
      const detailText = e.detail ? Object.entries(e.detail).map(([k, v]) => `${k}: ${v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ') : '';
      // Not the organizer's doing: whoever typed a wrong password for their account.
      return { ...e, detailText, attempt: ['login.failed', 'login.locked', 'login.refused'].includes(e.action) };
    });
    render(res, 'audit', { title: 'Audit log', section: 'audit', action, by: actor, entries, older: rows.length > PAGE ? entries[PAGE - 1]!.id : undefined });
  });

  return router;
}
