import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Queryable } from '../db/index.ts';
import { NotFoundError } from '../errors.ts';
import { asciiAddress } from '../mail/address.ts';
import { deliveryJobId, enqueueDeliveries, sendPriority, type EnqueueOptions, type Queues } from '../queues.ts';
import * as lq from './campaign-letter-queries.ts';
import * as fq from './failed-queries.ts';
import * as q from './queries.ts';
import * as sq from './suppression-queries.ts';
import { DELIVERY_STATUSES, type DeliveryCounts, type DeliveryKind } from './types.ts';

// Sending one delivery (claim, compose, send, record) is in send.ts; this file is what keeps the
// rows and their jobs in step: the sweeper, retries, counts and the suppression list.

const SWEEP_PAGE = 1_000;

/**
 * Re-enqueues deliveries that have no live job: committed but never enqueued (a crash between
 * commit and enqueue), lost with Redis's data, or held by a worker that died mid-send.
 * A job id that still exists as completed or failed would swallow the add, so it is removed first.
 * @returns how many deliveries got a job again.
 */
export async function sweepDeliveries(db: Queryable, queues: Pick<Queues, 'send' | 'redis'>, graceSeconds = 30): Promise<number> {
  let afterId = 0;
  let requeued = 0;
  for (;;) {
    const rows = await q.listStrandedDeliveries(db, afterId, graceSeconds, SWEEP_PAGE);
    if (rows.length === 0) return requeued;
    afterId = rows[rows.length - 1]!.id;
    for (const [priority, ids] of byPriority(rows)) requeued += await enqueueAfresh(queues, ids, { priority });
  }
}

/**
 * Rows' ids by the priority of their kind's jobs (sendPriority): alerts and digests keep their place
 * behind what people wait for, lost or retried too.
 */
function byPriority(rows: readonly { id: number; kind: DeliveryKind }[]): Map<number | undefined, number[]> {
  const groups = new Map<number | undefined, number[]>();
  for (const { id, kind } of rows) {
    const priority = sendPriority(kind);
    const group = groups.get(priority);
    if (group) group.push(id);
    else groups.set(priority, [id]);
  }
  return groups;
}

/**
 * Gives rows a job again unless one is live: a job kept as failed under the same id would swallow
 * the add, so it is removed first. Constant cost per row, one round trip per call: BullMQ's
 * getJobState searches the wait list in Lua for every id, which during a large fan-out would block
 * Redis for every worker. removeOnComplete deletes finished jobs, so a job key that is there is
 * live, or kept as failed.
 * @returns how many rows got a job.
 */
export async function enqueueAfresh(queues: Pick<Queues, 'send' | 'redis'>, ids: readonly number[], opts: EnqueueOptions = {}): Promise<number> {
  return ids.length - (await addMissingJobs(queues, ids, 0, opts)).length;
}

/**
 * enqueueAfresh's work; `delayMs` holds the jobs it adds back that long.
 * @returns the ids left alone because their job is live.
 */
async function addMissingJobs(queues: Pick<Queues, 'send' | 'redis'>, ids: readonly number[], delayMs = 0, opts: EnqueueOptions = {}): Promise<number[]> {
  if (ids.length === 0) return [];
  const failedSet = queues.send.toKey('failed');
  const pipeline = queues.redis.pipeline();
  for (const id of ids) {
    pipeline.exists(queues.send.toKey(deliveryJobId(id)));
    pipeline.zscore(failedSet, deliveryJobId(id));
  }
  const replies = (await pipeline.exec()) ?? [];
  const missing: number[] = [];
  const keptFailed: number[] = [];
  const live: number[] = [];
  for (const [i, id] of ids.entries()) {
    const [existsErr, exists] = replies[2 * i] ?? [];
    const [scoreErr, failedScore] = replies[2 * i + 1] ?? [];
    if (existsErr || scoreErr) throw existsErr ?? scoreErr;
    if (failedScore !== null) keptFailed.push(id);
    if (exists === 0 || failedScore !== null) missing.push(id);
    else live.push(id);
  }
  // Together, not one round trip after another: "Retry all" after a relay outage meets a page of them.
  await Promise.all(keptFailed.map((id) => queues.send.remove(deliveryJobId(id))));
  await enqueueDeliveries(queues, missing, delayMs, opts);
  return live;
}

