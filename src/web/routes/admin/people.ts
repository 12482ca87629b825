import crypto from 'node:crypto';
import { Router, type Response } from 'express';
import type { AppContext } from '../../../context.ts';
import { BadFormError, ConflictError, NotFoundError, ValidationError } from '../../../errors.ts';
import {
  addOrganizerOnce, createApiTokenOnce, getOrganizer, type NewApiToken, listApiTokens, listOrganizers, recordAudit, recordAuditOf, removeOrganizer,
  resetPassword, revokeApiToken, setOrganizerRole, unlockOrganizer, updateOrganizer,
} from '../../../organizers/service.ts';
import { countSubscribersByStatus, listSubscribersPage } from '../../../subscribers/service.ts';
import { forgetAddressCounters, forgetPerson, forgottenWords, type Forgotten } from '../../../retention/service.ts';
import { counted } from '../../../words.ts';
import { email as emailAddress } from '../../../campaigns/types.ts';
import { settlesWithin } from '../../../deadline.ts';
import { requireAdmin, setFlash } from '../../middleware/session.ts';
import { sendCsv } from '../../../csv.ts';
import { idParam } from '../../forms.ts';
import { formErrors, str, type Render } from './render.ts';

/** How long an erasure's answer waits for Redis (the counters there lapse within a day anyway). */
const COUNTERS_WAIT_MS = 3_000;

/**
 * The counts in Redis of the emails sent to an address just erased (forgetAddressCounters).
 * @returns how many went, and what to say when they could not be reached.
 */
async function forgetCountersNow(ctx: AppContext, email: string): Promise<{ counters: number; countersLeft?: string }> {
  const left = 'The counts of confirmation emails sent to the address, kept in Redis under a keyed hash, could not be reached now; they lapse on their own within a day.';
  const work = forgetAddressCounters(ctx.redis.client, ctx.config.queuePrefix, ctx.secret, email).catch((err: unknown) => {
    ctx.log.warn({ err }, 'an erasure could not delete the counters in Redis that named the address');
    return undefined;
  });
  if (!(await settlesWithin(work, COUNTERS_WAIT_MS))) return { counters: 0, countersLeft: left };
  const done = await work;
  return done ? { counters: done.deleted, countersLeft: done.fileKeepsThem } : { counters: 0, countersLeft: left };
}

/** What the console says once a person is erased. */
function erasedWords(f: Forgotten, c: { counters: number; countersLeft?: string }): string {
  const { erased, unsent, sending } = forgottenWords(f);
  const counters = c.counters ? `, and ${counted(c.counters, 'rate-limit count', 'rate-limit counts')} that named it` : '';
  return [
    `Erased ${erased}${counters}.`,
    unsent && `${unsent}.`,
    sending && `${sending}.`,
    c.countersLeft ?? '',
    f.alsoHeld.length ? `Also held, and not erased: ${f.alsoHeld.join(', ')}. Most providers deliver these to the same mailbox, but at some they are another person's: erase each one the person confirms is theirs.` : '',
  ].filter(Boolean).join(' ');
}

/** What the console says of the tokens an organizer made for others, revoked as they were removed or stopped being an admin. */
function tokensRevokedWords(ids: number[]): string {
  if (ids.length === 0) return '';
  const named = ids.map((id) => `#${id}`).join(', ');
  return ` The API ${ids.length === 1 ? 'token' : 'tokens'} they made to act as other organizers (${named}) ${ids.length === 1 ? 'is' : 'are'} revoked: make new ones where they are still needed.`;
}

