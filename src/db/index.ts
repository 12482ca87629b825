import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';

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

// Errors that say the database could not be reached, is restarting, or will not take this
// process's work for now, not that a statement is wrong: the network's (NETWORK), and the SQLSTATEs
// of AWAY, each with what an operator reads of it (unavailableCause).

/** Socket errors of a server out of reach, for now: Postgres's here, Redis's too (workerErrorLog). */
export const NETWORK: ReadonlySet<unknown> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** The cause of a connection exception, and of an error with no SQLSTATE (a socket's). */
const UNREACHABLE = 'the database server could not be reached';

/** SQLSTATEs, whole or by the class they start, that say the database is away, and why in words. */
const AWAY: readonly (readonly [code: string, cause: string])[] = [
  ['53300', 'too many connections: raise max_connections or lower the processes\' pools'],
  ['53100', 'the database server\'s disk is full'],
  // A standby, or a primary demoted by a failover.
  ['25006', 'the database takes no writes (a standby, or a primary a failover demoted)'],
  ['3D000', 'no such database'],
  // 57P01–57P05: a server shutting down, starting, dropping its sessions or its database.
  ['57P0', 'the database server is shutting down, restarting or dropped the session'],
  // Class 28: a login refused (a password being rotated).
  ['28', 'the database refused the login'],
  // Class 08: connection exceptions (and a connection lost mid-statement: LOST_CONNECTION).
  ['08', UNREACHABLE],
];
const awayCause = (code: string) => AWAY.find(([start]) => code.startsWith(start))?.[1];

/**
 * A database not taking connections (`ALLOW_CONNECTIONS false`): SQLSTATE 55000, which a statement
 * gets too for its own mistakes (currval before nextval). The refused connection is FATAL, from the
 * server's CheckMyDatabase; the severity is in the server's language, the routine's name is not.
 */
const notTakingConnections = (e: { code?: unknown; severity?: unknown; routine?: unknown }) =>
  e.code === '55000' && (e.severity === 'FATAL' || e.routine === 'CheckMyDatabase');

/** What an operator reads of an error isDatabaseUnavailable or isDatabaseTooSlow counts: its cause, in words. */
export function unavailableCause(err: unknown): string {
  const code = String((err as { code?: unknown } | undefined)?.code ?? '');
  if (code === '55000') return 'the database takes no connections';
  if (code === '57014') return 'a statement took longer than this process allows (statement_timeout): the database is slow or busy';
  return awayCause(code) ?? UNREACHABLE;
}

/**
 * Whether `err` says the database is out of reach for now (NETWORK, AWAY, a database not taking
 * connections): worth trying again in a moment. A sent mark lost to any of these would
 * send its message twice, so they are retried through an outage. By code only, as the SMTP
 * failures are classified (STYLE.md).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = (err ?? {}) as { code?: unknown };
  return typeof e.code === 'string' && (NETWORK.has(e.code) || awayCause(e.code) !== undefined || notTakingConnections(e));
}

/**
 * Whether `err` is a statement cancelled by the statement limit (57014, statement_timeout): a
 * database this slow is as good as away for whoever waits.
 */
export function isDatabaseTooSlow(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '57014';
}

/**
 * What pg says, with no code, of a connection lost mid-statement (a server killed, a failover, a
 * network drop), never made within its time, or silent past the statement timeout: such errors are given SQLSTATE 08006
 * (connection_failure) here, so that isDatabaseUnavailable tells them by code as it tells the rest.
 */
const LOST_CONNECTION = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'Client has encountered a connection error and is not queryable',
  'timeout exceeded when trying to connect',
  'Query read timeout',
]);

function coded(err: unknown): unknown {
  if (err instanceof Error && (err as { code?: unknown }).code === undefined && LOST_CONNECTION.has(err.message)) {
    Object.assign(err, { code: '08006' });
  }
  return err;
}

/** `work`, its failure coded. */
const codedFailure = <T>(work: Promise<T>): Promise<T> => work.catch((err: unknown) => Promise.reject(coded(err)));

// int8 (counts, ids) as numbers: ids stay far below 2^53.
const INT8_OID = 20;

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

/** A LIKE pattern matching text that contains `text`, its own `%`, `_` and `\\` taken literally. */
export const containing = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * `$2`, a row's id (bigint), as the second key of a two-key advisory lock, which takes 32 bits:
 * ids pass 2^31 after a third `after-restore` (a billion each). Two ids that fold alike share a
 * lock, which only makes one wait for the other.
 */
export const LOCK_OBJECT = '($2::bigint % 2147483648)::int';

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
}

/**
 * Connections of a process's pool for statements with generic plans (Db.generic): the send path's
 * claims, one statement at a time. (Its letter read, a join of five tables by key, gained nothing:
 * measured, 0.33 ms a read either way.)
 */
const GENERIC_POOL = 1;

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

/** A pg pool of `size` connections, each set up before its first statement; `settings` adds to it. */
function connect(url: string, opts: PostgresOptions, size: number, settings = ''): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
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

/** A pool on a Postgres server. */
export function openPostgres(url: string, opts: PostgresOptions = {}): Db {
  const poolSize = opts.max ?? 10;
  const pool = connect(url, opts, poolSize);
  let genericPool: pg.Pool | undefined;
  let closed = false;
  const statement = preparedStatements();
  const queryOn = async <T>(on: pg.Pool, sql: string, params?: unknown[]) => {
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
  };
  return {
    kind: 'postgres',
    query: (sql, params) => queryOn(pool, sql, params),
    generic: {
      // Closed, the main pool answers as any pool used after its end does.
      query: (sql, params) => queryOn(closed ? pool : (genericPool ??= connect(url, opts, GENERIC_POOL, 'SET plan_cache_mode = force_generic_plan')), sql, params),
    },
    async transaction(fn) {
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
    },
    async exec(sql) {
      await codedFailure(pool.query(sql));
    },
    async close() {
      closed = true;
      await Promise.all([pool.end(), genericPool?.end()]);
    },
  };
}

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
