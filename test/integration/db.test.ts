import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, DB_KINDS, TEST_DATABASE_URL, useTestDb, type TestDb } from '../helpers/db.ts';
import { migrate } from '../../src/db/migrate.ts';
import { isDatabaseUnavailable, openPostgres, type Db } from '../../src/db/index.ts';
import { keepSetting } from '../../src/boot.ts';

describe('statements on Postgres', () => {
  let t: TestDb;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    await t.db.exec('CREATE TABLE notes (id int PRIMARY KEY, body text)');
    await t.db.query('INSERT INTO notes VALUES ($1, $2)', [1, 'first']);
  });
  afterAll(async () => {
    await t?.close();
  });

  // pg_stat_activity is where an operator looks first: web, worker and cli tell apart there.
  it('names its sessions as asked, unless DATABASE_URL names them', async () => {
    const named = openPostgres(TEST_DATABASE_URL, { max: 1, applicationName: 'appeal worker' });
    const url = new URL(TEST_DATABASE_URL);
    url.searchParams.set('application_name', 'ops-chosen');
    const chosen = openPostgres(url.toString(), { max: 1, applicationName: 'appeal worker' });
    try {
      const name = async (db: Db) => (await db.query<{ n: string }>(`SELECT application_name AS n FROM pg_stat_activity WHERE pid = pg_backend_pid()`)).rows[0]!.n;
      expect(await name(named)).toBe('appeal worker');
      expect(await name(chosen)).toBe('ops-chosen');
    } finally {
      await Promise.all([named.close(), chosen.close()]);
    }
  });

  it('keeps working when a migration changes a table a prepared statement returns', async () => {
    const read = () => t.db.query<Record<string, unknown>>('SELECT * FROM notes WHERE id = $1', [1]);
    // Run on every pooled connection, so each has it prepared.
    await Promise.all(Array.from({ length: 20 }, read));
    await t.db.exec('ALTER TABLE notes ADD COLUMN tag text');
    const results = await Promise.all(Array.from({ length: 20 }, read));
    for (const r of results) expect(r.rows).toEqual([{ id: 1, body: 'first', tag: null }]);
  });

  it('runs the same statement with other values, and statements without values', async () => {
    await t.db.query('INSERT INTO notes (id, body) VALUES ($1, $2)', [2, 'second']);
    const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notes');
    expect(rows).toEqual([{ n: 2 }]);
  });
});

