import type { Logger } from 'pino';
import type { Db, Queryable } from '../db/index.ts';
import { getPublicCase, lockPublicCase } from '../cases/service.ts';
import { enqueueAfreshLater, requeueFinished, RESEND_GAP_SECONDS } from '../deliveries/service.ts';
import type { Queues } from '../queues.ts';
import { answeredAlike } from '../signatures/answer-timing.ts';
import { hashToken } from '../tokens.ts';
import { parseInput } from '../validation.ts';
import { manageToken, optinToken } from './links.ts';
import * as q from './queries.ts';
import { consentWording, optinPageWording, signFormWording, subscribeInput, type ConsentSource, type Subscriber } from './types.ts';

// Asking for alerts: a request and the opt-in email it sends, and that email sent again when it
// is asked for while one is on its way.

export interface SubscribeDeps {
  queues: Pick<Queues, 'send' | 'redis' | 'later' | 'maintenance'>;
  log: Pick<Logger, 'warn'>;
  /** Server secret the opt-in and manage tokens are derived from. */
  secret: string;
}

/**
 * What requestSubscription checks, storing and sending nothing: a bot caught by the honeypot gets
 * the answer a person would, mistakes included, so it cannot tell it was caught.
 * @throws as requestSubscription does.
 */
export function pretendToSubscribe(db: Queryable, input: unknown): Promise<void> {
  return answeredAlike(async () => {
    const s = parseInput(subscribeInput, input);
    if (s.caseSlug) await getPublicCase(db, s.caseSlug);
  }, false);
}

/**
 * A public post asking for alerts (the subscribe form, the API): requestSubscription, answered no
 * sooner than a signature is (answeredAlike), so that its time does not tell whether the address
 * follows a case already, and which (a known address's request writes less than a new one's).
 * @throws as requestSubscription does.
 */
export function subscribe(db: Db, deps: SubscribeDeps, input: unknown, source: ConsentSource): Promise<void> {
  return answeredAlike(() => requestSubscription(db, deps, input, source));
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
