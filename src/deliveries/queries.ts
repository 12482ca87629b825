import type { Db, Queryable } from '../db/index.ts';
import type { Delivery, DeliveryKind, DeliveryStatus } from './types.ts';
import { HOLDS as SUPPRESSED, suppressing } from './suppression-queries.ts';

// The send worker's ledger (claims, sent marks, retries, failures, drops), a row's resend and the
// sweeper's pages of stranded rows. The console's views are apart:
// failed-queries.ts and campaign-letter-queries.ts.

export interface SentMark {
  id: number;
  messageId: string;
}

/**
 * Records what the relay accepted and takes deliveries for sending, in one statement: on this
 * kind of machine a round trip costs more than the rows it carries, and the send worker's own
 * jobs supply both halves at once (see coalesce.ts).
 *
 * Sent marks: only rows still `sending` change, so a late or repeated outcome is a no-op.
 * Claims: only queued or retry rows, or sending rows whose lease ran out (their worker died).
 * Two workers racing for one row: the UPDATE lets exactly one win. An id marked sent in the same
 * statement is not claimed, since one statement must not change a row twice. `suppressed` rides
 * along so the send path needs no lookup of its own; only Delivery's columns come back, since pg
 * parses every column of every row it returns.
 * @returns the rows claimed; an id that could not be claimed has none.
 */
export async function recordSentAndClaim(db: Queryable, sent: readonly SentMark[], claimIds: readonly number[], leaseSeconds: number) {
  const marks = [...sent].sort((a, b) => a.id - b.id);
  const { rows } = await db.query<Delivery & { suppressed: boolean }>(
    `WITH sent AS (
       UPDATE deliveries d SET status = 'sent', message_id = v.message_id, sent_at = now(), updated_at = now(),
              lease_until = NULL, last_error = NULL
         FROM unnest($1::bigint[], $2::text[]) AS v (id, message_id)
        WHERE d.id = v.id AND d.status = 'sending'
     )
     UPDATE deliveries d
        SET status = 'sending', attempts = attempts + 1, updated_at = now(),
            lease_until = now() + make_interval(secs => $4)
      WHERE id = ANY ($3::bigint[]) AND id <> ALL ($1::bigint[])
        AND (status IN ('queued', 'retry') OR (status = 'sending' AND lease_until < now()))
      RETURNING d.id, d.kind, d.source_id, d.target_id, d.subscriber_id, d.campaign_id, d.recipient, d.status,
                d.attempts, d.lease_until, d.last_error, d.message_id, d.sent_at, d.created_at,
                ${SUPPRESSED} AS suppressed`,
    [marks.map((m) => m.id), marks.map((m) => m.messageId), [...claimIds].sort((a, b) => a - b), leaseSeconds],
  );
  return rows;
}

/**
 * The unique (kind, source, recipient) key allows one row per email a source sends, so an email
 * that must go again with a new link (an opt-in asked for again, a signature made again before
 * confirming) re-queues that row once its previous email is finished. One still on its way is
 * left alone: it is composed with the current link. Per-address rate limits bound how often.
 * @param gapSeconds least time between two of the row's emails: `waitMs` says how long the new
 * one must wait for it.
 * @returns the delivery requeued and how long its email must wait, or undefined.
 */
