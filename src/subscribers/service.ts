import type { Logger } from 'pino';
import type { Db, Queryable } from '../db/index.ts';
import { getPublicCase, lockPublicCase } from '../cases/service.ts';
import { GoneError, NotFoundError } from '../errors.ts';
import { addressWorks, enqueueAfreshLater, requeueFinished, RESEND_GAP_SECONDS } from '../deliveries/service.ts';
import type { Queues } from '../queues.ts';
import { deriveToken, hashToken } from '../tokens.ts';
import { parseInput } from '../validation.ts';
import * as q from './queries.ts';
import type { SignedVia } from '../signatures/types.ts';
import { CONFIRM_PAGE_WORDING, consentWording, optinPageWording, signFormWording, subscribeInput, type ConsentSource, type Followed, type Subscriber } from './types.ts';

export { consentWording } from './types.ts';
export type { ConsentSource, Followed, Subscriber } from './types.ts';

export interface SubscribeDeps {
  queues: Pick<Queues, 'send' | 'redis' | 'later' | 'maintenance'>;
  log: Pick<Logger, 'warn'>;
  /** Server secret the opt-in and manage tokens are derived from. */
  secret: string;
}

/** The link in opt-in email number `round`; a newer opt-in email makes older links stop working. */
export const optinToken = (secret: string, subscriber: Pick<Subscriber, 'id' | 'optin_round'>) =>
  deriveToken(secret, `subscriber-optin-${subscriber.optin_round}`, subscriber.id);

/** The link in every alert to the preferences page and to unsubscribe; it never changes. */
export const manageToken = (secret: string, subscriberId: number) => deriveToken(secret, 'subscriber-manage', subscriberId);

/**
 * Derives subscribers' kept links again from a new secret (see rotateSecret): the latest opt-in
 * link and the manage link every alert carries, so the next alert's unsubscribe works. Links
 * mailed before stop working.
 * @returns how many subscribers' links changed.
 */
export async function rederiveSubscriberLinks(db: Queryable, secret: string, pageSize = 1_000): Promise<number> {
  let changed = 0;
  for (let afterId = 0; ; ) {
    const page = await q.listSubscriberLinks(db, afterId, pageSize);
    if (page.length === 0) return changed;
    afterId = page[page.length - 1]!.id;
    await q.setSubscriberTokenHashes(db, page.map((s) => s.id), page.map((s) => hashToken(optinToken(secret, s))), page.map((s) => hashToken(manageToken(secret, s.id))));
    changed += page.length;
  }
}

/**
 * What requestSubscription checks, storing and sending nothing: a bot caught by the honeypot gets
 * the answer a person would, mistakes included, so it cannot tell it was caught.
 * @throws as requestSubscription does.
 */
export async function pretendToSubscribe(db: Queryable, input: unknown): Promise<void> {
  const s = parseInput(subscribeInput, input);
  if (s.caseSlug) await getPublicCase(db, s.caseSlug);
}

/**
 * Asks for alerts about one case (or all cases) for an address and sends an opt-in email.
 * Nothing changes for anyone until that email's button is pressed. Whether the address was
 * known, active or unsubscribed, the caller sees the same outcome, so the answer reveals nothing.
 * @throws ValidationError (email, caseSlug), NotFoundError for an unknown case.
 */