describe('transactions on Postgres', () => {
  let t: TestDb;

  beforeAll(async () => {
    t = await createTestDb('postgres');
    await t.db.exec('CREATE TABLE marks (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)');
    await t.db.query('INSERT INTO marks (id) VALUES ($1)', [1]);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('keep working when a migration changes a table their prepared statements return', async () => {
    const bump = () => t.db.transaction(async (tx) => (await tx.query<Record<string, unknown>>('UPDATE marks SET n = n + 1 WHERE id = $1 RETURNING *', [1])).rows[0]);
    // Every pooled connection prepares the statement.
    await Promise.all(Array.from({ length: 20 }, bump));
    await t.db.exec('ALTER TABLE marks ADD COLUMN note text');
    const after = await Promise.all(Array.from({ length: 20 }, bump));
    for (const row of after) expect(row).toMatchObject({ id: 1, note: null });
    const { rows } = await t.db.query<{ n: number }>('SELECT n FROM marks WHERE id = $1', [1]);
    expect(rows[0]!.n).toBe(40);
  });
});

describe('a Postgres database that writes dates in another style', () => {
  const name = `appeal_datestyle_${process.pid}_${Date.now()}`;
  let admin: Db;
  let db: Db | undefined;

  beforeAll(async () => {
    admin = openPostgres(TEST_DATABASE_URL, { max: 1 });
    await admin.query(`CREATE DATABASE ${name}`);
    // As a server's, a database's or a role's own setting may say.
    await admin.query(`ALTER DATABASE ${name} SET DateStyle = 'SQL, DMY'`);
    await admin.query(`ALTER DATABASE ${name} SET IntervalStyle = 'sql_standard'`);
  });
  afterAll(async () => {
    await db?.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.close();
  });

  it('still gives dates (pg reads ISO only: any other came back null), and text as ISO', async () => {
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${name}`;
    for (const opts of [{ max: 1 }, { max: 1, statementTimeoutMs: 5_000 }]) {
      db = openPostgres(url.toString(), opts);
      const { rows: [row] } = await db.query<{ at: Date; text: string; gap: string }>(
        `SELECT timestamptz '2026-03-31 10:20:30.123456+00' AS at, (timestamptz '2026-03-31 10:20:30.123456+00')::text AS text, (interval '1 day 2 hours')::text AS gap`,
      );
      expect(row!.at).toEqual(new Date('2026-03-31T10:20:30.123Z'));
      expect(row!.text).toMatch(/^2026-03-31 \d\d:20:30\.123456[+-]\d\d/);
      expect(row!.gap).toBe('1 day 02:00:00');
      await db.close();
      db = undefined;
    }
  });
});

describe('settings kept by processes starting at once', () => {
  const t = useTestDb('postgres');

  it('gives the second the value the first stored, when the second asks while the first has not committed', async () => {
    // The second's insert waits on the first's uncommitted row; then its snapshot predates the row.
    let second: Promise<string> | undefined;
    await t.db.transaction(async (tx) => {
      expect(await keepSetting(tx, 'installation', 'first')).toBe('first');
      second = keepSetting(t.db, 'installation', 'second');
      // Until the first commits, the second is held on the row: it has not answered.
      const held = await Promise.race([second.then(() => 'answered'), new Promise((r) => setTimeout(() => r('held'), 300))]);
      expect(held).toBe('held');
    });
    expect(await second).toBe('first');
    expect(await keepSetting(t.db, 'installation', 'third')).toBe('first');
  });
});

describe('a connection to Postgres lost mid-statement', () => {
  // A TCP relay to the test server whose connections can be cut without a word from Postgres, as
  // a failover or a network drop does (a server's own shutdown says 57P01 first).
  // Silent, it keeps every connection open and passes nothing on: a network partition, a frozen VM.
  const sockets = new Set<net.Socket>();
  let silent = false;
  let relay: net.Server;
  let db: Db;
  let via: string;

  beforeAll(async () => {
    const target = new URL(TEST_DATABASE_URL);
    relay = net.createServer((client) => {
      const server = net.connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, server]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
      }
      client.on('data', (chunk) => silent || server.write(chunk));
      server.on('data', (chunk) => silent || client.write(chunk));
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const url = new URL(TEST_DATABASE_URL);
    url.hostname = '127.0.0.1';
    url.port = String((relay.address() as net.AddressInfo).port);
    via = url.toString();
    db = openPostgres(via, { max: 2 });
  });
  afterAll(async () => {
    await db?.close().catch(() => {});
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => relay?.close(resolve));
  });

  it('is told apart as the database out of reach, in a statement and in a transaction', async () => {
    const cut = () => setTimeout(() => { for (const s of sockets) s.destroy(); }, 300);
    cut();
    const inStatement = await db.query('SELECT pg_sleep(5)').then(() => undefined, (err: unknown) => err);
    expect((inStatement as Error).message).toBe('Connection terminated unexpectedly');
    expect(isDatabaseUnavailable(inStatement)).toBe(true);

    cut();
    const inTransaction = await db.transaction((tx) => tx.query('SELECT pg_sleep(5)')).then(() => undefined, (err: unknown) => err);
    expect(isDatabaseUnavailable(inTransaction)).toBe(true);
    // Another statement runs on a new connection.
    expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('fails a statement, a transaction and a new connection within their time when the server goes silent', async () => {
    const timed = openPostgres(via, { max: 2, statementTimeoutMs: 300, silentAfterMs: 200, connectTimeoutMs: 500 });
    try {
      expect((await timed.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      // A slow statement on a server that answers is cancelled by the server, not left running.
      const slow = await timed.query('SELECT pg_sleep(3)').then(() => undefined, (err: unknown) => err);
      expect((slow as { code?: string }).code).toBe('57014');
      silent = true;
      const started = Date.now();
      const inStatement = await timed.query('SELECT 1').then(() => undefined, (err: unknown) => err);
      expect(isDatabaseUnavailable(inStatement)).toBe(true);
      const inTransaction = await timed.transaction((tx) => tx.query('SELECT 1')).then(() => undefined, (err: unknown) => err);
      expect(isDatabaseUnavailable(inTransaction)).toBe(true);
      // Its connections gone with their statements, a new one is refused in its time too.
      const connecting = await timed.query('SELECT 1').then(() => undefined, (err: unknown) => err);
      expect(isDatabaseUnavailable(connecting)).toBe(true);
      expect(Date.now() - started).toBeLessThan(5_000);
      silent = false;
      for (const s of sockets) s.destroy();
      expect((await timed.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      silent = false;
      await timed.close().catch(() => {});
    }
  });
});

describe.each(DB_KINDS)('a database a newer Appeal migrated (%s)', (kind) => {
  const t = useTestDb(kind);

  it('is refused, naming the migrations this version does not know, and left as it is', async () => {
    await t.db.query('INSERT INTO schema_migrations (name) VALUES ($1)', ['999_from_a_newer_release.sql']);
    await expect(migrate(t.db)).rejects.toThrow(/^this database was migrated by a newer version of Appeal \(it has 999_from_a_newer_release\.sql, which this version does not know\)\. Run that version, or restore the backup/);
    expect((await t.db.query('SELECT 1 FROM schema_migrations WHERE name = $1', ['999_from_a_newer_release.sql'])).rowCount).toBe(1);
    await t.db.query('DELETE FROM schema_migrations WHERE name = $1', ['999_from_a_newer_release.sql']);
    expect(await migrate(t.db)).toEqual([]);
  });
});
