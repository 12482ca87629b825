import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Db } from '../../src/db/index.ts';
import { migrate, migrationFiles, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { openPgliteDir, prepareSchemaTemplate, prepareTemplate, schemaTemplateDir } from '../../src/db/template.ts';
import { isEmpty, seedDemo } from '../../src/demo.ts';

/** A copy of the cluster `from` at `to` whose control file is garbage: PGlite cannot open it. */
function brokenCopy(from: string, to: string) {
  fs.cpSync(from, to, { recursive: true });
  fs.writeFileSync(path.join(to, 'global', 'pg_control'), Buffer.alloc(8192, 7));
}

describe('the PGlite template a new DATA_DIR starts from', () => {
  let root: string;
  let template: string;
  let made: boolean[];
  const open: Db[] = [];
  let warnings: string[];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });

  async function openDir(name: string, from = template) {
    const opened = await openPgliteDir(path.join(root, name, 'pglite'), log, from);
    open.push(opened.db);
    return opened;
  }

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-template-'));
    template = path.join(root, 'cache', 'pglite-test');
    // Two installs (or two test runs) making it at the same moment.
    made = await Promise.all([prepareTemplate(template), prepareTemplate(template)]);
  });
  beforeEach(() => {
    warnings = [];
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((db) => db.close()));
  });
  afterAll(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  describe('when two processes make it at once', () => {
    it('one makes it, the other finds it whole, and no scratch copy is left', async () => {
      expect([...made].sort()).toEqual([false, true]);
      expect(fs.readdirSync(path.dirname(template))).toEqual(['pglite-test']);
      expect(await prepareTemplate(template)).toBe(false);
    });
  });

  describe('when it is there', () => {
    it('a new database starts as a copy, is migrated, and keeps what is written in it', async () => {
      const first = await openDir('a');
      expect(first.source).toBe('template');
      expect(await migrate(first.db)).toContain('001_initial.sql');
      await seedDemo(first.db);
      await open.pop()!.close();

      const again = await openDir('a');
      expect(again.source).toBe('existing');
      expect(await migrate(again.db)).toEqual([]);
      expect(await isEmpty(again.db)).toBe(false);
    });

    it('the template stays as initdb made it: the next new database starts empty', async () => {
      const other = await openDir('b');
      expect(other.source).toBe('template');
      expect(await migrate(other.db)).toContain('001_initial.sql');
      expect(await isEmpty(other.db)).toBe(true);
    });

    it('a copy left half done by a crash is thrown away and made again', async () => {
      fs.mkdirSync(path.join(root, 'c', 'pglite.partial'), { recursive: true });
      fs.writeFileSync(path.join(root, 'c', 'pglite.partial', 'PG_VERSION'), 'half');
      const opened = await openDir('c');
      expect(opened.source).toBe('template');
      expect(await migrate(opened.db)).toContain('001_initial.sql');
      expect(fs.existsSync(path.join(root, 'c', 'pglite.partial'))).toBe(false);
    });
  });

  describe('when it is missing or broken', () => {
    it('a missing template means initdb makes the database', async () => {
      const opened = await openDir('d', path.join(root, 'cache', 'pglite-none'));
      expect(opened.source).toBe('initdb');
      expect(await migrate(opened.db)).toContain('001_initial.sql');
      expect(warnings).toEqual([]);
    });

    it('a broken template is reported, and initdb makes the database instead', async () => {
      const broken = path.join(root, 'cache', 'pglite-broken');
      brokenCopy(template, broken);
      const opened = await openDir('e', broken);
      expect(opened.source).toBe('initdb');
      expect(await migrate(opened.db)).toContain('001_initial.sql');
      expect(warnings.map((w) => JSON.parse(w).msg)).toEqual([expect.stringContaining('the PGlite template did not work')]);
    });

    it('a disk that is full stops the start naming DATA_DIR, without blaming the template', async () => {
      const full = vi.spyOn(fs, 'cpSync').mockImplementation(() => {
        throw Object.assign(new Error('ENOSPC: no space left on device, copyfile'), { code: 'ENOSPC' });
      });
      try {
        await expect(openDir('full')).rejects.toThrow(/^DATA_DIR: cannot make the embedded database in .*: no space left on device \(ENOSPC\)$/);
      } finally {
        full.mockRestore();
      }
      expect(warnings).toEqual([]);
      expect(fs.existsSync(path.join(root, 'full', 'pglite'))).toBe(false);
    });
  });

  describe('with the migrations applied (the schema template)', () => {
    let schema: string;
    let stale: string;
    let madeSchema: boolean[];

    beforeAll(async () => {
      schema = await schemaTemplateDir(template);
      // One an earlier checkout's install made, for other migrations.
      stale = `${template}-schema-0123456789abcdef`;
      fs.cpSync(template, stale, { recursive: true });
      madeSchema = await Promise.all([prepareSchemaTemplate(template), prepareSchemaTemplate(template)]);
    });

    it('is made once beside the template, and one for other migrations is removed', async () => {
      expect([...madeSchema].sort()).toEqual([false, true]);
      expect(fs.readdirSync(path.dirname(template)).sort()).toEqual(['pglite-broken', 'pglite-test', path.basename(schema)]);
      expect(await prepareSchemaTemplate(template)).toBe(false);
      expect(fs.existsSync(stale)).toBe(false);
    });

    it('a new database starts from it with every migration done, and empty', async () => {
      const opened = await openDir('f');
      expect(opened.source).toBe('template');
      expect(await migrate(opened.db)).toEqual([]);
      const { rows } = await opened.db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
      expect(rows.map((r) => r.name)).toEqual(await migrationFiles());
      expect(await isEmpty(opened.db)).toBe(true);
    });

    it('is named for the migrations it ran, their names and contents: other migrations look for another', async () => {
      expect(path.basename(schema)).toMatch(/^pglite-test-schema-[0-9a-f]{16}$/);
      expect(await schemaTemplateDir(template)).toBe(schema);
      const dir = path.join(root, 'migrations');
      fs.cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      expect(await schemaTemplateDir(template, dir)).toBe(schema);
      // A pull that adds one, an older checkout without the last, an edit: each another name.
      const names = new Set([schema]);
      fs.writeFileSync(path.join(dir, '999_next.sql'), 'SELECT 1;\n');
      names.add(await schemaTemplateDir(template, dir));
      fs.rmSync(path.join(dir, '999_next.sql'));
      const last = (await migrationFiles(dir)).at(-1)!;
      fs.renameSync(path.join(dir, last), path.join(dir, `${last}.off`));
      names.add(await schemaTemplateDir(template, dir));
      fs.renameSync(path.join(dir, `${last}.off`), path.join(dir, last));
      fs.appendFileSync(path.join(dir, last), '\n');
      names.add(await schemaTemplateDir(template, dir));
      expect(names.size).toBe(4);
    });

    it('a broken one is reported, and the database starts from initdb\'s template and runs every migration', async () => {
      const other = path.join(root, 'cache', 'pglite-fallback');
      fs.cpSync(template, other, { recursive: true });
      brokenCopy(schema, await schemaTemplateDir(other));
      const opened = await openDir('h', other);
      expect(opened.source).toBe('template');
      expect(await migrate(opened.db)).toContain('001_initial.sql');
      expect(warnings.map((w) => JSON.parse(w).msg)).toEqual([expect.stringContaining('the PGlite template did not work')]);
    });

    it('without one for these migrations, a new database starts from initdb\'s template and runs them all', async () => {
      const other = path.join(root, 'cache', 'pglite-other');
      fs.cpSync(template, other, { recursive: true });
      const opened = await openDir('g', other);
      expect(opened.source).toBe('template');
      expect(await migrate(opened.db)).toContain('001_initial.sql');
    });
  });
});
