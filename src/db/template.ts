import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Logger } from 'pino';
import { openPglite, type Db } from './index.ts';
import { migrate, migrationFiles, MIGRATIONS_DIR } from './migrate.ts';

// PGlite's initdb is most of a first start (~5 of ~8 s), and its output is the same every time.
// So `npm install` makes one cluster per install (src/prepare-pglite.ts) and a new DATA_DIR
// starts as a copy. Applying the migrations to a new database took another second, so install
// also keeps a copy with them applied: the schema template, named for the migrations it ran (their
// names and contents, hashed). A new DATA_DIR starts from the schema template made by these very
// migrations, or else from initdb's output, and migrations then run on it as on any database: the
// ones a `git pull` brought since install, or all of them. src/db/migrate.ts stays the one
// source of the schema, and a checkout of older code never starts from a newer schema.

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

/** The schema template of `template` for the migrations in `migrations` (see the top of this file). */
export async function schemaTemplateDir(template: string, migrations = MIGRATIONS_DIR): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await migrationFiles(migrations)) hash.update(`${file}\0`).update(await fs.promises.readFile(path.join(migrations, file))).update('\0');
  return `${template}-schema-${hash.digest('hex').slice(0, 16)}`;
}

/**
 * Makes a cluster at `dir` with `make`, unless one is there. It is made in a directory of its own,
 * renamed into place when done: concurrent installs and starts see a whole cluster or none.
 * @returns whether this call made it.
 */
async function makeOnce(dir: string, make: (scratch: string) => Promise<void>): Promise<boolean> {
  if (isCluster(dir)) return false;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  // A name of its own even within one process: two initdbs in one directory would write over each other.
  const scratch = fs.mkdtempSync(`${dir}.tmp-`);
  try {
    await make(scratch);
    fs.renameSync(scratch, dir);
    return true;
  } catch (err) {
    // Renaming onto a non-empty directory fails: another process made it first.
    if (isCluster(dir)) return false;
    throw err;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Makes the template (initdb's output) at `template` unless it is there. @returns whether this call made it. */
export async function prepareTemplate(template: string = templateDir()): Promise<boolean> {
  return makeOnce(template, async (scratch) => {
    const { db } = await openPglite(scratch);
    await db.close();
  });
}

/**
 * Makes the schema template of `template` (which must be there) for this code's migrations, unless
 * it is there, and removes those made for other migrations. @returns whether this call made it.
 */
export async function prepareSchemaTemplate(template: string = templateDir()): Promise<boolean> {
  const schema = await schemaTemplateDir(template);
  const made = await makeOnce(schema, async (scratch) => {
    fs.cpSync(template, scratch, { recursive: true });
    const { db } = await openPglite(scratch);
    try {
      await migrate(db);
    } finally {
      await db.close();
    }
  });
  const stale = `${path.basename(template)}-schema-`;
  for (const name of fs.readdirSync(path.dirname(template))) {
    if (name.startsWith(stale) && !name.includes('.tmp-') && path.join(path.dirname(template), name) !== schema) {
      fs.rmSync(path.join(path.dirname(template), name), { recursive: true, force: true });
    }
  }
  return made;
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

/** Errors of a copy into DATA_DIR that say its disk takes no more, whatever is copied. */
const DISK_FULL: Record<string, string> = {
  ENOSPC: 'no space left on device (ENOSPC)',
  EDQUOT: 'disk quota exceeded (EDQUOT)',
};

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
 * Opens PGlite in `dir`. A new one starts as a copy of the schema template for this code's
 * migrations when there is one, else of `template` when there is one; a template that cannot be
 * copied or opened is reported and the next way is taken: `template`, then initdb.
 */
export async function openPgliteDir(
  dir: string,
  log: Logger,
  template: string = templateDir(),
): Promise<{ db: Db; source: PgliteSource }> {
  if (!isNew(dir)) return { db: await openPgliteSaying(dir, false), source: 'existing' };
  const schema = await schemaTemplateDir(template);
  for (const from of [schema, template].filter(isCluster)) {
    try {
      copyTemplate(from, dir);
      return { db: (await openPglite(dir)).db, source: 'template' };
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      // The copy's side: no other template or initdb fits on that disk either.
      const full = DISK_FULL[(err as NodeJS.ErrnoException).code ?? ''];
      if (full) throw new Error(`DATA_DIR: cannot make the embedded database in ${dir}: ${full}`, { cause: err });
      // One removed while it was copied (an install with other migrations, sharing node_modules,
      // makes its own and removes this one) is no fault: initdb's template is still there.
      if (from !== schema || isCluster(schema)) {
        log.warn({ err, template: from }, 'the PGlite template did not work; making the database another way (delete the template and run `npm install` to make it anew)');
      }
    }
  }
  return { db: await openPgliteSaying(dir, true), source: 'initdb' };
}
