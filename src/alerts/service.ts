import type { Logger } from 'pino';
import type { JobsOptions } from 'bullmq';
import type { Db, Queryable } from '../db/index.ts';
import { getCase, whilePublished } from '../cases/service.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { BULK_PRIORITY, enqueueDeliveries, type Queues } from '../queues.ts';
import { manageToken } from '../subscribers/service.ts';
import { hashToken } from '../tokens.ts';
import { parseInput } from '../validation.ts';
import * as oq from './outcome-queries.ts';
import * as q from './queries.ts';
import { caseUpdateInput, type AlertStats, type CaseUpdate, type FanoutResult } from './types.ts';

export type { AlertStats, CaseUpdate, FanoutResult } from './types.ts';

/** Subscribers looked at per fan-out page: one INSERT and one addBulk each, whatever the list's size. */
export const FANOUT_PAGE = 1_000;
/** A fan-out not finished this long after its update was posted has lost its job. */
const FANOUT_GRACE_SECONDS = 120;

/** One fan-out job per case update; adding it twice is a no-op. BullMQ refuses integer-like ids. */
export const fanoutJobId = (caseUpdateId: number) => `u-${caseUpdateId}`;

const FANOUT_JOB_OPTIONS: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 5_000 },
  removeOnComplete: true,
  removeOnFail: { age: 7 * 24 * 3600 },
};

/** Longest Idempotency-Key taken (a UUID is 36). */
const MAX_REQUEST_KEY = 200;

/**
 * How long an update posted without an Idempotency-Key counts as the same request when its
 * organizer sends the same title and text again, with nothing posted by them between: the answer
 * to the first may have been lost (a 503 says to send it again), and a second alert to everyone is
 * the harm to avoid.
 */
export const UNKEYED_REPEAT_SECONDS = 15 * 60;

async function enqueueFanout(queues: Pick<Queues, 'fanout'>, caseUpdateId: number): Promise<void> {
  await queues.fanout.add('fanout', { caseUpdateId }, { ...FANOUT_JOB_OPTIONS, jobId: fanoutJobId(caseUpdateId) });
}

/**
 * Posts a case update: stores it with the number of subscribers it will reach, then adds one
 * fan-out job without waiting for it. If the add fails or the process dies between the two,
 * resumeFanouts adds the job later.
 * @throws ValidationError (title, body), NotFoundError for an unknown case, ConflictError for
 * one not published.
 */
export async function postCaseUpdate(
  db: Db,
  deps: { queues: Pick<Queues, 'fanout' | 'later'>; log: Pick<Logger, 'warn'> },
  caseSlug: string,
  input: unknown,
  publishedBy: number | null,
  requestKey: string | null = null,
  { sameSince }: { sameSince?: number } = {},
): Promise<CaseUpdate & { repeated: boolean }> {
  const u = parseInput(caseUpdateInput, input);
  const key = requestKey?.trim() || null;
  // Cut short, two different keys could be taken for one, and the second update never posted.
  if (key && key.length > MAX_REQUEST_KEY) {
    throw new ValidationError({ idempotencyKey: `must be at most ${MAX_REQUEST_KEY} characters` }, `The Idempotency-Key header must be at most ${MAX_REQUEST_KEY} characters.`);
  }
  const kase = await getCase(db, caseSlug);
  // An update goes to everyone following all cases: it would announce a case kept unpublished.
  const outcome = await db.transaction((tx) =>
    whilePublished(tx, kase.id, 'post the update', async () => {
      // A form's Post (the console's): the same text posted since its preview was made would alert
      // everyone twice, and its preview did not say so. A key used already posts nothing anyway.
      // The hold comes first: a Post pressed twice finds its own key taken by the first press, not
      // the first press's update taken for another's.
      if (sameSince !== undefined) {
        await q.holdCaseForPosting(tx, kase.id);
        if (!(key && (await q.getCaseUpdateByRequestKey(tx, kase.id, key))) && (await q.latestSameUpdateId(tx, kase.id, u)) > sameSince) {
          throw new ConflictError('update_posted_meanwhile', 'The same update was posted after this preview was made: posting it again sends a second alert to everyone.');
        }
      } else if (!key) {
        // Without a key, the same organizer's last update, moments ago and in the same words, is
        // this request sent again.
        await q.holdCaseForPosting(tx, kase.id);
        const before = await q.getOwnLatestUpdateIfSame(tx, kase.id, u, publishedBy, UNKEYED_REPEAT_SECONDS);
        if (before) return { update: before, inserted: false };
      }
      const added = await q.insertCaseUpdate(tx, kase.id, u, publishedBy, key);
      return { update: added, inserted: added !== undefined };
    }),
  );
  const inserted = outcome.inserted;
  const update = outcome.update ?? (await q.getCaseUpdateByRequestKey(db, kase.id, key!))!;
  // A key sent again with other content, or by someone else, is a mistake: answering with the
  // first update would drop the new text unseen.
  if (!inserted && (update.title !== u.title || update.body !== u.body || update.published_by !== publishedBy)) {
    throw new ValidationError(
      { idempotencyKey: 'was used before for a different update; send new content with a new key' },
      'This Idempotency-Key was used before for a different request.',
    );
  }
  // Also for a repeated request whose update is not fanned out yet: its first enqueue may be what
  // failed. The job id is the update's. Not waited for: while Redis is away the organizer still
  // gets an answer, and an add that fails is made by resumeFanouts (the sweep task) once the
  // update is FANOUT_GRACE_SECONDS old.
  if (update.fanned_out_at) return { ...update, repeated: true };
  deps.queues.later(
    enqueueFanout(deps.queues, update.id).catch((err: unknown) =>
      deps.log.warn({ err, caseUpdateId: update.id }, 'fan-out job not added; the sweeper adds it within a few minutes'),
    ),
  );
  return { ...update, repeated: !inserted };
}

