import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.ts';

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
