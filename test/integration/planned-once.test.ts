import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plannedOnce } from '../../src/db/index.ts';
import { recordSentAndClaim } from '../../src/deliveries/queries.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

describe('statements planned once per connection (plannedOnce)', () => {
  let pg: TestDb;
  let lite: TestDb;
  beforeAll(async () => {
    [pg, lite] = await Promise.all([createTestDb('postgres'), createTestDb('pglite')]);
  }, 60_000);
  afterAll(async () => Promise.all([pg?.close(), lite?.close()]));

  // Postgres planned the send worker's claim again at every run, which took as long as running it.
  it('runs the claim with a generic plan on Postgres, made once, and on a pool of its own', async () => {
    const mode = async (db: Parameters<typeof plannedOnce>[0]) => (await db.query<{ mode: string }>(`SELECT current_setting('plan_cache_mode') AS mode`)).rows[0]!.mode;
    expect(await mode(plannedOnce(pg.db))).toBe('force_generic_plan');
    expect(await mode(pg.db)).toBe('auto');
    const { rows } = await pg.db.query<{ id: number }>(
      `INSERT INTO deliveries (kind, source_id, recipient) SELECT 'confirm', i, 'p' || i || '@appeal.test' FROM generate_series(1, 12) i RETURNING id`,
    );
    for (let i = 0; i < 12; i += 2) await recordSentAndClaim(plannedOnce(pg.db), [], rows.slice(i, i + 2).map((r) => r.id), 150);
    const plans = await plannedOnce(pg.db).query<{ generic_plans: number; custom_plans: number }>(
      `SELECT generic_plans::int, custom_plans::int FROM pg_prepared_statements WHERE statement LIKE '%SET status = ''sending''%'`,
    );
    expect(plans.rows).toEqual([{ generic_plans: 6, custom_plans: 0 }]);
    expect((await pg.db.query(`SELECT 1 FROM deliveries WHERE status = 'sending'`)).rowCount).toBe(12);
  });

  it('is the database itself on the embedded PGlite, one session', () => {
    expect(plannedOnce(lite.db)).toBe(lite.db);
  });
});
