import type { Db, Queryable } from '../db/index.ts';
import { GoneError, NotFoundError } from '../errors.ts';
import { addressWorks } from '../deliveries/service.ts';
import { hashToken } from '../tokens.ts';
import { manageToken } from './links.ts';
import * as q from './queries.ts';
import * as fq from './follow-queries.ts';
import * as rq from './roster-queries.ts';
import type { SignedVia } from '../signatures/types.ts';
import type { SubscribeDeps } from './requests.ts';
import { CONFIRM_PAGE_WORDING, signFormWording, type Followed, type Subscriber } from './types.ts';

export { consentWording } from './types.ts';
export type { ConsentSource, Followed, Subscriber } from './types.ts';
export { ensureManageToken, manageToken, optinToken, rederiveSubscriberLinks } from './links.ts';
export { pretendToSubscribe, requestSubscription, resumeOwedOptins, sendOptinAgain, subscribe, type SubscribeDeps } from './requests.ts';

// The area's public face: the opt-in page, preferences, leaving and signers who follow are here;
// asking for alerts is in requests.ts, the links in links.ts.

/** The cases the subscribe page offers to follow one by one (see listCasesOffered). */
export const casesToChooseFrom = (db: Queryable) => fq.listCasesOffered(db);

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
    throw new GoneError('This link was already used, and these alerts have stopped since. To get alerts again, subscribe again.', { href: '/subscribe', label: 'Subscribe again' });
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
  /** What they asked to follow and have not confirmed yet (its opt-in email has the button). */
  waiting: Followed[];
  allWaiting: boolean;
  cases: { id: number; slug: string; person_name: string; status: string; followed: boolean; waiting: boolean }[];
}

/** What the preferences page shows. @throws NotFoundError for an unknown link. */
export async function getPreferences(db: Queryable, token: string): Promise<PreferencesView> {
  const subscriber = await byManageToken(db, token);
  const followed = await q.listSubscriptions(db, subscriber.id, 'active');
  const waiting = await q.listSubscriptions(db, subscriber.id, 'pending');
  const ids = new Set(followed.map((f) => f.caseId));
  const asked = new Set(waiting.map((f) => f.caseId));
  const cases = (await fq.listCasesToFollow(db, subscriber.id)).map((c) => ({ ...c, followed: ids.has(c.id), waiting: asked.has(c.id) }));
  return { subscriber, active: subscriber.status === 'active', followsAll: ids.has(null), following: followed, waiting, allWaiting: asked.has(null), cases };
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
    const listed = choice.listed ?? (await fq.listCasesToFollow(tx, subscriber.id)).map((c) => c.id);
    const ids = await fq.casesToFollowBySlug(tx, subscriber.id, choice.caseSlugs);
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

export const getSubscriber = q.getSubscriber;
export const CASES_TO_FOLLOW = fq.CASES_TO_FOLLOW;

/** Subscribers a keyset page at a time, with the cases each follows (console CSV export). */
export const listSubscribersPage = rq.listSubscribersPage;
export const countSubscribersByStatus = rq.countSubscribersByStatus;
export type { SubscriberExportRow } from './roster-queries.ts';
