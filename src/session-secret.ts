// SESSION_SECRET: the one given, or one made and kept in DATA_DIR; and the database's check that
// every process of an installation uses the same one.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, makeDataDir, type Config } from './config.ts';
import type { Queryable } from './db/index.ts';
import { keepSetting } from './settings.ts';
import { secretFingerprint } from './tokens.ts';

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

/**
 * Refuses a secret other than the one this database is tied to (its first, or rotate-secret's). Every emailed link
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
      'SESSION_SECRET: this database is tied to another secret, and the links already emailed (confirm, unsubscribe) ' +
        'only work with that one. Give every web and worker process the same SESSION_SECRET (or, on one machine, the same DATA_DIR). ' +
        'To change the secret on purpose (every link sent so far stops working), stop every process and run `npm run cli -- rotate-secret` with the new SESSION_SECRET.',
    );
  }
}