/**
 * How long enqueueAfreshLater waits before looking again at a row whose job was still live. Its
 * rows were sent or failed a moment ago, so such a job is one finishing: without a second look
 * the email asked for again would wait for the sweeper, a minute later.
 */
const LIVE_JOB_RECHECKS_MS = [100, 400, 1_600];

/**
 * enqueueAfresh without waiting for Redis: the caller answers once its rows have committed, and a
 * job not added (Redis away) is added by the sweeper, as after any crash between commit and
 * enqueue. Waiting would leave a person without an answer for as long as Redis is away.
 */
export function enqueueAfreshLater(queues: Pick<Queues, 'send' | 'redis' | 'later'>, log: Pick<Logger, 'warn'>, ids: readonly number[], delayMs = 0, opts: EnqueueOptions = {}): void {
  if (ids.length === 0) return;
  const started = Date.now();
  const addAll = async () => {
    let live = await addMissingJobs(queues, ids, delayMs, opts);
    for (const wait of LIVE_JOB_RECHECKS_MS) {
      if (live.length === 0) return;
      await sleep(wait);
      live = await addMissingJobs(queues, live, Math.max(0, delayMs - (Date.now() - started)), opts);
    }
  };
  queues.later(
    addAll().then(
      () => undefined,
      (err: unknown) => log.warn({ err, deliveries: ids.length }, 'send jobs not added; the sweeper adds them once Redis takes jobs again (within two minutes of that)'),
    ),
  );
}

/**
 * Least time between two emails of one confirmation or opt-in row. Asked again sooner (ten posts
 * of one address within a second, by someone who is not its owner), the row's next email waits
 * out the gap, and the requests that come meanwhile find it queued and only change what it
 * will say: a burst sends one email now and one a minute later, not one each.
 */
export const RESEND_GAP_SECONDS = 60;

/** requeueFinished with the resend gap; see the query. */
export const requeueFinished = (db: Queryable, kind: 'optin' | 'confirm', sourceId: number) => q.requeueFinished(db, kind, sourceId, RESEND_GAP_SECONDS);

/** A campaign's deliveries of these kinds (its letters: 'letter' and 'digest'), by status. */
export async function countDeliveries(db: Queryable, campaignId: number, kinds: DeliveryKind[]): Promise<DeliveryCounts> {
  const counts = Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, 0])) as DeliveryCounts;
  for (const row of await lq.countDeliveriesByStatus(db, campaignId, kinds)) counts[row.status] = row.n;
  return counts;
}

export { enqueueDeliveries };

export const listFailedDeliveries = fq.listFailedDeliveries;
export const listCampaignLetters = lq.listCampaignLetters;
export const markSuppressed = sq.markSuppressed;
export const countFailedByKind = fq.countFailedByKind;
export const recipientOf = fq.recipientOf;
export const countLongRetryingByKind = fq.countLongRetryingByKind;
export const listSuppressions = sq.listSuppressions;
export const countOtherSuppressions = sq.countOtherSuppressions;
export const OFFICIAL_KINDS: readonly string[] = sq.OFFICIAL_KINDS;
export type { FailedDelivery } from './failed-queries.ts';

export type RetryOutcome = 'queued' | 'not-failed' | 'suppressed' | 'retired' | 'held-back';

/**
 * Gives a failed delivery another go: back to `queued` with its attempts reset, and a fresh job
 * (enqueueAfresh: its old job may still sit in the failed set under the same id). A delivery whose
 * address is on the suppression list stays failed: it would fail again at once, so the address
 * must come off the list first; so does a letter to a target since retired, until it is written to again.
 * @returns `queued`; `not-failed` when it is not failed (sent meanwhile, or retried already);
 * `suppressed` when its address is suppressed; `retired` when its target is; `held-back` for a
 * confirmation its address's allowance held back (see HELD_BACK in failed-queries.ts).
 * The answer does not wait for the job: while Redis is away the row is queued all the same, and
 * the sweeper adds its job once Redis is back (enqueueAfreshLater).
 * @throws NotFoundError when there is no such delivery (never made, or deleted with its person).
 */
