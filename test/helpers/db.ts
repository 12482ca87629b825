import crypto from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { openPglite, openPostgres, type Db } from '../../src/db/index.ts';
import { migrate } from '../../src/db/migrate.ts';

export type DbKind = 'pglite' | 'postgres';
/** Integration tests run on both: one SQL dialect everywhere. */
export const DB_KINDS: DbKind[] = ['pglite', 'postgres'];

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDb {
  db: Db;
  kind: DbKind;
  /** For a separate process: the same schema on Postgres. Undefined on PGlite. */
  url?: string;
  close(): Promise<void>;
}

/**
 * A migrated database of its own: an in-memory PGlite, or a fresh schema in the test database
 * (dropped on close), so test files run in parallel and twice in a row.
 */
export async function createTestDb(kind: DbKind): Promise<TestDb> {
  if (kind === 'pglite') {
    const { db } = await openPglite();
    await migrate(db);
    return { db, kind, close: () => db.close() };
  }
  const schema = `t_${crypto.randomBytes(6).toString('hex')}`;
  const admin = openPostgres(TEST_DATABASE_URL, { max: 1 });
  await admin.exec(`CREATE SCHEMA ${schema}`);
  const db = openPostgres(TEST_DATABASE_URL, { searchPath: schema, max: 10 });
  await migrate(db);
  const url = `${TEST_DATABASE_URL}${TEST_DATABASE_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    db,
    kind,
    url,
    async close() {
      await db.close();
      await admin.exec(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
    },
  };
}

/**
 * A database of `kind` for the tests of the describe block this is called in: made before them,
 * closed after. The object returned is filled in once it is made.
 */
export function useTestDb(kind: DbKind): TestDb {
  const t = {} as TestDb;
  beforeAll(async () => {
    Object.assign(t, await createTestDb(kind));
  }, 60_000);
  afterAll(async () => t.close?.());
  return t;
}
