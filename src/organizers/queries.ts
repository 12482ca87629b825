import type { Queryable } from '../db/index.ts';
import type { Organizer } from './service.ts';

export async function insertSession(db: Queryable, idHash: string, organizerId: number, idleSeconds: number) {
  await db.query(
    `INSERT INTO organizer_sessions (id_hash, organizer_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))`,
    [idHash, organizerId, idleSeconds],
  );
}

/**
 * Finds a live session and slides its expiry in the same statement: idle sessions end after
 * `idleSeconds`, every session after `maxSeconds` from sign-in whatever its activity.
 */
export async function touchSession(db: Queryable, idHash: string, idleSeconds: number, maxSeconds: number) {
  const { rows } = await db.query<Organizer & { session_created_at: Date }>(
    `UPDATE organizer_sessions s
        SET last_seen_at = now(),
            expires_at = least(s.created_at + make_interval(secs => $3), now() + make_interval(secs => $2))
       FROM organizers o
      WHERE s.id_hash = $1 AND s.expires_at > now() AND o.id = s.organizer_id
      RETURNING o.*, s.created_at AS session_created_at`,
    [idHash, idleSeconds, maxSeconds],
  );
  return rows[0];
}

/** A live session's organizer, its expiry left as it is. */
export async function liveSession(db: Queryable, idHash: string) {
  const { rows } = await db.query<Organizer & { session_created_at: Date }>(
    `SELECT o.*, s.created_at AS session_created_at
       FROM organizer_sessions s JOIN organizers o ON o.id = s.organizer_id
      WHERE s.id_hash = $1 AND s.expires_at > now()`,
    [idHash],
  );
  return rows[0];
}

// Each deletion of sessions keeps on their organizer when they were last seen in one.

export async function deleteSession(db: Queryable, idHash: string) {
  await db.query(
    `WITH gone AS (DELETE FROM organizer_sessions WHERE id_hash = $1 RETURNING organizer_id, last_seen_at)
     UPDATE organizers o SET last_seen_at = greatest(o.last_seen_at, gone.last_seen_at) FROM gone WHERE o.id = gone.organizer_id`,
    [idHash],
  );
}

export async function deleteSessionsOf(db: Queryable, organizerId: number, exceptHash: string | null) {
  await db.query(
    `WITH gone AS (DELETE FROM organizer_sessions WHERE organizer_id = $1 AND id_hash IS DISTINCT FROM $2 RETURNING last_seen_at)
     UPDATE organizers SET last_seen_at = greatest(last_seen_at, (SELECT max(last_seen_at) FROM gone)) WHERE id = $1 AND EXISTS (SELECT 1 FROM gone)`,
    [organizerId, exceptHash],
  );
}

export async function deleteExpiredSessions(db: Queryable) {
  await db.query(
    `WITH gone AS (DELETE FROM organizer_sessions WHERE expires_at <= now() RETURNING organizer_id, last_seen_at)
     UPDATE organizers o SET last_seen_at = greatest(o.last_seen_at, g.last_seen_at)
       FROM (SELECT organizer_id, max(last_seen_at) AS last_seen_at FROM gone GROUP BY organizer_id) g
      WHERE o.id = g.organizer_id`,
  );
}

/**
 * Takes one sign-in attempt from an account's budget before its password is checked, so attempts
 * sent together cannot all get past the count. The count starts again once `windowSeconds` pass
 * without a failure. A locked account gives nothing: its attempts neither count nor extend it.
 * @returns the attempt's number in the current window, or undefined while the account is locked.
 */
export async function reserveLoginAttempt(db: Queryable, id: number, windowSeconds: number) {
  const { rows } = await db.query<{ attempt: number }>(
    `UPDATE organizers
        SET failed_logins = CASE WHEN last_failed_login_at > now() - make_interval(secs => $2) THEN failed_logins + 1 ELSE 1 END,
            last_failed_login_at = now()
      WHERE id = $1 AND (locked_until IS NULL OR locked_until <= now())
      RETURNING failed_logins AS attempt`,
    [id, windowSeconds],
  );
  return rows[0]?.attempt;
}

