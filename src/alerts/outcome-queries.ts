import type { Queryable } from '../db/index.ts';

// What an update's alerts came to: counted for the console and the API, and, 30 days after its
// fan-out ended, folded into the update's own counts (the daily purge), their rows deleted.

/**
 * Alerts sent and failed, per update, of the updates `ids`: one pass for a page of them. Those
 * whose rows were folded into the update (foldSettledAlerts) count too; `failed_kept`, the failed
 * ones whose rows are still there to be retried, does not.
 */
export async function countAlertOutcomes(db: Queryable, ids: readonly number[]) {
  const { rows } = await db.query<{ source_id: number; sent: number; failed: number; failed_kept: number; waiting: number }>(
    `SELECT u.id AS source_id,
            u.folded_sent + count(d.id) FILTER (WHERE d.status = 'sent')::int AS sent,
            u.folded_failed + count(d.id) FILTER (WHERE d.status = 'failed')::int AS failed,
            count(d.id) FILTER (WHERE d.status = 'failed')::int AS failed_kept,
            count(d.id) FILTER (WHERE d.status IN ('queued', 'sending', 'retry'))::int AS waiting
       FROM case_updates u LEFT JOIN deliveries d ON d.kind = 'alert' AND d.source_id = u.id
      WHERE u.id = ANY ($1::bigint[]) GROUP BY u.id`,
    [ids],
  );
  return new Map(rows.map((r) => [Number(r.source_id), r]));
}

/**
 * Updates whose fan-out ended over `days` ago and that still have sent or failed alert rows, after
 * `afterId` (a keyset: an update whose rows cannot all be folded yet is not listed again); a few at
 * a time. No anti-join over unfinished rows: with the statistics of a day when none were queued,
 * the planner rescans every alert of a fan-out in flight once per update listed.
 */
export async function listSettledAlerts(db: Queryable, days: number, afterId: number, limit: number) {
  const { rows } = await db.query<{ id: number }>(
    `SELECT u.id FROM case_updates u
      WHERE u.id > $3 AND u.fanned_out_at < now() - make_interval(days => $1)
        AND EXISTS (SELECT 1 FROM deliveries d WHERE d.kind = 'alert' AND d.source_id = u.id AND d.status IN ('sent', 'failed'))
      ORDER BY u.id LIMIT $2`,
    [days, limit, afterId],
  );
  return rows.map((r) => Number(r.id));
}

/**
 * Deletes one update's settled alert rows, adding what they say to its counts, in one statement.
 * One that a retry (the console's) took back to `queued` since the update was listed stays: the
 * status is checked again on the row the delete locks.
 * @returns how many rows were deleted.
 */
export async function foldAlerts(db: Queryable, caseUpdateId: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `WITH held AS (
       -- The update first, as withdrawCaseUpdate locks them: the other order deadlocks with it.
       SELECT id FROM case_updates WHERE id = $1 FOR UPDATE
     ), gone AS (
       DELETE FROM deliveries d WHERE d.kind = 'alert' AND d.source_id = (SELECT id FROM held) AND d.status IN ('sent', 'failed')
       RETURNING d.status
     ), counted AS (
       UPDATE case_updates u
          SET folded_sent = folded_sent + (SELECT count(*) FROM gone WHERE status = 'sent'),
              folded_failed = folded_failed + (SELECT count(*) FROM gone WHERE status = 'failed')
        WHERE u.id = $1
     )
     SELECT count(*)::int AS n FROM gone`,
    [caseUpdateId],
  );
  return rows[0]!.n;
}
