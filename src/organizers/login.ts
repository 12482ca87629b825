import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Db, Queryable } from '../db/index.ts';
import { ValidationError } from '../errors.ts';
import { DUMMY_HASH, hashPassword, passwordWeakness, verifyPassword } from './passwords.ts';
import * as q from './queries.ts';
import { findOrganizerByEmail, recordAudit, type Organizer } from './service.ts';

/** Failed sign-ins within {@link LOGIN_WINDOW_SECONDS} that lock an account. @defaultValue 5 */
export const LOGIN_MAX_FAILURES = 5;
/** Failures older than this no longer count towards a lockout. @defaultValue 1 hour */
export const LOGIN_WINDOW_SECONDS = 60 * 60;
/**
 * How long a lockout lasts. It always ends, and failures during it do not extend it. It holds
 * only for browsers the organizer has not signed in from before: on a trusted device (see
 * `trustedDeviceOf`) sign-in goes on, so someone who keeps guessing at a known address slows
 * strangers down but never locks the organizer out.
 * @defaultValue 15 minutes
 */
export const LOCKOUT_SECONDS = 15 * 60;

/**
 * What a trusted-device cookie carries besides the organizer's id: a keyed hash of their password
 * hash, so the cookies earned with an old password are worth nothing once it changes.
 */
export function deviceTag(secret: string, organizer: Pick<Organizer, 'password_hash'>): string {
  return crypto.createHmac('sha256', secret).update(`device:${organizer.password_hash}`).digest('base64url').slice(0, 22);
}

/** Whether a device cookie was earned by this organizer with their current password. */
export function isTrustedDevice(secret: string, organizer: Pick<Organizer, 'id' | 'password_hash'>, device: { organizerId: number; tag: string }): boolean {
  const expected = Buffer.from(deviceTag(secret, organizer));
  const given = Buffer.from(device.tag);
  return device.organizerId === organizer.id && given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

export type LoginResult = { kind: 'signed-in'; organizer: Organizer } | { kind: 'failed' };

export interface LoginOptions {
  /**
   * The organizer whose trusted-device cookie the browser showed. When it is the organizer of
   * `email`, the account's lockout does not apply (the device has its own limit in the web layer).
   */
  trustedDeviceOf?: number;
}

/**
 * The least time a failed sign-in takes to be answered. An organizer's address costs a write or two
 * more than an unknown one (the attempt counted, the audit entry): a few milliseconds that a few
 * hundred guesses measure. Every failure waits until this much has passed since it began; the scrypt
 * check and those writes take less on a server not overloaded (0.2–0.25 s on a busy 2-core machine).
 * A server so loaded that they take longer answers when they are done, and the floor hides nothing.
 */
export const FAILED_LOGIN_MIN_MS = 500;

/**
 * Checks an email and password. Every failure looks the same to the caller and costs the same
 * scrypt work: an unknown email and a locked account are checked against a dummy hash, and every
 * failure is answered no sooner than FAILED_LOGIN_MIN_MS after it began, so neither the answer nor
 * its timing tells whether an address belongs to an organizer.
 * An attempt is counted before the password is checked, so a burst of parallel guesses gets no
 * more checks than the same guesses one by one.
 */
export async function checkLogin(db: Queryable, email: string, password: string, options: LoginOptions = {}): Promise<LoginResult> {
  const began = performance.now();
  const result = await check(db, email, password, options);
  if (result.kind === 'failed') await sleep(Math.max(0, began + FAILED_LOGIN_MIN_MS - performance.now()));
  return result;
}

async function check(db: Queryable, email: string, password: string, options: LoginOptions): Promise<LoginResult> {
  const organizer = email.trim() ? await findOrganizerByEmail(db, email.trim()) : undefined;
  const trusted = organizer !== undefined && organizer.id === options.trustedDeviceOf;
  const attempt = organizer && !trusted ? await q.reserveLoginAttempt(db, organizer.id, LOGIN_WINDOW_SECONDS) : 0;
  const allowed = attempt !== undefined && attempt <= LOGIN_MAX_FAILURES;
  const matches = await verifyPassword(password, organizer && allowed ? organizer.password_hash : DUMMY_HASH);
  if (!organizer) return { kind: 'failed' };
  const object = `organizer:${organizer.id}`;
  if (!allowed) {
    await recordAudit(db, organizer.id, 'login.refused', object, { reason: 'locked' });
    return { kind: 'failed' };
  }
  if (!matches) {
    const nowLocked = !trusted && attempt >= LOGIN_MAX_FAILURES && (await q.lockAfterFailures(db, organizer.id, LOGIN_MAX_FAILURES, LOCKOUT_SECONDS));
    await recordAudit(db, organizer.id, nowLocked ? 'login.locked' : 'login.failed', object, trusted ? { device: 'trusted' } : undefined);
    return { kind: 'failed' };
  }
  // From a trusted device the strangers' count stays: their lockout goes on protecting the account.
  if (!trusted) await q.clearFailedLogins(db, organizer.id);
  await recordAudit(db, organizer.id, 'login', object, trusted ? { device: 'trusted' } : undefined);
  return { kind: 'signed-in', organizer };
}

const newPassword = z.string().min(10, 'must be at least 10 characters').max(200, 'must be at most 200 characters');

/**
 * Changes an organizer's own password after checking the current one, and ends every session of
 * theirs with it, all or nothing: a stolen session must not outlive the password it was stolen
 * with. The caller starts a new session for the browser that made the change.
 * @returns the organizer with the new password's hash (what a device cookie's tag is made from).
 * @throws ValidationError naming `current_password`, `new_password` or `confirm_password`.
 */
export async function changePassword(
  db: Db,
  organizer: Organizer,
  input: { current: string; next: string; confirm: string },
): Promise<Pick<Organizer, 'id' | 'password_hash'>> {
  const fields: Record<string, string> = {};
  const parsed = newPassword.safeParse(input.next);
  if (!parsed.success) fields.new_password = parsed.error.issues[0]!.message;
  else if (input.next === input.current) fields.new_password = 'must differ from the current password';
  else {
    const weak = await passwordWeakness(input.next, [organizer.email, organizer.name]);
    if (weak) fields.new_password = weak;
  }
  if (input.next !== input.confirm) fields.confirm_password = 'does not match the new password';
  const stored = (await q.getOrganizer(db, organizer.id))?.password_hash ?? DUMMY_HASH;
  if (!(await verifyPassword(input.current, stored))) fields.current_password = 'is not your current password';
  if (Object.keys(fields).length) throw new ValidationError(fields);
  const hash = await hashPassword(input.next);
  await db.transaction(async (tx) => {
    await q.setPasswordHash(tx, organizer.id, hash, false);
    await q.deleteSessionsOf(tx, organizer.id, null);
    await recordAudit(tx, organizer.id, 'organizer.password', `organizer:${organizer.id}`);
  });
  return { id: organizer.id, password_hash: hash };
}
