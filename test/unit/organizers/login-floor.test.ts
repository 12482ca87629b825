import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Queryable } from '../../../src/db/index.ts';
import { createTestDb } from '../../helpers/db.ts';
import { createOrganizer } from '../../helpers/admin-client.ts';

// A password check that answers at once: what is timed here is the floor alone, not scrypt.
vi.mock('../../../src/organizers/passwords.ts', async (original) => ({
  ...(await original<typeof import('../../../src/organizers/passwords.ts')>()),
  verifyPassword: async (password: string) => password === 'the right one',
}));
const { checkLogin, FAILED_LOGIN_MIN_MS } = await import('../../../src/organizers/login.ts');

/**
 * The embedded database with one organizer; `attempts` counts the statements that count a failed
 * attempt, so the organizer's case is known to take its own path.
 */
async function countingDb(): Promise<{ db: Queryable & { attempts: number }; organizer: { id: number; email: string }; close: () => Promise<void> }> {
  const t = await createTestDb('pglite');
  const organizer = await createOrganizer(t.db);
  const db = {
    attempts: 0,
    query: async (sql: string, params?: unknown[]) => {
      if (/RETURNING failed_logins AS attempt/.test(sql)) db.attempts += 1;
      return t.db.query(sql, params);
    },
  } as Queryable & { attempts: number };
  return { db, organizer, close: t.close };
}

const timed = async (run: () => Promise<unknown>) => {
  const began = performance.now();
  const result = await run();
  return { result, ms: performance.now() - began };
};

describe('a failed sign-in', () => {
  let db: Queryable & { attempts: number };
  let organizer: { id: number; email: string };
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, organizer, close } = await countingDb());
  });
  afterAll(async () => {
    await close();
  });

  it('is answered no sooner than the floor, for an unknown address and an organizer\'s alike', async () => {
    const [unknown, wrong] = await Promise.all([
      timed(() => checkLogin(db, 'nobody@appeal.test', 'a guess')),
      timed(() => checkLogin(db, organizer.email, 'a guess')),
    ]);
    expect(unknown.result).toEqual({ kind: 'failed' });
    expect(wrong.result).toEqual({ kind: 'failed' });
    expect(unknown.ms).toBeGreaterThanOrEqual(FAILED_LOGIN_MIN_MS - 5);
    expect(wrong.ms).toBeGreaterThanOrEqual(FAILED_LOGIN_MIN_MS - 5);
    // The organizer's address went its own way (a counted attempt): the two paths were both timed.
    expect(db.attempts).toBe(1);
    expect((await db.query<{ failed_logins: number }>('SELECT failed_logins FROM organizers WHERE id = $1', [organizer.id])).rows).toEqual([{ failed_logins: 1 }]);
  });

  it('does not hold back a sign-in that succeeds', async () => {
    const right = await timed(() => checkLogin(db, organizer.email, 'the right one'));
    expect(right.result).toMatchObject({ kind: 'signed-in' });
    // Well under the floor, with room for a loaded machine.
    expect(right.ms).toBeLessThan(FAILED_LOGIN_MIN_MS - 100);
  });
});
