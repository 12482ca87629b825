import type { Db, Queryable } from '../db/index.ts';
import type { Delivery, DeliveryKind, DeliveryStatus } from './types.ts';
import { HOLDS as SUPPRESSED, suppressing } from './suppression-queries.ts';

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

/**
 * A campaign's deliveries of these kinds by status, from deliveries_campaign_kind_idx alone (one
 * fixed shape: a `$1 IS NULL OR …` filter made a prepared statement's generic plan scan them all).
 */
export async function countDeliveriesByStatus(db: Queryable, campaignId: number, kinds: DeliveryKind[]) {
  const { rows } = await db.query<{ status: DeliveryStatus; n: number }>(
    `SELECT status, count(*)::int AS n FROM deliveries WHERE campaign_id = $1 AND kind = ANY($2::text[]) GROUP BY status`,
    [campaignId, kinds],
  );
  return rows;
}

/** SQL: the failed delivery `d` is a letter to a target since retired, which gets no new letter. */
const TO_RETIRED = `EXISTS (SELECT 1 FROM targets rt WHERE rt.id = d.target_id AND rt.retired_at IS NOT NULL)`;

export interface FailedDelivery {
  id: number;
  kind: string;
  recipient: string;
  attempts: number;
  last_error: string | null;
  updated_at: Date;
  target_name: string | null;
  campaign_slug: string | null;
  campaign_title: string | null;
  /** For an alert: the case and the update it told of. */
  case_slug: string | null;
  update_title: string | null;
  /** Why a retry would not send it: its address is suppressed, or its target retired. */
  suppressed: boolean;
  target_retired: boolean;
  /** This row's place in the list, to ask for the page after it: its time as Postgres writes it (to the microsecond, which a JS Date is not) and its id. */
  cursor: string;
}

/** Where a page of failed deliveries ends (a row's `cursor`, split). */
export interface FailedCursor {
  updatedAt: string;
  id: number;
}

/** Failed deliveries newest first, of one campaign or of all; a keyset page after `before`. */
export async function listFailedDeliveries(db: Queryable, filter: { campaignId?: number; before?: FailedCursor; limit: number }) {
  const { rows } = await db.query<FailedDelivery>(
    `SELECT d.id, d.kind, d.recipient, d.attempts, d.last_error, d.updated_at, t.name AS target_name,
            c.slug AS campaign_slug, c.title AS campaign_title, ac.slug AS case_slug, u.title AS update_title,
            ${SUPPRESSED} AS suppressed, t.retired_at IS NOT NULL AS target_retired, d.updated_at::text || '~' || d.id AS cursor
       FROM deliveries d LEFT JOIN targets t ON t.id = d.target_id LEFT JOIN campaigns c ON c.id = d.campaign_id
            LEFT JOIN case_updates u ON d.kind = 'alert' AND u.id = d.source_id LEFT JOIN cases ac ON ac.id = u.case_id
      WHERE d.status = 'failed' AND ($1::bigint IS NULL OR d.campaign_id = $1)
        AND ($3::timestamptz IS NULL OR (d.updated_at, d.id) < ($3::timestamptz, $4::bigint))
      ORDER BY d.updated_at DESC, d.id DESC LIMIT $2`,
    [filter.campaignId ?? null, filter.limit, filter.before?.updatedAt ?? null, filter.before?.id ?? 0],
  );
  return rows;
}

export interface CampaignLetter {
  id: number;
  kind: string;
  recipient: string;
  status: string;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date | null;
  sent_at: Date | null;
  created_at: Date;
  target_name: string | null;
}

/**
 * A campaign's letters and digests, newest first, a keyset page at a time (ids below `beforeId`),
 * optionally of one status: which official got which letter, and when. Nothing of the signer.
 */
export async function listCampaignLetters(db: Queryable, campaignId: number, opts: { status?: string; beforeId?: number; limit: number }) {
  const { rows } = await db.query<CampaignLetter>(
    `SELECT d.id, d.kind, d.recipient, d.status, d.attempts, d.last_error, d.next_attempt_at, d.sent_at, d.created_at, t.name AS target_name
       FROM deliveries d LEFT JOIN targets t ON t.id = d.target_id
      WHERE d.campaign_id = $1 AND d.kind IN ('letter', 'digest')
        AND ($2::text IS NULL OR d.status = $2) AND ($3::bigint IS NULL OR d.id < $3)
      ORDER BY d.id DESC LIMIT $4`,
    [campaignId, opts.status ?? null, opts.beforeId ?? null, opts.limit],
  );
  return rows;
}

