import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { openPgliteDir, prepareTemplate } from '../../src/db/template.ts';
import { isEmpty, seedDemo } from '../../src/demo.ts';

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
      fs.cpSync(template, broken, { recursive: true });
      fs.writeFileSync(path.join(broken, 'global', 'pg_control'), Buffer.alloc(8192, 7));
      const opened = await openDir('e', broken);
      expect(opened.source).toBe('initdb');
      expect(await migrate(opened.db)).toContain('001_initial.sql');
      expect(warnings.map((w) => JSON.parse(w).msg)).toEqual([expect.stringContaining('the PGlite template did not work')]);
    });
  });
});
