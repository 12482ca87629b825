import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DB_KINDS, useTestDb } from '../helpers/db.ts';
import { createLiveCampaign } from '../helpers/fixtures.ts';
import { ROOT } from '../helpers/spawn.ts';

const migration = (name: string) => fs.readFileSync(path.join(ROOT, 'src', 'db', 'migrations', name), 'utf8');

describe.each(DB_KINDS)('migrations that rewrite rows, on %s', (kind) => {
  const t = useTestDb(kind);

  // Signatures stored before text was kept composed: a search typed the usual way finds them after it.
  it('040 composes the signatures stored with their accents apart, and writes no other', async () => {
    const { slug } = await createLiveCampaign(t.db);
    const { rows: [c] } = await t.db.query<{ id: number }>('SELECT id FROM campaigns WHERE slug = $1', [slug]);
    const apart = 'А\u0438\u0306гу\u0308ль';
    await t.db.query(
      `INSERT INTO signatures (campaign_id, full_name, email, city, country, personal_note) VALUES ($1, $2, 'apart@supporter.example', $3, '', $4), ($1, 'Ann', 'ann@supporter.example', 'Oslo', 'Norway', '')`,
      [c!.id, apart, 'Алма\u0308ты', 'Ко\u0308мек'],
    );
    const before = await t.db.query<{ xmin: string }>(`SELECT xmin::text FROM signatures WHERE email = 'ann@supporter.example'`);
    await t.db.exec(migration('040_signatures_nfc.sql'));
    const { rows } = await t.db.query<{ full_name: string; city: string; personal_note: string }>(`SELECT full_name, city, personal_note FROM signatures WHERE email = 'apart@supporter.example'`);
    expect(rows).toEqual([{ full_name: 'Айгӱль', city: 'Алмӓты', personal_note: 'Кӧмек' }]);
    expect((await t.db.query(`SELECT 1 FROM signatures WHERE campaign_id = $1 AND full_name ILIKE '%Айгӱль%'`, [c!.id])).rowCount).toBe(1);
    // A row already composed is not written: its version is the one it had.
    expect((await t.db.query<{ xmin: string }>(`SELECT xmin::text FROM signatures WHERE email = 'ann@supporter.example'`)).rows).toEqual(before.rows);
  });
});