/**
 * Puts up to `limit` failed deliveries whose address is not suppressed back in the queue, as
 * requeueFailed does one (attempts counted afresh). For after an outage of the relay or a fix
 * to its setup, when the failures were not the letters'. A keyset page: ids after `afterId`, up to
 * `upToId`.
 * @returns the deliveries requeued (id and kind), in order; none when the range holds no more.
 */
export async function requeueFailedPage(db: Queryable, range: { afterId: number; upToId: number }, limit: number) {
  const { rows } = await db.query<{ id: number; kind: DeliveryKind }>(
    `UPDATE deliveries SET status = 'queued', attempts = 0, next_attempt_at = NULL, lease_until = NULL, updated_at = now()
      WHERE id IN (SELECT id FROM deliveries d
                    WHERE d.status = 'failed' AND d.id > $1 AND d.id <= $2 AND NOT ${SUPPRESSED} AND NOT ${TO_RETIRED}
                    ORDER BY d.id LIMIT $3)
        AND status = 'failed'
      RETURNING id, kind`,
    [range.afterId, range.upToId, limit],
  );
  return rows.sort((a, b) => a.id - b.id);
}

/** The highest id of a failed delivery, 0 when none is. */
export async function lastFailedId(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ max: string | null }>(`SELECT max(id) AS max FROM deliveries WHERE status = 'failed'`);
  return Number(rows[0]?.max ?? 0);
}

/**
 * Failed deliveries: all, how many have a suppressed address, how many are letters to a retired
 * target, and how many a retry would send (neither).
 */
export async function countFailed(db: Queryable) {
  const { rows } = await db.query<{ failed: number; suppressed: number; retired: number; retryable: number }>(
    `SELECT count(*)::int AS failed, count(*) FILTER (WHERE ${SUPPRESSED})::int AS suppressed,
            count(*) FILTER (WHERE ${TO_RETIRED})::int AS retired,
            count(*) FILTER (WHERE NOT ${SUPPRESSED} AND NOT ${TO_RETIRED})::int AS retryable
       FROM deliveries d WHERE d.status = 'failed'`,
  );
  return rows[0]!;
}

/** Failed deliveries by kind, for the dashboard. */
export async function countFailedByKind(db: Queryable) {
  const { rows } = await db.query<{ kind: string; n: number }>(
    `SELECT kind, count(*)::int AS n FROM deliveries WHERE status = 'failed' GROUP BY kind ORDER BY kind`,
  );
  return rows;
}

/**
 * Emails still being retried a while after they were first asked for: a relay that has refused
 * them for now (or not answered) for longer than greylisting takes. Uses the retried rows' index
 * (migration 036), not the unfinished rows', which an update's queued alerts fill.
 */
export async function countLongRetryingByKind(db: Queryable, olderThanMinutes: number) {
  const { rows } = await db.query<{ kind: string; n: number; last_error: string | null }>(
    `SELECT kind, count(*)::int AS n, (array_agg(last_error ORDER BY updated_at DESC))[1] AS last_error
       FROM deliveries
      WHERE status = 'retry' AND created_at < now() - make_interval(mins => $1)
      GROUP BY kind ORDER BY kind`,
    [olderThanMinutes],
  );
  return rows;
}

/**
 * Only a failed delivery goes back to the queue, with its attempts counted afresh, and only when
 * its address is not suppressed (the claim would fail it again at once) and it is not a letter to
 * a retired target (which gets no new letter: the send would drop the row, and its record with it).
 * @returns the row requeued, or why not: there is no such row, it is not failed, its address is
 * suppressed, or its target retired.
 */
export async function requeueFailed(db: Queryable, id: number) {
  const { rows } = await db.query<{ found: boolean; requeued: boolean; suppressed: boolean; retired: boolean; kind: DeliveryKind | null }>(
    `WITH held AS (
       SELECT d.id, d.kind, ${SUPPRESSED} AS suppressed, ${TO_RETIRED} AS retired
         FROM deliveries d WHERE d.id = $1 AND d.status = 'failed'
     ), requeued AS (
       UPDATE deliveries SET status = 'queued', attempts = 0, next_attempt_at = NULL, lease_until = NULL, updated_at = now()
         FROM held WHERE deliveries.id = held.id AND NOT held.suppressed AND NOT held.retired AND deliveries.status = 'failed'
       RETURNING deliveries.id
     )
     SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = $1) AS found,
            EXISTS (SELECT 1 FROM requeued) AS requeued, coalesce((SELECT suppressed FROM held), false) AS suppressed,
            coalesce((SELECT retired FROM held), false) AS retired, (SELECT kind FROM held) AS kind`,
    [id],
  );
  return rows[0]!;
}

