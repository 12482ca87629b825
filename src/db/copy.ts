import type { Db, Queryable } from './index.ts';
import { migrate } from './migrate.ts';

/** Rows read and written per statement. */
const PAGE_ROWS = 1_000;

/** The database to copy into already holds rows: copying would mix two installations. */
export class NotEmptyError extends Error {
  override name = 'NotEmptyError';
}

/** Rows copied, per table, in the order they were copied. */
export type CopyCounts = { table: string; rows: number }[];

/**
 * Copies every row of one Appeal database into another that holds none yet, keeping every id
 * (emailed links and queued jobs name rows by id) and every sequence where it was, in one
 * transaction on the target: a copy that fails leaves it empty. Both are migrated first, so they
 * have the same tables. Tables go parents first, as their foreign keys require; each is read in
 * pages in physical order (`ctid`), which needs no key of its own, and rows travel as JSON, which
 * Postgres turns back into the table's own types (`json_populate_recordset`).
 * For moving the embedded database (PGlite) to PostgreSQL, with every process stopped.
 * @throws NotEmptyError when a table of the target has rows.
 */
export async function copyDatabase(from: Db, to: Db): Promise<CopyCounts> {
  await migrate(from);
  const ours = await listTables(from);
  // Before Appeal's tables are made in it: a DATABASE_URL naming another application's database
  // (or `postgres`) would otherwise get them mixed in with its own.
  // One that Appeal never migrated is another application's even where a table's name is one of
  // ours (`organizers`, `sessions`): its migrations would fail on it with Postgres's own words.
  const migrated = await hasMigrationsRecord(to);
  const others = (await listTables(to)).filter((table) => !migrated || !ours.includes(table));
  if (others.length) {
    throw new NotEmptyError(`the database to copy into holds tables that are not Appeal's (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', …' : ''}): copy into a new, empty database`);
  }
  await migrate(to);
  const tables = inDependencyOrder(ours, await listForeignKeys(from));
  return to.transaction(async (tx) => {
    for (const table of tables) {
      const { rows } = await tx.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${ident(table)}) AS any`);
      if (rows[0]!.any) throw new NotEmptyError(`the database to copy into is not empty (table ${table} has rows): copy into a new, empty database`);
    }
    const counts: CopyCounts = [];
    for (const table of tables) counts.push({ table, rows: await copyTable(from, tx, table) });
    await copySequences(from, tx);
    return counts;
  });
}

/** SQL: a name quoted as an identifier. */
const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** The tables of the current schema but the migrations' own record, which `migrate` wrote on both sides. */
async function listTables(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname <> 'schema_migrations'
      ORDER BY c.relname`,
  );
  return rows.map((r) => r.name);
}

async function hasMigrationsRecord(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ any: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND relname = 'schema_migrations') AS any`,
  );
  return rows[0]!.any;
}

async function listForeignKeys(db: Queryable): Promise<{ table: string; references: string }[]> {
  const { rows } = await db.query<{ table: string; references: string }>(
    `SELECT c.relname AS table, r.relname AS references
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
      WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace AND k.conrelid <> k.confrelid`,
  );
  return rows;
}

/**
 * Tables ordered so that each comes after those it references (Kahn's algorithm, by name among
 * equals so the order is the same on every run).
 * @throws Error on a cycle of foreign keys, which no order can satisfy.
 */
export function inDependencyOrder(tables: readonly string[], keys: readonly { table: string; references: string }[]): string[] {
  const waitingFor = new Map(tables.map((t) => [t, new Set(keys.filter((k) => k.table === t && tables.includes(k.references)).map((k) => k.references))]));
  const order: string[] = [];
  while (waitingFor.size > 0) {
    const ready = [...waitingFor].filter(([, parents]) => parents.size === 0).map(([t]) => t).sort();
    if (ready.length === 0) throw new Error(`foreign keys form a cycle among ${[...waitingFor.keys()].join(', ')}`);
    for (const t of ready) {
      order.push(t);
      waitingFor.delete(t);
      for (const parents of waitingFor.values()) parents.delete(t);
    }
  }
  return order;
}

/** @returns how many rows were copied. */
async function copyTable(from: Queryable, to: Queryable, table: string): Promise<number> {
  // Columns a value may be given for: not generated ones, which Postgres computes again.
  const { rows: columns } = await from.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
    [ident(table)],
  );
  const list = columns.map((c) => ident(c.name)).join(', ');
  let copied = 0;
  for (let after = '(0,0)'; ; ) {
    const { rows } = await from.query<{ at: string; row: string }>(
      `SELECT ctid::text AS at, to_json(t)::text AS row FROM ${ident(table)} t WHERE ctid > $1::tid ORDER BY ctid LIMIT ${PAGE_ROWS}`,
      [after],
    );
    if (rows.length === 0) return copied;
    after = rows[rows.length - 1]!.at;
    // Ids as they were: an identity column takes the copied value, not its next own.
    await to.query(
      `INSERT INTO ${ident(table)} (${list}) OVERRIDING SYSTEM VALUE
       SELECT ${list} FROM json_populate_recordset(NULL::${ident(table)}, $1::json)`,
      [`[${rows.map((r) => r.row).join(',')}]`],
    );
    copied += rows.length;
  }
}

/** Each sequence where it was, so the next id is the one the source would have given. */
async function copySequences(from: Queryable, to: Queryable): Promise<void> {
  const { rows } = await from.query<{ name: string; last_value: string | null }>(
    `SELECT sequencename AS name, last_value::text FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL`,
  );
  for (const s of rows) await to.query('SELECT setval($1::regclass, $2::bigint, true)', [ident(s.name), s.last_value]);
}