export async function requestSubscription(db: Db, deps: SubscribeDeps, input: unknown, source: ConsentSource): Promise<void> {
  const s = parseInput(subscribeInput, input);
  const kase = s.caseSlug ? await getPublicCase(db, s.caseSlug) : undefined;
  const outcome = await db.transaction(async (tx) => {
    // Held until this commits: an unpublish meanwhile would not see this request, which announces the case.
    if (kase) await lockPublicCase(tx, kase.id);
    const subscriber = await q.upsertSubscriber(tx, s.email);
    // The same request again moments later (a double click, a form sent twice): the email on its
    // way asks for it already. A new one would make its link, the one opened, "does not exist".
    if (await q.askedMomentsAgo(tx, subscriber.id, kase?.id ?? null, RESEND_GAP_SECONDS)) return undefined;
    // The wording the asking form showed: a sign form's box says less than the subscribe form, and
    // a page posting through the API is not ours to quote: the opt-in page the person confirms on is.
    const text = source === 'sign form' && kase ? signFormWording(kase.person_name)
      : source === 'api' ? optinPageWording(kase?.person_name) : consentWording(kase?.person_name);
    const waits = await q.insertPendingSubscription(tx, subscriber.id, kase?.id ?? null, source, text);
    // Following that case already: the opt-in row's email then carries the link to their
    // preferences (see createOptinComposer), for whoever lost every alert email. An opt-in still
    // on its way for something else is sent again with this one, with a new link.
    if (waits) await q.markOptinRequested(tx, subscriber.id);
    const fresh = await q.insertOptinDelivery(tx, subscriber);
    if (fresh !== undefined) {
      await nextOptinLink(tx, deps.secret, subscriber);
      return { id: fresh, waitMs: 0 };
    }
    const requeued = await optinAgain(tx, deps.secret, subscriber);
    // Neither new nor finished: queued (its email, composed when sent, will say this too) or
    // being sent now, perhaps composed before this request. Then it goes again once sent.
    if (!requeued && (await q.getOptinStatus(tx, subscriber.id)) === 'sending') {
      await q.setOptinOwed(tx, subscriber.id, true);
      return { sending: subscriber.id };
    }
    return requeued;
  });
  if (!outcome) return;
  if ('sending' in outcome) {
    // Not added (Redis away) or lost with Redis's data, it is added by resumeOwedOptins.
    deps.queues.later(
      deps.queues.maintenance
        .addBulk([optinAgainJob(outcome.sending)])
        .then(
          () => undefined,
          (err: unknown) => deps.log.warn({ err }, 'an opt-in email asked for again was not scheduled yet: the sweeper adds it'),
        ),
    );
    return;
  }
  // A requeued row's old job may still hold the id (failed jobs are kept a while): enqueueAfresh
  // removes it. One still live is finishing the previous email: enqueueAfreshLater looks again.
  enqueueAfreshLater(deps.queues, deps.log, [outcome.id], outcome.waitMs);
}

/**
 * The job that sends an opt-in email again when it was asked for while the one before it was
 * being sent: once the resend gap has passed (by then that email has gone), one per subscriber.
 */
const optinAgainJob = (subscriberId: number, delay = RESEND_GAP_SECONDS * 1000) => ({
  name: 'optin-again',
  data: { task: 'optin-again' as const, subscriberId },
  opts: { jobId: `optin-again-${subscriberId}`, delay, removeOnComplete: true, removeOnFail: true },
});

/** How long past the resend gap an owed opt-in email may wait for its job before the sweeper adds it. */
const OPTIN_OWED_GRACE_SECONDS = 60;

/**
 * Adds optinAgainJob again for subscribers still owed an opt-in email well after it was due: its
 * job was lost with Redis's data, was never added (Redis away), or failed. The sweep task runs it.
 * A job still there (waiting for a slow relay to finish the email before it, or running) is left
 * as it is: adding one with its id would do nothing. It is looked for only so that the count
 * returned (and logged) is of jobs really added: removeOnComplete and removeOnFail delete every
 * other, so its key is enough to tell.
 * @returns how many jobs were added.
 */
export async function resumeOwedOptins(db: Queryable, queues: Pick<Queues, 'maintenance' | 'redis'>): Promise<number> {
  const owed = await q.listOwedOptins(db, RESEND_GAP_SECONDS + OPTIN_OWED_GRACE_SECONDS);
  if (owed.length === 0) return 0;
  const pipeline = queues.redis.pipeline();
  for (const id of owed) pipeline.exists(queues.maintenance.toKey(optinAgainJob(id).opts.jobId));
  const replies = (await pipeline.exec()) ?? [];
  const lost = owed.filter((_, i) => replies[i]?.[1] === 0);
  await queues.maintenance.addBulk(lost.map((id) => optinAgainJob(id, 0)));
  return lost.length;
}