/**
 * Creates one alert delivery per subscriber of the update's case or of all cases and enqueues
 * them, a keyset page at a time: memory stays flat whatever the list's size. Safe to run again
 * after a crash at any point: existing rows are skipped by ON CONFLICT, and those a crashed run
 * left queued are enqueued again (an id that has a job already is a no-op).
 * @returns what this run did; null when the update is gone.
 */
export async function fanOutCaseUpdate(
  db: Db,
  deps: { queues: Pick<Queues, 'send'>; secret: string },
  caseUpdateId: number,
  pageSize = FANOUT_PAGE,
): Promise<FanoutResult | null> {
  const update = await q.getCaseUpdate(db, caseUpdateId);
  if (!update) return null;
  const result: FanoutResult = { created: 0, enqueued: 0, pages: 0 };
  // Done already (its job added again by a repeated request, say): another run would page through
  // the subscribers as they are now, and send the old update to everyone who joined since.
  if (update.fanned_out_at) return result;
  // Each page's jobs are added while Postgres stores the next page: the two wait on different
  // servers. A page's jobs are added only after its rows committed, and the update is marked done
  // only after the last page's jobs are in.
  let adding: Promise<void> = Promise.resolve();
  for (let afterId = 0; ; ) {
    const [page] = await bothSettled(q.insertAlertPage(db, update, afterId, pageSize), adding);
    if (page.lastId === null || page.withdrawn) break;
    // Every alert links to the preferences page; a page of hashes costs one UPDATE here
    // instead of one per message in the send path.
    if (page.tokenless.length) {
      await q.setManageTokenHashes(db, page.tokenless, page.tokenless.map((id) => hashToken(manageToken(deps.secret, id))));
    }
    adding = enqueueDeliveries(deps.queues, [...page.inserted, ...page.leftover], 0, { priority: BULK_PRIORITY });
    result.created += page.inserted.length;
    result.enqueued += page.inserted.length + page.leftover.length;
    result.pages += 1;
    afterId = page.lastId;
  }
  await q.markFannedOut(db, update.id);
  return result;
}

/**
 * Waits for both, then fails with the first failure: the job must not end (and be retried, or its
 * database closed) while the other is still running.
 */
async function bothSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}

/**
 * Adds the fan-out job again for updates whose fan-out never finished: the job was lost with
 * Redis's data, the process died between storing the update and adding it, or it failed for good.
 * A finished job still holding the id would swallow the add, so it is removed first.
 * @returns how many fan-outs got a job again.
 */
export async function resumeFanouts(db: Queryable, queues: Pick<Queues, 'fanout'>, graceSeconds = FANOUT_GRACE_SECONDS): Promise<number> {
  let resumed = 0;
  for (const id of await q.listUnfinishedFanouts(db, graceSeconds)) {
    const state = await queues.fanout.getJobState(fanoutJobId(id));
    if (state === 'completed' || state === 'failed') await queues.fanout.remove(fanoutJobId(id));
    if (state === 'completed' || state === 'failed' || state === 'unknown') {
      await enqueueFanout(queues, id);
      resumed += 1;
    }
  }
  return resumed;
}

