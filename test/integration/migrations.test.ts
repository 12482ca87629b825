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

  // Tokens made before their maker was kept: the audit entry of their making names it, and those
  // the rule would have revoked already (a maker removed, or no longer an admin) are revoked.
  it('041 finds the maker of each token made in the console from the audit log, and revokes those of makers removed or demoted', async () => {
    const { rows: people } = await t.db.query<{ id: string }>(
      `INSERT INTO organizers (email, name, password_hash, role) VALUES ('maker@appeal.test', 'Maker', 'x', 'admin'), ('user@appeal.test', 'User', 'x', 'organizer'),
         ('demoted@appeal.test', 'Demoted', 'x', 'organizer') RETURNING id`,
    );
    const [maker, user, demoted] = people.map((p) => Number(p.id));
    const { rows: tokens } = await t.db.query<{ id: string }>(
      `INSERT INTO api_tokens (organizer_id, token_hash, label) VALUES ($1, 'h1', 'console'), ($1, 'h2', 'cli'), ($1, 'h3', 'old entry'), ($1, 'h4', 'removed maker'), ($1, 'h5', 'demoted maker') RETURNING id`,
      [user],
    );
    const [byConsole, byCli, byOldEntry, byRemoved, byDemoted] = tokens.map((r) => Number(r.id));
    const made = (by: number | null, actor: string | null, token: number, extra = {}) =>
      t.db.query(`INSERT INTO audit_log (organizer_id, actor, action, object, detail) VALUES ($1, $2, 'token.create', 'organizer:user@appeal.test', $3)`, [by, actor, JSON.stringify({ token, ...extra })]);
    await made(maker!, 'maker@appeal.test', byConsole!);
    await made(null, null, byCli!, { by: 'cli' });
    await t.db.query(`INSERT INTO audit_log (organizer_id, actor, action, object, detail) VALUES ($1, 'maker@appeal.test', 'token.create', 'organizer:user@appeal.test', '{"label":"old entry"}')`, [maker]);
    await made(null, 'gone@appeal.test', byRemoved!);
    await made(demoted!, 'demoted@appeal.test', byDemoted!);
    await t.db.exec('ALTER TABLE api_tokens DROP COLUMN made_by');
    await t.db.exec(migration('041_token_makers.sql'));
    const { rows } = await t.db.query<{ id: string; made_by: string | null; revoked: boolean }>('SELECT id, made_by, revoked_at IS NOT NULL AS revoked FROM api_tokens WHERE organizer_id = $1 ORDER BY id', [user]);
    expect(rows.map((r) => [Number(r.id), r.made_by === null ? null : Number(r.made_by), r.revoked])).toEqual([
      [byConsole, maker, false], [byCli, null, false], [byOldEntry, null, false], [byRemoved, null, true], [byDemoted, demoted, true],
    ]);
    const { rows: said } = await t.db.query<{ object: string; detail: { why: string } }>(`SELECT object, detail FROM audit_log WHERE action = 'token.revoke' ORDER BY object`);
    expect(said).toEqual([
      { object: `token:${byRemoved}`, detail: { why: 'its maker was removed', by: 'upgrade' } },
      { object: `token:${byDemoted}`, detail: { why: 'its maker is no longer an admin', by: 'upgrade' } },
    ].sort((a, b) => a.object.localeCompare(b.object)));
  });
});
