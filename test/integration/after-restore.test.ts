import { describe, expect, it } from 'vitest';
import { holdCaseForPosting } from '../../src/alerts/queries.ts';
import { runCommand } from '../../src/cli/commands.ts';
import { lockDueCampaign } from '../../src/digests/queries.ts';
import { createLiveCampaign } from '../helpers/fixtures.ts';
import { DB_KINDS, useTestDb } from '../helpers/db.ts';

const config = { retentionUnconfirmedDays: 7, retentionUnsubscribedDays: 30, sessionSecret: undefined } as never;

describe.each(DB_KINDS)('after-restore on %s', (kind) => {
  const t = useTestDb(kind);

  // Rows made after the backup were lost with their numbers, which their emailed links carry.
  it('numbers every new row a billion past where the backup left off, and records that it ran', async () => {
    const { slug } = await createLiveCampaign(t.db);
    const campaignId = (await t.db.query<{ id: number }>('SELECT id FROM campaigns WHERE slug = $1', [slug])).rows[0]!.id;
    const insertSignature = async () => (await t.db.query<{ id: number }>(
      `INSERT INTO signatures (campaign_id, full_name, email, status) VALUES ($1, 'Restored Signer', 'r' || random() || '@supporter.example', 'pending') RETURNING id`, [campaignId],
    )).rows[0]!.id;
    const before = await insertSignature();
    const reply = await runCommand(t.db, config, { argv: ['after-restore'], stdin: '' });
    expect(reply).toMatchObject({ code: 0, stderr: '' });
    expect(reply.stdout).toMatch(/^new rows are numbered from 1,000,000,000 past where the backup left off \(\d+ sequences\)/);
    // The backup holds again those erased since: their erasures are done again before a worker sends to them.
    expect(reply.stdout).toMatch(/\nbefore any worker starts, run forget again for every erasure asked for since the backup\n$/);
    expect(await insertSignature()).toBe(before + 1_000_000_001);
    const subscriber = (await t.db.query<{ id: number }>(`INSERT INTO subscribers (email, status) VALUES ('s' || random() || '@x.example', 'pending') RETURNING id`)).rows[0]!.id;
    expect(subscriber).toBeGreaterThan(1_000_000_000);
    const audit = await t.db.query<{ detail: { gap: number } }>(`SELECT detail FROM audit_log WHERE action = 'database.after_restore'`);
    expect(audit.rows).toEqual([{ detail: expect.objectContaining({ gap: 1_000_000_000, by: 'cli' }) }]);
    expect(await runCommand(t.db, config, { argv: ['after-restore', 'x'], stdin: '' })).toMatchObject({ code: 2 });
  });

  // A signature pending in the backup may have been confirmed since, its letters sent: pressed
  // again, its emailed link would send them twice, as new emails.
  it('ends the confirmation links of signatures pending in the backup, moving their rounds past any used since, and says what was waiting to be sent', async () => {
    const { slug } = await createLiveCampaign(t.db);
    const campaignId = (await t.db.query<{ id: number }>('SELECT id FROM campaigns WHERE slug = $1', [slug])).rows[0]!.id;
    const signature = async (status: string, confirm: string) => {
      const { rows: [s] } = await t.db.query<{ id: number }>(
        `INSERT INTO signatures (campaign_id, full_name, email, status, confirm_token_hash) VALUES ($1, 'Signer', 'r' || random() || '@supporter.example', $2, md5(random()::text)) RETURNING id`,
        [campaignId, status],
      );
      await t.db.query(`INSERT INTO deliveries (kind, source_id, campaign_id, recipient, status) VALUES ('confirm', $1, $2, $4, $3)`, [s!.id, campaignId, confirm, `x${s!.id}@supporter.example`]);
      return s!.id;
    };
    const emailed = await signature('pending', 'sent');
    const waiting = await signature('pending', 'queued');
    const confirmed = await signature('confirmed', 'sent');
    const reply = await runCommand(t.db, config, { argv: ['after-restore'], stdin: '' });
    expect(reply.code).toBe(0);
    // (Other tests' pending signatures in this database count too.)
    expect(reply.stdout).toMatch(/\d+ pending signatures? had a confirmation link emailed before the backup: those links no longer work/);
    // The one waiting may have gone out after the backup too: its email, when it goes, carries a new link.
    expect(reply.stdout).toContain('1 confirmation email waiting to be sent will carry a new link');
    expect(reply.stdout).toMatch(/\d+ emails? (was|were) waiting to be sent in the backup \(confirm \d+\): any that went out after the backup go again once a worker starts, a letter or an alert with the same Message-ID/);
    const { rows } = await t.db.query<{ linked: boolean; confirm_round: number }>('SELECT confirm_token_hash IS NOT NULL AS linked, confirm_round FROM signatures WHERE id = ANY($1::bigint[]) ORDER BY id', [[emailed, waiting, confirmed]]);
    expect(rows).toEqual([{ linked: false, confirm_round: 1000 }, { linked: false, confirm_round: 1000 }, { linked: true, confirm_round: 0 }]);
    // One with no link yet (its email waiting after a sign-again) moves on too: that email gets a round no email had.
    await t.db.query('UPDATE signatures SET confirm_token_hash = NULL WHERE id = $1', [waiting]);
    await runCommand(t.db, config, { argv: ['after-restore'], stdin: '' });
    expect((await t.db.query<{ confirm_round: number }>('SELECT confirm_round FROM signatures WHERE id = $1', [waiting])).rows[0]!.confirm_round).toBe(2000);
  });

  // Run by this version's cli on a backup of the older version being gone back to: migrated, the
  // backup would be refused by that version ("migrated by a newer version").
  it('applies no migration to the backup it is run on', async () => {
    const { rows: [last] } = await t.db.query<{ name: string; applied_at: Date }>('SELECT name, applied_at FROM schema_migrations ORDER BY name DESC LIMIT 1');
    await t.db.query('DELETE FROM schema_migrations WHERE name = $1', [last!.name]);
    try {
      expect(await runCommand(t.db, config, { argv: ['after-restore'], stdin: '' })).toMatchObject({ code: 0 });
      expect((await t.db.query('SELECT 1 FROM schema_migrations WHERE name = $1', [last!.name])).rowCount).toBe(0);
    } finally {
      await t.db.query('INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [last!.name, last!.applied_at]);
    }
  });

  // Each after-restore moves the numbers on by a billion: the third takes them past 2^31.
  it('locks a case for posting and a campaign for its digest whatever their ids, past 2^31 too', async () => {
    const ids = [1, 2_147_483_647, 3_000_000_005, 2 ** 53 - 1];
    for (const id of ids) {
      await t.db.transaction(async (tx) => {
        await holdCaseForPosting(tx, id);
        expect(await lockDueCampaign(tx, id, new Date(), 100)).toBe(false);
      });
    }
  });
});

describe('after-restore and the confirmation emails it leaves waiting', () => {
  // A confirmation the backup holds as waiting may have gone out after it, and been confirmed:
  // when it goes again, it carries a link of the new round, and that link works.
  it('sends a waiting confirmation with a new, working link, and a signer whose link ended gets a working one by signing again', async () => {
    const { createTestContext } = await import('../helpers/context.ts');
    const { confirmToken, mailTo, pastResendGap, postForm } = await import('../helpers/signing.ts');
    const ctx = await createTestContext({ db: 'postgres' });
    try {
      const base = await ctx.startWeb();
      const { slug } = await createLiveCampaign(ctx.db);
      const email = `waiting${Date.now()}@supporter.example`;
      // Signed with no worker running: its confirmation waits, as in a backup taken then.
      expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Wanda Waiting', email })).status).toBe(303);
      const restored = await runCommand(ctx.db, config, { argv: ['after-restore'], stdin: '' });
      expect(restored.stdout).toContain('1 confirmation email waiting to be sent will carry a new link');
      await ctx.startWorkers();
      const [first] = await mailTo(ctx.sink!, email);
      expect((await fetch(`${base}/confirm/${confirmToken(first!)}`)).status).toBe(200);
      // Sent, then the backup restored again: that link ends, and signing again brings one that works.
      await runCommand(ctx.db, config, { argv: ['after-restore'], stdin: '' });
      expect((await fetch(`${base}/confirm/${confirmToken(first!)}`)).status).toBe(404);
      await pastResendGap(ctx.db, email);
      expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Wanda Waiting', email })).status).toBe(303);
      const [, second] = await mailTo(ctx.sink!, email, 2);
      expect(second!.messageId).not.toBe(first!.messageId);
      expect((await fetch(`${base}/confirm/${confirmToken(second!)}`)).status).toBe(200);
    } finally {
      await ctx.close();
    }
  }, 60_000);
});
