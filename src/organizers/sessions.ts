import type { Queryable } from '../db/index.ts';
import { hashToken, randomToken } from '../tokens.ts';
import * as q from './queries.ts';
import type { Organizer } from './service.ts';

/** A session unused this long ends. @defaultValue 8 hours */
export const SESSION_IDLE_SECONDS = 8 * 3600;
/** No session outlives this, however busy. @defaultValue 7 days */
export const SESSION_MAX_SECONDS = 7 * 24 * 3600;

/**
 * Starts a console session. The id is returned once, for the cookie; the table keeps only its
 * sha256. Expired sessions of anyone are cleared on the way, which keeps the table small, and so
 * are the keys of console forms no live session could send again.
 */
export async function createSession(db: Queryable, organizerId: number): Promise<string> {
  const id = randomToken(32);
  await q.deleteExpiredSessions(db);
  await q.deleteOldConsoleRequests(db, SESSION_MAX_SECONDS);
  await q.insertSession(db, hashToken(id), organizerId, SESSION_IDLE_SECONDS);
  return id;
}

/**
 * The organizer of a live session, which now lasts another idle period (unless `activity` is
 * false: a page's background poll is no sign anyone is there); undefined when it ended.
 */
export async function findSession(db: Queryable, sessionId: string, activity = true): Promise<Organizer | undefined> {
  const idHash = hashToken(sessionId);
  const row = activity ? await q.touchSession(db, idHash, SESSION_IDLE_SECONDS, SESSION_MAX_SECONDS) : await q.liveSession(db, idHash);
  if (!row) return undefined;
  const { session_created_at: _created, ...organizer } = row;
  return organizer;
}

export async function endSession(db: Queryable, sessionId: string): Promise<void> {
  await q.deleteSession(db, hashToken(sessionId));
}

