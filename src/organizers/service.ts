import crypto from 'node:crypto';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { Db, Queryable } from '../db/index.ts';
import { settlesWithin } from '../deadline.ts';
import { email } from '../campaigns/types.ts';
import { asciiAddress } from '../mail/address.ts';
import { line } from '../cases/types.ts';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.ts';
import { hashToken, randomToken } from '../tokens.ts';
import { parseInput } from '../validation.ts';
import { hashPassword, passwordWeakness } from './passwords.ts';
import * as q from './queries.ts';

export interface Organizer {
  id: number;
  email: string;
  name: string;
  role: 'admin' | 'organizer';
  password_hash: string;
  /** The password was generated and handed over: the organizer chooses their own first. */
  password_must_change: boolean;
  failed_logins: number;
  locked_until: Date | null;
}

const organizerInput = z.object({
  email,
  // Shown in the console and the audit log: one line, like every name.
  name: line(200).optional().default(''),
  role: z.enum(['admin', 'organizer']).optional().default('organizer'),
  password: z.string().min(10, 'must be at least 10 characters').max(200).optional(),
});

/**
 * Adds an organizer; without a password one is generated and returned, to be shown once.
 * `handedOver`: someone else sees that password (an admin in the console), so the organizer must
 * choose their own at the first sign-in. Whoever runs the cli adds, most often, themselves.
 * `requestKey`: the console form's, so that the same form sent twice is told apart from an email
 * taken by someone else (addOrganizerOnce).
 * @throws ValidationError; ConflictError when the email is taken.
 */
export async function addOrganizer(db: Queryable, input: unknown, opts: { handedOver?: boolean; requestKey?: string } = {}): Promise<{ organizer: Organizer; generatedPassword?: string }> {
  const o = parseInput(organizerInput, input);
  const weak = o.password && (await passwordWeakness(o.password, [o.email, o.name]));
  if (weak) throw new ValidationError({ password: weak });
  const generatedPassword = o.password ? undefined : crypto.randomBytes(12).toString('base64url');
  const { rows } = await db.query<Organizer>(
    `INSERT INTO organizers (email, name, role, password_hash, password_must_change, request_key) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT DO NOTHING RETURNING *`,
    [o.email, o.name, o.role, await hashPassword(o.password ?? generatedPassword!), generatedPassword !== undefined && opts.handedOver === true, opts.requestKey ?? null],
  );
  if (!rows[0]) throw new ConflictError('email_taken', `An organizer with the email ${o.email} exists already.`);
  return { organizer: rows[0], generatedPassword };
}

/**
 * addOrganizer for the console's form (the password goes to the admin who sees it), whose key
 * makes the same form sent twice (a double click, a reload of the answer) add one organizer, and
 * say so, where a second add would answer "exists already" and the password would be lost. The
 * key is bound to the address: one a browser restored with another address is another form.
 * @returns the organizer and its password, or `addedBefore`: the one this form added before.
 * @throws as addOrganizer.
 */
export async function addOrganizerOnce(db: Queryable, input: { email: string; name: string; role: string }, requestKey: string): Promise<{ organizer: Organizer; generatedPassword?: string } | { addedBefore: Organizer }> {
  const key = formKey(requestKey, addressKey(input.email));
  const addedBy = async () => (await db.query<Organizer>('SELECT * FROM organizers WHERE request_key = $1', [key])).rows[0];
  const before = await addedBy();
  if (before) return { addedBefore: before };
  try {
    return await addOrganizer(db, input, { handedOver: true, requestKey: key });
  } catch (err) {
    // Sent twice at the same moment: the other send added it.
    const added = err instanceof ConflictError ? await addedBy() : undefined;
    if (added) return { addedBefore: added };
    throw err;
  }
}

/**
 * Sets a new password for an organizer who lost theirs, ends their sessions and any lockout.
 * Without a password one is generated and returned, to be handed over once. From the command line
 * (no `byAdmin`), whoever runs it holds the database already; from the console, an admin saw the
 * password, so the organizer must choose their own at the next sign-in.
 * @throws ValidationError for a short password; NotFoundError when no organizer has that email.
 */