export async function requeueFinished(db: Queryable, kind: 'optin' | 'confirm', sourceId: number, gapSeconds: number) {
  // The row joined to itself: RETURNING sees the row as updated, and the gap runs from when the
  // last email went (or failed), which the update clears. The row keeps when the next may go
  // (next_attempt_at), so a sweeper re-adding a lost job waits for it too. The email is a new one
  // to a suppressed address too: a suppression's ask the row took is no longer its own to keep
  // (takeSuppressedAsk), whatever attempt a lost mark leaves it at.
  const { rows } = await db.query<{ id: number; wait_ms: number }>(
    `WITH requeued AS (
       UPDATE deliveries d
          SET status = 'queued', attempts = 0, last_error = NULL, message_id = NULL, sent_at = NULL, lease_until = NULL,
              next_attempt_at = nullif(greatest(now(), coalesce(before.sent_at, before.updated_at) + make_interval(secs => $3)), now()),
              updated_at = now()
         FROM (SELECT id, sent_at, updated_at FROM deliveries WHERE kind = $1 AND source_id = $2) AS before
        WHERE d.id = before.id AND d.status IN ('sent', 'failed')
        RETURNING d.id, d.recipient, ceil(extract(epoch FROM coalesce(d.next_attempt_at - now(), interval '0')) * 1000)::int AS wait_ms
     ), released AS (
       UPDATE suppressions s SET asked_by = NULL FROM requeued r WHERE s.email = lower(r.recipient) AND s.asked_by = r.id
     )
     SELECT id, wait_ms FROM requeued`,
    [kind, sourceId, gapSeconds],
  );
  return rows[0] && { id: rows[0].id, waitMs: rows[0].wait_ms };
}

export async function getDeliveryState(db: Queryable, id: number) {
  const { rows } = await db.query<{ status: DeliveryStatus; lease_until: Date | null }>(
    'SELECT status, lease_until FROM deliveries WHERE id = $1',
    [id],
  );
  return rows[0];
}

/**
 * The outcome of one claim: `claim` is the row as that claim left it (its attempts), so a worker
 * whose lease ran out while another claimed the row again changes nothing of the newer claim's.
 */
type Claim = { id: number; attempts: number };

/** What a mark of a claim that sent nothing (`untried`) sets besides: the claim's attempt is given back. */
const GIVE_ATTEMPT_BACK = ', attempts = attempts - 1';

/**
 * Renews a claimed delivery's lease for `seconds` from now; false when the claim is no longer this
 * one's (its lease ran out and another worker claimed the row, or it was marked since).
 */
