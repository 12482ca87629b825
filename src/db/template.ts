import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Logger } from 'pino';
import { openPglite, type Db } from './index.ts';

// PGlite's initdb is most of a first start (~5 of ~8 s), and its output is the same every time.
// So `npm install` makes one cluster per install (src/prepare-pglite.ts) and a new DATA_DIR
// starts as a copy. The template is initdb's output only: migrations run on the copy as on any
// database, so src/db/migrate.ts stays the one source of the schema.

/** How a database directory came to be: found, copied from the template, or made by initdb. */
export type PgliteSource = 'existing' | 'template' | 'initdb';

/**
 * Where the template lives: in the node_modules that holds PGlite, named for PGlite's version,
 * so an upgrade (a new initdb, maybe a new on-disk format) never reuses an old one.
 */
export function templateDir(): string {
  // …/node_modules/@electric-sql/pglite/dist/index.cjs; its package.json is not exported, so read it by path.
  const pkgDir = path.resolve(createRequire(import.meta.url).resolve('@electric-sql/pglite'), '..', '..');
  const { version } = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  return path.join(pkgDir, '..', '..', '.cache', 'appeal', `pglite-${version}`);
}

function isCluster(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'PG_VERSION'));
}

/**
 * Makes the template at `template` unless it is there. initdb writes to a directory of its own,
 * renamed into place when done: concurrent installs and starts see a whole template or none.
 * @returns whether this call made it.
 */
export async function prepareTemplate(template: string = templateDir()): Promise<boolean> {
  if (isCluster(template)) return false;
  fs.mkdirSync(path.dirname(template), { recursive: true });
  // A name of its own even within one process: two initdbs in one directory would write over each other.
  const scratch = fs.mkdtempSync(`${template}.tmp-`);
  try {
    const { db } = await openPglite(scratch);
    await db.close();
    fs.renameSync(scratch, template);
    return true;
  } catch (err) {
    // Renaming onto a non-empty directory fails: another process made the template first.
    if (isCluster(template)) return false;
    throw err;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function isNew(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

/** Copies the template to `dir` through a scratch directory, so a crash mid-copy leaves no half database. */
function copyTemplate(template: string, dir: string): void {
  const partial = `${dir}.partial`;
  fs.rmSync(partial, { recursive: true, force: true });
  try {
    // FICLONE: a copy-on-write clone where the filesystem has them, a plain copy elsewhere.
    fs.cpSync(template, partial, { recursive: true, mode: fs.constants.COPYFILE_FICLONE });
  } catch (err) {
    // A disk that filled up mid-copy gets its space back.
    fs.rmSync(partial, { recursive: true, force: true });
    throw err;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(partial, dir);
}

/** What PGlite's file system errors (Emscripten's, with an errno and no message) stand for. */
const WASM_ERRNO: Record<number, string> = {
  2: 'permission denied (EACCES)',
  44: 'no such file or directory (ENOENT)',
  51: 'no space left on device (ENOSPC)',
  63: 'operation not permitted (EPERM)',
  69: 'read-only file system (EROFS)',
};

/**
 * Opens PGlite in `dir`, saying what went wrong in words when it fails: an error from PGlite's
 * file system carries only a number, and the start would end with "undefined". A new database that
 * could not be made is removed, so the next start makes it anew instead of opening half of one.
 */
async function openPgliteSaying(dir: string, fresh: boolean) {
  try {
    return (await openPglite(dir)).db;
  } catch (err) {
    const e = err as { message?: string; errno?: number };
    if (fresh) fs.rmSync(dir, { recursive: true, force: true });
    if (e.message) throw err;
    throw new Error(`DATA_DIR: cannot open the embedded database in ${dir}: ${WASM_ERRNO[e.errno ?? -1] ?? `error ${e.errno ?? String(err)}`}`, { cause: err });
  }
}

/**
 * Opens PGlite in `dir`. A new one starts as a copy of `template` when there is one; a template
 * that cannot be copied or opened is reported and initdb makes the database instead.
 */
export async function openPgliteDir(
  dir: string,
  log: Logger,
  template: string = templateDir(),
): Promise<{ db: Db; source: PgliteSource }> {
  if (!isNew(dir)) return { db: await openPgliteSaying(dir, false), source: 'existing' };
  if (!isCluster(template)) return { db: await openPgliteSaying(dir, true), source: 'initdb' };
  try {
    copyTemplate(template, dir);
    return { db: (await openPglite(dir)).db, source: 'template' };
  } catch (err) {
    log.warn({ err, template }, 'the PGlite template did not work; making the database with initdb instead (delete the template and run `npm install` to make it anew)');
    fs.rmSync(dir, { recursive: true, force: true });
    return { db: await openPgliteSaying(dir, true), source: 'initdb' };
  }
}
