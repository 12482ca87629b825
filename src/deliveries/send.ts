import { setTimeout as sleep } from 'node:timers/promises';
import { Mutex } from 'async-mutex';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { isDatabaseUnavailable, plannedOnce, type Db, type Queryable } from '../db/index.ts';
import type { Mailer, Message } from '../mail/transport.ts';
import { classifySendError, isRelayTrouble } from '../mail/transport.ts';
import { MAX_SEND_ATTEMPTS, type SendJob } from '../queues.ts';
import { AllowanceUsedError, ASKED_FOR, HELD_BACK_WORDS } from './allowance.ts';
import { coalesce, perDb } from './coalesce.ts';
import * as q from './queries.ts';
import { codesOf, describe, retryDelay, TemporaryFailure } from './send-failure.ts';
import { releaseSuppressedAsk, takeSuppressedAsk } from './suppression-queries.ts';
import type { Composers, Delivery, DeliveryKind } from './types.ts';

export { retryDelay, sendBackoff, TemporaryFailure } from './send-failure.ts';

/**
 * A send must end inside its lease, its sent mark too: the mail transport's timeouts (SMTP_TIMEOUTS:
 * 10 s to connect, 10 s for the greeting, 60 s for a reply) and RECORD_SENT_FOR_MS fit within it.
 * A shorter lease lets the sweeper hand a letter a slow relay is still taking to another worker.
 */
export const LEASE_SECONDS = 150;
/** How soon a job whose claim found the database away is tried again. */
export const DATABASE_AWAY_RETRY_MS = 5_000;
/**
 * How long a statement carrying sent marks is tried again while the database is away (a restart
 * or failover takes seconds to a minute; a mark given up on sends its message again once the lease
 * ends), and how many times after any other failure, such as a deadlock.
 */
export const RECORD_SENT_FOR_MS = 70_000;
const RECORD_SENT_TRIES = 4;
const RECORD_SENT_BACKOFF_MS = { first: 200, most: 2_000 };

type Claimed = Delivery & { suppressed: boolean };

type LedgerStep = { claim: number } | { sent: q.SentMark };

/**
 * Claims and sent marks of the jobs a worker runs at once share one statement: round trips to
 * Postgres were most of the send worker's cost (`npm run bench`, worker overhead), and while one
 * job waits for its claim another has just sent, so each statement carries both.
 *
 * A statement carrying sent marks is tried again here, with backoff (for up to 70 s while the
 * database is away: a Postgres restart must not send those messages twice), before the next batch
 * may go: the relay has those messages, and while their marks are owed no claim may commit,
 * or a job slot could send again with its last message still unrecorded (see sendDelivery). A
 * deadlock abort (two workers, one marking a row whose lease ran out while the other claims it)
 * is such a failure too. A statement of claims alone fails at once; BullMQ retries its jobs.
 */
const ledger = perDb((db: Queryable) =>
  coalesce(async (steps: LedgerStep[]): Promise<(Claimed | undefined)[]> => {
    const sent: q.SentMark[] = [];
    const claims: number[] = [];
    for (const step of steps) {
      if ('sent' in step) sent.push(step.sent);
      else claims.push(step.claim);
    }
    const rows = new Map((await runLedgerStatement(db, sent, claims)).map((r) => [r.id, r]));
    // An id asked for twice in one batch is claimed once: only its first caller gets the row.
    return steps.map((step) => {
      if ('sent' in step) return undefined;
      const row = rows.get(step.claim);
      rows.delete(step.claim);
      return row;
    });
  }),
);

async function runLedgerStatement(db: Queryable, sent: q.SentMark[], claims: number[]) {
  // Its plan is the same whatever ids it carries: planned once per connection, not at every run.
  const statement = () => q.recordSentAndClaim(plannedOnce(db), sent, claims, LEASE_SECONDS);
  return sent.length === 0 ? statement() : untilRecorded(statement, RECORD_SENT_TRIES);
}

/**
 * Runs a write that records what happened to a claimed delivery, again with backoff while the
 * database is away (for up to RECORD_SENT_FOR_MS), and up to `tries` times in all after any other
 * failure. A retry or failure mark lost to a dropped connection would leave its row `sending`, held
 * by the lease for two and a half minutes.
 */
async function untilRecorded<T>(write: () => Promise<T>, tries = 1): Promise<T> {
  const giveUpAt = Date.now() + RECORD_SENT_FOR_MS;
  for (let attempt = 1, wait = RECORD_SENT_BACKOFF_MS.first; ; attempt++, wait = Math.min(wait * 2, RECORD_SENT_BACKOFF_MS.most)) {
    try {
      return await write();
    } catch (err) {
      const more = isDatabaseUnavailable(err) ? Date.now() + wait <= giveUpAt : attempt < tries;
      if (!more) throw err;
      await sleep(wait);
    }
  }
}

