import fs from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from '../paths.ts';
import type { Db } from './index.ts';

export const MIGRATIONS_DIR = path.join(ROOT, 'src', 'db', 'migrations');
// Any fixed number: it only has to be the same in every process that migrates.
const MIGRATION_LOCK = 7_417_001;

/** The migrations' file names, in the order they apply. */
export async function migrationFiles(dir = MIGRATIONS_DIR): Promise<string[]> {
  return (await fs.readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
}

/** The database records migrations this code does not have: a newer Appeal ran on it. */
export class DatabaseAheadError extends Error {
  override name = 'DatabaseAheadError';
}

/**
 * Applies every migration in `src/db/migrations` not yet recorded, in name order,
 * each in its own transaction. Concurrent callers serialise on an advisory lock.
 * @returns the names applied now.
 * @throws DatabaseAheadError when the database records a migration this code does not have: an
 * older Appeal started on a database a newer one migrated (a rollback) would ignore what the newer
 * one keeps there (a case unpublished, a target retired) and undo it on the public pages.
 */
export async function migrate(db: Db): Promise<string[]> {
  const files = await migrationFiles();
  return db.transaction(async (tx) => {
    // Lock before anything else: two processes starting on an empty database would otherwise
    // race on CREATE TABLE IF NOT EXISTS, which is not safe against concurrent creators.
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query('CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const done = new Set((await tx.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name));
    const unknown = [...done].filter((name) => !files.includes(name)).sort();
    if (unknown.length > 0) {
      throw new DatabaseAheadError(
        `this database was migrated by a newer version of Appeal (it has ${unknown.join(', ')}, which this version does not know). ` +
          'Run that version, or restore the backup taken before upgrading: an older version would undo what the newer one keeps.',
      );
    }
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file)) continue;
      const sql = await fs.readFile(path.join(MIGRATIONS_DIR, file), 'utf8');
      // Migrations are statements separated by semicolons at line ends; a function's body is written on one line.
      for (const statement of sql.split(/;\s*$/m).map((s) => s.trim()).filter(Boolean)) {
        await tx.query(statement);
      }
      await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
      applied.push(file);
    }
    return applied;
  });
}