/** A new opt-in link: the older ones stop working. */
async function nextOptinLink(tx: Queryable, secret: string, subscriber: Pick<Subscriber, 'id' | 'optin_round'>): Promise<void> {
  const next = { id: subscriber.id, optin_round: subscriber.optin_round + 1 };
  await q.setOptinRound(tx, next.id, next.optin_round, hashToken(optinToken(secret, next)), hashToken(manageToken(secret, next.id)));
}

/** The opt-in email again, with a new link, once the one before it has gone (requeueFinished). */
async function optinAgain(tx: Queryable, secret: string, subscriber: Pick<Subscriber, 'id' | 'optin_round'>) {
  const requeued = await requeueFinished(tx, 'optin', subscriber.id);
  if (requeued) await nextOptinLink(tx, secret, subscriber);
  return requeued;
}

/**
 * The maintenance job optinAgainJob: sends the opt-in email again when something it asks to
 * confirm is still waiting (the email that was on its way may not have said it). Nothing when the
 * subscriber is gone, or confirmed meanwhile (that email's page listed everything it confirmed).
 * @returns 'again' when the email goes again; 'sending' when the one before it is still being
 * sent (a relay slow to answer), so the job must look again once that send has ended.
 */
export async function sendOptinAgain(db: Db, deps: SubscribeDeps, subscriberId: number): Promise<'again' | 'sending' | 'nothing'> {
  const outcome = await db.transaction(async (tx) => {
    const subscriber = await q.lockSubscriber(tx, subscriberId);
    if (!subscriber) return undefined;
    const waiting = (await q.listSubscriptions(tx, subscriberId, 'pending')).length > 0;
    const requeued = waiting ? await optinAgain(tx, deps.secret, subscriber) : undefined;
    if (requeued) return requeued;
    if (waiting && (await q.getOptinStatus(tx, subscriberId)) === 'sending') return 'sending';
    // Nothing waits any more (confirmed meanwhile), or there is no email to send again: none is owed.
    await q.setOptinOwed(tx, subscriberId, false);
    return undefined;
  });
  if (outcome === 'sending') return outcome;
  if (outcome) enqueueAfreshLater(deps.queues, deps.log, [outcome.id], outcome.waitMs);
  return outcome ? 'again' : 'nothing';
}

/** The cases the subscribe page offers to follow one by one (see listCasesOffered). */
export const casesToChooseFrom = (db: Queryable) => q.listCasesOffered(db);

export interface OptinView {
  subscriber: Subscriber;
  /** What confirming adds. */
  pending: Followed[];
}

/** Asking again sends a new link and the old one stops working; unconfirmed requests are deleted. */
const OPTIN_LINK_HINT =
  'If the address was given more than once, only the link in the newest email works, and that email can take a minute to arrive. A request is deleted when it is not confirmed in the time its email gave, or when the address unsubscribes: subscribe again to get a new link.';

/**
 * What a used opt-in link says while its subscription lasts (as a used signature link does, not an
 * error). A double click's second press lands here too, its first answer dropped by the browser: the
 * words must not tell someone who just subscribed that their link "was already used", as if by another.
 */
export const OPTIN_ALREADY_CONFIRMED = 'Your subscription is confirmed: this link has done what it was for. Every alert has a link to change what you follow or to unsubscribe.';

/**
 * What the opt-in page shows before its button is pressed; `pending` is empty when the link was
 * used and its subscription is confirmed (OPTIN_ALREADY_CONFIRMED).
 * @throws NotFoundError for an unknown link; GoneError when it was used and the alerts stopped since.
 */
