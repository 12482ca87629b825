// The installation's settings (table settings): values kept once, by whichever process stores
// one first (its installation id, its secret's fingerprint).
import type { Queryable } from './db/index.ts';

/**
 * A setting of the installation: the one stored, or `value` when none was (it is stored then).
 * Two processes starting at once both try: the second's insert waits for the first's and finds
 * the conflict, but its statement's snapshot was taken before the first committed, so it sees no
 * row at all. Asked again, it does.
 */
export async function keepSetting(db: Queryable, name: string, value: string): Promise<string> {
  for (;;) {
    const { rows } = await db.query<{ value: string }>(
      `WITH kept AS (
         INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value
       )
       SELECT value FROM kept UNION ALL SELECT value FROM settings WHERE name = $1`,
      [name, value],
    );
    if (rows[0]) return rows[0].value;
  }
}
