import fs from 'node:fs/promises';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { INT8_OID } from './postgres.ts';

export type Row = Record<string, unknown>;

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

/** What every service function takes first: the pool, or a transaction inside it. */
export interface Queryable {
  query<T = Row>(sql: string, params?: unknown[]): Promise<QueryResult<T>>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /**
   * Runs statements with a generic plan, made once per connection (see plannedOnce); on Postgres,
   * a pool of its own of GENERIC_POOL connections, opened at its first statement.
   */
  readonly generic?: Queryable;
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

export { isDatabaseTooSlow, isDatabaseUnavailable, NETWORK, unavailableCause } from './unavailable.ts';
export { openPostgres, type PostgresOptions } from './postgres.ts';

/** A LIKE pattern matching text that contains `text`, its own `%`, `_` and `\\` taken literally. */
export const containing = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * `$2`, a row's id (bigint), as the second key of a two-key advisory lock, which takes 32 bits:
 * ids pass 2^31 after a third `after-restore` (a billion each). Two ids that fold alike share a
 * lock, which only makes one wait for the other.
 */
export const LOCK_OBJECT = '($2::bigint % 2147483648)::int';

/**
 * The statements a hot path runs with one plan for any parameters: on Postgres, `db.generic`, else
 * `db`. Postgres plans a prepared statement again at every run while a plan made for its values
 * looks cheaper than a generic one, as it always does for arrays of ids (`= ANY($1)`, `unnest`),
 * and for the send worker's claim that planning took as long as running it (0.25 of 0.5 ms; the
 * statement 1.3 → 0.9 ms under load, `npm run bench`). Only for statements whose best plan is the
 * same whatever the values: a lookup by primary key, not a filter on a skewed column or a partial
 * index's predicate.
 */
export const plannedOnce = (db: Queryable): Queryable => (db as Partial<Db>).generic ?? db;

/** Wraps a PGlite instance (embedded Postgres in WASM) in the same interface. */
export function wrapPglite(lite: PGlite): Db {
  const run = async <T>(q: Pick<PGlite, 'query'>, sql: string, params?: unknown[]) => {
    const result = await q.query<T>(sql, params);
    // PGlite counts only written rows in affectedRows; pg's rowCount counts a SELECT's rows too.
    return { rows: result.rows, rowCount: Math.max(result.affectedRows ?? 0, result.rows.length) };
  };
  return {
    kind: 'pglite',
    query: (sql, params) => run(lite, sql, params),
    transaction: (fn) => lite.transaction((tx) => fn({ query: (sql, params) => run(tx, sql, params) })),
    async exec(sql) {
      await lite.exec(sql);
    },
    async close() {
      await lite.close();
    },
  };
}

/** Opens PGlite in `dir`, or in memory when `dir` is undefined. */
export async function openPglite(dir?: string): Promise<{ db: Db; lite: PGlite }> {
  if (dir) await fs.mkdir(path.dirname(dir), { recursive: true });
  // Loaded on demand: a process on Postgres never needs it, and under tsx it costs ~40 MB of RSS.
  const { PGlite: Lite } = await import('@electric-sql/pglite');
  const lite = await Lite.create(dir, { parsers: { [INT8_OID]: Number } });
  return { db: wrapPglite(lite), lite };
}