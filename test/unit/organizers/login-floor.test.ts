import { describe, expect, it, vi } from 'vitest';
import type { Queryable } from '../../../src/db/index.ts';

// A password check that answers at once: what is timed here is the floor alone, not scrypt.
vi.mock('../../../src/organizers/passwords.ts', async (original) => ({
  ...(await original<typeof import('../../../src/organizers/passwords.ts')>()),
  verifyPassword: async (password: string) => password === 'the right one',
}));
const { checkLogin, FAILED_LOGIN_MIN_MS } = await import('../../../src/organizers/login.ts');

/**
 * A database that knows one organizer and answers every write at once; `attempts` counts the
 * failed attempts it was told to count, so the organizer's case is known to take its own path.
 */
function fakeDb(known: string): Queryable & { attempts: number } {
  const organizer = { id: 7, email: known, name: 'Org', password_hash: 'x', role: 'organizer' };
  const db = {
    attempts: 0,
    query: async (sql: string, params?: unknown[]) => {
      const counted = /RETURNING failed_logins AS attempt/.test(sql);
      if (counted) db.attempts += 1;
      const rows = /FROM organizers WHERE lower\(email\)/.test(sql) ? (params?.[0] === known ? [organizer] : []) : counted ? [{ attempt: 1 }] : [];
      return { rows, rowCount: rows.length } as never;
    },
  };
  return db;
}

const timed = async (run: () => Promise<unknown>) => {
  const began = performance.now();
  const result = await run();
  return { result, ms: performance.now() - began };
};

describe('a failed sign-in', () => {
  const db = fakeDb('org@appeal.test');

  it('is answered no sooner than the floor, for an unknown address and an organizer\'s alike', async () => {
    const [unknown, wrong] = await Promise.all([
      timed(() => checkLogin(db, 'nobody@appeal.test', 'a guess')),
      timed(() => checkLogin(db, 'org@appeal.test', 'a guess')),
    ]);
    expect(unknown.result).toEqual({ kind: 'failed' });
    expect(wrong.result).toEqual({ kind: 'failed' });
    expect(unknown.ms).toBeGreaterThanOrEqual(FAILED_LOGIN_MIN_MS - 5);
    expect(wrong.ms).toBeGreaterThanOrEqual(FAILED_LOGIN_MIN_MS - 5);
    // The organizer's address went its own way (a counted attempt): the two paths were both timed.
    expect(db.attempts).toBe(1);
  });

  it('does not hold back a sign-in that succeeds', async () => {
    const right = await timed(() => checkLogin(db, 'org@appeal.test', 'the right one'));
    expect(right.result).toMatchObject({ kind: 'signed-in' });
    // Well under the floor, with room for a loaded machine.
    expect(right.ms).toBeLessThan(FAILED_LOGIN_MIN_MS - 100);
  });
});