/**
 * `missing`: no row has the job's id (deleted by retention or `forget`, or the job is another
 * database's). `limited`: a confirmation or opt-in over its address's allowance, not sent.
 */
export type SendOutcome = 'sent' | 'skipped' | 'missing' | 'retry' | 'failed' | 'suppressed' | 'limited';

/**
 * Sends one delivery at most once per claim: claim with a lease, compose from the rows, send,
 * and record the outcome. A delivery already sent, failed or held by a live lease is not sent.
 * A sent mark is committed after this resolves (settleSentMarks waits for it); `onUnrecorded`,
 * which must not throw, hears of one that could not be, whose message goes again when its lease
 * ends. `onDatabaseAway`, which must not throw either, hears of a job put off because the
 * database is out of reach: nothing else says why sends stopped.
 * @throws DelayedError after moving the job to when another worker's lease ends.
 * @throws UnrecoverableError when the delivery failed for good (5xx, attempts used up).
 * @throws Error on a temporary failure, so BullMQ retries the job with backoff.
 */
export async function sendDelivery(
  db: Db,
  mailer: Mailer,
  composers: Composers,
  job: Job<SendJob>,
  token: string | undefined,
  onUnrecorded: (err: unknown, deliveryId: number) => void,
  onDatabaseAway: (err: unknown) => void = () => {},
): Promise<SendOutcome> {
  const id = job.data.deliveryId;
  const delivery = await ledger(db)({ claim: id }).catch(async (err: unknown) => {
    // The database is away (a restart, a failover): try again shortly without using up an
    // attempt, so the backoff does not grow through the outage and hold the backlog after it.
    if (token && isDatabaseUnavailable(err)) {
      onDatabaseAway(err);
      await job.moveToDelayed(Date.now() + DATABASE_AWAY_RETRY_MS, token);
      throw new DelayedError();
    }
    throw err;
  });
  if (!delivery) {
    const state = await q.getDeliveryState(db, id);
    if (state?.status === 'sending' && state.lease_until) {
      await job.moveToDelayed(state.lease_until.getTime() + 1000, token);
      throw new DelayedError();
    }
    return state ? 'skipped' : 'missing';
  }
  // An email a person asks for on a form (ASKED_FOR) goes to a suppressed address once per
  // suppression: it asks whether the address works again (a mailbox since emptied or reopened),
  // and following its link lifts the suppression (addressWorks). Without it an address that
  // bounced could never sign or subscribe again; more than one would let anyone keep mailing an
  // address known to bounce.
  if (delivery.suppressed && !(ASKED_FOR.has(delivery.kind) && (await takeSuppressedAsk(db, delivery.recipient, delivery.id, delivery.attempts)))) {
    await untilRecorded(() => q.markFailed(db, delivery, 'suppressed: the address is on the suppression list', { untried: true }));
    return 'suppressed';
  }
  const compose = composers[delivery.kind];
  if (!compose) {
    await untilRecorded(() => q.markFailed(db, delivery, `no composer for ${delivery.kind}`));
    return 'failed';
  }
  const send = (waited: boolean) => composeAndSend(db, mailer, compose, delivery, job, token, onUnrecorded, onDatabaseAway, waited);
  if (delivery.kind !== 'digest') return send(false);
  const waited = digestTurn.isLocked();
  return digestTurn.runExclusive(() => send(waited));
}

/**
 * A digest is built whole in memory, up to DIGEST_MAX_BYTES of message and several times that while
 * its parts are rendered: one at a time in a process, or ten job slots building ten at once took a
 * worker past its 128 MB heap, and it crashed again on every restart (the same digests waiting).
 */
const digestTurn = new Mutex();