export async function findOptin(db: Queryable, token: string, { lock = false } = {}): Promise<OptinView> {
  const subscriber = await q.getSubscriberByConfirmHash(db, hashToken(token), { lock });
  if (!subscriber) throw new NotFoundError('confirmation link', OPTIN_LINK_HINT);
  const pending = await q.listSubscriptions(db, subscriber.id, 'pending');
  // Not the preferences themselves: a forwarded or leaked opt-in email must not open them for good.
  if (pending.length === 0 && subscriber.status !== 'active') {
    throw new GoneError('This link was already used, and these alerts have stopped since. To get alerts again, subscribe again.');
  }
  return { subscriber, pending };
}

/**
 * Confirms an opt-in: the subscriber becomes active (again, after an unsubscribe) and follows what
 * they asked for; the consent record says when, through which form, and the wording shown.
 * @returns the manage token, for a link to the preferences page; `already-confirmed` when the link
 * was used and its subscription lasts.
 * @throws NotFoundError, GoneError as findOptin.
 */
export async function confirmSubscription(db: Db, deps: Pick<SubscribeDeps, 'secret'>, token: string): Promise<{ manageToken: string; following: Followed[] } | 'already-confirmed'> {
  return db.transaction(async (tx) => {
    // The subscriber is locked before its subscriptions are read, in the order an unsubscribe
    // takes them (the other order deadlocked, and the unsubscribe was lost).
    const { subscriber, pending } = await findOptin(tx, token, { lock: true });
    if (pending.length === 0) return 'already-confirmed';
    // An address that bounced may have a new owner: what it followed before does not come back
    // with what this email listed, which is all they confirm.
    if (subscriber.status === 'bounced') await q.dropActiveSubscriptions(tx, subscriber.id);
    const confirmed = await q.activatePendingSubscriptions(tx, subscriber.id);
    // Two presses racing: the second finds nothing pending once the first commits.
    if (confirmed.length === 0) return 'already-confirmed';
    await addressWorks(tx, subscriber.email);
    await q.markActive(tx, subscriber.id, { source: confirmed[0]!.consent_source, text: confirmed[0]!.consent_text });
    return { manageToken: manageToken(deps.secret, subscriber.id), following: await q.listSubscriptions(tx, subscriber.id, 'active') };
  });
}

/**
 * An unknown manage link is most often an old alert's, for an address deleted after it left: that
 * address gets nothing from us, and its owner should not be left wondering.
 */
const MANAGE_LINK_HINT =
  'An address is deleted some weeks after it unsubscribes, and its old links stop working then; links in older alerts may also have been replaced. If alerts still reach you, use the link in the latest one.';

async function byManageToken(db: Queryable, token: string, { lock = false } = {}): Promise<Subscriber> {
  const subscriber = await q.getSubscriberByManageHash(db, hashToken(token), { lock });
  if (!subscriber) throw new NotFoundError('subscription link', MANAGE_LINK_HINT);
  return subscriber;
}

export interface PreferencesView {
  subscriber: Subscriber;
  active: boolean;
  followsAll: boolean;
  /** What the subscriber follows, all cases as a null slug. */
  following: Followed[];
  cases: { id: number; slug: string; person_name: string; status: string; followed: boolean }[];
}

/** What the preferences page shows. @throws NotFoundError for an unknown link. */
export async function getPreferences(db: Queryable, token: string): Promise<PreferencesView> {
  const subscriber = await byManageToken(db, token);
  const followed = await q.listSubscriptions(db, subscriber.id, 'active');
  const ids = new Set(followed.map((f) => f.caseId));
  const cases = (await q.listCasesToFollow(db, subscriber.id)).map((c) => ({ ...c, followed: ids.has(c.id) }));
  return { subscriber, active: subscriber.status === 'active', followsAll: ids.has(null), following: followed, cases };
}

