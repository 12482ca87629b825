// Posts naming one address from several clients: a form's answer says nothing of anyone else's
// posts, and the address's mailbox is still protected from strangers where the emails are sent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressCounterKeys, ASKED_EMAILS_PER_DAY, ASKED_EMAILS_PER_HOUR } from '../../src/deliveries/allowance.ts';
import { countLongRetryingByKind } from '../../src/deliveries/failed-queries.ts';
import { countFailed, retryAllFailed, retryFailedDelivery } from '../../src/deliveries/service.ts';
import { PER_EMAIL_PER_HOUR } from '../../src/web/middleware/limits.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign, uniq } from '../helpers/fixtures.ts';
import { confirmToken, mailTo, pastResendGap, postForm, postJson, settled, until } from '../helpers/signing.ts';

describe('posts naming one address from different clients', () => {
  let ctx: TestContext;
  let base: string;
  let slugs: string[];
  beforeAll(async () => {
    // Behind a proxy that says who each client is; no per-IP limit, so only the address's counts.
    ctx = await createTestContext({ db: 'postgres', env: { RATE_LIMIT_PER_IP: '0', TRUST_PROXY: 'loopback' } });
    base = await ctx.startWeb();
    await ctx.startWorkers();
    slugs = await Promise.all(Array.from({ length: 12 }, async () => (await createLiveCampaign(ctx.db)).slug));
  });
  afterAll(async () => {
    await ctx?.close();
  });

  const sign = (slug: string, email: string, client: string) =>
    postForm(`${base}/c/${slug}/sign`, { full_name: 'Aigerim Test', email }, { 'x-forwarded-for': client });
  /** The statuses a client gets posting `email` to each campaign in turn, up to the hour's allowance and one more. */
  const probe = async (email: string, client: string) => {
    const statuses: number[] = [];
    for (const slug of slugs.slice(0, PER_EMAIL_PER_HOUR + 1)) statuses.push((await sign(slug, email, client)).status);
    return statuses;
  };
  /** How many emails reached `email`, once at least `n` have (the sink reads each after the relay's answer). */
  const emailsTo = async (email: string, n: number) => (await mailTo(ctx.sink!, email, n)).length;

  it('answers a stranger alike whether or not the address signed within the hour, so the 429 tells them nothing', async () => {
    const used = `${uniq('used')}@supporter.example`;
    const unused = `${uniq('unused')}@supporter.example`;
    // The owner signs five campaigns from home.
    for (const slug of slugs.slice(0, 5)) expect((await sign(slug, used, '198.51.100.1')).status).toBe(303);
    // A stranger elsewhere posts each address: the same answers for both, their own tenth post the last taken.
    const expected = [...Array(PER_EMAIL_PER_HOUR).fill(303), 429];
    expect(await probe(used, '203.0.113.9')).toEqual(expected);
    expect(await probe(unused, '203.0.113.9')).toEqual(expected);
    // The JSON API's answer is the same too.
    expect((await postJson(`${base}/api/v1/campaigns/${slugs[11]}/signatures`, { fullName: 'Aigerim Test', email: used }, { 'x-forwarded-for': '203.0.113.10' })).status).toBe(202);
  });

  /** The address's delivery rows, oldest first. */
  const rowsOf = async (email: string) =>
    (await ctx.db.query<{ id: number; kind: string; status: string; attempts: number; last_error: string | null }>(
      `SELECT id, kind, status, attempts, last_error FROM deliveries WHERE lower(recipient) = lower($1) ORDER BY id`,
      [email],
    )).rows;
  /** Resolves once nothing for `email` is queued or being sent (an opt-in held for later may wait). */
  const quiet = (email: string) => until(async () => (await rowsOf(email)).every((r) => !['queued', 'sending'].includes(r.status)), `nothing on its way to ${email}`);
  /** Uses up the hour's allowance of `email` with one signature each by `n` other clients. */
  const useUp = async (email: string, n: number) => {
    for (let i = 0; i < n; i++) expect((await sign((await createLiveCampaign(ctx.db)).slug, email, `192.0.2.${200 + i}`)).status).toBe(303);
    await quiet(email);
  };
  const hourOver = (email: string) => ctx.redis.client.del(addressCounterKeys(ctx.config.queuePrefix, ctx.secret, email)[0]!);

  it('sends an address no more confirmation and opt-in emails than its allowance, however many clients post it, and one asked for again later goes', async () => {
    const email = `${uniq('flooded')}@supporter.example`;
    // Twelve clients each sign a campaign, one after another, and a thirteenth asks for alerts.
    for (const [i, slug] of slugs.entries()) {
      expect((await sign(slug, email, `203.0.113.${100 + i}`)).status).toBe(303);
      await quiet(email);
    }
    expect((await postForm(`${base}/subscribe`, { email }, { 'x-forwarded-for': '203.0.113.200' })).status).toBe(303);
    await until(async () => (await rowsOf(email)).some((r) => r.kind === 'optin' && r.status === 'retry'), 'the opt-in held');
    expect(await emailsTo(email, ASKED_EMAILS_PER_HOUR)).toBe(ASKED_EMAILS_PER_HOUR);
    const signed = await ctx.db.query<{ n: number }>('SELECT count(DISTINCT campaign_id)::int AS n FROM signatures WHERE email = $1', [email]);
    expect(signed.rows[0]!.n).toBe(slugs.length);
    const rows = await rowsOf(email);
    expect(rows.filter((r) => r.status === 'sent')).toHaveLength(ASKED_EMAILS_PER_HOUR);
    // No attempt used. A confirmation is not sent (signing again sends one); the opt-in, one per
    // subscriber, waits for the allowance.
    const held = rows.filter((r) => r.status !== 'sent');
    expect(held.map((r) => [r.kind, r.status, r.attempts])).toEqual([['confirm', 'failed', 0], ['confirm', 'failed', 0], ['optin', 'retry', 0]]);
    const cap = 'this address had 10 within the hour, as many confirmation and opt-in emails as Appeal sends one address (someone may be posting it on forms)';
    expect(held.map((r) => r.last_error)).toEqual([`not sent: ${cap}; asking again later sends a new one`, `not sent: ${cap}; asking again later sends a new one`, `held: ${cap}; it goes when the allowance has room`]);
    // The console retries neither held confirmation, alone or with every failed delivery: a
    // stranger's posts asked for them, and the signer who wants one signs again.
    expect(await retryFailedDelivery(ctx.db, ctx, held[0]!.id)).toBe('held-back');
    expect((await countFailed(ctx.db)).heldBack).toBeGreaterThanOrEqual(2);
    await retryAllFailed(ctx.db, ctx);
    expect((await rowsOf(email)).filter((r) => r.kind === 'confirm' && r.status === 'failed')).toHaveLength(2);
    const optin = held[2]!;
    const job = (await ctx.queues.send.getJob(`d-${optin.id}`))!;
    expect(await job.getState()).toBe('delayed');
    expect(job.delay).toBeGreaterThan(3000_000);
    // Nor does the console's dashboard take it for a relay refusing it, however long it waits.
    await ctx.db.query(`UPDATE deliveries SET created_at = now() - interval '31 minutes' WHERE id = $1`, [optin.id]);
    expect(await countLongRetryingByKind(ctx.db, 30)).toEqual([]);

    // The hour over (its counts gone): the opt-in goes when its time comes (here, at once), and
    // the owner signs the last campaign again and its confirmation goes.
    await hourOver(email);
    await job.promote();
    expect((await mailTo(ctx.sink!, email, ASKED_EMAILS_PER_HOUR + 1)).at(-1)!.subject).toMatch(/^Please confirm: case alerts/);
    await pastResendGap(ctx.db, email);
    expect((await sign(slugs[11]!, email, '198.51.100.50')).status).toBe(303);
    await settled(ctx.db);
    expect(await emailsTo(email, ASKED_EMAILS_PER_HOUR + 2)).toBe(ASKED_EMAILS_PER_HOUR + 2);
    // The day's allowance holds as well: ten more, however far apart, and the rest wait a day.
    expect(ASKED_EMAILS_PER_DAY).toBe(2 * ASKED_EMAILS_PER_HOUR);
    await hourOver(email);
    const others = await Promise.all(Array.from({ length: 10 }, async () => (await createLiveCampaign(ctx.db)).slug));
    for (const [i, slug] of others.entries()) expect((await sign(slug, email, `192.0.2.${i + 1}`)).status).toBe(303);
    await settled(ctx.db);
    expect(await emailsTo(email, ASKED_EMAILS_PER_DAY)).toBe(ASKED_EMAILS_PER_DAY);
    expect((await rowsOf(email)).filter((r) => r.last_error?.includes('within the day'))).toHaveLength(2);
    // What Redis keeps of it is a keyed hash of the inbox and a count, for at most a day.
    const keys = await ctx.redis.client.keys(`${ctx.config.queuePrefix}:rl:*`);
    expect(keys).toEqual(expect.arrayContaining(addressCounterKeys(ctx.config.queuePrefix, ctx.secret, email)));
    for (const key of keys) expect(key.slice(ctx.config.queuePrefix.length)).toMatch(/^:rl:email(-day)?:[\w-]{32}$/);
  });

  it('leaves the confirmation link the owner has working when a stranger\'s new one is held back', async () => {
    const email = `${uniq('owner')}@supporter.example`;
    const { slug } = await createLiveCampaign(ctx.db);
    expect((await sign(slug, email, '198.51.100.60')).status).toBe(303);
    const link = confirmToken((await mailTo(ctx.sink!, email, 1))[0]!);
    await useUp(email, ASKED_EMAILS_PER_HOUR - 1);
    await pastResendGap(ctx.db, email);
    // A stranger signs the same campaign in another name: the new email would carry a new link.
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Someone Else', email }, { 'x-forwarded-for': '203.0.113.77' })).status).toBe(303);
    // A repeat's new email is asked for after the answer (signAgain): wait for it to be held.
    await until(async () => (await rowsOf(email)).some((r) => r.status === 'failed'), 'the new confirmation held');
    await quiet(email);
    expect((await rowsOf(email)).filter((r) => r.status === 'failed')).toHaveLength(1);
    expect(await emailsTo(email, ASKED_EMAILS_PER_HOUR)).toBe(ASKED_EMAILS_PER_HOUR);
    expect((await fetch(`${base}/confirm/${link}`)).status).toBe(200);
  });

  it('keeps a suppressed address\'s one ask for an email that goes, not for one held back', async () => {
    const email = `${uniq('bounced')}@supporter.example`;
    await useUp(email, ASKED_EMAILS_PER_HOUR);
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES (lower($1), 'bounce: test', 'confirm')`, [email]);
    expect((await sign((await createLiveCampaign(ctx.db)).slug, email, '203.0.113.88')).status).toBe(303);
    await quiet(email);
    expect((await ctx.db.query('SELECT asked_by FROM suppressions WHERE email = lower($1)', [email])).rows).toEqual([{ asked_by: null }]);
    // The hour over, the next signature's email is the one that asks.
    await hourOver(email);
    expect((await sign((await createLiveCampaign(ctx.db)).slug, email, '198.51.100.61')).status).toBe(303);
    await quiet(email);
    expect(await emailsTo(email, ASKED_EMAILS_PER_HOUR + 1)).toBe(ASKED_EMAILS_PER_HOUR + 1);
  });
});