export async function resetPassword(db: Db, email: string, password?: string, byAdmin?: { id: number; requestKey: string }): Promise<{ organizer: Organizer; generatedPassword?: string; repeated?: true }> {
  const { password: chosen } = parseInput(organizerInput.pick({ password: true }), { password });
  const organizer = await findOrganizerByEmail(db, email);
  if (!organizer) throw new NotFoundError('organizer');
  const weak = chosen && (await passwordWeakness(chosen, [organizer.email, organizer.name]));
  if (weak) throw new ValidationError({ password: weak });
  const generatedPassword = chosen ? undefined : crypto.randomBytes(12).toString('base64url');
  const hash = await hashPassword(chosen ?? generatedPassword!);
  // All or nothing: a new password with the old sessions still signed in would not be a reset.
  const done = await db.transaction(async (tx) => {
    // The console's form sent again (a reload of its answer): the password that answer showed stays.
    if (byAdmin && !(await q.claimConsoleRequest(tx, `password:${organizer.id}:${byAdmin.requestKey}`))) return false;
    await q.setPasswordHash(tx, organizer.id, hash, byAdmin !== undefined && generatedPassword !== undefined);
    await q.deleteSessionsOf(tx, organizer.id, null);
    await q.clearFailedLogins(tx, organizer.id);
    await recordAudit(tx, byAdmin?.id ?? null, 'organizer.password_reset', `organizer:${organizer.id}`, { by: byAdmin === undefined ? 'cli' : 'console' });
    return true;
  });
  return done ? { organizer, generatedPassword } : { organizer, repeated: true };
}

/** The organizer with this id, if there is one. */
export async function getOrganizer(db: Queryable, id: number): Promise<Organizer | undefined> {
  return q.getOrganizer(db, id);
}

export async function findOrganizerByEmail(db: Queryable, address: string) {
  const { rows } = await db.query<Organizer>('SELECT * FROM organizers WHERE lower(email) = lower($1)', [asciiAddress(address)]);
  return rows[0];
}

const OR = new Intl.ListFormat('en', { type: 'disjunction' });

/**
 * Whom an organizer asks for what only an admin does, in words: the admins by name and address,
 * the longest-standing first ("Ann Admin (ann@org.example) or bo@org.example").
 */
export async function adminsToAsk(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ name: string; email: string }>(`SELECT name, email FROM organizers WHERE role = 'admin' ORDER BY id LIMIT 5`);
  return OR.format(rows.map((a) => (a.name ? `${a.name} (${a.email})` : a.email)));
}

