import type { Queryable } from '../db/index.ts';
import type { DeliveryKind } from './types.ts';
import { HOLDS as SUPPRESSED } from './suppression-queries.ts';
import { HELD_BACK_WORDS } from './allowance.ts';

// Failed deliveries as the console shows them (its list, counts and requeues, and emails long
// retrying, for the dashboard): the organizers' side of the ledger, apart from the send worker's.

/** SQL: the failed delivery `d` is a letter to a target since retired, which gets no new letter. */
const TO_RETIRED = `EXISTS (SELECT 1 FROM targets rt WHERE rt.id = d.target_id AND rt.retired_at IS NOT NULL)`;

/**
 * SQL: the failed delivery `d` is a confirmation held back for its address's allowance (its try
 * given back, its error HELD_BACK_WORDS). Not retried: a retry after a relay outage would send
 * the emails a stranger's posts asked for, and the signer who wants one signs again.
 */
const HELD_BACK = `(d.kind = 'confirm' AND d.attempts = 0 AND starts_with(coalesce(d.last_error, ''), '${HELD_BACK_WORDS}'))`;

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
  /** A confirmation held back for its address's allowance (HELD_BACK): not retried. */
  held_back: boolean;
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
            ${SUPPRESSED} AS suppressed, t.retired_at IS NOT NULL AS target_retired, ${HELD_BACK} AS held_back, d.updated_at::text || '~' || d.id AS cursor
       FROM deliveries d LEFT JOIN targets t ON t.id = d.target_id LEFT JOIN campaigns c ON c.id = d.campaign_id
            LEFT JOIN case_updates u ON d.kind = 'alert' AND u.id = d.source_id LEFT JOIN cases ac ON ac.id = u.case_id
      WHERE d.status = 'failed' AND ($1::bigint IS NULL OR d.campaign_id = $1)
        AND ($3::timestamptz IS NULL OR (d.updated_at, d.id) < ($3::timestamptz, $4::bigint))
      ORDER BY d.updated_at DESC, d.id DESC LIMIT $2`,
    [filter.campaignId ?? null, filter.limit, filter.before?.updatedAt ?? null, filter.before?.id ?? 0],
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
                    WHERE d.status = 'failed' AND d.id > $1 AND d.id <= $2 AND NOT ${SUPPRESSED} AND NOT ${TO_RETIRED} AND NOT ${HELD_BACK}
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
  const { rows } = await db.query<{ failed: number; suppressed: number; retired: number; heldBack: number; retryable: number }>(
    `SELECT count(*)::int AS failed, count(*) FILTER (WHERE ${SUPPRESSED})::int AS suppressed,
            count(*) FILTER (WHERE ${TO_RETIRED})::int AS retired,
            count(*) FILTER (WHERE ${HELD_BACK})::int AS "heldBack",
            count(*) FILTER (WHERE NOT ${SUPPRESSED} AND NOT ${TO_RETIRED} AND NOT ${HELD_BACK})::int AS retryable
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
        -- Tried and refused: not an opt-in held for its address's allowance, nor a try the
        -- database's absence gave back (attempts 0 both), which no relay had a say in.
        AND attempts > 0
      GROUP BY kind ORDER BY kind`,
    [olderThanMinutes],
  );
  return rows;
}

/**
 * Only a failed delivery goes back to the queue, with its attempts counted afresh, and only when
 * its address is not suppressed (the claim would fail it again at once), it is not a letter to
 * a retired target (which gets no new letter: the send would drop the row, and its record with it),
 * and it is not a confirmation held back for its address's allowance (HELD_BACK).
 * @returns the row requeued, or why not: there is no such row, it is not failed, its address is
 * suppressed, its target retired, or it was held back.
 */
export async function requeueFailed(db: Queryable, id: number) {
  const { rows } = await db.query<{ found: boolean; requeued: boolean; suppressed: boolean; retired: boolean; heldBack: boolean; kind: DeliveryKind | null }>(
    `WITH held AS (
       SELECT d.id, d.kind, ${SUPPRESSED} AS suppressed, ${TO_RETIRED} AS retired, ${HELD_BACK} AS held_back
         FROM deliveries d WHERE d.id = $1 AND d.status = 'failed'
     ), requeued AS (
       UPDATE deliveries SET status = 'queued', attempts = 0, next_attempt_at = NULL, lease_until = NULL, updated_at = now()
         FROM held WHERE deliveries.id = held.id AND NOT held.suppressed AND NOT held.retired AND NOT held.held_back AND deliveries.status = 'failed'
       RETURNING deliveries.id
     )
     SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = $1) AS found,
            EXISTS (SELECT 1 FROM requeued) AS requeued, coalesce((SELECT suppressed FROM held), false) AS suppressed,
            coalesce((SELECT retired FROM held), false) AS retired, coalesce((SELECT held_back FROM held), false) AS "heldBack",
            (SELECT kind FROM held) AS kind`,
    [id],
  );
  return rows[0]!;
}

/** A delivery's address and kind: the suppression list's link from a failed one names the row, not the address. */
export async function recipientOf(db: Queryable, id: number): Promise<{ recipient: string; kind: string } | undefined> {
  const { rows } = await db.query<{ recipient: string; kind: string }>('SELECT recipient, kind FROM deliveries WHERE id = $1', [id]);
  return rows[0];
}
