import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createLog, throttledErrorLog } from './log.ts';
import { ConfigError, makeDataDir, type Config } from './config.ts';
import type { AppContext } from './context.ts';
import { openPostgres, type Db, type Queryable } from './db/index.ts';
import { DatabaseAheadError, migrate } from './db/migrate.ts';
import { settlesWithin } from './deadline.ts';
import { createMailer } from './mail/transport.ts';
import { createQueues } from './queues.ts';
import { connectRedis } from './redis.ts';
import { secretFingerprint } from './tokens.ts';
import { loadViews } from './views.ts';

/** Shorter than this, a stored secret was cut short or tampered with: never sign with it. */
const MIN_STORED_SECRET = 32;

/**
 * SESSION_SECRET, or one generated on first start and kept (0600) in DATA_DIR. The file appears
 * whole or not at all (written aside, then linked into place), so a process starting beside
 * another never reads it half-written.
 * @throws ConfigError naming DATA_DIR when the file cannot be read, or holds no usable secret.
 */
export function loadSecret(config: Pick<Config, 'sessionSecret' | 'dataDir'>): string {
  const known = knownSecret(config);
  if (known !== undefined) return known;
  const file = path.join(config.dataDir, 'secret');
  makeDataDir(config.dataDir);
  const aside = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  fs.writeFileSync(aside, crypto.randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(aside, file);
  } catch (err) {
    // Another process put its secret in place first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(aside, { force: true });
  }
  return readSecret(file)!;
}

/**
 * SESSION_SECRET, or the one kept in DATA_DIR; undefined when neither is there yet (nothing was
 * ever signed or keyed with one). @throws ConfigError as loadSecret.
 */
export function knownSecret(config: Pick<Config, 'sessionSecret' | 'dataDir'>): string | undefined {
  return config.sessionSecret || readSecret(path.join(config.dataDir, 'secret'));
}

