import { Router, type Response } from 'express';
import type { AppContext } from '../../../context.ts';
import { listCampaignOverview } from '../../../campaigns/service.ts';
import { createCase, findCase, getCase, isAnnounced, listCasesPage, publishCase, unpublishCase, updateCase } from '../../../cases/service.ts';
import { CASE_STATUSES, SETTLED_STATUSES, type Case } from '../../../cases/types.ts';
import { ConflictError, EditConflictError, ValidationError } from '../../../errors.ts';
import { recordAuditOf } from '../../../organizers/service.ts';
import { isolateRightToLeft } from '../../../mail/bidi.ts';
import { setFlash } from '../../middleware/session.ts';
import { idParam, timeCursor, timePage } from '../../forms.ts';
import { answerSavedAlready, CASE_FORM_ORDER, conflictMessage, formErrors, revisionOf, SENT_TWICE_MS, str, type Render } from './render.ts';
import { caseUpdatesWithStats } from './updates.ts';

/** Cases a page of the console's list shows, changed last first. */
const CASES_PAGE = 100;

const FIELDS = { slug: 'slug', personName: 'person_name', summary: 'summary', status: 'status', location: 'location', language: 'language' } as const;

function caseForm(body: Record<string, unknown> = {}) {
  return { slug: str(body.slug), personName: str(body.person_name), summary: str(body.summary), status: str(body.status), location: str(body.location), language: str(body.language) };
}

/** The case form's fields as a case has them saved. */
const caseValues = (kase: Case) => ({ revision: String(kase.revision), slug: kase.slug, person_name: kase.person_name, summary: kase.summary, status: kase.status, location: kase.location, language: kase.language });

const statuses = (current?: string) => CASE_STATUSES.map((s) => ({ value: s, label: s.replace(/_/g, ' '), selected: s === current }));

