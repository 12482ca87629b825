// The pool on a Postgres server (Db for DATABASE_URL): connections set up alike, statements
// prepared by their text, transactions retried on a plan a migration made stale.
import crypto from 'node:crypto';
import pg from 'pg';
import type { Db, Queryable } from './index.ts';
import { coded, codedFailure, isDatabaseUnavailable } from './unavailable.ts';

// int8 (counts, ids) as numbers: ids stay far below 2^53.
export const INT8_OID = 20;

/** Statements named once and kept prepared per connection; past this many, the rest are not. */
const MAX_PREPARED = 300;

/**
 * Names parameterised statements by their text, so each connection parses and plans one once
 * and then only binds and runs it: the send path runs the same few statements for every message.
 */
function preparedStatements() {
  const names = new Map<string, string>();
  return (text: string, params?: unknown[]): pg.QueryConfig => {
    if (!params?.length) return { text };
    let name = names.get(text);
    if (name === undefined && names.size < MAX_PREPARED) {
      name = `appeal_${crypto.createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      names.set(text, name);
    }
    return { name, text, values: params };
  };
}

/**
 * "cached plan must not change result type": a prepared statement outlived a change to its table.
 * Told by the server function that raises it, since 0A000 alone means any unsupported feature
 * and the message text may be translated.
 */
const isStalePlan = (err: unknown) => {
  const e = err as { code?: string; routine?: string };
  return e.code === '0A000' && e.routine === 'RevalidateCachedQuery';
};

/** How long a new connection may take before the database counts as out of reach. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Past a statement's limit, how long more the server's answer is waited for (see PostgresOptions). */
const SILENT_AFTER_MS = 5_000;

export interface PostgresOptions {
  max?: number;
  /** Pins a schema (tests own one each). */
  searchPath?: string;
  /**
   * How long a statement may run: the server cancels it then (57014, statement_timeout), and one
   * whose server has not answered SILENT_AFTER_MS later fails as the database out of reach. A server
   * that stops answering without closing the connection (a network partition, a frozen VM) would
   * otherwise hold the statement, and a request waiting on it, until TCP gives up many minutes later.
   * Not for migrations, whose index builds may rightly take long: they get a pool of their own.
   */
  statementTimeoutMs?: number;
  /** Hears of a pooled connection lost while idle (the next statement opens another). */
  onIdleError?: (err: Error) => void;
  /** SILENT_AFTER_MS unless given. */
  silentAfterMs?: number;
  connectTimeoutMs?: number;
  /**
   * How the process's sessions show in `pg_stat_activity` ("appeal web", "appeal worker"), so an
   * operator can tell them apart. An `application_name` in DATABASE_URL wins, and so does PGAPPNAME.
   */
  applicationName?: string;
}

/**
 * Connections of a process's pool for statements with generic plans (Db.generic): the send path's
 * claims, one statement at a time. (Its letter read, a join of five tables by key, gained nothing:
 * measured, 0.33 ms a read either way.)
 */
const GENERIC_POOL = 1;

/** A pg pool of `size` connections, each set up before its first statement; `settings` adds to it. */
function connect(url: string, opts: PostgresOptions, size: number, settings = ''): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    // A startup parameter PgBouncer knows (it keeps it per client), unlike the settings below.
    ...(opts.applicationName && !process.env.PGAPPNAME ? { application_name: opts.applicationName } : {}),
    max: size,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    ...(opts.statementTimeoutMs ? { query_timeout: opts.statementTimeoutMs + (opts.silentAfterMs ?? SILENT_AFTER_MS) } : {}),
    // Set on each new connection before its first statement, not sent at its start: PgBouncer
    // refuses a connection whose start names a parameter it does not know. Dates as pg parses them,
    // whatever the server, database or role sets: pg reads only ISO dates (any other comes back
    // null), and the lists' page cursors are timestamps as text. PGlite always uses these.
    onConnect: async (client: pg.ClientBase) => {
      const timeout = opts.statementTimeoutMs ? `; SET statement_timeout = ${Math.round(opts.statementTimeoutMs)}` : '';
      // No JIT: it compiled the console's count of failed emails on every view (0.3 s of a 0.7 s
      // page), and pays off only for long analytic queries, which Appeal does not run.
      await client.query(`SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET jit = off${timeout}${settings && `; ${settings}`}`);
    },
    options: opts.searchPath ? `-c search_path=${opts.searchPath}` : undefined,
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser },
  });
  // An idle client losing its server is reported here; without a listener it would crash the process.
  pool.on('error', opts.onIdleError ?? (() => {}));
  return pool;
}

/** Names statements by their text (preparedStatements). */
type Statements = ReturnType<typeof preparedStatements>;

async function queryOn<T>(on: pg.Pool, statement: Statements, sql: string, params?: unknown[]) {
  const config = statement(sql, params);
  let result;
  try {
    result = await on.query(config);
  } catch (err) {
    // A migration run by a newer process can change what a statement prepared before it
    // returns ("cached plan must not change result type"): run it unprepared once.
    if (!config.name || !isStalePlan(err)) throw coded(err);
    result = await codedFailure(on.query(sql, params as unknown[]));
  }
  return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 };
}

/** Db.transaction on a connection of `pool`, run again on another when its plans were stale (up to `poolSize` times). */
async function inTransaction<T>(pool: pg.Pool, statement: Statements, poolSize: number, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await codedFailure(pool.connect());
    let stale: Error | undefined;
    // A connection lost while checked out is reported on the client too (its statement fails
    // as well): unheard, that event would end the process. Such a client is not pooled again.
    let lost: Error | undefined;
    const onLost = (err: Error) => {
      lost = err;
    };
    client.on('error', onLost);
    try {
      await client.query('BEGIN');
      const tx: Queryable = {
        async query<T>(sql: string, params?: unknown[]) {
          const result = await client.query(statement(sql, params));
          return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 };
        },
      };
      const value = await fn(tx);
      await client.query('COMMIT');
      return value;
    } catch (err) {
      // A connection out of reach has no transaction left to roll back: it is dropped.
      if (isDatabaseUnavailable(coded(err))) lost ??= err as Error;
      else await client.query('ROLLBACK').catch(() => {});
      // A statement prepared before a migration changed its table: this connection's copies
      // are stale, so it is closed rather than pooled, and the transaction runs again on
      // another (each pooled connection may be stale once). Nothing of a failed run committed.
      if (isStalePlan(err)) stale = err as Error;
      if (!stale || attempt > poolSize) throw coded(err);
    } finally {
      client.removeListener('error', onLost);
      client.release(stale ?? lost);
    }
  }
}

/** A pool on a Postgres server. */
export function openPostgres(url: string, opts: PostgresOptions = {}): Db {
  const poolSize = opts.max ?? 10;
  const pool = connect(url, opts, poolSize);
  let genericPool: pg.Pool | undefined;
  let closed = false;
  const statement = preparedStatements();
  return {
    kind: 'postgres',
    query: (sql, params) => queryOn(pool, statement, sql, params),
    generic: {
      // Closed, the main pool answers as any pool used after its end does.
      query: (sql, params) => queryOn(closed ? pool : (genericPool ??= connect(url, opts, GENERIC_POOL, 'SET plan_cache_mode = force_generic_plan')), statement, sql, params),
    },
    transaction: (fn) => inTransaction(pool, statement, poolSize, fn),
    async exec(sql) {
      await codedFailure(pool.query(sql));
    },
    async close() {
      closed = true;
      await Promise.all([pool.end(), genericPool?.end()]);
    },
  };
}
