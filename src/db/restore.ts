import type { Queryable } from './index.ts';

/**
 * How far after-restore moves every id on: past any row made between the backup and the loss,
 * however busy (a billion; the ids are bigint).
 */
export const RESTORE_GAP = 1_000_000_000;

/**
 * Moves every id sequence of Appeal's schema RESTORE_GAP ahead. A database restored from a backup
 * numbers its next rows from where the backup left off, and the rows made after it, now lost, had
 * those numbers: their emailed links (confirm, unsubscribe, preferences), derived from a row's
 * number, would act on the new rows that take them, a stranger's confirmation page showing
 * another signer's letter, and its button sending it. Run before any process starts on the copy.
 * @returns how many sequences moved.
 */
export async function skipIdsAfterRestore(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ moved: number }>(
    `SELECT count(setval(format('%I.%I', schemaname, sequencename), coalesce(last_value, 0) + $1::bigint))::int AS moved
       FROM pg_sequences WHERE schemaname = current_schema()`,
    [RESTORE_GAP],
  );
  return rows[0]!.moved;
}

/**
 * How far after-restore moves on the confirmation round of each pending signature: past any round
 * a signer's "sign again" used between the backup and the loss, whose email (its link, its
 * Message-ID, both derived from the round) may have gone out.
 */
export const RESTORE_ROUND_GAP = 1_000;

/**
 * Ends the confirmation links of every signature pending in the backup (one without a link yet,
 * whose email is waiting, too), and moves its round on
 * (RESTORE_ROUND_GAP): any of them may have been confirmed after the backup, its letters sent, and
 * confirmed again from the same link the officials would get them twice, as new emails. A
 * confirmation email the backup holds as waiting (which may have gone out after it too) is
 * composed with the new round's link when it goes; one sent already leaves its signer to sign again.
 * Only columns every version since 2026-12-03 has: it runs on a backup of any age since.
 * @returns how many signatures' links ended, and how many of those had their email sent.
 */
export async function endEmailedConfirmLinks(db: Queryable): Promise<{ ended: number; emailed: number }> {
  const { rows } = await db.query<{ emailed: boolean }>(
    `UPDATE signatures s SET confirm_token_hash = NULL, confirm_round = s.confirm_round + $1
      WHERE s.status = 'pending'
      RETURNING NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.kind = 'confirm' AND d.source_id = s.id AND d.status IN ('queued', 'retry', 'sending')) AS emailed`,
    [RESTORE_ROUND_GAP],
  );
  return { ended: rows.length, emailed: rows.filter((r) => r.emailed).length };
}

/** Emails the backup holds as not yet sent (queued, retried, being sent), by kind: any may have gone out after it. */
export async function countUnfinishedEmails(db: Queryable): Promise<{ kind: string; n: number }[]> {
  const { rows } = await db.query<{ kind: string; n: number }>(
    `SELECT kind, count(*)::int AS n FROM deliveries WHERE status IN ('queued', 'retry', 'sending') GROUP BY kind ORDER BY kind`,
  );
  return rows;
}
