import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Db, Queryable } from '../db/index.ts';
import type { Mailer, Message } from '../mail/transport.ts';
import { classifySendError } from '../mail/transport.ts';
import { deliveryJobId, enqueueDeliveries, MAX_SEND_ATTEMPTS, type Queues, type SendJob } from '../queues.ts';
import * as q from './queries.ts';
import { DELIVERY_STATUSES, type Delivery, type DeliveryCounts, type DeliveryKind } from './types.ts';

/** A send must end inside its lease; the mail transport's own timeouts are well below it. */
export const LEASE_SECONDS = 90;
/** Base of the retry backoff the row records; BullMQ's job backoff (queues.ts) is the timer. */
const RETRY_BASE_MS = 2_000;
const SWEEP_PAGE = 1_000;

/** Builds the message for a claimed delivery; null when what it served is gone. */
export type Composer = (db: Queryable, delivery: Delivery) => Promise<Message | null>;
export type Composers = Partial<Record<DeliveryKind, Composer>>;

export type SendOutcome = 'sent' | 'skipped' | 'retry' | 'failed' | 'suppressed';

function describe(err: unknown): string {
  const e = err as { responseCode?: number; code?: string; response?: string; message?: string };
  // The SMTP response names the problem; the recipient's address is not repeated in it here.
  const text = e.response ?? e.message ?? String(err);
  return [e.code, e.responseCode, text].filter(Boolean).join(' ').slice(0, 500);
}

/**
 * Sends one delivery at most once per claim: claim with a lease, compose from the rows, send,
 * and record the outcome. A delivery already sent, failed or held by a live lease is not sent.
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
): Promise<SendOutcome> {
  const id = job.data.deliveryId;
  const delivery = await q.claimDelivery(db, id, LEASE_SECONDS);
  if (!delivery) {
    const state = await q.getDeliveryState(db, id);
    if (state?.status === 'sending' && state.lease_until) {
      await job.moveToDelayed(state.lease_until.getTime() + 1000, token);
      throw new DelayedError();
    }
    return 'skipped';
  }
  if (delivery.suppressed) {
    await q.markFailed(db, id, 'suppressed: the address is on the suppression list');
    return 'suppressed';
  }
  const compose = composers[delivery.kind];
  const message = compose ? await compose(db, delivery) : null;
  if (!message) {
    await q.markFailed(db, id, compose ? 'nothing to send: its source is gone' : `no composer for ${delivery.kind}`);
    return 'failed';
  }
  let messageId: string;
  try {
    ({ messageId } = await mailer.send(message));
  } catch (err) {
    return settleFailure(db, delivery, err);
  }
  await q.markSent(db, id, messageId);
  return 'sent';
}

async function settleFailure(db: Queryable, delivery: Delivery, err: unknown): Promise<SendOutcome> {
  const failure = classifySendError(err);
  const error = describe(err);
  if (failure === 'retry' && delivery.attempts < MAX_SEND_ATTEMPTS) {
    await q.markRetry(db, delivery.id, error, RETRY_BASE_MS * 2 ** (delivery.attempts - 1));
    throw new Error(`delivery ${delivery.id}: temporary failure: ${error}`);
  }
  await q.markFailed(db, delivery.id, error);
  if (failure === 'recipient-rejected') await q.insertSuppression(db, delivery.recipient, `bounce: ${error}`);
  throw new UnrecoverableError(`delivery ${delivery.id}: failed: ${error}`);
}

/**
 * Re-enqueues deliveries that have no live job: committed but never enqueued (a crash between
 * commit and enqueue), lost with Redis's data, or held by a worker that died mid-send.
 * A job id that still exists as completed or failed would swallow the add, so it is removed first.
 * @returns how many deliveries got a job again.
 */
export async function sweepDeliveries(db: Queryable, queues: Pick<Queues, 'send'>, graceSeconds = 30): Promise<number> {
  let afterId = 0;
  let requeued = 0;
  for (;;) {
    const ids = await q.listStrandedDeliveries(db, afterId, graceSeconds, SWEEP_PAGE);
    if (ids.length === 0) return requeued;
    afterId = ids[ids.length - 1]!;
    const states = await Promise.all(ids.map((id) => queues.send.getJobState(deliveryJobId(id))));
    const missing: number[] = [];
    await Promise.all(
      ids.map(async (id, i) => {
        const state = states[i];
        if (state === 'completed' || state === 'failed') await queues.send.remove(deliveryJobId(id));
        if (state === 'completed' || state === 'failed' || state === 'unknown') missing.push(id);
      }),
    );
    await enqueueDeliveries(queues, missing);
    requeued += missing.length;
  }
}

export async function countDeliveries(db: Queryable, where: { campaignId?: number; kind?: DeliveryKind; sourceId?: number }): Promise<DeliveryCounts> {
  const counts = Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, 0])) as DeliveryCounts;
  for (const row of await q.countDeliveriesByStatus(db, where)) counts[row.status] = row.n;
  return counts;
}

export { enqueueDeliveries };