/**
 * Locks an account whose attempts ran out, unless a lockout is already running (it is not
 * extended) or a sign-in succeeded meanwhile (the count was cleared).
 * @returns whether this call locked it.
 */
export async function lockAfterFailures(db: Queryable, id: number, maxFailures: number, lockSeconds: number) {
  const { rowCount } = await db.query(
    `UPDATE organizers SET failed_logins = 0, locked_until = now() + make_interval(secs => $3)
      WHERE id = $1 AND failed_logins >= $2 AND (locked_until IS NULL OR locked_until <= now())`,
    [id, maxFailures, lockSeconds],
  );
  return (rowCount ?? 0) > 0;
}

export async function clearFailedLogins(db: Queryable, id: number) {
  await db.query('UPDATE organizers SET failed_logins = 0, locked_until = NULL, last_failed_login_at = NULL WHERE id = $1', [id]);
}

/**
 * Forgets the keys of forms sent longer ago than any session lives: such a form carries the CSRF
 * token of a session that has ended, so it cannot be sent again, and its key guards nothing.
 */
export async function deleteOldConsoleRequests(db: Queryable, olderThanSeconds: number) {
  await db.query('DELETE FROM console_requests WHERE done_at < now() - make_interval(secs => $1)', [olderThanSeconds]);
}

/** Records that the console's form with this key was sent; false when it was before. */
export async function claimConsoleRequest(db: Queryable, key: string): Promise<boolean> {
  const { rowCount } = await db.query('INSERT INTO console_requests (key) VALUES ($1) ON CONFLICT DO NOTHING', [key]);
  return rowCount > 0;
}

/** `mustChange`: the password was generated for someone else to hand over (see Organizer). */
export async function setPasswordHash(db: Queryable, id: number, hash: string, mustChange: boolean) {
  await db.query('UPDATE organizers SET password_hash = $2, password_must_change = $3 WHERE id = $1', [id, hash, mustChange]);
}

export interface OrganizerListing {
  id: number;
  email: string;
  name: string;
  role: 'admin' | 'organizer';
  locked_until: Date | null;
  created_at: Date;
  last_seen_at: Date | null;
}

export async function listOrganizers(db: Queryable) {
  const { rows } = await db.query<OrganizerListing>(
    `SELECT o.id, o.email, o.name, o.role, CASE WHEN o.locked_until > now() THEN o.locked_until END AS locked_until, o.created_at,
            greatest(o.last_seen_at, (SELECT max(s.last_seen_at) FROM organizer_sessions s WHERE s.organizer_id = o.id)) AS last_seen_at
       FROM organizers o ORDER BY lower(o.email) LIMIT 500`,
  );
  return rows;
}

export async function getOrganizer(db: Queryable, id: number) {
  const { rows } = await db.query<Organizer>('SELECT * FROM organizers WHERE id = $1', [id]);
  return rows[0];
}

export async function setRole(db: Queryable, id: number, role: 'admin' | 'organizer') {
  const { rows } = await db.query<{ id: number }>('UPDATE organizers SET role = $2 WHERE id = $1 RETURNING id', [id, role]);
  return rows[0];
}

/** Sets an organizer's address and name. @returns false when another organizer has the address. */
export async function setProfile(db: Queryable, id: number, email: string, name: string): Promise<boolean> {
  try {
    const { rowCount } = await db.query(
      `UPDATE organizers SET email = $2, name = $3 WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM organizers o WHERE lower(o.email) = lower($2) AND o.id <> $1)`,
      [id, email, name],
    );
    return rowCount === 1;
  } catch (err) {
    // Taken by another organizer's change at the same moment (organizers_email_key).
    if ((err as { code?: string }).code === '23505') return false;
    throw err;
  }
}

export async function deleteOrganizer(db: Queryable, id: number) {
  const { rows } = await db.query<{ email: string }>('DELETE FROM organizers WHERE id = $1 RETURNING email', [id]);
  return rows[0];
}

/**
 * The admins' ids, their rows locked for the rest of the transaction (in id order, so two callers
 * queue rather than deadlock): a change of roles that counts them cannot pass another's. NO KEY:
 * an audit entry naming one of them (its key check) need not wait, or an admin resetting another's
 * password while a third changed a role deadlocked.
 */
