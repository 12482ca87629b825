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
  // FICLONE: a copy-on-write clone where the filesystem has them, a plain copy elsewhere.
  fs.cpSync(template, partial, { recursive: true, mode: fs.constants.COPYFILE_FICLONE });
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(partial, dir);
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
  if (!isNew(dir)) return { db: (await openPglite(dir)).db, source: 'existing' };
  if (!isCluster(template)) return { db: (await openPglite(dir)).db, source: 'initdb' };
  try {
    copyTemplate(template, dir);
    return { db: (await openPglite(dir)).db, source: 'template' };
  } catch (err) {
    log.warn({ err, template }, 'the PGlite template did not work; making the database with initdb instead (delete the template and run `npm install` to make it anew)');
    fs.rmSync(dir, { recursive: true, force: true });
    return { db: (await openPglite(dir)).db, source: 'initdb' };
  }
}