/**
 * SQL, for each target `t`: its letters and digests `d` that went (the relay took them) to an
 * address it no longer has, and of which no email of the same key (deliveries_once_key) went to
 * the address it has now. A relay takes a letter to a mailbox that does not exist and reports the
 * bounce later, to MAIL_FROM, where Appeal does not see it: such letters are `sent`, not failed,
 * and a corrected address alone does not bring them back. Two range scans of
 * deliveries_target_recipient_idx, below and above the address now: only letters to other
 * addresses are read, however many went to the right one.
 */
const SENT_ELSEWHERE = (alias: string) =>
  ['<', '>'].map((side) => `SELECT d.* FROM deliveries d
      WHERE d.target_id = ${alias}.id AND lower(d.recipient) ${side} lower(${alias}.email)
        AND d.kind IN ('letter', 'digest') AND d.status = 'sent'
        -- A letter of a signer since forgotten could not be written again (its row names nobody).
        AND (d.kind <> 'letter' OR EXISTS (SELECT 1 FROM signatures s WHERE s.id = d.source_id))
        AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.kind = d.kind AND e.source_id = d.source_id AND lower(e.recipient) = lower(${alias}.email))`).join(' UNION ALL ');

/** Per target of the campaign written to: how many emails SENT_ELSEWHERE would send again, and the addresses they went to. */
export async function countSentElsewhere(db: Queryable, campaignId: number) {
  const { rows } = await db.query<{ target_id: number; n: number; addresses: string }>(
    `SELECT t.id AS target_id, count(DISTINCT (w.kind, w.source_id))::int AS n, string_agg(DISTINCT w.recipient, ', ') AS addresses
       FROM targets t CROSS JOIN LATERAL (${SENT_ELSEWHERE('t')}) w
      WHERE t.campaign_id = $1 AND t.retired_at IS NULL
      GROUP BY t.id`,
    [campaignId],
  );
  return new Map(rows.map((r) => [r.target_id, { n: r.n, addresses: r.addresses }]));
}

/**
 * A new delivery to the target's address now for each email SENT_ELSEWHERE: the same letter or
 * digest goes to the corrected address. Sent again, the form adds nothing (deliveries_once_key).
 * @returns the new deliveries' ids
 */
export async function sendAgainToCurrentAddress(db: Queryable, campaignId: number, targetId: number): Promise<number[]> {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient)
     SELECT DISTINCT ON (w.kind, w.source_id) w.kind, w.source_id, w.target_id, w.campaign_id, t.email
       FROM targets t CROSS JOIN LATERAL (${SENT_ELSEWHERE('t')}) w
      WHERE t.id = $2 AND t.campaign_id = $1 AND t.retired_at IS NULL
      ORDER BY w.kind, w.source_id
     ON CONFLICT DO NOTHING RETURNING id`,
    [campaignId, targetId],
  );
  return rows.map((r) => r.id);
}

/**
 * How many letters and digests to the target's address now were made in the last `seconds` in
 * place of one sent to another address (what sendAgainToCurrentAddress makes): a form sent twice
 * finds those its first sending made.
 */
export async function countSentAgainLately(db: Queryable, campaignId: number, targetId: number, seconds: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM targets t JOIN deliveries d ON d.target_id = t.id AND lower(d.recipient) = lower(t.email)
      WHERE t.id = $2 AND t.campaign_id = $1 AND d.kind IN ('letter', 'digest') AND d.created_at > now() - make_interval(secs => $3)
        AND EXISTS (SELECT 1 FROM deliveries o WHERE o.kind = d.kind AND o.source_id = d.source_id AND o.target_id = d.target_id
                       AND o.status = 'sent' AND o.created_at < d.created_at AND lower(o.recipient) <> lower(t.email))`,
    [campaignId, targetId, seconds],
  );
  return rows[0]!.n;
}
