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
