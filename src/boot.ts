import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { ConfigError, makeDataDir, type Config } from './config.ts';
import type { AppContext } from './context.ts';
import { openPostgres, type Db, type Queryable } from './db/index.ts';
import { migrate } from './db/migrate.ts';
import { createMailer } from './mail/transport.ts';
import { createQueues } from './queues.ts';
import { connectRedis } from './redis.ts';
import { deriveToken } from './tokens.ts';
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
  if (config.sessionSecret) return config.sessionSecret;
  const file = path.join(config.dataDir, 'secret');
  const stored = readSecret(file);
  if (stored !== undefined) return stored;
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
  close(): Promise<void>;
}

export interface BootOptions {
  /** Open the embedded database (PGlite) when DATABASE_URL is unset. Only `npm start` and the cli may. */
  allowEmbedded: boolean;
  log?: Logger;
  /** SMTP pool size. */
  maxConnections?: number;
}

/** Opens the database and migrates it. */
export async function openDatabase(config: Config, allowEmbedded: boolean, log: Logger): Promise<{ db: Db; close(): Promise<void> }> {
  if (config.databaseUrl) {
    const db = openPostgres(config.databaseUrl);
    try {
      await migrate(db);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw new Error(`DATABASE_URL: cannot open the database: ${(err as Error).message}`);
    }
    return { db, close: () => db.close() };
  }
  if (!allowEmbedded) {
    throw new Error(
      'DATABASE_URL: running web and worker as separate processes needs a Postgres server, because the embedded ' +
        'database belongs to one process. Set DATABASE_URL=postgres://…, or use `npm start` to run both in one process.',
    );
  }
  // Imported here, not at the top: PGlite is only for the embedded default (~40 MB of RSS under tsx).
  const { openEmbedded } = await import('./db/embedded.ts');
  const { runCommand } = await import('./cli/commands.ts');
  const embedded = await openEmbedded(config.dataDir, log, (db, request) => runCommand(db, config, request));
  await migrate(embedded.db);
  return embedded;
}

/**
 * Refuses a secret other than the one this database was first used with. Every emailed link
 * (confirm, opt-in, unsubscribe) is derived from it: a process with another one, a worker started
 * without SESSION_SECRET and with a DATA_DIR of its own, say, would mail links that never work,
 * and nobody would hear of it. The database keeps a keyed hash of a constant, not the secret.
 * @throws ConfigError naming SESSION_SECRET.
 */
export async function checkSecret(db: Queryable, secret: string): Promise<void> {
  const fingerprint = deriveToken(secret, 'secret-fingerprint', 0);
  const { rows } = await db.query<{ value: string }>(
    `WITH kept AS (
       INSERT INTO settings (name, value) VALUES ('secret_fingerprint', $1) ON CONFLICT (name) DO NOTHING RETURNING value
     )
     SELECT value FROM kept UNION ALL SELECT value FROM settings WHERE name = 'secret_fingerprint'`,
    [fingerprint],
  );
  if (rows[0]!.value !== fingerprint) {
    throw new ConfigError(
      'SESSION_SECRET: this database was first used with another secret, and the links already emailed (confirm, unsubscribe) ' +
        'only work with that one. Give every web and worker process the same SESSION_SECRET (or, on one machine, the same DATA_DIR). ' +
        "To change the secret on purpose, which breaks every link sent so far, delete the row: DELETE FROM settings WHERE name = 'secret_fingerprint'.",
    );
  }
}

/** Builds everything a process needs, once, from config. */
export async function boot(config: Readonly<Config>, opts: BootOptions): Promise<Booted> {
  const log = opts.log ?? pino({ level: config.logLevel });
  // First: a DATA_DIR that cannot hold the secret stops the start before anything is opened.
  const secret = loadSecret(config);
  const database = await openDatabase(config, opts.allowEmbedded, log);
  try {
    await checkSecret(database.db, secret);
  } catch (err) {
    await database.close();
    throw err;
  }
  let redis;
  try {
    // Only the all-in-one process may start a Redis of its own, as only it may hold the embedded database.
    redis = await connectRedis(config, { spawn: opts.allowEmbedded });
  } catch (err) {
    await database.close();
    throw err;
  }
  const queues = createQueues(redis.options, config.queuePrefix);
  let mailer;
  try {
    mailer = createMailer(config, { maxConnections: opts.maxConnections });
  } catch (err) {
    // A bad DKIM key, say: stop what is open already, a spawned redis-server included.
    await queues.close();
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
    async close() {
      await queues.close();
      mailer.close();
      await redis.close();
      await database.close();
    },
  };
}
