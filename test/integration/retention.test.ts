import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/organizers/service.ts';
import { purgeExpired, purgeUnconfirmed, purgeUnsubscribed } from '../../src/retention/service.ts';
import { confirmSignature, confirmToken, sign } from '../../src/signatures/service.ts';
import { confirmSubscription, findOptin, manageToken, optinToken, requestSubscription, unsubscribe, updatePreferences } from '../../src/subscribers/service.ts';
import { activatePendingSubscriptions, insertPendingSubscription, replaceSubscriptions, upsertActiveSubscription } from '../../src/subscribers/queries.ts';
import { NotFoundError } from '../../src/errors.ts';
import { addressWorks, removeSuppression } from '../../src/deliveries/service.ts';
import { insertSuppression } from '../../src/deliveries/suppression-queries.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { DB_KINDS } from '../helpers/db.ts';
import { createLiveCampaign, uniq } from '../helpers/fixtures.ts';
import { eventually } from '../helpers/subscribers.ts';
import { whileHeld } from '../helpers/locks.ts';

describe.each(DB_KINDS)('retention of unconfirmed addresses on %s', (kind) => {
  let ctx: TestContext;

  beforeAll(async () => {
    // No workers: the deliveries stay as rows, and the purge job is run by hand below.
    ctx = await createTestContext({ db: kind, env: { RETENTION_UNCONFIRMED_DAYS: '7' } });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  /** Signatures and subscribers of every state, half of them made to look `days` old. */
  async function population(tag: string) {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    const withConfirmation = slug;
    const { slug: noConfirmation } = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    const email = (who: string) => `${who}@${tag}.example`;
    const signAs = (campaign: string, who: string) => sign(ctx.db, ctx, campaign, { fullName: who, email: email(who) });
    await signAs(withConfirmation, 'old-pending-signer');
    await signAs(withConfirmation, 'new-pending-signer');
    await signAs(noConfirmation, 'old-confirmed-signer');
    const subscribe = (who: string) => requestSubscription(ctx.db, ctx, { email: email(who), caseSlug }, 'api');
    await subscribe('old-pending-subscriber');
    await subscribe('new-pending-subscriber');
    await subscribe('old-active-subscriber');
    await subscribe('old-unsubscribed-subscriber');
    await ctx.db.query(`UPDATE subscribers SET status = 'active' WHERE email = $1`, [email('old-active-subscriber')]);
    await ctx.db.query(`UPDATE subscribers SET status = 'unsubscribed' WHERE email = $1`, [email('old-unsubscribed-subscriber')]);
    await ctx.db.query(`UPDATE signatures SET created_at = now() - interval '8 days' WHERE email LIKE 'old-%' || $1`, [`@${tag}.example`]);
    await ctx.db.query(
      `UPDATE subscribers SET created_at = now() - interval '8 days', optin_requested_at = now() - interval '8 days' WHERE email LIKE 'old-%' || $1`,
      [`@${tag}.example`],
    );
  }

  const left = async (tag: string) => ({
    signatures: (await ctx.db.query<{ email: string }>('SELECT email FROM signatures WHERE email LIKE $1 ORDER BY email', [`%@${tag}.example`])).rows.map((r) => r.email.split('@')[0]),
    subscribers: (await ctx.db.query<{ email: string }>('SELECT email FROM subscribers WHERE email LIKE $1 ORDER BY email', [`%@${tag}.example`])).rows.map((r) => r.email.split('@')[0]),
    deliveries: (await ctx.db.query<{ kind: string; recipient: string }>(
      `SELECT kind, recipient FROM deliveries WHERE recipient LIKE $1 OR source_id IN (SELECT id FROM signatures WHERE email LIKE $1) ORDER BY kind, recipient`,
      [`%@${tag}.example`],
    )).rows.map((r) => `${r.kind} ${r.recipient.split('@')[0]}`),
  });

  it.runIf(kind === 'postgres')('keeps a pending signature made again while the purge runs with its confirmation, which the next request sends again', async () => {
    const tag = uniq('again');
    await population(tag);
    const email = `old-pending-signer@${tag}.example`;
    // Signing again renews the signature's time under its row lock, then sends its confirmation again.
    const purge = await whileHeld(
      ctx.db,
      (tx) => tx.query('SELECT 1 FROM signatures WHERE email = $1 FOR UPDATE', [email]),
      () => purgeUnconfirmed(ctx.db, 7),
      (tx) => tx.query('UPDATE signatures SET created_at = now() WHERE email = $1', [email]),
    );
    expect(purge.status).toBe('fulfilled');
    const after = await left(tag);
    expect(after.signatures).toContain('old-pending-signer');
    expect(after.deliveries).toContain('confirm old-pending-signer');
  });

  it.runIf(kind === 'postgres')('keeps a pending subscriber who asks again while the purge runs with the opt-in email it asked for', async () => {
    const tag = uniq('asks');
    await population(tag);
    const email = `old-pending-subscriber@${tag}.example`;
    // Asking again renews the subscriber's request under its row lock, then sends its opt-in again.
    const purge = await whileHeld(
      ctx.db,
      (tx) => tx.query('SELECT 1 FROM subscribers WHERE email = $1 FOR UPDATE', [email]),
      () => purgeUnconfirmed(ctx.db, 7),
      async (tx) => {
        await tx.query('UPDATE subscribers SET optin_requested_at = now() WHERE email = $1', [email]);
        await tx.query(`UPDATE deliveries SET status = 'queued' WHERE kind = 'optin' AND recipient = $1`, [email]);
      },
    );
    expect(purge.status).toBe('fulfilled');
    const after = await left(tag);
    expect(after.subscribers).toContain('old-pending-subscriber');
    expect(after.deliveries).toContain('optin old-pending-subscriber');
  });

  it('purges all or nothing: cut off at its last step, it keeps every row for the next run to find', async () => {
    const tag = uniq('cutoff');
    await population(tag);
    const before = await left(tag);
    // The audit log's update, the purge's last write, fails (as a restart mid-purge would).
    await ctx.db.query(`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$`);
    await ctx.db.query('CREATE TRIGGER refuse_audit BEFORE UPDATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit()');
    try {
      await expect(purgeUnconfirmed(ctx.db, 7)).rejects.toThrow('refused');
    } finally {
      await ctx.db.query('DROP TRIGGER refuse_audit ON audit_log');
      await ctx.db.query('DROP FUNCTION refuse_audit()');
    }
    expect(await left(tag)).toEqual(before);
  });

  it('deletes signatures and subscribers never confirmed within the retention period, with their deliveries, and keeps the rest', async () => {
    const tag = uniq('retention');
    await population(tag);
    expect((await left(tag)).deliveries).toEqual(expect.arrayContaining(['confirm old-pending-signer', 'optin old-pending-subscriber']));

    await purgeUnconfirmed(ctx.db, 7);
    const after = await left(tag);
    expect(after.signatures).toEqual(['new-pending-signer', 'old-confirmed-signer']);
    expect(after.subscribers).toEqual(['new-pending-subscriber', 'old-active-subscriber', 'old-unsubscribed-subscriber']);
    expect(after.deliveries).not.toContain('confirm old-pending-signer');
    expect(after.deliveries).not.toContain('optin old-pending-subscriber');
    expect(after.deliveries).toEqual(expect.arrayContaining(['confirm new-pending-signer', 'optin new-pending-subscriber']));
    // The confirmed signer's letters stay (their recipients are the targets).
    expect((await ctx.db.query(`SELECT 1 FROM deliveries d JOIN signatures s ON s.id = d.source_id WHERE d.kind = 'letter' AND s.email = $1`, [`old-confirmed-signer@${tag}.example`])).rowCount).toBe(2);
    expect((await ctx.db.query(`SELECT 1 FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id WHERE s.email = $1`, [`old-pending-subscriber@${tag}.example`])).rowCount).toBe(0);
  });

  it('runs as the daily maintenance job with RETENTION_UNCONFIRMED_DAYS and RETENTION_UNSUBSCRIBED_DAYS', async () => {
    const tag = uniq('retention-job');
    await population(tag);
    // Left 31 days ago: past the default 30 days.
    await ctx.db.query(`UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = now() - interval '31 days', optin_requested_at = now() - interval '40 days' WHERE email = $1`, [`old-active-subscriber@${tag}.example`]);
    const workers = await ctx.startWorkers();
    try {
      const job = await ctx.queues.maintenance.add('purge', { task: 'purge' });
      await eventually(async () => ((await job.isCompleted()) ? true : undefined));
      // The embedded database has no autovacuum: the job vacuums and analyzes it; Postgres does both itself.
      expect((await ctx.queues.maintenance.getJob(job.id!))!.returnvalue).toMatchObject({ vacuumed: ctx.db.kind === 'pglite' });
      if (ctx.db.kind === 'pglite') {
        const { rows: [stats] } = await ctx.db.query<{ last_vacuum: Date | null; last_analyze: Date | null }>(`SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = 'deliveries'`);
        expect(stats!.last_vacuum).toBeInstanceOf(Date);
        expect(stats!.last_analyze).toBeInstanceOf(Date);
      }
      const after = await left(tag);
      expect(after.signatures).toEqual(['new-pending-signer', 'old-confirmed-signer']);
      expect(after.subscribers).toEqual(['new-pending-subscriber', 'old-unsubscribed-subscriber']);
    } finally {
      await workers.close();
    }
  });
  it('counts from the latest opt-in request, so asking again after a week keeps the new opt-in email', async () => {
    const tag = uniq('again');
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const address = `late@${tag}.example`;
    await requestSubscription(ctx.db, ctx, { email: address, caseSlug }, 'api');
    await ctx.db.query(
      `UPDATE subscribers SET created_at = now() - interval '30 days', optin_requested_at = now() - interval '30 days' WHERE email = $1`,
      [address],
    );
    await ctx.db.query(`UPDATE subscriptions SET created_at = now() - interval '30 days' WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = $1)`, [address]);
    await requestSubscription(ctx.db, ctx, { email: address, caseSlug }, 'api');

    await purgeUnconfirmed(ctx.db, 7);
    const kept = await ctx.db.query(`SELECT 1 FROM subscribers WHERE email = $1`, [address]);
    const optin = await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'optin' AND recipient = $1`, [address]);
    expect(kept.rowCount).toBe(1);
    expect(optin.rowCount).toBe(1);
  });

  it('deletes a subscriber who left, or whose address bounced, longer ago than the retention period, with the emails to them, and keeps the rest', async () => {
    const tag = uniq('left');
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = (who: string) => `${who}@${tag}.example`;
    for (const who of ['left-long-ago', 'left-lately', 'left-then-asked-again', 'left-but-signing', 'bounced', 'bounced-long-ago', 'lifted-after-bounce', 'active']) {
      await requestSubscription(ctx.db, ctx, { email: email(who), caseSlug }, 'api');
      await ctx.db.query(
        `INSERT INTO deliveries (kind, source_id, subscriber_id, recipient, status) SELECT 'alert', 1, id, email, 'sent' FROM subscribers WHERE email = $1`,
        [email(who)],
      );
    }
    const set = (who: string, sql: string) => ctx.db.query(`UPDATE subscribers SET ${sql} WHERE email = $1`, [email(who)]);
    await ctx.db.query(`UPDATE subscribers SET status = 'active', optin_requested_at = now() - interval '40 days' WHERE email LIKE $1`, [`%@${tag}.example`]);
    await set('left-long-ago', `status = 'unsubscribed', unsubscribed_at = now() - interval '31 days'`);
    await set('left-lately', `status = 'unsubscribed', unsubscribed_at = now() - interval '29 days'`);
    await set('left-then-asked-again', `status = 'unsubscribed', unsubscribed_at = now() - interval '31 days', optin_requested_at = now() - interval '2 days'`);
    await set('left-but-signing', `status = 'unsubscribed', unsubscribed_at = now() - interval '31 days'`);
    // Bounced now (the database stamps when), then made to look as old as that.
    await set('bounced', `status = 'bounced', unsubscribed_at = now() - interval '31 days'`);
    await set('bounced', `bounced_at = now() - interval '29 days'`);
    await set('bounced-long-ago', `status = 'bounced'`);
    await set('bounced-long-ago', `bounced_at = now() - interval '31 days'`);
    await ctx.db.query(`INSERT INTO suppressions (email, reason, created_at) VALUES ($1, 'bounce: 550', now() - interval '29 days'), ($2, 'bounce: 550', now() - interval '31 days')`, [email('bounced'), email('bounced-long-ago')]);
    // Bounced today, and a link followed in another email to it (a signature confirmed from that
    // inbox) lifts the suppression alone: the bounce is still today's.
    await insertSuppression(ctx.db, email('lifted-after-bounce'), 'bounce: 550 5.2.1 mailbox full', 'alert');
    await addressWorks(ctx.db, email('lifted-after-bounce'));
    expect((await ctx.db.query(`SELECT status, bounced_at > now() - interval '1 minute' AS lately FROM subscribers WHERE email = $1`, [email('lifted-after-bounce')])).rows).toEqual([{ status: 'bounced', lately: true }]);
    // A signature waiting for confirmation, box ticked: its confirmation must still find the address unsubscribed.
    const { slug } = await createLiveCampaign(ctx.db);
    await sign(ctx.db, ctx, slug, { fullName: 'Still Signing', email: email('left-but-signing'), subscribe: true });

    const before = (await left(tag)).deliveries;
    expect(before).toEqual(expect.arrayContaining(['alert left-long-ago', 'optin left-long-ago']));
    // As the daily job runs it: requests never confirmed for RETENTION_UNCONFIRMED_DAYS go first.
    expect(await purgeExpired(ctx.db, { retentionUnconfirmedDays: 7, retentionUnsubscribedDays: 30 })).toMatchObject({ unsubscribed: 2 });
    const after = await left(tag);
    expect(after.subscribers).toEqual(['active', 'bounced', 'left-but-signing', 'left-lately', 'left-then-asked-again', 'lifted-after-bounce']);
    expect((await ctx.db.query('SELECT status FROM subscribers WHERE email = $1', [email('left-then-asked-again')])).rows).toEqual([{ status: 'pending' }]);
    expect(after.deliveries.filter((d) => d.endsWith('left-then-asked-again'))).toEqual(['optin left-then-asked-again']);
    expect(after.deliveries.filter((d) => d.includes('long-ago'))).toEqual([]);
    expect((await ctx.db.query('SELECT 1 FROM suppressions WHERE email = $1', [email('bounced-long-ago')])).rowCount).toBe(1);
    expect(after.deliveries).toEqual(expect.arrayContaining(['alert left-lately', 'optin left-lately', 'alert active']));
    // Kept for the signature that waits, without what it followed and was sent.
    expect(after.deliveries.filter((d) => d.startsWith('alert') && d.endsWith('left-but-signing'))).toEqual([]);
    expect((await ctx.db.query('SELECT status, consent_text FROM subscribers WHERE email = $1', [email('left-but-signing')])).rows).toEqual([{ status: 'unsubscribed', consent_text: null }]);
  });

  it('does not let a request nobody confirmed keep one who left past RETENTION_UNSUBSCRIBED_DAYS: it is dropped, or kept as a new address\'s request alone', async () => {
    const tag = uniq('asked');
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = (who: string) => `${who}@${tag}.example`;
    const row = async (who: string) => (await ctx.db.query<{ id: number; optin_round: number; status: string; consent_text: string | null; confirmed_at: Date | null; unsubscribed_at: Date | null }>(
      'SELECT id, optin_round, status, consent_text, confirmed_at, unsubscribed_at FROM subscribers WHERE email = $1', [email(who)],
    )).rows[0];
    for (const who of ['asked-last-month', 'asked-lately', 'asked-under-short-retention']) {
      // Subscribed, confirmed, was sent an alert, and left.
      await requestSubscription(ctx.db, ctx, { email: email(who), caseSlug }, 'api');
      const confirmed = await confirmSubscription(ctx.db, ctx, optinToken(ctx.secret, (await row(who))!));
      await ctx.db.query(`INSERT INTO deliveries (kind, source_id, subscriber_id, recipient, status) VALUES ('alert', 1, $1, $2, 'sent')`, [(await row(who))!.id, email(who)]);
      await unsubscribe(ctx.db, (confirmed as { manageToken: string }).manageToken);
      // Anyone may ask for an address again: the form needs nothing but the address.
      await ctx.db.query(`UPDATE deliveries SET status = 'sent' WHERE kind = 'optin' AND recipient = $1`, [email(who)]);
      await requestSubscription(ctx.db, ctx, { email: email(who), caseSlug }, 'subscribe page');
      await ctx.db.query(`UPDATE subscribers SET unsubscribed_at = now() - interval '40 days', confirmed_at = now() - interval '60 days' WHERE email = $1`, [email(who)]);
      await ctx.db.query(`UPDATE deliveries SET created_at = now() - interval '60 days' WHERE kind = 'optin' AND recipient = $1`, [email(who)]);
    }
    // Left 10 days ago: kept by RETENTION_UNSUBSCRIBED_DAYS=30, past it at 2.
    await ctx.db.query(`UPDATE subscribers SET optin_requested_at = now() - interval '3 days', unsubscribed_at = now() - interval '10 days' WHERE email = $1`, [email('asked-under-short-retention')]);
    await ctx.db.query(`UPDATE subscribers SET optin_requested_at = now() - interval '8 days' WHERE email = $1`, [email('asked-last-month')]);
    await ctx.db.query(`UPDATE subscribers SET optin_requested_at = now() - interval '2 days' WHERE email = $1`, [email('asked-lately')]);

    await purgeExpired(ctx.db, { retentionUnconfirmedDays: 7, retentionUnsubscribedDays: 30 });
    // The request of 8 days ago was dropped (never confirmed), and with it every reason to keep them.
    expect(await row('asked-last-month')).toBeUndefined();
    // The request of 2 days ago may be theirs: it stays, its link works, and nothing else of them does.
    const kept = (await row('asked-lately'))!;
    expect(kept).toMatchObject({ status: 'pending', consent_text: null, confirmed_at: null, unsubscribed_at: null });
    expect((await left(tag)).deliveries.filter((d) => d.endsWith('asked-lately'))).toEqual(['optin asked-lately']);
    const { rows: [optin] } = await ctx.db.query<{ lately: boolean }>(`SELECT created_at > now() - interval '3 days' AS lately FROM deliveries WHERE kind = 'optin' AND recipient = $1`, [email('asked-lately')]);
    expect(optin).toEqual({ lately: true });
    expect((await ctx.db.query(`SELECT status FROM subscriptions WHERE subscriber_id = $1`, [kept.id])).rows).toEqual([{ status: 'pending' }]);
    expect(await confirmSubscription(ctx.db, ctx, optinToken(ctx.secret, kept))).toMatchObject({ following: [expect.anything()] });
    expect(await row('asked-lately')).toMatchObject({ status: 'active' });

    // One who follows nothing (every box unticked) is not kept by a stranger's request either.
    const idle = email('follows-nothing');
    await requestSubscription(ctx.db, ctx, { email: idle, caseSlug }, 'api');
    const { rows: [quiet] } = await ctx.db.query<{ id: number; optin_round: number }>('SELECT id, optin_round FROM subscribers WHERE email = $1', [idle]);
    await confirmSubscription(ctx.db, ctx, optinToken(ctx.secret, quiet!));
    await updatePreferences(ctx.db, manageToken(ctx.secret, quiet!.id), { all: false, caseSlugs: [] });
    await ctx.db.query(`UPDATE subscribers SET follows_nothing_since = now() - interval '31 days' WHERE id = $1`, [quiet!.id]);
    await ctx.db.query(`UPDATE deliveries SET status = 'sent' WHERE kind = 'optin' AND recipient = $1`, [idle]);
    await requestSubscription(ctx.db, ctx, { email: idle, caseSlug }, 'subscribe page');
    await purgeExpired(ctx.db, { retentionUnconfirmedDays: 7, retentionUnsubscribedDays: 30 });
    expect((await ctx.db.query('SELECT status, consent_text, confirmed_at FROM subscribers WHERE id = $1', [quiet!.id])).rows).toEqual([{ status: 'pending', consent_text: null, confirmed_at: null }]);

    // Those who left kept for less time than a request is: the request still lasts as its email said.
    expect(await row('asked-under-short-retention')).toMatchObject({ status: 'unsubscribed' });
    await purgeExpired(ctx.db, { retentionUnconfirmedDays: 7, retentionUnsubscribedDays: 2 });
    expect(await row('asked-under-short-retention')).toMatchObject({ status: 'pending', unsubscribed_at: null });
  });

  it('keeps no more of one who left than that they left while a signature with the box ticked waits, however often it is made again', async () => {
    const tag = uniq('held');
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    const address = `left@${tag}.example`;
    const row = async () => (await ctx.db.query<{ id: number; status: string; consent_text: string | null; confirmed_at: Date | null; unsubscribed_at: Date | null }>(
      'SELECT id, status, consent_text, confirmed_at, unsubscribed_at FROM subscribers WHERE email = $1', [address],
    )).rows[0];
    // Subscribed, confirmed, was sent an alert, and left.
    await requestSubscription(ctx.db, ctx, { email: address, caseSlug }, 'api');
    const confirmed = await confirmSubscription(ctx.db, ctx, optinToken(ctx.secret, (await ctx.db.query<{ id: number; optin_round: number }>('SELECT id, optin_round FROM subscribers WHERE email = $1', [address])).rows[0]!));
    const id = (await row())!.id;
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, subscriber_id, recipient, status) VALUES ('alert', 1, $1, $2, 'sent')`, [id, address]);
    await unsubscribe(ctx.db, (confirmed as { manageToken: string }).manageToken);
    await ctx.db.query(`UPDATE subscribers SET unsubscribed_at = now() - interval '40 days' WHERE id = $1`, [id]);
    // Anyone may sign with the address and tick the box, and do it again before it is purged.
    await sign(ctx.db, ctx, slug, { fullName: 'A Stranger', email: address, subscribe: true });

    await purgeExpired(ctx.db, { retentionUnconfirmedDays: 7, retentionUnsubscribedDays: 30 });
    expect(await row()).toMatchObject({ id, status: 'unsubscribed', consent_text: null, confirmed_at: null, unsubscribed_at: expect.any(Date) });
    expect((await ctx.db.query('SELECT 1 FROM subscriptions WHERE subscriber_id = $1', [id])).rowCount).toBe(0);
    expect((await ctx.db.query('SELECT kind FROM deliveries WHERE subscriber_id = $1', [id])).rows).toEqual([]);

    // Its confirmation still finds the address left: an opt-in email asks before any alert goes.
    const { rows: [signature] } = await ctx.db.query<{ id: number }>('SELECT id FROM signatures WHERE email = $1', [address]);
    expect((await confirmSignature(ctx.db, ctx, confirmToken(ctx.secret, signature!.id), 0)).kind).toBe('confirmed');
    // (asked after the answer, as the confirmation page does not wait for it)
    await eventually(async () => (await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'optin' AND subscriber_id = $1`, [id])).rowCount || undefined);
    expect(await row()).toMatchObject({ status: 'unsubscribed' });
    expect((await ctx.db.query(`SELECT status FROM subscriptions WHERE subscriber_id = $1`, [id])).rows).toEqual([{ status: 'pending' }]);

    // No signature waits any more: the row is a new address's request alone, as any other.
    await purgeExpired(ctx.db, { retentionUnconfirmedDays: 7, retentionUnsubscribedDays: 30 });
    expect(await row()).toMatchObject({ status: 'pending', unsubscribed_at: null });

    // Bounced long ago, so kept: its suppression lifted, it is not made active with no consent on record.
    const bounced = `bounced@${tag}.example`;
    await requestSubscription(ctx.db, ctx, { email: bounced, caseSlug }, 'api');
    await ctx.db.query(`UPDATE subscribers SET status = 'active', confirmed_at = now() - interval '90 days' WHERE email = $1`, [bounced]);
    await ctx.db.query(`UPDATE subscribers SET status = 'bounced' WHERE email = $1`, [bounced]);
    await ctx.db.query(`UPDATE subscribers SET bounced_at = now() - interval '40 days' WHERE email = $1`, [bounced]);
    await insertSuppression(ctx.db, bounced, 'bounce: 550', 'alert');
    await sign(ctx.db, ctx, slug, { fullName: 'A Stranger', email: bounced, subscribe: true });
    await purgeExpired(ctx.db, { retentionUnconfirmedDays: 7, retentionUnsubscribedDays: 30 });
    expect((await ctx.db.query('SELECT status, confirmed_at FROM subscribers WHERE email = $1', [bounced])).rows).toEqual([{ status: 'bounced', confirmed_at: null }]);
    expect(await removeSuppression(ctx.db, bounced)).toMatchObject({ email: bounced });
    expect((await ctx.db.query('SELECT status FROM subscribers WHERE email = $1', [bounced])).rows).toEqual([{ status: 'bounced' }]);
  });

  it('deletes an active subscriber who has followed no case for the retention period, counted from the run that found them so', async () => {
    const tag = uniq('nothing');
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = (who: string) => `${who}@${tag}.example`;
    for (const who of ['unticked-all', 'follows-again', 'asked-lately', 'follows']) {
      await requestSubscription(ctx.db, ctx, { email: email(who), caseSlug }, 'api');
      await ctx.db.query(
        `INSERT INTO deliveries (kind, source_id, subscriber_id, recipient, status) SELECT 'alert', 1, id, email, 'sent' FROM subscribers WHERE email = $1`,
        [email(who)],
      );
    }
    await ctx.db.query(`UPDATE subscribers SET status = 'active', optin_requested_at = now() - interval '40 days' WHERE email LIKE $1`, [`%@${tag}.example`]);
    await ctx.db.query(`UPDATE subscriptions SET status = 'active' WHERE subscriber_id IN (SELECT id FROM subscribers WHERE email LIKE $1)`, [`%@${tag}.example`]);
    // Every box unticked on the preferences page: the subscriptions go, the subscriber stays active.
    await ctx.db.query(
      `DELETE FROM subscriptions WHERE subscriber_id IN (SELECT id FROM subscribers WHERE email = ANY ($1))`,
      [[email('unticked-all'), email('asked-lately')]],
    );
    await ctx.db.query(`UPDATE subscribers SET optin_requested_at = now() - interval '2 days' WHERE email = $1`, [email('asked-lately')]);
    const since = async () =>
      Object.fromEntries((await ctx.db.query<{ email: string; marked: boolean }>(
        'SELECT email, follows_nothing_since IS NOT NULL AS marked FROM subscribers WHERE email LIKE $1', [`%@${tag}.example`],
      )).rows.map((r) => [r.email.split('@')[0], r.marked]));

    // The first run finds them following nothing, and deletes nobody for it yet.
    await purgeUnsubscribed(ctx.db, 30);
    expect(await since()).toEqual({ 'unticked-all': true, 'asked-lately': true, 'follows-again': false, follows: false });
    expect((await left(tag)).subscribers).toHaveLength(4);

    // As long after as the retention period; one of them has been marked, and follows a case again.
    await ctx.db.query(`UPDATE subscribers SET follows_nothing_since = now() - interval '31 days' WHERE email LIKE $1 AND follows_nothing_since IS NOT NULL`, [`%@${tag}.example`]);
    await ctx.db.query(`UPDATE subscribers SET follows_nothing_since = now() - interval '31 days' WHERE email = $1`, [email('follows-again')]);
    // A request made lately keeps no one once nothing of it waits for an opt-in (see the test
    // before: anyone may ask for an address).
    expect(await purgeUnsubscribed(ctx.db, 30)).toBe(2);
    const after = await left(tag);
    expect(after.subscribers).toEqual(['follows-again', 'follows']);
    expect(after.deliveries).not.toContain('alert unticked-all');
    expect(await since()).toEqual({ 'follows-again': false, follows: false });
  });

  it('counts anew from a subscriber who ticks a box and unticks it again, and keeps one who ticks a box while the purge runs', async () => {
    const tag = uniq('ticker');
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = `ticker@${tag}.example`;
    await requestSubscription(ctx.db, ctx, { email, caseSlug }, 'api');
    const { rows: [sub] } = await ctx.db.query<{ id: number }>(
      `UPDATE subscribers SET status = 'active', optin_requested_at = now() - interval '40 days' WHERE email = $1 RETURNING id`, [email]);
    // Confirmed: a request still waiting would be kept by a save that leaves it unticked.
    await ctx.db.query(`UPDATE subscriptions SET status = 'active' WHERE subscriber_id = $1`, [sub!.id]);
    const token = manageToken(ctx.secret, sub!.id);
    const aged = () => ctx.db.query(`UPDATE subscribers SET follows_nothing_since = now() - interval '31 days' WHERE id = $1`, [sub!.id]);
    const state = async () => (await ctx.db.query<{ marked: boolean; follows: number }>(
      'SELECT follows_nothing_since IS NOT NULL AS marked, (SELECT count(*)::int FROM subscriptions x WHERE x.subscriber_id = s.id) AS follows FROM subscribers s WHERE id = $1', [sub!.id])).rows[0];

    // Nothing ticked on the page marks them; a box ticked and unticked since counts from then.
    expect(await updatePreferences(ctx.db, token, { all: false, caseSlugs: [] })).toBe(true);
    expect(await state()).toEqual({ marked: true, follows: 0 });
    await aged();
    await updatePreferences(ctx.db, token, { all: true, caseSlugs: [] });
    expect(await state()).toEqual({ marked: false, follows: 1 });
    await updatePreferences(ctx.db, token, { all: false, caseSlugs: [] });
    await purgeUnsubscribed(ctx.db, 30);
    expect(await state()).toEqual({ marked: true, follows: 0 });
    // A request (anyone may make one) leaves the mark; a confirmed subscription, a signer's or an
    // opt-in's, clears it.
    const { rows: [kase] } = await ctx.db.query<{ id: number }>('SELECT id FROM cases WHERE slug = $1', [caseSlug]);
    await insertPendingSubscription(ctx.db, sub!.id, kase!.id, 'api', 'test');
    expect(await state()).toEqual({ marked: true, follows: 1 });
    await activatePendingSubscriptions(ctx.db, sub!.id);
    expect(await state()).toEqual({ marked: false, follows: 1 });
    await ctx.db.query('DELETE FROM subscriptions WHERE subscriber_id = $1', [sub!.id]);
    await aged();
    await upsertActiveSubscription(ctx.db, sub!.id, kase!.id, 'sign form', 'test');
    expect(await state()).toEqual({ marked: false, follows: 1 });
    await updatePreferences(ctx.db, token, { all: false, caseSlugs: [] });
    expect(await state()).toEqual({ marked: true, follows: 0 });

    if (kind !== 'postgres') return;
    // Following all cases again while the purge would delete them: the purge waits for the save's
    // lock, and reads the row the save wrote.
    await aged();
    const purge = await whileHeld(
      ctx.db,
      async (tx) => {
        await tx.query('SELECT 1 FROM subscribers WHERE id = $1 FOR UPDATE', [sub!.id]);
        await replaceSubscriptions(tx, sub!.id, [0], [0], 'preferences page');
      },
      () => purgeUnsubscribed(ctx.db, 30),
    );
    expect(purge.status).toBe('fulfilled');
    expect(await state()).toEqual({ marked: false, follows: 1 });
  });

  it('takes a deleted address out of the audit log\'s lifted suppressions, and keeps it where the address is still held', async () => {
    const tag = uniq('audit');
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    const email = (who: string) => `${who}@${tag}.example`;
    await requestSubscription(ctx.db, ctx, { email: email('left'), caseSlug }, 'api');
    await ctx.db.query(`UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = now() - interval '31 days', optin_requested_at = now() - interval '40 days' WHERE email = $1`, [email('left')]);
    await requestSubscription(ctx.db, ctx, { email: email('never-confirmed'), caseSlug }, 'api');
    await ctx.db.query(`UPDATE subscribers SET optin_requested_at = now() - interval '8 days' WHERE email = $1`, [email('never-confirmed')]);
    // Another unconfirmed row of this address goes, but it signed elsewhere and is still held.
    await sign(ctx.db, ctx, slug, { fullName: 'Still Held', email: email('still-held') });
    await requestSubscription(ctx.db, ctx, { email: email('still-held'), caseSlug }, 'api');
    await ctx.db.query(`UPDATE subscribers SET optin_requested_at = now() - interval '8 days' WHERE email = $1`, [email('still-held')]);
    await ctx.db.query(`UPDATE signatures SET status = 'confirmed', confirmed_at = now() WHERE email = $1`, [email('still-held')]);
    for (const who of ['left', 'never-confirmed', 'still-held']) {
      await recordAudit(ctx.db, null, 'suppression.remove', `suppression:${email(who)}`, { reason: `${who} called: inbox fixed`, was: 'bounce: 550' });
    }
    const entries = async () =>
      (await ctx.db.query<{ object: string; detail: unknown }>(
        `SELECT object, detail FROM audit_log WHERE action = 'suppression.remove' AND (object LIKE $1 OR object = 'suppression:(forgotten)') ORDER BY id`,
        [`%@${tag}.example`],
      )).rows;

    await purgeUnconfirmed(ctx.db, 7);
    await purgeUnsubscribed(ctx.db, 30);
    const after = await entries();
    expect(JSON.stringify(after)).not.toMatch(/left|never-confirmed/);
    expect(after.filter((e) => e.object === `suppression:${email('still-held')}`)).toEqual([
      { object: `suppression:${email('still-held')}`, detail: { reason: 'still-held called: inbox fixed', was: 'bounce: 550' } },
    ]);
    expect((await left(tag)).subscribers).toEqual([]);
  });

  // README: a bounced subscriber goes, and its address stays on the suppression list. One whose
  // opt-in to one more case bounced had said yes once: its suppression is not a stranger's.
  it('keeps the suppression of a subscriber who had confirmed and whose opt-in to another case bounced, after the subscriber is purged', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = `${uniq('once-active')}@bounced.example`;
    await requestSubscription(ctx.db, ctx, { email, caseSlug }, 'api');
    await ctx.db.query(
      `UPDATE subscribers SET status = 'bounced', confirmed_at = now() - interval '60 days', optin_requested_at = now() - interval '31 days' WHERE email = $1`,
      [email],
    );
    await ctx.db.query(`UPDATE subscribers SET bounced_at = now() - interval '31 days' WHERE email = $1`, [email]);
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind, created_at) VALUES ($1, 'bounce: 550', 'optin', now() - interval '31 days')`, [email]);
    expect((await purgeExpired(ctx.db, { retentionUnconfirmedDays: 7, retentionUnsubscribedDays: 30 })).unsubscribed).toBeGreaterThanOrEqual(1);
    expect((await ctx.db.query('SELECT 1 FROM subscribers WHERE email = $1', [email])).rowCount).toBe(0);
    await purgeUnconfirmed(ctx.db, 7);
    expect((await ctx.db.query('SELECT 1 FROM suppressions WHERE email = $1', [email])).rowCount).toBe(1);
  });

  it('takes an address whose confirmation or opt-in bounced off the suppression list once nothing else of it is kept, and forgets old lifts of such addresses', async () => {
    const tag = uniq('bounced');
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    const email = (who: string) => `${who}@${tag}.example`;
    await sign(ctx.db, ctx, slug, { fullName: 'Never Confirmed', email: email('signer') });
    await requestSubscription(ctx.db, ctx, { email: email('subscriber'), caseSlug }, 'api');
    await sign(ctx.db, ctx, slug, { fullName: 'Still Waiting', email: email('recent') });
    await ctx.db.query(
      `INSERT INTO suppressions (email, reason, kind, created_at) VALUES
         ($1, 'bounce: 550', 'confirm', now() - interval '8 days'), ($2, 'bounce: 550', 'optin', now() - interval '8 days'),
         ($3, 'bounce: 550', 'confirm', now() - interval '8 days'), ($4, 'bounce: 550', 'letter', now() - interval '8 days')`,
      [email('signer'), email('subscriber'), email('recent'), email('official')],
    );
    await ctx.db.query(`UPDATE signatures SET created_at = now() - interval '8 days' WHERE email = $1`, [email('signer')]);
    await ctx.db.query(`UPDATE subscribers SET optin_requested_at = now() - interval '8 days' WHERE email = $1`, [email('subscriber')]);
    // Lifted by an admin after an earlier purge had deleted everything else of the address.
    for (const [who, kind] of [['lifted', 'optin'], ['official', 'letter']] as const) {
      await recordAudit(ctx.db, null, 'suppression.remove', `suppression:${email(who)}`, { reason: `${who} phoned`, was: 'bounce: 550', kind });
    }
    await ctx.db.query(`UPDATE audit_log SET at = now() - interval '8 days' WHERE object LIKE $1`, [`%@${tag}.example`]);

    await purgeUnconfirmed(ctx.db, 7);
    const { rows } = await ctx.db.query<{ email: string }>('SELECT email FROM suppressions WHERE email LIKE $1 ORDER BY email', [`%@${tag}.example`]);
    expect(rows.map((r) => r.email.split('@')[0])).toEqual(['official', 'recent']);
    const log = await ctx.db.query<{ object: string }>(
      `SELECT object FROM audit_log WHERE action = 'suppression.remove' AND (object LIKE $1 OR detail ->> 'reason' LIKE '% phoned') ORDER BY id`,
      [`%@${tag}.example`],
    );
    expect(log.rows.map((r) => r.object)).toEqual(expect.arrayContaining([`suppression:${email('official')}`]));
    expect(JSON.stringify(log.rows)).not.toContain(email('lifted'));
  });

  it('drops an unsubscribed address\'s request to follow again when it is never confirmed, and keeps the address unsubscribed', async () => {
    const tag = uniq('unsub');
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const address = `gone@${tag}.example`;
    await requestSubscription(ctx.db, ctx, { email: address, caseSlug }, 'api');
    await ctx.db.query(`UPDATE subscribers SET status = 'unsubscribed' WHERE email = $1`, [address]);
    await requestSubscription(ctx.db, ctx, { email: address, caseSlug }, 'api');
    await ctx.db.query(`UPDATE subscribers SET optin_requested_at = now() - interval '8 days' WHERE email = $1`, [address]);

    const { rows: [row] } = await ctx.db.query<{ id: number; optin_round: number }>('SELECT id, optin_round FROM subscribers WHERE email = $1', [address]);
    const link = optinToken(ctx.secret, row!);
    expect(await findOptin(ctx.db, link)).toMatchObject({ pending: [expect.anything()] });
    await purgeUnconfirmed(ctx.db, 7);
    // Its link no longer says it "was already used": nobody used it; the request is gone.
    await expect(findOptin(ctx.db, link)).rejects.toBeInstanceOf(NotFoundError);
    const subscriber = await ctx.db.query<{ status: string; pending: number }>(
      `SELECT s.status, (SELECT count(*)::int FROM subscriptions p WHERE p.subscriber_id = s.id AND p.status = 'pending') AS pending
         FROM subscribers s WHERE s.email = $1`,
      [address],
    );
    expect(subscriber.rows).toEqual([{ status: 'unsubscribed', pending: 0 }]);
  });
});