export async function lockAdmins(db: Queryable): Promise<number[]> {
  const { rows } = await db.query<{ id: number }>(`SELECT id FROM organizers WHERE role = 'admin' ORDER BY id FOR NO KEY UPDATE`);
  return rows.map((r) => r.id);
}

export interface ApiTokenListing {
  id: number;
  label: string;
  organizer_email: string;
  /** Who made it in the console, when it was someone else; null for one's own, the command line's, or a maker since removed. */
  made_by_email: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export async function listApiTokens(db: Queryable) {
  const { rows } = await db.query<ApiTokenListing>(
    `SELECT t.id, t.label, o.email AS organizer_email, m.email AS made_by_email, t.created_at, t.last_used_at, t.revoked_at
       FROM api_tokens t JOIN organizers o ON o.id = t.organizer_id
       LEFT JOIN organizers m ON m.id = t.made_by AND m.id <> t.organizer_id
      ORDER BY t.revoked_at IS NOT NULL, t.id DESC LIMIT 500`,
  );
  return rows;
}

/**
 * Revokes the live tokens `organizerId` made to act as other organizers. The maker saw each one
 * (a token is shown once, to whoever made it), so once they are no longer trusted to act for
 * others (removed, or no longer an admin), a token they could have kept must not outlive that,
 * doing its organizer's work in the audit log. Their own tokens are not these.
 * @returns the ids revoked.
 */
export async function revokeTokensMadeForOthers(db: Queryable, organizerId: number): Promise<number[]> {
  const { rows } = await db.query<{ id: string }>(
    'UPDATE api_tokens SET revoked_at = now() WHERE made_by = $1 AND organizer_id <> $1 AND revoked_at IS NULL RETURNING id',
    [organizerId],
  );
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/** The live tokens that act as an organizer (theirs, or made for them by an admin). */
export async function liveTokensOf(db: Queryable, organizerId: number): Promise<number[]> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM api_tokens WHERE organizer_id = $1 AND revoked_at IS NULL ORDER BY id', [organizerId]);
  return rows.map((r) => Number(r.id));
}

/** Only a live token is revoked, so a second click changes nothing. */
export async function revokeApiToken(db: Queryable, id: number) {
  const { rows } = await db.query<{ id: number; label: string }>(
    'UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id, label',
    [id],
  );
  return rows[0];
}

export interface AuditEntry {
  id: number;
  /** Who acted, as their address was then; null for the command line and the system. */
  organizer_email: string | null;
  /** Whether that organizer has been removed since. */
  removed: boolean;
  /** The organizer's address now, when it was corrected since the entry. */
  now_email: string | null;
  action: string;
  object: string;
  detail: Record<string, unknown> | null;
  at: Date;
}

/** One keyset page of the audit log, newest first. */
export async function listAudit(db: Queryable, filter: { beforeId?: number; action?: string; actor?: string; limit: number }) {
  const { rows } = await db.query<AuditEntry>(
    // Each entry carries its actor's address (migration 017 wrote it on the entries made before):
    // no join, and one whose organizer was removed since is told by the id the removal cleared.
    // `by` follows the organizer, not the address: an organizer whose address was corrected since
    // is found by either, and an address given to someone else since finds the entries of whoever
    // had it then (each marked with who that is now).
    `SELECT a.id, a.actor AS organizer_email, (a.organizer_id IS NULL AND a.actor IS NOT NULL) AS removed,
            CASE WHEN lower(o.email) <> lower(a.actor) THEN o.email END AS now_email,
            a.action, a.object, a.detail, a.at
       FROM audit_log a LEFT JOIN organizers o ON o.id = a.organizer_id
      WHERE ($1::bigint IS NULL OR a.id < $1) AND ($2::text IS NULL OR a.action = $2 OR a.action LIKE $2 || '.%')
        AND ($4::text IS NULL OR lower(a.actor) = lower($4)
             OR a.organizer_id = (SELECT b.id FROM organizers b WHERE lower(b.email) = lower($4)))
      ORDER BY a.id DESC LIMIT $3`,
    [filter.beforeId ?? null, filter.action ?? null, filter.limit, filter.actor ?? null],
  );
  return rows;
}