/**
 * Sets which cases an active subscriber follows. Someone who left must opt in again first, so
 * this changes nothing for them.
 * @returns false when nothing could change (not active).
 * @throws NotFoundError for an unknown link.
 */
export async function updatePreferences(db: Db, token: string, choice: { all: boolean; caseSlugs: string[]; listed?: number[] }): Promise<boolean> {
  return db.transaction(async (tx) => {
    // Locked, its status read under the lock: an unsubscribe committing meanwhile would not see the
    // subscriptions written here, and they would outlive it.
    const subscriber = await byManageToken(tx, token, { lock: true });
    if (subscriber.status !== 'active') return false;
    // What the page listed (`listed`, the form says; else what it would list now) is what the
    // save decides: a case it did not list (past CASES_TO_FOLLOW) keeps its subscription, and
    // one it listed is followed if ticked, wherever cases announced since put it.
    const listed = choice.listed ?? (await q.listCasesToFollow(tx, subscriber.id)).map((c) => c.id);
    const ids = await q.casesToFollowBySlug(tx, subscriber.id, choice.caseSlugs);
    await q.replaceSubscriptions(tx, subscriber.id, [0, ...listed], choice.all ? [0, ...ids] : ids, 'preferences page');
    return true;
  });
}

/** What the unsubscribe page shows before its button. @throws NotFoundError */
export async function findByManageToken(db: Queryable, token: string): Promise<Subscriber> {
  return byManageToken(db, token);
}

/**
 * Unsubscribes at once (RFC 8058 one-click, or the page's button). Repeating it is no error.
 * @throws NotFoundError for an unknown link, and then nothing changes.
 */
export async function unsubscribe(db: Db, token: string): Promise<void> {
  await db.transaction(async (tx) => {
    const subscriber = await byManageToken(tx, token);
    await q.markUnsubscribed(tx, subscriber.id);
  });
}

/**
 * A signer who ticked `subscribe` follows the case once their signature is confirmed: they
 * confirmed this address already, so no second opt-in is asked. An address that unsubscribed
 * (or bounced) before is not brought back by a tick alone: the caller sends it the usual opt-in
 * email instead (requestSubscription), so leaving is undone only by the person's own click.
 * @returns 'ask' when an opt-in email must ask first.
 */
export async function subscribeConfirmedSigner(db: Queryable, email: string, caseId: number, source: SignedVia): Promise<'subscribed' | 'ask'> {
  const subscriber = await q.upsertSubscriber(db, email);
  if (subscriber.status === 'unsubscribed' || subscriber.status === 'bounced') return 'ask';
  const kase = await db.query<{ person_name: string }>('SELECT person_name FROM cases WHERE id = $1', [caseId]);
  // Through the API the box was the embedding page's, in words not known here; the signer's
  // consent is then what the confirmation page showed them before they pressed its button.
  const text = source === 'sign form' ? signFormWording(kase.rows[0]?.person_name ?? '') : CONFIRM_PAGE_WORDING;
  await q.upsertActiveSubscription(db, subscriber.id, caseId, source, text);
  if (subscriber.status === 'pending') await q.markActive(db, subscriber.id, { source, text });
  return 'subscribed';
}

/** Subscribers made by subscribeConfirmedSigner have no manage token hash until their first alert. */
export async function ensureManageToken(db: Queryable, secret: string, subscriberId: number): Promise<string> {
  const token = manageToken(secret, subscriberId);
  await q.setManageTokenHash(db, subscriberId, hashToken(token));
  return token;
}

export const getSubscriber = q.getSubscriber;
export const CASES_TO_FOLLOW = q.CASES_TO_FOLLOW;

/** Subscribers a keyset page at a time, with the cases each follows (console CSV export). */
export const listSubscribersPage = q.listSubscribersPage;
export const countSubscribersByStatus = q.countSubscribersByStatus;
export type { SubscriberExportRow } from './queries.ts';