/** Admins only: organizers, API tokens, and the subscriber list (the most sensitive list there is). */
export function peopleRoutes(ctx: AppContext, render: Render): Router {
  const { db } = ctx;
  const router = Router();
  const actor = (res: Response) => res.locals.organizer!.id;
  router.use(['/organizers', '/tokens', '/subscribers', '/subscribers.csv', '/forget'], requireAdmin);

  // Each showing of a form that makes a secret gets its own key: sent twice, the form makes it once.
  const renderOrganizers = async (res: Response, extra: object = {}, status = 200) => {
    render(res, 'organizers', { title: 'Organizers', section: 'organizers', organizers: await listOrganizers(db), values: { role: 'organizer' }, requestKey: crypto.randomUUID(), ...extra }, status);
  };

  router.get('/organizers', async (_req, res) => renderOrganizers(res));

  router.post('/organizers', async (req, res) => {
    const values = { email: str(req.body?.email), name: str(req.body?.name), role: str(req.body?.role) || 'organizer' };
    try {
      // No password from the form: one is generated and shown once, to hand over in person. A
      // form of a page from before forms carried a key adds as it always did.
      const added = await addOrganizerOnce(db, values, str(req.body?.request_key) || crypto.randomUUID());
      if ('addedBefore' in added) return renderOrganizers(res, { addedBefore: { id: added.addedBefore.id, email: added.addedBefore.email } });
      const { organizer, generatedPassword } = added;
      await recordAuditOf(ctx, actor(res), 'organizer.add', `organizer:${organizer.id}`, { email: organizer.email, role: organizer.role });
      await renderOrganizers(res, { created: { email: organizer.email, password: generatedPassword } });
    } catch (err) {
      if (err instanceof ConflictError) return renderOrganizers(res, { values, ...formErrors({ email: err.message }) }, 409);
      if (!(err instanceof ValidationError)) throw err;
      await renderOrganizers(res, { values, ...formErrors(err.fields) }, 400);
    }
  });

  // The address of a reset's answer, opened again (history, a Cancel that leads back to it): the list.
  router.get('/organizers/:id/password', (_req, res) => res.redirect(303, '/admin/organizers'));

  /** A new generated password for another organizer (one who lost theirs, or whose first was not copied), shown once. */
  router.post('/organizers/:id/password', async (req, res) => {
    const id = idParam(req.params.id, 'organizer');
    const organizer = await getOrganizer(db, id);
    if (!organizer) throw new NotFoundError('organizer');
    // One's own is changed knowing the current one (the password page), not reset from here.
    if (organizer.id === actor(res)) return res.redirect(303, '/admin/password');
    // A form of a page from before forms carried a key resets as it always did.
    const { generatedPassword, repeated } = await resetPassword(db, organizer.email, undefined, { id: actor(res), requestKey: str(req.body?.request_key) || crypto.randomUUID() });
    if (repeated) return renderOrganizers(res, { resetBefore: { id: organizer.id, email: organizer.email } });
    await renderOrganizers(res, { created: { email: organizer.email, password: generatedPassword, reset: true } });
  });

  router.post('/organizers/:id/role', async (req, res) => {
    const id = idParam(req.params.id, 'organizer');
    // Either button's value, and nothing else: a missing or unknown role made an admin an organizer.
    const role = req.body?.role;
    if (role !== 'admin' && role !== 'organizer') throw new BadFormError('The form names no role: its button sends role=admin or role=organizer.');
    try {
      const revoked = await setOrganizerRole(db, actor(res), id, role);
      setFlash(ctx, res, `Role changed to ${role}.${tokensRevokedWords(revoked)}`);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      setFlash(ctx, res, err.message);
    }
    res.redirect(303, '/admin/organizers');
  });

  const renderEdit = (res: Response, organizer: { id: number; email: string }, values: object, errors: Record<string, string> = {}, status = 200) =>
    render(res, 'organizer-edit', { title: `Edit ${organizer.email}`, section: 'organizers', organizer, values, ...formErrors(errors) }, status);

  router.get('/organizers/:id/edit', async (req, res) => {
    const organizer = await getOrganizer(db, idParam(req.params.id, 'organizer'));
    if (!organizer) throw new NotFoundError('organizer');
    renderEdit(res, organizer, { email: organizer.email, name: organizer.name });
  });

  router.post('/organizers/:id', async (req, res) => {
    const organizer = await getOrganizer(db, idParam(req.params.id, 'organizer'));
    if (!organizer) throw new NotFoundError('organizer');
    const values = { email: str(req.body?.email).trim(), name: str(req.body?.name) };
    try {
      const changed = await updateOrganizer(db, res.locals.organizer!, organizer.id, values);
      const own = organizer.id === actor(res);
      setFlash(ctx, res, Object.keys(changed).length === 0 ? 'Nothing changed.' : !changed.email ? 'Saved.'
        : own ? `Saved. You sign in as ${changed.email.to} from now on.` : `Saved. They sign in as ${changed.email.to} from now on: tell them.`);
      res.redirect(303, '/admin/organizers');
    } catch (err) {
      if (err instanceof ConflictError) return renderEdit(res, organizer, values, { email: err.message }, 409);
      if (!(err instanceof ValidationError)) throw err;
      renderEdit(res, organizer, values, err.fields, 400);
    }
  });

  router.post('/organizers/:id/unlock', async (req, res) => {
    await unlockOrganizer(db, actor(res), idParam(req.params.id, 'organizer'));
    setFlash(ctx, res, 'Sign-in unlocked.');
    res.redirect(303, '/admin/organizers');
  });

  router.post('/organizers/:id/remove', async (req, res) => {
    const id = idParam(req.params.id, 'organizer');
    try {
      // Their sessions and API tokens go with the row (ON DELETE CASCADE).
      const revoked = await removeOrganizer(db, actor(res), id);
      setFlash(ctx, res, `Organizer removed; their sessions and API tokens no longer work.${tokensRevokedWords(revoked)}`);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      setFlash(ctx, res, err.message);
    }
    res.redirect(303, '/admin/organizers');
  });

  /** `actsAs`: the organizer the form chose, kept when it comes back with a mistake; the one signed in otherwise. */
  const renderTokens = async (res: Response, extra: object = {}, status = 200, actsAs?: string) => {
    const chosen = (o: { id: number; email: string }) => (actsAs ? o.email.toLowerCase() === actsAs.toLowerCase() : o.id === actor(res));
    const organizers = (await listOrganizers(db)).map((o) => ({ value: o.email, label: `${o.email} (${o.role})`, selected: chosen(o) }));
    render(res, 'tokens', { title: 'API tokens', section: 'tokens', tokens: await listApiTokens(db), organizers_options: organizers, values: {}, requestKey: crypto.randomUUID(), ...extra }, status);
  };

  router.get('/tokens', async (_req, res) => renderTokens(res));

  router.post('/tokens', async (req, res) => {
    const label = str(req.body?.label).trim();
    const email = str(req.body?.organizer) || res.locals.organizer!.email;
    if (!label) return renderTokens(res, { values: { label }, ...formErrors({ label: 'name what the token is for, so you know what breaks when you revoke it' }) }, 400, email);
    let made: NewApiToken | undefined;
    try {
      // A form of a page from before forms carried a key makes its token as it always did.
      made = await createApiTokenOnce(db, email, label, { by: actor(res), requestKey: str(req.body?.request_key) || crypto.randomUUID() });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      return renderTokens(res, { values: { label }, ...formErrors(err.fields) }, 400, email);
    }
    // This form again (a double click, a reload): its first answer showed the token.
    if (!made) return renderTokens(res, { createdBefore: { label } });
    // By its number, as an export with it is logged ("API token #3"): an admin may make a token
    // that acts as another organizer, and the log must tell it from theirs of the same label.
    await recordAuditOf(ctx, actor(res), 'token.create', `organizer:${email}`, { token: made.id, label });
    await renderTokens(res, { created: { token: made.token, id: made.id, label } });
  });

  router.post('/tokens/:id/revoke', async (req, res) => {
    const revoked = await revokeApiToken(db, actor(res), idParam(req.params.id, 'token'));
    setFlash(ctx, res, revoked ? 'Token revoked: it no longer works.' : 'That token was revoked already.');
    res.redirect(303, '/admin/tokens');
  });

  // Erasure on request, as `npm run cli -- forget` does it, for admins who have no shell.
  router.get('/forget', (_req, res) => render(res, 'forget', { title: 'Erase a person', section: 'subscribers', values: {} }));

  router.post('/forget', async (req, res) => {
    const typed = str(req.body?.email).trim();
    if (!emailAddress.safeParse(typed).success) {
      return render(res, 'forget', { title: 'Erase a person', section: 'subscribers', values: { email: typed }, ...formErrors({ email: 'enter the email address of the person to erase' }) }, 400);
    }
    // Asked on a page that names the address, so a typo is seen before nothing can be undone.
    if (str(req.body?.confirmed) !== '1') return render(res, 'forget', { title: 'Erase a person?', section: 'subscribers', asking: typed });
    const forgotten = await forgetPerson(db, typed, { organizerId: actor(res) });
    const counters = await forgetCountersNow(ctx, typed);
    // Answered by a redirect: the page reloaded must not erase (and log) it again.
    setFlash(ctx, res, erasedWords(forgotten, counters));
    res.redirect(303, '/admin/forget');
  });

  router.get('/subscribers', async (_req, res) => {
    const counts = await countSubscribersByStatus(db);
    render(res, 'subscribers', { title: 'Subscribers', section: 'subscribers', counts, total: counts.reduce((n, c) => n + c.n, 0) });
  });

  router.get('/subscribers.csv', async (_req, res) => {
    const iso = (d: Date | null) => d?.toISOString() ?? '';
    await sendCsv(
      res,
      {
        filename: 'subscribers.csv',
        columns: ['email', 'status', 'follows', 'consent_at', 'consent_source', 'created_at', 'confirmed_at', 'unsubscribed_at', 'awaiting_confirmation'],
        page: (afterId) => listSubscribersPage(db, afterId, 1000),
        // A pending subscriber's address, as a pending signer's: nobody has shown it is theirs.
        row: (s) => [s.status === 'pending' ? '' : s.email, s.status, s.follows, iso(s.consent_at), s.consent_source ?? '', iso(s.created_at), iso(s.confirmed_at), iso(s.unsubscribed_at), s.awaiting_confirmation],
      },
      () => recordAudit(db, actor(res), 'subscribers.export', 'subscribers'),
    );
  });

  return router;
}
