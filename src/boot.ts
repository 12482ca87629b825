import type { Logger } from 'pino';
import { createLog, throttledErrorLog } from './log.ts';
import type { Config } from './config.ts';
import type { AppContext } from './context.ts';
import { openPostgres, type Db } from './db/index.ts';
import { DatabaseAheadError, migrate } from './db/migrate.ts';
import { settlesWithin } from './deadline.ts';
import { createMailer } from './mail/transport.ts';
import { createQueues } from './queues.ts';
import { claimQueuePrefix } from './queue-prefix.ts';
import { connectRedis } from './redis.ts';
import { checkSecret, loadSecret } from './session-secret.ts';
import { loadViews } from './views.ts';

export { CLAIM_MS, claimQueuePrefix, runningProcesses } from './queue-prefix.ts';
export { checkSecret, knownSecret, loadSecret } from './session-secret.ts';
export { keepSetting } from './settings.ts';

export interface Booted extends AppContext {
  /**
   * Ties the database to this secret, once the process runs (it may have emailed links): a later
   * process with another is refused (checkSecret). @throws ConfigError naming SESSION_SECRET
   */
  keepSecret(): Promise<void>;
  close(): Promise<void>;
}

export interface BootOptions {
  /** Open the embedded database (PGlite) when DATABASE_URL is unset. Only `npm start` and the cli may. */
  allowEmbedded: boolean;
  /** How its Postgres sessions are named (PostgresOptions.applicationName). */
  applicationName?: string;
  log?: Logger;
  /** SMTP pool size. */
  maxConnections?: number;
  /** On Postgres: how long a statement may go unanswered (see PostgresOptions); unset, no limit. */
  statementTimeoutMs?: number;
}

/** How long a stopping process waits for Postgres to close its connections. */
const DATABASE_CLOSE_MS = 5_000;

function refuseEmbedded(): never {
  throw new Error(
    'DATABASE_URL: running web and worker as separate processes needs a Postgres server, because the embedded ' +
      'database belongs to one process. Set DATABASE_URL=postgres://…, or use `npm start` to run both in one process.',
  );
}

/** Opens the database and migrates it. */
export async function openDatabase(
  config: Config,
  allowEmbedded: boolean,
  log: Logger,
  statementTimeoutMs?: number,
  applicationName?: string,
): Promise<{ db: Db; close(): Promise<void> }> {
  if (config.databaseUrl) {
    // Migrated on a connection of its own, without the statement limit: an index built on a
    // large table, or a wait for another process's migration, may rightly take minutes.
    const migrator = openPostgres(config.databaseUrl, { max: 1, applicationName });
    try {
      await migrate(migrator);
    } catch (err) {
      throw new Error(err instanceof DatabaseAheadError ? `DATABASE_URL: ${err.message}` : `DATABASE_URL: cannot open the database: ${(err as Error).message}`);
    } finally {
      await migrator.close().catch(() => undefined);
    }
    const db = openPostgres(config.databaseUrl, {
      statementTimeoutMs,
      applicationName,
      onIdleError: throttledErrorLog(log, 'a pooled Postgres connection was lost while idle (the next statement opens another)', 30_000, 'warn'),
    });
    return {
      db,
      // A server that stopped answering must not keep a stopping process from exiting.
      async close() {
        if (!(await settlesWithin(db.close(), DATABASE_CLOSE_MS))) log.warn(`Postgres did not answer within ${DATABASE_CLOSE_MS / 1000} s of stopping: its connections are left to close with the process`);
      },
    };
  }
  if (!allowEmbedded) refuseEmbedded();
  // Imported here, not at the top: PGlite is only for the embedded default (~40 MB of RSS under tsx).
  const { openEmbedded } = await import('./db/embedded.ts');
  const { runCommand } = await import('./cli/commands.ts');
  const embedded = await openEmbedded(config.dataDir, log, (db, request) => runCommand(db, config, request));
  try {
    await migrate(embedded.db);
  } catch (err) {
    await embedded.close().catch(() => undefined);
    throw err instanceof DatabaseAheadError ? new Error(`DATA_DIR: the embedded database in ${config.dataDir}: ${err.message}`) : err;
  }
  return embedded;
}

/** How long a stopping process waits for the jobs it is still adding. */
const QUEUES_CLOSE_MS = 5_000;

/** Builds everything a process needs, once, from config. */
export async function boot(config: Readonly<Config>, opts: BootOptions): Promise<Booted> {
  const log = opts.log ?? createLog(config.logLevel);
  // First: what stops the start stops it before anything is written or opened (the secret file
  // in DATA_DIR, the database).
  if (!config.databaseUrl && !opts.allowEmbedded) refuseEmbedded();
  const secret = loadSecret(config);
  const database = await openDatabase(config, opts.allowEmbedded, log, opts.statementTimeoutMs, opts.applicationName);
  try {
    // Compared now, kept once the process runs (keepSecret): a first start that failed (no Redis
    // yet, its port taken, no SESSION_SECRET given) must not tie the database to its secret.
    await checkSecret(database.db, secret, { keep: false });
  } catch (err) {
    await database.close();
    throw err;
  }
  let redis;
  let prefixClaim;
  try {
    // Only the all-in-one process may start a Redis of its own, as only it may hold the embedded database.
    redis = await connectRedis(config, { spawn: opts.allowEmbedded, log });
  } catch (err) {
    await database.close();
    throw err;
  }
  try {
    prefixClaim = await claimQueuePrefix(database.db, redis.client, config.queuePrefix, log);
  } catch (err) {
    await redis.close();
    await database.close();
    throw err;
  }
  const queues = createQueues(redis.options, config.queuePrefix);
  // ioredis reconnects by itself; the log says Redis is away, once per kind of error every 30 s.
  const redisTrouble = throttledErrorLog(log, 'Redis is out of reach (reconnecting): jobs wait until it answers, and a web process counts rate limits in memory meanwhile', 30_000, 'warn');
  for (const emitter of [redis.client, queues.redis, queues.send, queues.maintenance, queues.fanout]) emitter.on('error', redisTrouble);
  let mailer;
  try {
    mailer = createMailer(config, { maxConnections: opts.maxConnections });
  } catch (err) {
    // The outbox folder not writable, say: stop what is open already, a spawned redis-server included.
    await queues.close();
    await prefixClaim.release();
    await redis.close();
    await database.close();
    throw err;
  }
  return {
    config,
    db: database.db,
    redis,
    queues,
    mailer,
    views: loadViews(),
    secret,
    log,
    keepSecret: () => checkSecret(database.db, secret),
    async close() {
      // Jobs still being added wait for Redis; while it is away they must not keep the database,
      // embedded PGlite above all, from closing cleanly. The sweeper adds what they did not.
      if (!(await settlesWithin(queues.close(), QUEUES_CLOSE_MS))) log.warn(`Redis did not answer within ${QUEUES_CLOSE_MS / 1000} s of stopping: jobs still being added are left to the sweeper`);
      mailer.close();
      await prefixClaim.release();
      await redis.close();
      await database.close();
    },
  };
}