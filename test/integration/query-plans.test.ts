import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCampaignLetters } from '../../src/deliveries/campaign-letter-queries.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { createLiveCampaign } from '../helpers/fixtures.ts';

interface PlanNode { 'Node Type': string; 'Index Name'?: string; 'Rows Removed by Filter'?: number; Plans?: PlanNode[] }
const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)];

describe('query plans against a table of many rows', () => {
  let pg: TestDb;
  beforeAll(async () => {
    pg = await createTestDb('postgres');
  }, 60_000);
  afterAll(async () => pg?.close());

  // Letters first, then many confirmations after them: a walk back by id passes all of those.
  it("reads a campaign's letters page from the index of letters, not back through every email", async () => {
    const { slug } = await createLiveCampaign(pg.db);
    const { rows: [c] } = await pg.db.query<{ id: number; target: number }>('SELECT c.id, min(t.id) AS target FROM campaigns c JOIN targets t ON t.campaign_id = c.id WHERE c.slug = $1 GROUP BY c.id', [slug]);
    await pg.db.query(`INSERT INTO deliveries (kind, source_id, target_id, recipient, campaign_id, status) SELECT 'letter', i, $2, 'court@example.org', $1, 'sent' FROM generate_series(1, 60) i`, [c!.id, c!.target]);
    await pg.db.query(`INSERT INTO deliveries (kind, source_id, recipient, campaign_id, status) SELECT 'confirm', i, 's' || i || '@supporter.example', $1, 'sent' FROM generate_series(1, 50000) i`, [c!.id]);
    await pg.db.query('ANALYZE deliveries');

    const letters = await listCampaignLetters(pg.db, c!.id, { limit: 51 });
    expect(letters).toHaveLength(51);
    expect(letters.every((l) => l.kind === 'letter')).toBe(true);
    const { rows: [explained] } = await pg.db.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) SELECT d.id FROM deliveries d LEFT JOIN targets t ON t.id = d.target_id
        WHERE d.campaign_id = $1 AND d.kind IN ('letter', 'digest') AND ($2::text IS NULL OR d.status = $2) AND ($3::bigint IS NULL OR d.id < $3)
        ORDER BY d.id DESC LIMIT $4`,
      [c!.id, null, null, 51],
    );
    const scans = nodes(explained!['QUERY PLAN'][0].Plan).filter((n) => n['Node Type'].includes('Scan') && n['Index Name'] !== 'targets_pkey');
    expect(scans.map((n) => n['Index Name'])).toEqual(['deliveries_campaign_letters_idx']);
    expect(scans[0]!['Rows Removed by Filter'] ?? 0).toBe(0);
  });
});