/** @throws NotFoundError for an unknown update id. */
export async function getAlertStats(db: Queryable, caseUpdateId: number): Promise<AlertStats & { withdrawn: boolean }> {
  const update = Number.isSafeInteger(caseUpdateId) ? await q.getCaseUpdate(db, caseUpdateId) : undefined;
  if (!update) throw new NotFoundError('alert');
  // Withdrawn, its emails not yet sent never go: sent and failed stop short of recipients for good.
  return { ...(await withAlertStats(db, [update]))[0]!.stats, withdrawn: update.withdrawn_at !== null };
}

/**
 * Updates with their alerts' recipients (those the fan-out reached, once it is done), sent and
 * failed, counted for all of them in one query.
 */
export async function withAlertStats<U extends Pick<CaseUpdate, 'id' | 'recipients' | 'reached'>>(db: Queryable, updates: U[]): Promise<(U & { stats: AlertStats; failedToRetry: number; waiting: number })[]> {
  const outcomes = await oq.countAlertOutcomes(db, updates.map((u) => u.id));
  return updates.map((u) => {
    const o = outcomes.get(u.id);
    // failedToRetry: those the console's list of failed emails still has (not folded into counts);
    // waiting: those queued, being sent or to be retried, so that sent and failed add up.
    return { ...u, stats: { recipients: u.reached ?? u.recipients, sent: o?.sent ?? 0, failed: o?.failed ?? 0 }, failedToRetry: o?.failed_kept ?? 0, waiting: o?.waiting ?? 0 };
  });
}

/** How many updates a page of a case's updates shows. */
export const UPDATES_PAGE = 20;

/**
 * A page of a case's updates, newest first (for its public page, those not withdrawn), and the
 * id to ask for the next, older page with (`before`), if there is one.
 */
export async function listCaseUpdates(
  db: Queryable,
  caseId: number,
  opts: { withWithdrawn?: boolean; before?: number; limit?: number } = {},
): Promise<{ updates: CaseUpdate[]; older?: number }> {
  const limit = opts.limit ?? UPDATES_PAGE;
  const rows = await q.listCaseUpdates(db, caseId, limit + 1, opts.withWithdrawn ?? false, opts.before ?? null);
  const updates = rows.slice(0, limit);
  return rows.length > limit ? { updates, older: updates[updates.length - 1]!.id } : { updates };
}

/**
 * Takes an update back: off the case's public page, and its alerts not yet sent are dropped (the
 * fan-out, if still running, adds no more; an alert a worker is sending now goes only if it was
 * written already). Withdrawing it again changes nothing.
 * @returns the update, how many unsent alerts were dropped now, and how many were sent and how
 * many were being sent.
 * @throws NotFoundError for an unknown case or an update not of that case.
 */
export async function withdrawCaseUpdate(db: Queryable, caseSlug: string, id: number, by: number | null): Promise<{ update: CaseUpdate; dropped: number; sent: number; sending: number; already: boolean }> {
  const kase = await getCase(db, caseSlug);
  if (!Number.isSafeInteger(id)) throw new NotFoundError('update');
  const row = await q.withdrawCaseUpdate(db, kase.id, id, by);
  if (row) {
    const { dropped, sent, sending, ...update } = row;
    return { update, dropped, sent, sending, already: false };
  }
  // Withdrawn already (two clicks, two organizers), or not an update of this case.
  const update = await q.getCaseUpdate(db, id);
  if (!update || update.case_id !== kase.id) throw new NotFoundError('update');
  return { update, dropped: 0, sent: 0, sending: 0, already: true };
}

/** The same update posted on the case within the last day, if any, the organizer's own first. */
export const findRecentSameUpdate = q.getRecentSameUpdate;

/** The newest same update posted within the last day, by anyone: its id, or 0 (see postCaseUpdate's `sameSince`). */
export const latestSameUpdateId = q.latestSameUpdateId;

/**
 * How many subscribers an update of this case would be sent to if posted now: the same rule the
 * fan-out uses. @throws NotFoundError for an unknown case.
 */
export async function countAlertRecipients(db: Queryable, caseSlug: string): Promise<number> {
  const kase = await getCase(db, caseSlug);
  return q.countFollowers(db, kase.id);
}
