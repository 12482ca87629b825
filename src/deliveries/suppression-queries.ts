import { containing, type Queryable } from '../db/index.ts';
import { asciiSearch } from '../mail/address.ts';

// The suppression list: addresses a relay refused, which get no more mail until lifted.

/**
 * Suppresses an address a relay refused, with the kind of email refused (see OFFICIAL), and an
 * active subscriber with it becomes `bounced` (the database stamps `bounced_at`: migration 030).
 * An address suppressed as a supporter's or a subscriber's whose letter is then refused becomes an
 * official's (see HOLDS), suppressed from now: the supporter's bounce, its time included, is what
 * HOLDS keeps from organizers.
 */
export async function insertSuppression(db: Queryable, email: string, reason: string, kind: string) {
  await db.query(`WITH ${suppressing('$1', '$2', '$3')}`, [email, reason, kind]);
}

/** The end of a statement suppressing an address, given the parameters that hold what it needs. */
export const suppressing = (email: string, reason: string, kind: string) => `suppressed AS (
       INSERT INTO suppressions AS x (email, reason, kind) VALUES (lower(${email}), ${reason}, ${kind})
       ON CONFLICT (email) DO UPDATE SET kind = EXCLUDED.kind, reason = EXCLUDED.reason, created_at = now(), asked_at = NULL, asked_by = NULL
        WHERE EXCLUDED.kind IN (${OFFICIAL_LIST}) AND (x.kind IS NULL OR x.kind NOT IN (${OFFICIAL_LIST}))
     )
     UPDATE subscribers SET status = 'bounced' WHERE lower(email) = lower(${email}) AND status = 'active'`;

/**
 * Stamps a suppression's one asked-for email as delivery `deliveryId`'s, claimed for its
 * `attempt`-th try; false when it was taken already (see ASKED_FOR). The delivery that took it
 * keeps it through its own retries, so that a greylisting relay's 450, a relay down, or a worker
 * stopped mid-send does not use up the address's one chance unsent: a try after the first, or one
 * whose last try left an error (a try given back, as when the database was away). A request made
 * again reuses the row, and takes the ask from it (requeueFinished): that is a new ask, refused
 * at any attempt, even should the mark of its refusal be lost. An ask taken before asks were
 * recorded with their delivery (asked_by NULL) is nobody's to keep: it could have been another
 * delivery's, one whose first try came before the suppression.
 */