function readSecret(file: string): string | undefined {
  let secret: string;
  try {
    secret = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new ConfigError(`DATA_DIR: cannot read ${file} (${code ?? String(err)}); or set SESSION_SECRET`);
  }
  if (secret.length < MIN_STORED_SECRET) {
    throw new ConfigError(`DATA_DIR: ${file} holds no usable secret (${secret.length} characters); delete it to make a new one (emailed links made with the old one stop working), or set SESSION_SECRET`);
  }
  return secret;
}

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
): Promise<{ db: Db; close(): Promise<void> }> {
  if (config.databaseUrl) {
    // Migrated on a connection of its own, without the statement limit: an index built on a
    // large table, or a wait for another process's migration, may rightly take minutes.
    const migrator = openPostgres(config.databaseUrl, { max: 1 });
    try {
      await migrate(migrator);
    } catch (err) {
      throw new Error(err instanceof DatabaseAheadError ? `DATABASE_URL: ${err.message}` : `DATABASE_URL: cannot open the database: ${(err as Error).message}`);
    } finally {
      await migrator.close().catch(() => undefined);
    }
    const db = openPostgres(config.databaseUrl, {
      statementTimeoutMs,
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

/**
 * Refuses a secret other than the one this database was first used with. Every emailed link
 * (confirm, opt-in, unsubscribe) is derived from it: a process with another one, a worker started
 * without SESSION_SECRET and with a DATA_DIR of its own, say, would mail links that never work,
 * and nobody would hear of it. The database keeps a keyed hash of a constant, not the secret;
 * with `keep: false` one is only compared, not stored when there is none yet.
 * @throws ConfigError naming SESSION_SECRET.
 */
export async function checkSecret(db: Queryable, secret: string, opts: { keep: boolean } = { keep: true }): Promise<void> {
  const fingerprint = secretFingerprint(secret);
  const stored = opts.keep
    ? await keepSetting(db, 'secret_fingerprint', fingerprint)
    : (await db.query<{ value: string }>(`SELECT value FROM settings WHERE name = 'secret_fingerprint'`)).rows[0]?.value;
  if (stored !== undefined && stored !== fingerprint) {
    throw new ConfigError(
      'SESSION_SECRET: this database was first used with another secret, and the links already emailed (confirm, unsubscribe) ' +
        'only work with that one. Give every web and worker process the same SESSION_SECRET (or, on one machine, the same DATA_DIR). ' +
        'To change the secret on purpose (every link sent so far stops working), stop every process and run `npm run cli -- rotate-secret` with the new SESSION_SECRET.',
    );
  }
}

/**
 * A setting of the installation: the one stored, or `value` when none was (it is stored then).
 * Two processes starting at once both try: the second's insert waits for the first's and finds
 * the conflict, but its statement's snapshot was taken before the first committed, so it sees no
 * row at all. Asked again, it does.
 */
export async function keepSetting(db: Queryable, name: string, value: string): Promise<string> {
  for (;;) {
    const { rows } = await db.query<{ value: string }>(
      `WITH kept AS (
         INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value
       )
       SELECT value FROM kept UNION ALL SELECT value FROM settings WHERE name = $1`,
      [name, value],
    );
    if (rows[0]) return rows[0].value;
  }
}

/** How long a claim on QUEUE_PREFIX lasts unrenewed: a crashed installation's claim lapses. */
export const CLAIM_MS = 90_000;
const RELEASE_WAIT_MS = 1_000;
/** How long a stopping process waits for the jobs it is still adding. */
const QUEUES_CLOSE_MS = 5_000;
/**
 * Takes or renews the claim (KEYS[1]) for installation ARGV[1], and notes process ARGV[2] among
 * its holders (KEYS[2], each with when its note lapses), for ARGV[3] ms.
 * @returns the other installation's id when it holds the claim, else nothing.
 */
const CLAIM = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return false`;
/** Drops process ARGV[2]'s note, and the claim with it when no other live process holds it. */
const RELEASE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) == 0 and redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * The processes of installation `id` (the database's) that renewed their note (claimQueuePrefix)
 * and have not lapsed, under whatever QUEUE_PREFIX they run on this Redis: each prefix's claim
 * names its installation. One that crashed is counted until its note lapses (CLAIM_MS).
 */
export async function runningProcesses(client: Redis, id: string): Promise<{ running: number; prefixes: string[] }> {
  const [seconds, micros] = (await client.time()) as [number | string, number | string];
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  let running = 0;
  const prefixes: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', '*:installation', 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if ((await client.get(key)) !== id) continue;
      const n = await client.zcount(`${key}:processes`, `(${now}`, '+inf');
      if (n > 0) {
        running += n;
        prefixes.push(key.slice(0, -':installation'.length));
      }
    }
  } while (cursor !== '0');
  return { running, prefixes };
}

/**
 * One installation (one database) per QUEUE_PREFIX on a Redis: two would take each other's jobs
 * (a job's id is its delivery's id) and skip them, finding no such delivery in their own database,
 * so every email would wait for a sweeper. Each web and worker process holds the claim
 * `<prefix>:installation`, the database's installation id, and renews it; a process of another
 * installation refuses to start while it is held, and the claim lasts until the last process that
 * holds it stops (or 90 s after it crashed). Redis restarted empty: the next renewal claims it again.
 * @returns what releases the claim when the process stops.
 * @throws ConfigError naming QUEUE_PREFIX.
 */
export async function claimQueuePrefix(db: Queryable, client: Redis, prefix: string, log: Pick<Logger, 'error'>): Promise<{ release(): Promise<void> }> {
  const id = await keepSetting(db, 'installation', crypto.randomUUID());
  const key = `${prefix}:installation`;
  // Every process of the installation notes itself beside the claim, so that one stopping (or
  // failing to start) leaves the claim to the others instead of releasing it under them.
  const holders = `${key}:processes`;
  const self = crypto.randomUUID();
  /** @returns the id of another installation holding the claim, or undefined when it is ours. */
  const claim = async (): Promise<string | undefined> =>
    ((await client.eval(CLAIM, 2, key, holders, id, self, String(CLAIM_MS))) as string | null) ?? undefined;
  if (await claim()) {
    throw new ConfigError(
      `QUEUE_PREFIX: "${prefix}" is in use on this Redis by another Appeal installation (another database); the two would take ` +
        `each other's jobs. Give each installation its own QUEUE_PREFIX. If this installation's database was replaced, the old ` +
        `claim lapses ${CLAIM_MS / 1000} s after the last process that used it stopped.`,
    );
  }
  const renew = setInterval(() => {
    claim().then(
      (other) => other && log.error({ prefix }, 'another Appeal installation took this QUEUE_PREFIX while this one runs: give each its own'),
      () => undefined,
    );
  }, CLAIM_MS / 3);
  renew.unref();
  return {
    async release() {
      clearInterval(renew);
      // Not while Redis is away: the client would hold the command, and the process its stop, until
      // it came back. The claim then lapses on its own.
      if (client.status !== 'ready') return;
      await Promise.race([client.eval(RELEASE, 2, key, holders, id, self).catch(() => undefined), sleep(RELEASE_WAIT_MS, undefined, { ref: false })]);
    },
  };
}

/** Builds everything a process needs, once, from config. */
export async function boot(config: Readonly<Config>, opts: BootOptions): Promise<Booted> {
  const log = opts.log ?? createLog(config.logLevel);
  // First: what stops the start stops it before anything is written or opened (the secret file
  // in DATA_DIR, the database).
  if (!config.databaseUrl && !opts.allowEmbedded) refuseEmbedded();
  const secret = loadSecret(config);
  const database = await openDatabase(config, opts.allowEmbedded, log, opts.statementTimeoutMs);
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
