import { z } from 'zod';
import type { Queryable } from '../db/index.ts';
import { ValidationError } from '../errors.ts';
import { DUMMY_HASH, hashPassword, verifyPassword } from './passwords.ts';
import * as q from './queries.ts';
import { findOrganizerByEmail, recordAudit, type Organizer } from './service.ts';

/** Failed sign-ins in a row that lock an account. @defaultValue 5 */
export const LOGIN_MAX_FAILURES = 5;
/**
 * How long a lockout lasts. It always ends, and failures during it do not extend it, so an
 * attacker who knows an organizer's address can slow them down but never lock them out for good.
 * @defaultValue 15 minutes
 */
export const LOCKOUT_SECONDS = 15 * 60;

export type LoginResult = { kind: 'signed-in'; organizer: Organizer } | { kind: 'failed' };

/**
 * Checks an email and password. Every failure looks the same to the caller and costs the same
 * scrypt work: an unknown email and a locked account are checked against a dummy hash, so
 * neither the answer nor its timing tells whether an address belongs to an organizer.
 */
export async function checkLogin(db: Queryable, email: string, password: string): Promise<LoginResult> {
  const organizer = email.trim() ? await findOrganizerByEmail(db, email.trim()) : undefined;
  const locked = !!organizer?.locked_until && organizer.locked_until.getTime() > Date.now();
  const matches = await verifyPassword(password, organizer && !locked ? organizer.password_hash : DUMMY_HASH);
  if (!organizer) return { kind: 'failed' };
  if (locked) {
    await recordAudit(db, organizer.id, 'login.refused', `organizer:${organizer.id}`, { reason: 'locked' });
    return { kind: 'failed' };
  }
  if (!matches) {
    const nowLocked = await q.recordFailedLogin(db, organizer.id, LOGIN_MAX_FAILURES, LOCKOUT_SECONDS);
    await recordAudit(db, organizer.id, nowLocked ? 'login.locked' : 'login.failed', `organizer:${organizer.id}`);
    return { kind: 'failed' };
  }
  await q.clearFailedLogins(db, organizer.id);
  await recordAudit(db, organizer.id, 'login', `organizer:${organizer.id}`);
  return { kind: 'signed-in', organizer };
}

const newPassword = z.string().min(10, 'must be at least 10 characters').max(200, 'must be at most 200 characters');

/**
 * Changes an organizer's own password after checking the current one.
 * @throws ValidationError naming `current_password`, `new_password` or `confirm_password`.
 */
export async function changePassword(
  db: Queryable,
  organizer: Organizer,
  input: { current: string; next: string; confirm: string },
): Promise<void> {
  const fields: Record<string, string> = {};
  const parsed = newPassword.safeParse(input.next);
  if (!parsed.success) fields.new_password = parsed.error.issues[0]!.message;
  else if (input.next === input.current) fields.new_password = 'must differ from the current password';
  if (input.next !== input.confirm) fields.confirm_password = 'does not match the new password';
  const stored = (await q.getOrganizer(db, organizer.id))?.password_hash ?? DUMMY_HASH;
  if (!(await verifyPassword(input.current, stored))) fields.current_password = 'is not your current password';
  if (Object.keys(fields).length) throw new ValidationError(fields);
  await q.setPasswordHash(db, organizer.id, await hashPassword(input.next));
  await recordAudit(db, organizer.id, 'organizer.password', `organizer:${organizer.id}`);
}