export async function renewLease(db: Queryable, claim: Claim, seconds: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE deliveries SET lease_until = now() + make_interval(secs => $3)
      WHERE id = $1 AND status = 'sending' AND attempts = $2`,
    [claim.id, claim.attempts, seconds],
  );
  return rowCount === 1;
}

/**
 * The corrected address of the letter or digest $1 when its official's address changed while it
 * was being sent: the console moves rows waiting (updateTarget), not one being sent. None when
 * another row of its kind and source has that address already (two targets given one address).
 */
const MOVED = `moved AS (
       SELECT t.email FROM deliveries d JOIN targets t ON t.id = d.target_id
        WHERE d.id = $1 AND d.kind IN ('letter', 'digest') AND lower(t.email) <> lower(d.recipient)
          AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.kind = d.kind AND o.source_id = d.source_id AND lower(o.recipient) = lower(t.email))
     )`;
const IF_MOVED = 'EXISTS (SELECT 1 FROM moved)';

/**
 * `untried`: nothing was sent (the database went away before), so the row says so. A letter or
 * digest whose official's address was corrected meanwhile (MOVED) goes to the new address next
 * time, its error marked as the previous address's.
 */
export async function markRetry(db: Queryable, claim: Claim, error: string, retryInMs: number, { untried = false } = {}) {
  await db.query(
    `WITH ${MOVED}
     UPDATE deliveries SET status = 'retry', updated_at = now(), lease_until = NULL,
            recipient = coalesce((SELECT email FROM moved), recipient),
            last_error = ${untried ? '$3' : `CASE WHEN ${IF_MOVED} THEN left('to the previous address: ' || $3, 500) ELSE $3 END`},
            next_attempt_at = now() + make_interval(secs => $4)${untried ? GIVE_ATTEMPT_BACK : ''}
      WHERE id = $1 AND status = 'sending' AND attempts = $2`,
    [claim.id, claim.attempts, error, retryInMs / 1000],
  );
}

/**
 * Fails a claimed delivery. With `suppress`, the same statement puts the address a relay refused
 * on the suppression list (see insertSuppression): a row that says failed for a bounce always has
 * its suppression, whatever happens to the process after. `untried`: failed before anything was sent
 * (its address suppressed), so the claim's attempt is given back and the row says it was never tried.
 * A letter or digest whose official's address was corrected meanwhile (MOVED) failed at the old
 * address only: it goes to the new one at once (the sweeper adds its job), the old one suppressed.
 */
export async function markFailed(db: Queryable, claim: Claim, error: string, { suppress, untried = false }: { suppress?: { email: string; reason: string; kind: string }; untried?: boolean } = {}) {
  const failed = `UPDATE deliveries SET status = CASE WHEN ${IF_MOVED} THEN 'retry' ELSE 'failed' END,
            recipient = coalesce((SELECT email FROM moved), recipient),
            next_attempt_at = CASE WHEN ${IF_MOVED} THEN now() ELSE next_attempt_at END,
            last_error = CASE WHEN ${IF_MOVED} THEN left('to the previous address: ' || $3, 500) ELSE $3 END,
            updated_at = now(), lease_until = NULL${untried ? GIVE_ATTEMPT_BACK : ''}
      WHERE id = $1 AND status = 'sending' AND attempts = $2`;
  if (!suppress) {
    await db.query(`WITH ${MOVED} ${failed}`, [claim.id, claim.attempts, error]);
    return;
  }
  await db.query(
    `WITH ${MOVED}, failed AS (${failed}),
     ${suppressing('$4', '$5', '$6')}`,
    [claim.id, claim.attempts, error, suppress.email, suppress.reason, suppress.kind],
  );
}

/**
 * Drops a claimed delivery (see Claim) whose email has nothing left to serve (its subscriber
 * left, its signature was purged). An alert's update no longer counts it among those its fan-out reached,
 * so its sent and failed still add up to its recipients. The update is locked first, in a
 * statement of its own, as a withdrawal locks them (see foldAlerts; the other order deadlocks)
 * and as markFannedOut does: the drop then reads the `reached` of a fan-out that finished while
 * it waited, which a statement begun before that would see unset and leave one too many.
 */
export async function deleteUnsendable(db: Db, claim: Claim & { kind: DeliveryKind }) {
  // Only an alert is counted in an update's `reached`: any other goes in one statement.
  if (claim.kind !== 'alert') {
    await db.query(`DELETE FROM deliveries WHERE id = $1 AND status = 'sending' AND attempts = $2`, [claim.id, claim.attempts]);
    return;
  }
  await db.transaction(async (tx) => {
    const { rows: [held] } = await tx.query<{ id: number }>(
      `SELECT u.id FROM case_updates u JOIN deliveries d ON d.kind = 'alert' AND d.source_id = u.id WHERE d.id = $1 FOR NO KEY UPDATE OF u`,
      [claim.id],
    );
    await tx.query(
      `WITH gone AS (
         DELETE FROM deliveries WHERE id = $1 AND status = 'sending' AND attempts = $2 AND source_id = $3::bigint
         RETURNING source_id
       )
       UPDATE case_updates u SET reached = u.reached - 1 FROM gone WHERE u.id = gone.source_id AND u.reached > 0`,
      [claim.id, claim.attempts, held?.id ?? null],
    );
  });
}

/**
 * One keyset page of deliveries that should have a job but may not: queued or retry rows left
 * alone longer than `graceSeconds`, and sending rows whose lease has run out.
 */
export async function listStrandedDeliveries(db: Queryable, afterId: number, graceSeconds: number, limit: number) {
  const { rows } = await db.query<{ id: number; kind: DeliveryKind }>(
    `SELECT id, kind FROM deliveries
      WHERE id > $1
        AND status IN ('queued', 'retry', 'sending')
        AND CASE status
              -- A queued row may be held back (requeueFinished): its job is added once that time is up.
              WHEN 'queued' THEN coalesce(next_attempt_at, updated_at) < now() - make_interval(secs => $2)
              WHEN 'retry' THEN coalesce(next_attempt_at, updated_at) < now() - make_interval(secs => $2)
              ELSE lease_until < now()
            END
      ORDER BY id
      LIMIT $3`,
    [afterId, graceSeconds, limit],
  );
  return rows;
}