export async function takeSuppressedAsk(db: Queryable, email: string, deliveryId: number, attempt: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE suppressions SET asked_at = now(), asked_by = $2
      WHERE email = lower($1)
        AND (asked_at IS NULL
             OR (asked_by = $2 AND ($3 > 1 OR EXISTS (SELECT 1 FROM deliveries WHERE id = $2 AND last_error IS NOT NULL))))`,
    [email, deliveryId, attempt],
  );
  return rowCount > 0;
}

/** Gives back the ask delivery `deliveryId` took (takeSuppressedAsk) for an email it did not send. */
export async function releaseSuppressedAsk(db: Queryable, email: string, deliveryId: number) {
  await db.query('UPDATE suppressions SET asked_at = NULL, asked_by = NULL WHERE email = lower($1) AND asked_by = $2', [email, deliveryId]);
}

/** Takes an address off the suppression list, leaving any bounced subscriber with it as it is. */
export async function liftSuppressionOnly(db: Queryable, email: string) {
  await db.query('DELETE FROM suppressions WHERE email = lower($1)', [email]);
}

/**
 * Kinds of email that go to officials. A suppressed address refused on one of them is an
 * official's, not a supporter's or a subscriber's: told by what was refused, not by the targets,
 * since any organizer can add an address as a target.
 */
export const OFFICIAL_KINDS = ['letter', 'digest'];
const OFFICIAL_LIST = OFFICIAL_KINDS.map((k) => `'${k}'`).join(', ');
const OFFICIAL = `s.kind IN (${OFFICIAL_LIST})`;

/**
 * SQL: the delivery `d` goes to an address whose suppression holds it. Letters and digests are
 * held by an official's suppression only: were a supporter's or a subscriber's bounce to hold
 * them, any organizer could learn whether an address had been given to Appeal by adding it as a
 * target. Such a letter goes; if its server refuses it too, the suppression becomes an official's
 * (see suppressing), and holds the next.
 */
export const HOLDS = `EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(d.recipient) AND (d.kind NOT IN (${OFFICIAL_LIST}) OR ${OFFICIAL}))`;

/** SQL: the target `t`'s address has a suppression that holds its letters (see HOLDS). */
export const TARGET_HELD = `EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(t.email) AND ${OFFICIAL})`;

/** Which of `emails` (officials' addresses) have a suppression that holds letters (lower-cased; see HOLDS). */
export async function suppressedAmong(db: Queryable, emails: readonly string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ email: string }>(
    `SELECT email FROM suppressions s WHERE email = ANY($1::text[]) AND ${OFFICIAL}`,
    [emails.map((e) => e.toLowerCase())],
  );
  return new Set(rows.map((r) => r.email));
}

/** `targets`, each marked `suppressed` when its address has a suppression that holds letters (suppressedAmong). */
export async function markSuppressed<T extends { email: string }>(db: Queryable, targets: T[]): Promise<(T & { suppressed: boolean })[]> {
  const held = await suppressedAmong(db, targets.map((t) => t.email));
  return targets.map((t) => ({ ...t, suppressed: held.has(t.email.toLowerCase()) }));
}

/**
 * One keyset page of the suppression list in address order, optionally those containing `search`;
 * `officialsOnly`: only officials' addresses (see OFFICIAL; what an organizer who is not an admin sees).
 */
/**
 * Suppressed addresses in their order, `offset` in: a page's place in the list is a number, not
 * the address it ends on, which a link would carry into a proxy's log and the browser's history.
 */
export async function listSuppressions(db: Queryable, opts: { offset?: number; search?: string; officialsOnly?: boolean; limit: number }) {
  const ascii = opts.search ? asciiSearch(opts.search) : undefined;
  const { rows } = await db.query<{ email: string; reason: string; created_at: Date }>(
    `SELECT email, reason, created_at FROM suppressions s
      WHERE ($2::text IS NULL OR email ILIKE $2 OR email ILIKE $5)
        AND (NOT $4::boolean OR ${OFFICIAL})
      ORDER BY email LIMIT $3 OFFSET $1`,
    [opts.offset ?? 0, opts.search ? containing(opts.search) : null, opts.limit, opts.officialsOnly ?? false, ascii ? containing(ascii) : null],
  );
  return rows;
}

/** How many suppressed addresses are not officials' (see listSuppressions). */
export async function countOtherSuppressions(db: Queryable) {
  // A suppression kept before kinds were (kind NULL) counts as a supporter's, as listSuppressions hides it.
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM suppressions s WHERE s.kind IS NULL OR NOT ${OFFICIAL}`);
  return rows[0]!.n;
}

/**
 * Lifts a suppression (with `officialsOnly`, only an official's); a subscriber who had bounced
 * is active again, as they last chose. One with no confirmation on record (all retention keeps of
 * one who bounced long ago while a signature waits: keepLeavingAlone) stays bounced: active, it
 * would follow nothing with no consent on record.
 */
export async function deleteSuppression(db: Queryable, email: string, officialsOnly = false) {
  const { rows } = await db.query<{ email: string; reason: string; kind: string | null }>(
    `WITH gone AS (
       DELETE FROM suppressions s WHERE email = lower($1) AND (NOT $2::boolean OR ${OFFICIAL}) RETURNING email, reason, kind
     ), lifted AS (
       UPDATE subscribers SET status = 'active' WHERE lower(email) IN (SELECT email FROM gone) AND status = 'bounced' AND confirmed_at IS NOT NULL
     )
     SELECT email, reason, kind FROM gone`,
    [email, officialsOnly],
  );
  return rows[0];
}