export async function retryFailedDelivery(db: Queryable, deps: { queues: Pick<Queues, 'send' | 'redis' | 'later'>; log: Pick<Logger, 'warn'> }, id: number): Promise<RetryOutcome> {
  const { found, requeued, suppressed, retired, heldBack, kind } = await fq.requeueFailed(db, id);
  if (!found) throw new NotFoundError('delivery');
  if (!requeued) return suppressed ? 'suppressed' : retired ? 'retired' : heldBack ? 'held-back' : 'not-failed';
  enqueueAfreshLater(deps.queues, deps.log, [id], 0, { priority: sendPriority(kind) });
  return 'queued';
}

/** Letters sendAgainToCurrentAddress made for a target in the last `seconds`. */
export const countSentAgainLately = lq.countSentAgainLately;

/** Per target of a campaign, the letters that went to an address it has since been corrected from (see sendAgainToCurrentAddress). */
export const countSentElsewhere = lq.countSentElsewhere;

/** Each target's letters and digests: sent, waiting, failed (see the query). */
export const countLettersByTarget = lq.countLettersByTarget;

/**
 * Sends a target's letters that went to an address it no longer has again, to the one it has now:
 * after a correction, for letters the relay took but the old mailbox never got. Their jobs are
 * added after the answer, as retryFailedDelivery's.
 * @returns how many letters go again.
 */
export async function sendAgainToCurrentAddress(db: Queryable, deps: { queues: Pick<Queues, 'send' | 'redis' | 'later'>; log: Pick<Logger, 'warn'> }, campaignId: number, targetId: number): Promise<number> {
  const rows = await lq.sendAgainToCurrentAddress(db, campaignId, targetId);
  for (const [priority, ids] of byPriority(rows)) enqueueAfreshLater(deps.queues, deps.log, ids, 0, { priority });
  return rows.length;
}

/**
 * Gives every failed delivery whose address is not suppressed, whose target is not retired, and
 * which is no confirmation held back for its address's allowance, another go, a page at a time, each
 * page's jobs added once its rows are queued (a crash in between leaves queued rows, which the
 * sweeper enqueues), as the sweeper adds them (enqueueAfresh). Not waited for, as in
 * retryFailedDelivery: while Redis is away the rows are queued, and the sweeper adds their jobs.
 * @returns how many were queued again.
 */
export async function retryAllFailed(db: Queryable, deps: { queues: Pick<Queues, 'send' | 'redis' | 'later'>; log: Pick<Logger, 'warn'> }): Promise<number> {
  // Those failed when it began, once each: a row that fails again meanwhile (the relay still
  // refusing) is not taken again, so this ends.
  const upToId = await fq.lastFailedId(db);
  let queued = 0;
  for (let afterId = 0; ; ) {
    const rows = await fq.requeueFailedPage(db, { afterId, upToId }, SWEEP_PAGE);
    if (rows.length === 0) return queued;
    afterId = rows[rows.length - 1]!.id;
    // A job still live for a row marked failed keeps its id and is finishing; enqueueAfreshLater
    // looks again, and the sweeper gives that row its job once it is gone.
    for (const [priority, ids] of byPriority(rows)) enqueueAfreshLater(deps.queues, deps.log, ids, 0, { priority });
    queued += rows.length;
  }
}

export const countFailed = fq.countFailed;
export type { FailedCursor } from './failed-queries.ts';

/**
 * A link in an email to `email` was followed: mail reaches it, so a suppression from an earlier
 * bounce is lifted. A bounced subscriber stays so: the address may have a new owner, who gets
 * alerts only for what they confirm themselves (confirmSubscription).
 */
export async function addressWorks(db: Queryable, email: string): Promise<void> {
  await sq.liftSuppressionOnly(db, email);
}

/**
 * Takes an address off the suppression list, so mail to it goes out again.
 * @returns the entry removed, or undefined when it was not on the list.
 */
export async function removeSuppression(db: Queryable, email: string, officialsOnly = false) {
  return sq.deleteSuppression(db, asciiAddress(email), officialsOnly);
}