export async function countOrganizers(db: Queryable): Promise<number> {
  return (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM organizers')).rows[0]!.n;
}

/** A token's label: one line, as the console lists it. */
const tokenLabel = z.object({ label: line(100) });

/**
 * Creates an API token for an organizer. The token is returned once; only its hash is stored.
 * @throws ValidationError for a label over 100 characters or not one line of text; NotFoundError
 * when no organizer has that email.
 */
export async function createApiToken(db: Queryable, organizerEmail: string, typed = ''): Promise<NewApiToken> {
  return (await insertApiToken(db, organizerEmail, parseInput(tokenLabel, { label: typed }).label))!;
}

/**
 * createApiToken for the console's form, whose key makes the same form sent twice (a double
 * click, a reload of the answer) create one token, not a second that nobody saw.
 * @returns the token; undefined when the form with this key created its token before.
 * @throws as createApiToken.
 */
export async function createApiTokenOnce(db: Queryable, organizerEmail: string, typed: string, made: { by: number; requestKey: string }): Promise<NewApiToken | undefined> {
  // The key with what it asks for: one that comes back with another label or organizer (a
  // browser restoring a page's fields) is another form, and itself sent twice makes one token.
  const label = parseInput(tokenLabel, { label: typed }).label;
  return insertApiToken(db, organizerEmail, label, { by: made.by, requestKey: formKey(made.requestKey, label, addressKey(organizerEmail)) });
}

/** A console form's key bound to what it asks for. */
const formKey = (key: string, ...asked: string[]) => hashToken([key, ...asked].join('\u0000'));

/** An address as organizers' addresses are compared. */
const addressKey = (address: string) => asciiAddress(address).toLowerCase();

/**
 * A token as it is made: shown once; `id` is the number the audit log and the tokens page know it
 * by ("API token #3"), so its creation can be told from another token with the same label.
 */
export interface NewApiToken {
  token: string;
  id: number;
}

/**
 * Inserts a token with a label already checked, made by the console's organizer `made.by` (none:
 * the command line); undefined when `made.requestKey` made one before.
 */
async function insertApiToken(db: Queryable, organizerEmail: string, label: string, made?: { by: number; requestKey: string }): Promise<NewApiToken | undefined> {
  const organizer = await findOrganizerByEmail(db, organizerEmail);
  if (!organizer) throw new NotFoundError('organizer');
  const token = `apl_${randomToken()}`;
  // Made in the console only by an admin, checked with the insert and holding the maker's row
  // (FOR SHARE waits for a change of roles, lockAdmins's): a token made while its maker was being
  // demoted would otherwise outlive the demotion that revokes the others.
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO api_tokens (organizer_id, token_hash, label, request_key, made_by)
     SELECT $1, $2, $3, $4, $5
      WHERE $5::bigint IS NULL OR EXISTS (SELECT 1 FROM organizers WHERE id = $5 AND role = 'admin' FOR SHARE)
     ON CONFLICT (request_key) DO NOTHING RETURNING id`,
    [organizer.id, hashToken(token), label, made?.requestKey ?? null, made?.by ?? null],
  );
  if (!rows[0] && made && (await q.getOrganizer(db, made.by))?.role !== 'admin') throw new ForbiddenError('You are no longer an admin.');
  return rows[0] && { token, id: Number(rows[0].id) };
}

/** The organizer a bearer token belongs to, or undefined for an unknown or revoked token. */
export async function authenticateApiToken(db: Queryable, token: string): Promise<{ organizer: Organizer; token: ApiTokenUsed } | undefined> {
  const { rows } = await db.query<Organizer & { token_id: number; token_label: string }>(
    `UPDATE api_tokens t SET last_used_at = now()
       FROM organizers o
      WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND o.id = t.organizer_id
      RETURNING o.*, t.id AS token_id, t.label AS token_label`,
    [hashToken(token)],
  );
  if (!rows[0]) return undefined;
  const { token_id: id, token_label: label, ...organizer } = rows[0];
  return { organizer, token: { id, label } };
}

/** The API token a request came with: audit entries of what it did name it, apart from its organizer's own. */
export interface ApiTokenUsed {
  id: number;
  label: string;
}

export async function recordAudit(db: Queryable, organizerId: number | null, action: string, object: string, detail?: object) {
  // The actor's address is kept on the entry: it outlives the organizer's removal. One removed
  // while their request ran is recorded without them, not refused after the act was done.
  await db.query('INSERT INTO audit_log (organizer_id, actor, action, object, detail) SELECT o.id, o.email, $2, $3, $4 FROM (SELECT $1::bigint AS id) a LEFT JOIN organizers o ON o.id = a.id', [
    organizerId,
    action,
    object,
    detail ? JSON.stringify(detail) : null,
  ]);
}

/** How long the answer to an action done waits for its audit entry. */
const AUDIT_WAIT_MS = 5_000;

/**
 * Records an action that has committed already. Its entry failing must not answer the request as
 * failed: the action stands, and a client told to try again would do it twice (a case update
 * mailed twice to every subscriber, a campaign "taken" by its own creation). Nor may it keep the
 * answer past a proxy's patience. So the entry is written once, waited for AUDIT_WAIT_MS; one that
 * failed is logged as lost, by its action alone (objects and details may name people), and one not
 * answered by then is logged as such and may still land. Not tried again: an entry whose answer was
 * lost may have been written.
 */
export async function recordAuditOf(
  ctx: { db: Queryable; log: Pick<Logger, 'error'> },
  organizerId: number | null,
  action: string,
  object: string,
  detail?: object,
): Promise<void> {
  const written = recordAudit(ctx.db, organizerId, action, object, detail).then(
    () => undefined,
    (err: unknown) => ctx.log.error({ err, action }, 'audit entry not written for an action done'),
  );
  if (!(await settlesWithin(written, AUDIT_WAIT_MS))) ctx.log.error({ action }, `audit entry not answered within ${AUDIT_WAIT_MS / 1000} s for an action done`);
}

export { updateOrganizer } from './profile.ts';
export { checkLogin, changePassword, deviceTag, isTrustedDevice, LOGIN_MAX_FAILURES, LOCKOUT_SECONDS, type LoginResult } from './login.ts';
export { createSession, findSession, endSession, SESSION_IDLE_SECONDS, SESSION_MAX_SECONDS } from './sessions.ts';
export type { ApiTokenListing, AuditEntry, OrganizerListing } from './queries.ts';

export const listOrganizers = q.listOrganizers;
export const listApiTokens = q.listApiTokens;

/**
 * Audit log entries newest first, `limit` at a time; `action` matches it or its children
 * (`campaign` → `campaign.launch`); `actor`, the address of the organizer who acted (also one
 * removed since), in any case.
 */
export async function listAudit(db: Queryable, filter: { beforeId?: number; action?: string; actor?: string; limit?: number } = {}) {
  return q.listAudit(db, { ...filter, limit: Math.min(filter.limit ?? 100, 500) });
}

/**
 * Revokes an API token; revoking it again is a no-op. @returns whether it was live.
 * @throws NotFoundError for a token that never existed (or went with its organizer).
 */
export async function revokeApiToken(db: Queryable, actorId: number, tokenId: number): Promise<boolean> {
  const revoked = await q.revokeApiToken(db, tokenId);
  if (revoked) await recordAudit(db, actorId, 'token.revoke', `token:${tokenId}`, { label: revoked.label });
  else if ((await db.query('SELECT 1 FROM api_tokens WHERE id = $1', [tokenId])).rowCount === 0) throw new NotFoundError('token');
  return !!revoked;
}

/** Ends a lockout early (an admin vouching for the organizer). @throws NotFoundError */
export async function unlockOrganizer(db: Queryable, actorId: number, organizerId: number): Promise<void> {
  if (!(await q.getOrganizer(db, organizerId))) throw new NotFoundError('organizer');
  await q.clearFailedLogins(db, organizerId);
  await recordAudit(db, actorId, 'organizer.unlock', `organizer:${organizerId}`);
}

/**
 * Makes an organizer an admin or takes it back. The last admin stays an admin, so someone can
 * always manage organizers from the console. One who stops being an admin loses the tokens they
 * made to act as other organizers (see revokeTokensMadeForOthers).
 * @returns the ids of the tokens revoked so.
 * @throws NotFoundError; ConflictError for the last admin.
 */
export async function setOrganizerRole(db: Db, actorId: number, organizerId: number, role: 'admin' | 'organizer'): Promise<number[]> {
  return db.transaction(async (tx) => {
    const admins = await actingAdmins(tx, actorId);
    const organizer = await q.getOrganizer(tx, organizerId);
    if (!organizer) throw new NotFoundError('organizer');
    if (organizer.role === role) return [];
    if (role === 'organizer' && admins.length <= 1) throw new ConflictError('last_admin', 'The last admin cannot stop being an admin.');
    await q.setRole(tx, organizerId, role);
    const revoked = role === 'organizer' ? await q.revokeTokensMadeForOthers(tx, organizerId) : [];
    await recordAudit(tx, actorId, 'organizer.role', `organizer:${organizerId}`, { role, ...(revoked.length ? { tokensRevoked: revoked } : {}) });
    return revoked;
  });
}

/**
 * The admins, locked (lockAdmins) before what a change of roles counts is read: two admins taking
 * each other's rights at once left none. The actor must still be one of them.
 * @throws ForbiddenError when the actor is no longer an admin (taken back or removed meanwhile).
 */
async function actingAdmins(tx: Queryable, actorId: number): Promise<number[]> {
  const admins = await q.lockAdmins(tx);
  if (!admins.includes(actorId)) throw new ForbiddenError('You are no longer an admin.');
  return admins;
}

/**
 * Removes an organizer with their sessions and API tokens, and the tokens they made to act as
 * other organizers (see revokeTokensMadeForOthers); the audit log keeps their actions.
 * @returns the ids of the tokens made for others that were revoked.
 * @throws NotFoundError; ConflictError for oneself or the last admin.
 */
export async function removeOrganizer(db: Db, actorId: number, organizerId: number): Promise<number[]> {
  if (actorId === organizerId) throw new ConflictError('self', 'You cannot remove yourself.');
  return db.transaction(async (tx) => {
    const admins = await actingAdmins(tx, actorId);
    const organizer = await q.getOrganizer(tx, organizerId);
    if (!organizer) throw new NotFoundError('organizer');
    if (organizer.role === 'admin' && admins.length <= 1) throw new ConflictError('last_admin', 'The last admin cannot be removed.');
    const revoked = await q.revokeTokensMadeForOthers(tx, organizerId);
    // Deleted with them (ON DELETE CASCADE): the log, which has each one's creation, has its end too.
    const deleted = await q.liveTokensOf(tx, organizerId);
    await q.deleteOrganizer(tx, organizerId);
    // The log's entries of theirs lose their author (ON DELETE SET NULL): this one keeps who it was.
    await recordAudit(tx, actorId, 'organizer.remove', `organizer:${organizerId}`, {
      email: organizer.email,
      role: organizer.role,
      ...(revoked.length ? { tokensRevoked: revoked } : {}),
      ...(deleted.length ? { tokensDeleted: deleted } : {}),
    });
    return revoked;
  });
}