async function composeAndSend(
  db: Db,
  mailer: Mailer,
  compose: NonNullable<Composers[DeliveryKind]>,
  delivery: Claimed,
  job: Job<SendJob>,
  token: string | undefined,
  onUnrecorded: (err: unknown, deliveryId: number) => void,
  onDatabaseAway: (err: unknown) => void,
  waited: boolean,
): Promise<SendOutcome> {
  const id = delivery.id;
  let message: Message | null;
  try {
    // Its lease ran while it waited its turn: renewed from now, unless another worker claimed the
    // row meanwhile (the lease ran out), which sends it instead.
    if (waited && !(await q.renewLease(db, delivery, LEASE_SECONDS))) return 'skipped';
    message = await compose(db, delivery);
  } catch (err) {
    if (err instanceof AllowanceUsedError) return holdOverAllowance(db, delivery, job, token, err);
    // The database went away between the claim and the read (a restart, a failover): the lease
    // and the attempt are given back, and the job tries again shortly, as when the claim finds it
    // away, so an outage does not use up a letter's attempts.
    if (token && isDatabaseUnavailable(err)) {
      onDatabaseAway(err);
      await untilRecorded(() => q.markRetry(db, delivery, `database unavailable: ${codesOf(err)}`, DATABASE_AWAY_RETRY_MS, { untried: true }));
      await job.moveToDelayed(Date.now() + DATABASE_AWAY_RETRY_MS, token);
      throw new DelayedError();
    }
    // Any other failing read or render must give the lease back and count as an attempt; otherwise
    // the row would sit in `sending` until the lease ends, and come back forever without failing.
    return settleFailure(db, delivery, err);
  }
  if (!message) {
    // What it served is gone: a subscriber left, a signature was purged, a target removed. That is
    // no failure, and the row keeps an address for nothing; a fan-out that reached the subscriber
    // after they left would have made no row at all.
    await untilRecorded(() => q.deleteUnsendable(db, delivery));
    return 'skipped';
  }
  let messageId: string;
  try {
    ({ messageId } = await mailer.send(message));
  } catch (err) {
    return settleFailure(db, delivery, err);
  }
  // The job ends here and its sent mark rides on the statement that carries the next claims (see
  // ledger): waiting for it held a job slot for a round trip that did nothing for the message.
  // It widens nothing: a slot's next claim is queued behind this mark and commits with it or
  // after it, so a killed worker still leaves at most one unrecorded message per slot, and that
  // row, still `sending`, goes again once its lease ends, exactly as before.
  const pending = unrecorded(db);
  const recorded: Promise<void> = ledger(db)({ sent: { id, messageId } })
    .then(
      () => undefined,
      (err: unknown) => onUnrecorded(err, id),
    )
    .finally(() => pending.delete(recorded));
  pending.add(recorded);
  return 'sent';
}

/**
 * An email over its address's allowance (withAddressAllowance), with no attempt used. A
 * confirmation is not sent: signing again later sends it (there may be one per campaign a stranger
 * posted the address to). An opt-in, one per subscriber, goes once the allowance has room: asking
 * for it made a new link, and the one in the inbox stopped working (see nextOptinLink). A
 * suppressed address's one ask (takeSuppressedAsk) went to no email: it is left for the next.
 */
async function holdOverAllowance(db: Queryable, delivery: Claimed, job: Job<SendJob>, token: string | undefined, err: AllowanceUsedError): Promise<SendOutcome> {
  const later = delivery.kind === 'optin' ? err.waitSeconds * 1000 : undefined;
  if (later !== undefined) await untilRecorded(() => q.markRetry(db, delivery, `held: ${err.message}; it goes when the allowance has room`, later, { untried: true }));
  else await untilRecorded(() => q.markFailed(db, delivery, `${HELD_BACK_WORDS}${err.message}; asking again later sends a new one`, { untried: true }));
  if (delivery.suppressed) await untilRecorded(() => releaseSuppressedAsk(db, delivery.recipient, delivery.id));
  if (later !== undefined && token) {
    await job.moveToDelayed(Date.now() + later, token);
    throw new DelayedError();
  }
  return 'limited';
}

/** Sent marks not yet committed, per handle, so a closing worker can wait for them. */
const unrecorded = perDb((_db: Queryable) => new Set<Promise<void>>());

/**
 * Resolves once every sent mark made so far on `db` is committed or given up on; a send worker
 * calls it after its last job and before the database closes.
 */
export async function settleSentMarks(db: Queryable): Promise<void> {
  await Promise.all(unrecorded(db));
}

async function settleFailure(db: Queryable, delivery: Delivery, err: unknown): Promise<SendOutcome> {
  const failure = classifySendError(err);
  const error = describe(err, delivery.recipient);
  if (failure === 'retry' && delivery.attempts < MAX_SEND_ATTEMPTS) {
    const retryInMs = retryDelay(delivery.attempts);
    await untilRecorded(() => q.markRetry(db, delivery, error, retryInMs));
    throw new TemporaryFailure(`delivery ${delivery.id}: temporary failure (${codesOf(err)}), attempt ${delivery.attempts}`, isRelayTrouble(err), error, delivery.attempts, retryInMs);
  }
  const suppress = failure === 'recipient-rejected' ? { email: delivery.recipient, reason: `bounce: ${error}`, kind: delivery.kind } : undefined;
  await untilRecorded(() => q.markFailed(db, delivery, error, { suppress }));
  const suppressed = suppress ? '; its address is now on the suppression list' : '';
  throw new UnrecoverableError(`delivery ${delivery.id}: failed (${codesOf(err)}) after ${delivery.attempts} attempts${suppressed}`);
}