export function caseRoutes(ctx: AppContext, render: Render): Router {
  const { db } = ctx;
  const router = Router();
  const actor = (res: Response) => res.locals.organizer!.id;

  const renderForm = (res: Response, data: { editing?: string; savedName?: string; published?: boolean; values: Record<string, string>; err?: ValidationError | ConflictError }, status = 200) => {
    const errors = data.err instanceof ValidationError ? formErrors(data.err.fields, FIELDS, CASE_FORM_ORDER)
      : data.err instanceof EditConflictError ? formErrors({ revision: data.err.message })
      : data.err ? formErrors({ slug: data.err.message }) : {};
    render(res, 'case-form', {
      // The heading names the case as saved: what is typed may be empty or a mistake.
      title: data.editing ? `Edit ${data.savedName}` : 'New case',
      savedName: data.savedName,
      section: 'cases',
      editing: data.editing,
      published: data.published,
      values: data.values,
      statuses: statuses(data.values.status),
      ...errors,
    }, status);
  };

  router.get('/cases', async (req, res) => {
    const before = timeCursor(req.query.before);
    const { rows, next } = timePage(await listCasesPage(db, before, CASES_PAGE + 1), CASES_PAGE);
    render(res, 'cases', { title: 'Cases', section: 'cases', cases: rows, paged: !!before, next });
  });

  router.get('/cases/new', (_req, res) => renderForm(res, { values: { status: 'detained' } }));

  router.post('/cases', async (req, res) => {
    try {
      const kase = await createCase(db, caseForm(req.body), { published: !req.body?.keep_unpublished });
      await recordAuditOf(ctx, actor(res), 'case.create', `case:${kase.slug}`, kase.published ? undefined : { published: false });
      setFlash(ctx, res, `Case “${kase.person_name}” created${kase.published ? '' : ', not published: its page is not public until you publish it'}.`);
      res.redirect(303, `/admin/cases/${kase.slug}`);
    } catch (err) {
      if (!(err instanceof ValidationError || err instanceof ConflictError)) throw err;
      // The slug taken moments ago by this very form (a double press without the page's script):
      // the second answer says created, as the first did, not "exists already".
      const made = err instanceof ConflictError ? await findCase(db, str(req.body?.slug).trim()) : undefined;
      if (made && Date.now() - made.created_at.getTime() < SENT_TWICE_MS
        && answerSavedAlready(ctx, res, { saved: caseValues(made), typed: req.body, fields: ['person_name', 'summary', 'status', 'location', 'language'], flash: `Case “${made.person_name}” created.`, to: `/admin/cases/${made.slug}` })) return;
      renderForm(res, { values: req.body ?? {}, err }, err instanceof ConflictError ? 409 : 400);
    }
  });

  router.get('/cases/:slug', async (req, res) => {
    const kase = await getCase(db, req.params.slug);
    const before = req.query.before === undefined ? undefined : idParam(req.query.before, 'page');
    const [campaigns, { updates, older }, announced] = await Promise.all([
      listCampaignOverview(db, { caseId: kase.id }, { limit: null }),
      caseUpdatesWithStats(db, kase, before),
      isAnnounced(db, kase),
    ]);
    const canUnpublish = kase.published && !announced;
    render(res, 'case', { title: kase.person_name, section: 'cases', case: kase, campaigns, updates, olderUpdates: older, newerUpdates: before !== undefined, canUnpublish, statuses: statuses(kase.status), values: {} });
  });

  router.post('/cases/:slug/publish', async (req, res) => {
    const { case: kase, changed } = await publishCase(db, req.params.slug);
    if (changed) await recordAuditOf(ctx, actor(res), 'case.publish', `case:${kase.slug}`);
    setFlash(ctx, res, `The case of ${kase.person_name} is published: its page is public.`);
    res.redirect(303, `/admin/cases/${kase.slug}`);
  });

  router.post('/cases/:slug/unpublish', async (req, res) => {
    try {
      const { case: kase, changed } = await unpublishCase(db, req.params.slug);
      if (changed) await recordAuditOf(ctx, actor(res), 'case.unpublish', `case:${kase.slug}`);
      setFlash(ctx, res, `The case of ${kase.person_name} is off the public site until you publish it again.`);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      setFlash(ctx, res, err.message);
    }
    res.redirect(303, `/admin/cases/${encodeURIComponent(req.params.slug)}`);
  });

  router.get('/cases/:slug/edit', async (req, res) => {
    const kase = await getCase(db, req.params.slug);
    renderForm(res, { editing: kase.slug, savedName: kase.person_name, published: kase.published, values: caseValues(kase) });
  });

  router.post('/cases/:slug', async (req, res) => {
    const existing = await getCase(db, req.params.slug);
    try {
      const kase = await updateCase(db, existing.slug, caseForm(req.body), revisionOf(req.body));
      await recordAuditOf(ctx, actor(res), 'case.update', `case:${kase.slug}`, kase.status !== existing.status ? { status: kase.status } : undefined);
      setFlash(ctx, res, 'Case saved.');
      res.redirect(303, `/admin/cases/${kase.slug}`);
    } catch (err) {
      // The form comes back with the revision saved meanwhile: saving again replaces it, knowingly.
      if (err instanceof EditConflictError) {
        const saved = caseValues(await getCase(db, existing.slug));
        const fields = CASE_FORM_ORDER.filter((f) => f !== 'revision' && f !== 'slug');
        if (answerSavedAlready(ctx, res, { saved, typed: req.body, fields, flash: 'Case saved.', to: `/admin/cases/${existing.slug}` })) return;
        const message = conflictMessage(err.message, saved, req.body, fields);
        return renderForm(res, { editing: existing.slug, savedName: existing.person_name, published: existing.published, values: { ...req.body, slug: existing.slug, revision: String(err.revision) }, err: new EditConflictError('case', err.revision, message) }, 409);
      }
      if (!(err instanceof ValidationError)) throw err;
      renderForm(res, { editing: existing.slug, savedName: existing.person_name, published: existing.published, values: { ...req.body, slug: existing.slug }, err }, 400);
    }
  });

  /** The status alone, from the case page: the rest of the case stays as it is. */
  router.post('/cases/:slug/status', async (req, res) => {
    const existing = await getCase(db, req.params.slug);
    try {
      // The rest as read just now: a save of the whole case in between is not undone (its revision).
      const kase = await updateCase(db, existing.slug, {
        personName: existing.person_name, summary: existing.summary, location: existing.location, status: str(req.body?.status),
      }, existing.revision);
      await recordAuditOf(ctx, actor(res), 'case.status', `case:${kase.slug}`, { from: existing.status, to: kase.status });
      const live = SETTLED_STATUSES.has(kase.status) ? (await listCampaignOverview(db, { caseId: kase.id, status: 'live' }, { limit: null })).map((c) => `“${isolateRightToLeft(c.title)}”`) : [];
      // A letter asking a court to halt a deportation reads wrong once the person has a stay.
      const stillLive = live.length ? ` ${live.join(', ')} still ${live.length === 1 ? 'takes' : 'take'} signatures and ${live.length === 1 ? 'sends' : 'send'} letters: close or pause ${live.length === 1 ? 'it' : 'them'}, or change the letter, if it no longer fits.` : '';
      // Someone used to alert services takes a change of status for news that went out.
      const untold = kase.status === existing.status ? '' : ' Nobody was emailed: post an update to tell the case’s followers.';
      setFlash(ctx, res, `Status is now “${kase.status.replace(/_/g, ' ')}”.${untold}${stillLive}`);
    } catch (err) {
      if (err instanceof EditConflictError) {
        setFlash(ctx, res, 'Status not changed: the case was saved by someone else at that moment. Check it and set the status again.');
        return res.redirect(303, `/admin/cases/${existing.slug}`);
      }
      if (!(err instanceof ValidationError)) throw err;
      setFlash(ctx, res, `Status not changed: ${Object.values(err.fields).join('; ')}`);
    }
    res.redirect(303, `/admin/cases/${existing.slug}`);
  });

  return router;
}
