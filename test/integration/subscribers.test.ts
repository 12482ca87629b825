import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { DB_KINDS } from '../helpers/db.ts';
import { createLiveCampaign, uniq } from '../helpers/fixtures.ts';
import { eventually, mailsTo, optinSent, postForm, postJson, subscribeAndConfirm, tokenIn, waitForMail } from '../helpers/subscribers.ts';
import { confirmToken, pastResendGap } from '../helpers/signing.ts';
import { whileHeld } from '../helpers/locks.ts';
import { confirmSubscription, optinToken, pretendToSubscribe, requestSubscription, sendOptinAgain, subscribe, updatePreferences } from '../../src/subscribers/service.ts';
import { SIGN_ANSWER_MIN_MS } from '../../src/signatures/service.ts';
import { markUnsubscribed } from '../../src/subscribers/queries.ts';
import { NotFoundError } from '../../src/errors.ts';

const emailOf = (name: string) => `${uniq(name)}@reader.example`;

describe.each(DB_KINDS)('subscribing and leaving on %s', (kind) => {
  let ctx: TestContext;
  let base: string;
  let caseSlug: string;
  let otherCaseSlug: string;

  const subscriber = async (email: string) =>
    (await ctx.db.query<{ id: number; status: string; consent_at: Date | null; consent_source: string | null; consent_text: string | null }>(
      'SELECT id, status, consent_at, consent_source, consent_text FROM subscribers WHERE lower(email) = lower($1)',
      [email],
    )).rows;
  const subscriptions = async (email: string) =>
    (await ctx.db.query<{ case_slug: string | null; status: string }>(
      `SELECT c.slug AS case_slug, x.status FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
         LEFT JOIN cases c ON c.id = x.case_id WHERE lower(s.email) = lower($1) ORDER BY c.slug NULLS FIRST`,
      [email],
    )).rows;

  beforeAll(async () => {
    ctx = await createTestContext({ db: kind, env: { RATE_LIMIT_PER_IP: '0', RETENTION_UNCONFIRMED_DAYS: '3' } });
    base = await ctx.startWeb();
    await ctx.startWorkers();
    ({ caseSlug } = await createLiveCampaign(ctx.db));
    ({ caseSlug: otherCaseSlug } = await createLiveCampaign(ctx.db));
  });
  afterAll(async () => {
    await ctx?.close();
  });

  it('lists on the subscribe page the cases to follow one by one, a closed campaign\'s too, and none still being prepared', async () => {
    const closed = await createLiveCampaign(ctx.db, {}, 'closed');
    const draft = await createLiveCampaign(ctx.db, {}, 'draft');
    const page = await (await fetch(`${base}/subscribe`)).text();
    expect(page).toContain('Get updates about every case');
    for (const listed of [caseSlug, closed.caseSlug]) {
      // The item in the page's direction, its bullet and words; each name in its own.
      expect(page).toContain(`<li><a href="/subscribe?case=${listed}"><bdi>Aigerim Test</bdi></a> <span class="muted">(<bdi>Almaty</bdi>)</span>`);
      expect(page).toContain(`href="/cases/${listed}"`);
    }
    expect(page).not.toContain(draft.caseSlug);
    // One case's form leads back to every case, and lists none.
    const one = await (await fetch(`${base}/subscribe?case=${closed.caseSlug}`)).text();
    expect(one).toContain('Get updates about Aigerim Test');
    expect(one).toContain('<a href="/subscribe">Get updates about every case instead</a>');
    expect(one).not.toContain(`/subscribe?case=${caseSlug}`);
  });

  it('subscribes from a case page only after the emailed button is pressed, and records the consent shown', async () => {
    const email = emailOf('case-page');
    const casePage = await (await fetch(`${base}/cases/${caseSlug}`)).text();
    expect(casePage).toContain('action="/subscribe"');
    expect(casePage).toContain(`name="case" value="${caseSlug}"`);
    expect(casePage).toContain('name="source" value="case"');
    const wording = /<p class="muted small" id="s-consent">([^<]+)<\/p>/.exec(casePage)![1]!;

    const res = await postForm(`${base}/subscribe`, { email, source: 'case', case: caseSlug, website: '' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/subscribe/check-email');
    expect(await subscriber(email)).toMatchObject([{ status: 'pending', consent_at: null }]);

    const optin = await waitForMail(ctx, email);
    expect(optin.subject).toContain('Please confirm');
    expect(optin.headers.get('auto-submitted')).toBe('auto-generated');
    expect(optin.text).toContain('Aigerim Test');
    expect(optin.text).toContain('the address is\ndeleted after 3 days');
    const token = tokenIn(optin, 'subscribe/confirm');

    // Opening the link (as a mail scanner would) changes nothing; the page's button does.
    const page = await fetch(`${base}/subscribe/confirm/${token}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(`action="/subscribe/confirm/${token}"`);
    expect(await subscriber(email)).toMatchObject([{ status: 'pending' }]);

    // The button's answer is a redirect to the subscriber's own page, so a reload does not post it again.
    const confirmed = await postForm(`${base}/subscribe/confirm/${token}`, {});
    expect(confirmed.status).toBe(303);
    const location = confirmed.headers.get('location')!;
    expect(location).toMatch(/^\/preferences\/[A-Za-z0-9_-]+\?subscribed=1$/);
    const done = await fetch(`${base}${location}`);
    expect(done.status).toBe(200);
    const donePage = await done.text();
    expect(donePage).toContain('You are subscribed');
    expect(donePage).toContain(`href="${location.replace('?subscribed=1', '')}"`);
    const [row] = await subscriber(email);
    expect(row).toMatchObject({ status: 'active', consent_source: 'case page', consent_text: wording.replace(/&#x27;/g, "'") });
    expect(row!.consent_at).toBeInstanceOf(Date);
    expect(await subscriptions(email)).toEqual([{ case_slug: caseSlug, status: 'active' }]);

    // Pressed again (a double click): sent to the link's page, which a reload asks for again
    // instead of posting. Opened again: it says the subscription is confirmed, as a used signature
    // link does, and opens nothing (a forwarded opt-in email is no key to the preferences).
    const pressedAgain = await postForm(`${base}/subscribe/confirm/${token}`, {});
    expect([pressedAgain.status, pressedAgain.headers.get('location')]).toEqual([303, `/subscribe/confirm/${token}`]);
    const again = await fetch(`${base}/subscribe/confirm/${token}`);
    expect(again.status).toBe(200);
    const text = await again.text();
    expect(text).toContain('<h1>Subscription confirmed</h1>');
    expect(text).toContain('Your subscription is confirmed');
    // Not "already used": after a double click whose first answer the browser dropped, that reads
    // to someone who just subscribed as if another had used their link.
    expect(text).not.toMatch(/already/i);
    expect(text).not.toContain('/preferences/');
    expect(await subscriptions(email)).toEqual([{ case_slug: caseSlug, status: 'active' }]);
    // Once the subscriber has left, the used link says so. Left with the page's button, in a
    // browser: the answer is a page to GET, so a reload does not post again.
    const unsubscribeUrl = `${base}${location.replace('preferences', 'unsubscribe').replace('?subscribed=1', '')}`;
    // As a browser sends the form (fetch() would say Sec-Fetch-Mode: cors of itself).
    const leftByButton = await new Promise<{ status?: number; location?: string }>((resolve, reject) => {
      const sent = http.request(unsubscribeUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode, location: res.headers.location });
      });
      sent.on('error', reject);
      sent.end('');
    });
    expect(leftByButton).toEqual({ status: 303, location: `${unsubscribeUrl.slice(base.length)}?done=1` });
    expect(await (await fetch(`${unsubscribeUrl}?done=1`)).text()).toContain('You are unsubscribed');
    const left = await fetch(`${base}/subscribe/confirm/${token}`);
    expect(left.status).toBe(410);
    expect(await left.text()).toContain('subscribe again');
  });

  it('asks a signer who ticked the box on a campaign without confirmation to opt in by email', async () => {
    const campaign = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    const email = emailOf('quick-signer');
    const res = await postForm(`${base}/c/${campaign.slug}/sign`, { full_name: 'Quick Signer', email, subscribe: 'on' });
    expect(res.status).toBe(303);
    // Asked for after the answer, which is the same whether or not the address had signed.
    const optin = await waitForMail(ctx, email);
    expect(await subscriber(email)).toMatchObject([{ status: 'pending' }]);
    expect(optin.subject).toContain('Please confirm');
    expect((await postForm(`${base}/subscribe/confirm/${tokenIn(optin, 'subscribe/confirm')}`, {})).status).toBe(303);
    expect(await subscriber(email)).toMatchObject([{ status: 'active', consent_source: 'sign form' }]);
    expect(await subscriptions(email)).toEqual([{ case_slug: campaign.caseSlug, status: 'active' }]);
  });

  it("records where a signer asked for alerts: the sign form's box, or a page posting through the API", async () => {
    const campaign = await createLiveCampaign(ctx.db);
    const consent = async (email: string) =>
      (await ctx.db.query<{ consent_source: string; consent_text: string }>(
        `SELECT x.consent_source, x.consent_text FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id WHERE lower(s.email) = lower($1)`,
        [email],
      )).rows;
    const byForm = emailOf('form-signer');
    const byApi = emailOf('embed-signer');
    expect((await postForm(`${base}/c/${campaign.slug}/sign`, { full_name: 'Form Signer', email: byForm, subscribe: 'on' })).status).toBe(303);
    expect((await postJson(`${base}/api/v1/campaigns/${campaign.slug}/signatures`, { fullName: 'Embed Signer', email: byApi, subscribe: true })).status).toBe(202);
    for (const email of [byForm, byApi]) {
      expect((await postForm(`${base}/confirm/${confirmToken(await waitForMail(ctx, email))}`, { v: '0' })).status).toBe(303);
    }
    expect(await consent(byForm)).toEqual([{ consent_source: 'sign form', consent_text: 'Email me updates about Aigerim Test' }]);
    // The embedding page's box is not ours to quote; the confirmation page the signer saw is.
    expect(await consent(byApi)).toEqual([{ consent_source: 'api', consent_text: 'Case updates by email: Yes, once confirmed' }]);
    expect(await subscriber(byApi)).toMatchObject([{ status: 'active', consent_source: 'api' }]);

    // Without confirmation the opt-in email asks, and the record still says the API.
    const quick = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    const quickApi = emailOf('quick-embed');
    expect((await postJson(`${base}/api/v1/campaigns/${quick.slug}/signatures`, { fullName: 'Quick Embed', email: quickApi, subscribe: true })).status).toBe(202);
    expect((await postForm(`${base}/subscribe/confirm/${tokenIn(await waitForMail(ctx, quickApi), 'subscribe/confirm')}`, {})).status).toBe(303);
    // Confirmed on the opt-in page: its words, not the subscribe form's (not what the embedding page showed).
    expect(await subscriber(quickApi)).toMatchObject([{ status: 'active', consent_source: 'api', consent_text: 'Confirm your subscription: you are about to get an email whenever there is news about Aigerim Test' }]);
    // Through the sign form, the consent quotes that form's box, not the subscribe form's words.
    const quickForm = emailOf('quick-form');
    expect((await postForm(`${base}/c/${quick.slug}/sign`, { full_name: 'Quick Form', email: quickForm, subscribe: 'on' })).status).toBe(303);
    expect((await postForm(`${base}/subscribe/confirm/${tokenIn(await waitForMail(ctx, quickForm), 'subscribe/confirm')}`, {})).status).toBe(303);
    expect(await consent(quickForm)).toEqual([{ consent_source: 'sign form', consent_text: 'Email me updates about Aigerim Test' }]);
    expect(await subscriber(quickForm)).toMatchObject([{ status: 'active', consent_source: 'sign form', consent_text: 'Email me updates about Aigerim Test' }]);
  });

  /** Subscribes `email` to the case, then to every case while a worker sends the first opt-in email again. @returns the subscriber's id. */
  const askAgainMidSend = async (email: string) => {
    expect((await postForm(`${base}/subscribe`, { email, case: caseSlug })).status).toBe(303);
    await waitForMail(ctx, email);
    // Its sent mark rides on the worker's next statement: once it is in, it cannot undo what follows.
    await optinSent(ctx, email);
    const { id } = (await subscriber(email))[0]!;
    // A worker sends the opt-in email again now (composed before what comes next was asked for).
    await ctx.db.query(`UPDATE deliveries SET status = 'sending', lease_until = now() + interval '1 hour' WHERE kind = 'optin' AND source_id = $1`, [id]);
    expect((await postForm(`${base}/subscribe`, { email })).status).toBe(303);
    await ctx.queues.settled();
    return id;
  };

  it('sends the opt-in email again for a request made while the one before it was being sent', async () => {
    const email = emailOf('mid-send');
    const id = await askAgainMidSend(email);
    const again = await ctx.queues.maintenance.getJob(`optin-again-${id}`);
    expect(again?.data).toEqual({ task: 'optin-again', subscriberId: id });
    expect(await again!.isDelayed()).toBe(true);
    // Its time comes while that send is still going on (a relay slow to answer): it looks again later.
    await again!.promote();
    const state = await eventually(async () => {
      const s = await ctx.queues.maintenance.getJobState(`optin-again-${id}`);
      return s === 'delayed' || s === 'completed' || s === 'unknown' ? s : undefined;
    });
    expect(state).toBe('delayed');
    expect(mailsTo(ctx, email)).toHaveLength(1);
    // That send ends; past the resend gap, the job sends the email again, naming the new request.
    await ctx.db.query(`UPDATE deliveries SET status = 'sent', sent_at = now() - interval '2 minutes', lease_until = NULL WHERE kind = 'optin' AND source_id = $1`, [id]);
    await again!.promote();
    const second = await waitForMail(ctx, email, 2);
    expect(second.text).toContain('every case');
    expect((await postForm(`${base}/subscribe/confirm/${tokenIn(second, 'subscribe/confirm')}`, {})).status).toBe(303);
    expect(await subscriptions(email)).toEqual([{ case_slug: null, status: 'active' }, { case_slug: caseSlug, status: 'active' }]);
  });

  /** Runs a sweep, and waits for it and for any maintenance job it added to have run. */
  const sweptAndIdle = async () => {
    const sweep = await ctx.queues.maintenance.add('sweep', { task: 'sweep' });
    await eventually(async () => (['completed', 'unknown'].includes(await ctx.queues.maintenance.getJobState(sweep.id!)) ? true : undefined));
    await eventually(async () => {
      const counts = await ctx.queues.maintenance.getJobCounts('waiting', 'prioritized', 'active');
      return Object.values(counts).every((n) => n === 0) ? true : undefined;
    });
  };

  it('owes nothing once what was asked for again is confirmed before its job runs: no sweep sends it', async () => {
    const email = emailOf('owed-confirmed');
    const id = await askAgainMidSend(email);
    const owed = async () => (await ctx.db.query<{ owed: boolean }>('SELECT optin_owed_at IS NOT NULL AS owed FROM subscribers WHERE id = $1', [id])).rows[0]!.owed;
    expect(await owed()).toBe(true);
    await ctx.db.query(`UPDATE deliveries SET status = 'sent', sent_at = now() - interval '3 minutes', lease_until = NULL WHERE kind = 'optin' AND source_id = $1`, [id]);
    // The email on its way names every request pending, the one just made too: confirmed there.
    expect((await postForm(`${base}/subscribe/confirm/${tokenIn(mailsTo(ctx, email)[0]!, 'subscribe/confirm')}`, {})).status).toBe(303);
    expect(await subscriptions(email)).toEqual([{ case_slug: null, status: 'active' }, { case_slug: caseSlug, status: 'active' }]);
    await (await ctx.queues.maintenance.getJob(`optin-again-${id}`))!.promote();
    await eventually(async () => ((await ctx.queues.maintenance.getJobState(`optin-again-${id}`)) === 'unknown' ? true : undefined));
    expect(await owed()).toBe(false);
    await sweptAndIdle();
    expect(mailsTo(ctx, email)).toHaveLength(1);
  });

  it('sends the opt-in email asked for again when Redis lost its job: the sweep adds it from what Postgres owes', async () => {
    const email = emailOf('owed');
    const id = await askAgainMidSend(email);
    const owed = async () => (await ctx.db.query<{ owed: boolean }>('SELECT optin_owed_at IS NOT NULL AS owed FROM subscribers WHERE id = $1', [id])).rows[0]!.owed;
    expect(await owed()).toBe(true);
    // Redis restarted with nothing on disk: the delayed job is gone. That send ends meanwhile.
    await (await ctx.queues.maintenance.getJob(`optin-again-${id}`))!.remove();
    await ctx.db.query(`UPDATE deliveries SET status = 'sent', sent_at = now() - interval '3 minutes', lease_until = NULL WHERE kind = 'optin' AND source_id = $1`, [id]);
    // Not before the job would have run, and a little more: a sweep now adds nothing.
    await sweptAndIdle();
    expect(await owed()).toBe(true);
    expect(mailsTo(ctx, email)).toHaveLength(1);
    await ctx.db.query(`UPDATE subscribers SET optin_owed_at = now() - interval '3 minutes' WHERE id = $1`, [id]);
    await ctx.queues.maintenance.add('sweep', { task: 'sweep' });
    const second = await waitForMail(ctx, email, 2);
    expect(second.text).toContain('every case');
    expect(await owed()).toBe(false);
  });

  it.runIf(kind === 'postgres')('runs the opt-in-again job and a new request for the same address side by side without a deadlock', async () => {
    const email = emailOf('side-by-side');
    await requestSubscription(ctx.db, ctx, { email, caseSlug }, 'api');
    const { id } = (await subscriber(email))[0]!;
    for (let round = 0; round < 15; round++) {
      await ctx.db.query(`UPDATE deliveries SET status = 'sent', sent_at = now() - interval '2 minutes' WHERE kind = 'optin' AND source_id = $1`, [id]);
      const outcomes = await Promise.allSettled([sendOptinAgain(ctx.db, ctx, id), requestSubscription(ctx.db, ctx, { email, caseSlug: round % 2 ? caseSlug : null }, 'api')]);
      expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    }
    await ctx.queues.settled();
  });

  it('asks a signer who had left the alerts and ticks the box again to opt in by email once the signature is confirmed', async () => {
    const campaign = await createLiveCampaign(ctx.db);
    const email = emailOf('came-back');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    expect((await postForm(`${base}/unsubscribe/${manage}`, {})).status).toBe(200);
    const before = mailsTo(ctx, email).length;
    expect((await postForm(`${base}/c/${campaign.slug}/sign`, { full_name: 'Came Back', email, subscribe: 'on' })).status).toBe(303);
    const confirmation = await waitForMail(ctx, email, before + 1);
    // The page says so before the button is pressed.
    const page = await (await fetch(`${base}/confirm/${confirmToken(confirmation)}`)).text();
    expect(page).toContain('Yes, once you confirm them too: an email will ask you');
    expect((await postForm(`${base}/confirm/${confirmToken(confirmation)}`, { v: '0' })).status).toBe(303);
    // The tick alone does not undo leaving: an opt-in email asks, and its button does.
    const optin = await waitForMail(ctx, email, before + 2);
    expect(optin.subject).toContain('Please confirm');
    expect(await subscriber(email)).toMatchObject([{ status: 'unsubscribed' }]);
    expect((await postForm(`${base}/subscribe/confirm/${tokenIn(optin, 'subscribe/confirm')}`, {})).status).toBe(303);
    expect(await subscriber(email)).toMatchObject([{ status: 'active' }]);
    expect(await subscriptions(email)).toEqual([{ case_slug: campaign.caseSlug, status: 'active' }]);
  });

  it('lets a bounced subscriber ask again: the opt-in goes despite the suppression, and confirming it lifts the suppression and restores only what it listed', async () => {
    const email = emailOf('bounced-back');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    await subscribeAndConfirm(ctx, base, email, otherCaseSlug);
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES (lower($1), 'bounce: 550 5.1.1 test', 'alert')`, [email]);
    await ctx.db.query(`UPDATE subscribers SET status = 'bounced' WHERE lower(email) = lower($1)`, [email]);

    const prefs = await fetch(`${base}/preferences/${manage}`);
    expect(prefs.headers.get('cache-control')).toBe('no-store, private');
    expect(prefs.headers.get('x-robots-tag')).toContain('noindex');
    const prefsPage = await prefs.text();
    expect(prefsPage).toContain('its mail server refused one');
    expect(prefsPage).toContain('<a class="button secondary" href="/subscribe">Subscribe again</a>');
    expect(prefsPage).toContain(`action="/unsubscribe/${manage}"`);
    // Not "already unsubscribed": one who bounced has not left, and may leave for good here.
    expect(await (await fetch(`${base}/unsubscribe/${manage}`)).text()).toContain(`action="/unsubscribe/${manage}"`);

    const before = mailsTo(ctx, email).length;
    // The case it followed when the mail bounced: that too waits for the opt-in now.
    expect((await postJson(`${base}/api/v1/subscribers`, { email, caseSlug })).status).toBe(202);
    const optin = await waitForMail(ctx, email, before + 1);
    expect(optin.subject).toContain('Please confirm');
    expect(await subscriptions(email)).toContainEqual({ case_slug: caseSlug, status: 'pending' });
    // Its page points at that email's button, and not at asking again: a suppressed address is sent one.
    const waiting = await (await fetch(`${base}/preferences/${manage}`)).text();
    expect(waiting).toContain('we sent an email that asks you to confirm. Press its button to start those alerts.</p>');
    expect(waiting).not.toContain('Asking again sends a new email');
    expect(waiting).not.toContain('href="/subscribe">Subscribe again</a>');
    expect((await postForm(`${base}/subscribe/confirm/${tokenIn(optin, 'subscribe/confirm')}`, {})).status).toBe(303);
    expect(await subscriber(email)).toMatchObject([{ status: 'active' }]);
    expect((await ctx.db.query('SELECT 1 FROM suppressions WHERE email = lower($1)', [email])).rowCount).toBe(0);
    // The address may have a new owner: only what this email listed comes back.
    expect(await subscriptions(email)).toEqual([{ case_slug: caseSlug, status: 'active' }]);
  });

  it('sends a suppressed address one asked-for email per suppression, not one per request', async () => {
    const email = emailOf('suppressed');
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES (lower($1), 'bounce: 550 5.1.1 test', 'alert')`, [email]);
    expect((await postJson(`${base}/api/v1/subscribers`, { email, caseSlug })).status).toBe(202);
    await waitForMail(ctx, email);
    await optinSent(ctx, email);
    await pastResendGap(ctx.db, email);
    expect((await postJson(`${base}/api/v1/subscribers`, { email, caseSlug: otherCaseSlug })).status).toBe(202);
    await eventually(async () => ((await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'optin' AND recipient = $1 AND status = 'failed' AND last_error LIKE 'suppressed%'`, [email])).rowCount ? true : undefined));
    expect(mailsTo(ctx, email)).toHaveLength(1);
  });

  it("keeps a suppressed address's one asked-for email through its own retries: greylisted at first, it goes on a later attempt", async () => {
    const email = emailOf('greylisted');
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES (lower($1), 'bounce: 550 5.1.1 test', 'alert')`, [email]);
    let refusals = 1;
    ctx.sink!.behavior = { onRcptTo: (a) => (a.address === email && refusals-- > 0 ? { code: 450, message: '4.2.0 greylisted, try again later' } : undefined) };
    try {
      expect((await postJson(`${base}/api/v1/subscribers`, { email, caseSlug })).status).toBe(202);
      const optin = await waitForMail(ctx, email);
      expect(optin.subject).toContain('Please confirm');
    } finally {
      ctx.sink!.behavior = {};
    }
    expect(refusals).toBe(-1);
    // The sink has the message before the worker records it sent.
    await optinSent(ctx, email);
    expect((await ctx.db.query(`SELECT status, attempts FROM deliveries WHERE kind = 'optin' AND recipient = $1`, [email])).rows).toEqual([{ status: 'sent', attempts: 2 }]);
    // The chance is used now: another request sends nothing.
    await pastResendGap(ctx.db, email);
    expect((await postJson(`${base}/api/v1/subscribers`, { email, caseSlug: otherCaseSlug })).status).toBe(202);
    await eventually(async () => ((await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'optin' AND recipient = $1 AND status = 'failed' AND last_error LIKE 'suppressed%'`, [email])).rowCount ? true : undefined));
    expect(mailsTo(ctx, email)).toHaveLength(1);
  });

  /**
   * Asks for caseSlug for a subscriber who follows it already (by name, or every case: `follows`
   * null): answered as anyone is, and emailed the link to their preferences, not an opt-in; the
   * same again moments later (a double click, the form sent twice) sends nothing more.
   */
  async function askedAgainForFollowed(email: string, manage: string, follows: string | null) {
    const mailsBefore = mailsTo(ctx, email).length;
    const res = await postForm(`${base}/subscribe`, { email: email.toUpperCase(), case: caseSlug });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/subscribe/check-email');
    // Someone who lost every alert email finds their way back: no confirmation, their own page.
    const reminder = await waitForMail(ctx, email, mailsBefore + 1);
    expect(reminder.subject).toBe('Your case alerts from Appeal Test');
    expect(reminder.text).toContain(`/preferences/${manage}`);
    expect(reminder.text).not.toContain('/subscribe/confirm/');
    expect(await subscriptions(email)).toEqual([{ case_slug: follows, status: 'active' }]);
    await optinSent(ctx, email);
    expect((await postForm(`${base}/subscribe`, { email, case: caseSlug })).status).toBe(303);
    await ctx.queues.settled();
    expect((await ctx.db.query(`SELECT status FROM deliveries WHERE kind = 'optin' AND recipient = $1`, [email])).rows).toEqual([{ status: 'sent' }]);
    expect(mailsTo(ctx, email)).toHaveLength(mailsBefore + 1);
    return reminder;
  }

  // A known address's request writes less than a new one's: without a floor, the answer's time
  // told whether it follows a case, as a signature's told whether it signed.
  it('answers a public request for alerts no sooner than a signature, whether the address follows already or not, and a bot alike', async () => {
    const email = emailOf('timed');
    await subscribeAndConfirm(ctx, base, email, caseSlug);
    await pastResendGap(ctx.db, email);
    for (const act of [
      () => subscribe(ctx.db, ctx, { email, caseSlug }, 'api'),
      () => subscribe(ctx.db, ctx, { email: emailOf('new'), caseSlug }, 'api'),
      () => pretendToSubscribe(ctx.db, { email: emailOf('bot'), caseSlug }),
    ]) {
      const began = performance.now();
      await act();
      // A timer may fire a fraction of a millisecond before its time on the clock read here.
      expect(performance.now() - began).toBeGreaterThanOrEqual(SIGN_ANSWER_MIN_MS - 1);
    }
  });

  it('sends a subscriber who asks again for a case they follow the link to their preferences, and answers as for anyone', async () => {
    const email = emailOf('already');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    const mailsBefore = mailsTo(ctx, email).length;
    const reminder = await askedAgainForFollowed(email, manage, caseSlug);
    // The link as text ends the paragraph: a full stop after it is copied with it, and 404s.
    expect(String(reminder.html)).toContain(`/preferences/${manage}</span></p>`);
    expect(reminder.text).toContain('Aigerim Test');
    await pastResendGap(ctx.db, email);
    // Asking for another case still sends an opt-in for it.
    await postForm(`${base}/subscribe`, { email, case: otherCaseSlug });
    const optin = await waitForMail(ctx, email, mailsBefore + 2);
    expect(optin.subject).toContain('Please confirm');
    // Ignoring it costs someone already subscribed nothing, and deletes nothing of theirs.
    expect(optin.text).toContain('nothing changes, and the alerts this\naddress gets already go on as before');
    expect(optin.text).not.toContain('deleted');
  });

  it('takes a case asked for by someone who gets every case\'s alerts as followed already: the link to their preferences, no opt-in', async () => {
    const email = emailOf('every');
    const manage = await subscribeAndConfirm(ctx, base, email);
    await pastResendGap(ctx.db, email);
    expect((await askedAgainForFollowed(email, manage, null)).text).toContain('every case');
  });

  it('refuses a form naming two cases instead of following all of them', async () => {
    const email = emailOf('two-cases');
    const res = await postForm(`${base}/subscribe`, { email, case: [caseSlug, otherCaseSlug] });
    expect(res.status).toBe(400);
    expect(await subscriber(email)).toEqual([]);
  });

  it('shows the form again, with the address typed, when the case is no longer listed', async () => {
    const email = emailOf('gone-case');
    const res = await postForm(`${base}/subscribe`, { email, case: 'no-such-case' });
    expect(res.status).toBe(404);
    const html = await res.text();
    expect(html).toContain(`value="${email}"`);
    expect(html).toContain('this case is no longer listed');
    expect(await subscriber(email)).toEqual([]);
  });

  it('records the page a subscription for one case was asked on: the subscribe page offers one case too', async () => {
    const page = await (await fetch(`${base}/subscribe?case=${caseSlug}`)).text();
    expect(page).toContain('name="source" value="subscribe"');
    expect(page).toContain(`name="case" value="${caseSlug}"`);
    const email = emailOf('subscribe-page-case');
    expect((await postForm(`${base}/subscribe`, { email, source: 'subscribe', case: caseSlug, website: '' })).status).toBe(303);
    const consent = async (address: string) =>
      (await ctx.db.query<{ consent_source: string }>(
        `SELECT x.consent_source FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id WHERE lower(s.email) = lower($1)`,
        [address],
      )).rows;
    expect(await consent(email)).toEqual([{ consent_source: 'subscribe page' }]);
    // A page served before forms said where they were (or a made-up value) is told by its case.
    const old = emailOf('old-form');
    expect((await postForm(`${base}/subscribe`, { email: old, source: 'toString', case: caseSlug, website: '' })).status).toBe(303);
    expect(await consent(old)).toEqual([{ consent_source: 'case page' }]);
  });

  it('refuses an API subscription whose case came out empty, or is named as the form names it, rather than take it for every case', async () => {
    for (const body of [{ caseSlug: '' }, { caseSlug: '  ' }, { case: caseSlug }]) {
      const email = emailOf('widened');
      const res = await postJson(`${base}/api/v1/subscribers`, { email, ...body });
      expect(res.status).toBe(422);
      const { error } = (await res.json()) as { error: { code: string; fields: Record<string, string> } };
      expect(error.code).toBe('invalid_input');
      expect(Object.keys(error.fields)).toEqual(['caseSlug']);
      expect(await subscriber(email)).toEqual([]);
    }
    // Left out, or null: every case, as before.
    for (const body of [{}, { caseSlug: null }]) {
      const email = emailOf('every');
      expect((await postJson(`${base}/api/v1/subscribers`, { email, ...body })).status).toBe(202);
      expect(await subscriptions(email)).toEqual([{ case_slug: null, status: 'pending' }]);
    }
  });

  it('keeps one subscriber per address whatever its casing, and answers alike for known and new addresses', async () => {
    const email = emailOf('casing');
    const first = await postJson(`${base}/api/v1/subscribers`, { email, caseSlug });
    const second = await postJson(`${base}/api/v1/subscribers`, { email: email.toUpperCase(), caseSlug });
    const fresh = await postJson(`${base}/api/v1/subscribers`, { email: emailOf('fresh') });
    expect([first.status, second.status, fresh.status]).toEqual([202, 202, 202]);
    const bodies = await Promise.all([first.json(), second.json(), fresh.json()]);
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
    expect(first.headers.get('access-control-allow-origin')).toBe('*');
    expect(await subscriber(email)).toHaveLength(1);
    expect(await subscriptions(email)).toEqual([{ case_slug: caseSlug, status: 'pending' }]);
  });

  it('sends one opt-in email for the same request twice in a row (a double click), and its link keeps working', async () => {
    const email = emailOf('double');
    const both = await Promise.all([0, 1].map(() => postForm(`${base}/subscribe`, { email, case: caseSlug })));
    expect(both.map((r) => r.status)).toEqual([303, 303]);
    const token = tokenIn(await waitForMail(ctx, email, 1), 'subscribe/confirm');
    await optinSent(ctx, email);
    // Once more after that email went, as a form sent again from the back button.
    expect((await postForm(`${base}/subscribe`, { email, case: caseSlug })).status).toBe(303);
    await ctx.queues.settled();
    const { rows } = await ctx.db.query<{ status: string }>(`SELECT status FROM deliveries WHERE kind = 'optin' AND recipient = $1`, [email]);
    expect(rows).toEqual([{ status: 'sent' }]);
    const { id } = (await subscriber(email))[0]!;
    expect(await ctx.queues.maintenance.getJob(`optin-again-${id}`)).toBeUndefined();
    expect((await fetch(`${base}/subscribe/confirm/${token}`)).status).toBe(200);
    expect(mailsTo(ctx, email)).toHaveLength(1);
    expect((await postForm(`${base}/subscribe/confirm/${token}`, {})).status).toBe(303);
    expect(await subscriptions(email)).toEqual([{ case_slug: caseSlug, status: 'active' }]);
  });

  it('holds a second opt-in asked for within the resend gap back until the gap is over, and sends one for a burst', async () => {
    const email = emailOf('burst');
    await postJson(`${base}/api/v1/subscribers`, { email, caseSlug });
    const firstToken = tokenIn(await waitForMail(ctx, email, 1), 'subscribe/confirm');
    await optinSent(ctx, email);
    for (let i = 0; i < 4; i++) expect((await postJson(`${base}/api/v1/subscribers`, { email, caseSlug: i % 2 ? caseSlug : otherCaseSlug })).status).toBe(202);
    const { rows } = await ctx.db.query<{ id: number; status: string }>(`SELECT id, status FROM deliveries WHERE kind = 'optin' AND recipient = $1`, [email]);
    expect(rows).toEqual([{ id: expect.any(Number), status: 'queued' }]);
    // Added once the answer has gone (Queues.later), and the last one's may still be finishing.
    const job = await eventually(async () => {
      const found = await ctx.queues.send.getJob(`d-${rows[0]!.id}`);
      return found && (await found.getState()) === 'delayed' ? found : undefined;
    });
    try {
      await new Promise((r) => setTimeout(r, 500));
      expect(mailsTo(ctx, email)).toHaveLength(1);
      // The link in the inbox stops at once: its page listed only the first case, and pressed now
      // it would turn on what someone else asked for since, unseen.
      expect((await fetch(`${base}/subscribe/confirm/${firstToken}`)).status).toBe(404);
    } finally {
      // Never left waiting a minute for the tests after this one.
      await job.promote();
    }
    const second = await waitForMail(ctx, email, 2);
    expect(second.text).toContain('Aigerim Test');
    await optinSent(ctx, email);
    await new Promise((r) => setTimeout(r, 300));
    expect(mailsTo(ctx, email)).toHaveLength(2);
  });

  it('lets a newer opt-in email replace the older one: the old link stops working', async () => {
    const email = emailOf('resend');
    await postJson(`${base}/api/v1/subscribers`, { email, caseSlug });
    const oldToken = tokenIn(await waitForMail(ctx, email, 1), 'subscribe/confirm');
    await optinSent(ctx, email);
    await pastResendGap(ctx.db, email);
    await postJson(`${base}/api/v1/subscribers`, { email, caseSlug: otherCaseSlug });
    const newMail = await waitForMail(ctx, email, 2);
    const newToken = tokenIn(newMail, 'subscribe/confirm');
    expect(newToken).not.toBe(oldToken);
    // A new email, not the old one again: providers drop a message whose Message-ID they have seen.
    expect(newMail.messageId).not.toBe((await waitForMail(ctx, email, 1)).messageId);
    const old = await fetch(`${base}/subscribe/confirm/${oldToken}`);
    expect(old.status).toBe(404);
    // The page says why, so the person looks for the newer email rather than giving up.
    expect(await old.text()).toContain('only the link in the newest email works');
    expect((await postForm(`${base}/subscribe/confirm/${newToken}`, {})).status).toBe(303);
    expect(await subscriptions(email)).toEqual(
      [{ case_slug: caseSlug, status: 'active' }, { case_slug: otherCaseSlug, status: 'active' }].sort((a, b) => a.case_slug.localeCompare(b.case_slug)),
    );
  });

  it('changes followed cases on the preferences page and can follow all cases', async () => {
    const email = emailOf('prefs');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    const page = await (await fetch(`${base}/preferences/${manage}`)).text();
    expect(page).toContain(`value="${caseSlug}" checked`);
    expect(page).toContain(`value="${otherCaseSlug}"`);
    expect(page).toContain(`action="/unsubscribe/${manage}"`);
    // A case still being prepared (only a draft campaign) is not shown to subscribers, nor can be followed yet.
    const { caseSlug: preparing } = await createLiveCampaign(ctx.db, {}, 'draft');
    const { caseSlug: announced } = await createLiveCampaign(ctx.db, {}, 'paused');
    const again = await (await fetch(`${base}/preferences/${manage}`)).text();
    expect(again).not.toContain(`value="${preparing}"`);
    expect(again).toContain(`value="${announced}"`);

    // The box sent twice (a hidden field before it, as some pages do) is ticked when either says so;
    // sent as multipart (a script's FormData), the fields are read as a browser's form sends them.
    const multipart = new FormData();
    for (const all of ['', 'on']) multipart.append('all', all);
    for (const slug of [otherCaseSlug, 'no-such-case', preparing]) multipart.append('cases', slug);
    const asMultipart = await fetch(`${base}/preferences/${manage}`, { method: 'POST', body: multipart, redirect: 'manual' });
    expect(asMultipart.status).toBe(303);
    expect(await subscriptions(email)).toEqual([
      { case_slug: null, status: 'active' },
      { case_slug: otherCaseSlug, status: 'active' },
    ]);
    const saved = await postForm(`${base}/preferences/${manage}`, { all: ['', 'on'], cases: [otherCaseSlug, 'no-such-case', preparing] });
    expect(saved.status).toBe(303);
    expect(saved.headers.get('location')).toBe(`/preferences/${manage}?saved=1`);
    expect(await subscriptions(email)).toEqual([
      { case_slug: null, status: 'active' },
      { case_slug: otherCaseSlug, status: 'active' },
    ]);
    // Consented with the words the page showed: its legend and the ticked box's label.
    const legend = /<legend>([^<]+)<\/legend>/.exec(page)![1]!;
    const allLabel = /<label for="p-all">([^<]+)<\/label>/.exec(page)![1]!;
    const otherName = (await ctx.db.query<{ person_name: string }>('SELECT person_name FROM cases WHERE slug = $1', [otherCaseSlug])).rows[0]!.person_name;
    expect(page).toContain(`${otherName} <span class="muted">`);
    const consents = (await ctx.db.query<{ consent_source: string; consent_text: string }>(
      `SELECT x.consent_source, x.consent_text FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
        WHERE lower(s.email) = lower($1) AND (x.case_id IS NULL OR x.case_id = (SELECT id FROM cases WHERE slug = $2)) ORDER BY x.case_id NULLS FIRST`,
      [email, otherCaseSlug],
    )).rows;
    expect(consents).toEqual([
      { consent_source: 'preferences page', consent_text: `${legend}: ${allLabel}` },
      { consent_source: 'preferences page', consent_text: `${legend}: ${otherName}` },
    ]);
    const after = await (await fetch(`${base}/preferences/${manage}?saved=1`)).text();
    expect(after).toContain('Saved. You will get alerts for what is ticked below.');
    expect(after).toMatch(/name="all" type="checkbox" value="on" checked/);
    // A request to follow a third case, then left unticked on this page (a save about the others):
    // the page shows it waiting for its email's button, and the save does not cancel it. (Asked
    // while following every case, it would be followed already: no request.)
    await postForm(`${base}/preferences/${manage}`, { cases: [otherCaseSlug] });
    await optinSent(ctx, email);
    await pastResendGap(ctx.db, email);
    // Counted before asking: the email may be in before the answer (which waits 25 ms).
    const before = mailsTo(ctx, email).length;
    expect((await postForm(`${base}/subscribe`, { email, case: announced })).status).toBe(303);
    const asked = await waitForMail(ctx, email, before + 1);
    const link = `${base}/subscribe/confirm/${tokenIn(asked, 'subscribe/confirm')}`;
    expect((await fetch(link)).status).toBe(200);
    const waiting = await (await fetch(`${base}/preferences/${manage}`)).text();
    expect(waiting).toMatch(new RegExp(`value="${announced}">\\s*<label[^>]*>[^<]*<span class="muted">\\([^)]*; asked for: confirm it with the button in the email we sent, or tick it here\\)`));
    await postForm(`${base}/preferences/${manage}`, { all: 'on', cases: [otherCaseSlug] });
    expect((await fetch(link)).status).toBe(200);
    const kept = await subscriptions(email);
    expect(kept).toHaveLength(3);
    expect(kept).toEqual(expect.arrayContaining([
      { case_slug: null, status: 'active' },
      { case_slug: otherCaseSlug, status: 'active' },
      { case_slug: announced, status: 'pending' },
    ]));
    // Nothing ticked while a request waits: no alert comes unless it is confirmed.
    await postForm(`${base}/preferences/${manage}`, {});
    const waitingOnly = await (await fetch(`${base}/preferences/${manage}?saved=1`)).text();
    expect(waitingOnly).toContain('Nothing is ticked: no alert comes unless you confirm what you asked for');
    // Nothing ticked and nothing asked for: the page says that means no alerts, and where leaving is.
    await ctx.db.query(`DELETE FROM subscriptions WHERE status = 'pending' AND subscriber_id = (SELECT id FROM subscribers WHERE lower(email) = lower($1))`, [email]);
    await postForm(`${base}/preferences/${manage}`, {});
    const none = await (await fetch(`${base}/preferences/${manage}?saved=1`)).text();
    expect(none).toContain('Nothing is ticked, so no alert will come');
  });

  it('unsubscribes with the page button, and stays unsubscribed until a new opt-in is confirmed', async () => {
    const email = emailOf('leave');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    const confirmPage = await fetch(`${base}/unsubscribe/${manage}`);
    expect(await confirmPage.text()).toContain(`action="/unsubscribe/${manage}"`);
    expect(await subscriber(email)).toMatchObject([{ status: 'active' }]);

    const left = await postForm(`${base}/unsubscribe/${manage}`, {});
    expect(left.status).toBe(200);
    expect(await subscriber(email)).toMatchObject([{ status: 'unsubscribed' }]);
    expect(await subscriptions(email)).toEqual([]);
    expect((await postForm(`${base}/unsubscribe/${manage}`, {})).status).toBe(200);

    // Asking again is only asking: still unsubscribed until the new email's button is pressed.
    const mailsBefore = mailsTo(ctx, email).length;
    expect((await postJson(`${base}/api/v1/subscribers`, { email, caseSlug })).status).toBe(202);
    const optin = await waitForMail(ctx, email, mailsBefore + 1);
    expect(await subscriber(email)).toMatchObject([{ status: 'unsubscribed' }]);
    // The address is kept as unsubscribed a while yet: ignoring the email drops only the request.
    expect(optin.text).toContain('this request\nis deleted after 3 days');
    expect(optin.text).not.toContain('the address is');
    const prefs = await (await fetch(`${base}/preferences/${manage}`)).text();
    expect(prefs).toContain('it has unsubscribed');
    // Not told to subscribe again as if nothing were on its way: the email that was is named.
    const personName = (await ctx.db.query<{ person_name: string }>('SELECT person_name FROM cases WHERE slug = $1', [caseSlug])).rows[0]!.person_name;
    expect(prefs).toContain(`You asked to follow <bdi>${personName}</bdi> again: we sent an email that asks you to confirm.`);
    await postForm(`${base}/preferences/${manage}`, { all: 'on' });
    expect(await subscriptions(email)).toEqual([{ case_slug: caseSlug, status: 'pending' }]);

    expect((await postForm(`${base}/subscribe/confirm/${tokenIn(optin, 'subscribe/confirm')}`, {})).status).toBe(303);
    expect(await subscriber(email)).toMatchObject([{ status: 'active' }]);
  });

  it('drops a request still unconfirmed when its subscriber leaves: its link says so, not that it was used', async () => {
    const email = emailOf('leave-asking');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    await pastResendGap(ctx.db, email);
    const before = mailsTo(ctx, email).length;
    expect((await postForm(`${base}/subscribe`, { email, case: otherCaseSlug })).status).toBe(303);
    const asked = await waitForMail(ctx, email, before + 1);
    const link = `${base}/subscribe/confirm/${tokenIn(asked, 'subscribe/confirm')}`;
    expect((await fetch(link)).status).toBe(200);

    expect((await postForm(`${base}/unsubscribe/${manage}`, {})).status).toBe(200);
    const unused = await fetch(link);
    expect(unused.status).toBe(404);
    expect(await unused.text()).not.toContain('already used');

    // One who asked for nothing more: the link they used still says what became of it.
    const other = emailOf('leave-used');
    const otherManage = await subscribeAndConfirm(ctx, base, other, caseSlug);
    expect((await postForm(`${base}/unsubscribe/${otherManage}`, {})).status).toBe(200);
    const usedPage = await fetch(`${base}/subscribe/confirm/${tokenIn(await waitForMail(ctx, other), 'subscribe/confirm')}`);
    expect(usedPage.status).toBe(410);
    const used = await usedPage.text();
    expect(used).toContain('already used, and these alerts have stopped since');
    expect(used).toContain('<a class="button secondary" href="/subscribe">Subscribe again</a>');
    // The page to leave, seen again after leaving (Back, Reload), says how to come back too.
    expect(await (await fetch(`${base}/unsubscribe/${otherManage}`)).text()).toContain('Changed your mind? Subscribe again');
    // A request's page gives a way back for an address typed wrong.
    expect(await (await fetch(`${base}/subscribe/check-email`)).text()).toContain('<a href="/subscribe">subscribe again</a> with the right one');
  });

  it('unsubscribes with one click whatever charset, encoding or body the mailbox provider sends', async () => {
    const bodies: [string, string, Record<string, string>?][] = [
      ['application/x-www-form-urlencoded; charset=windows-1252', 'List-Unsubscribe=One-Click'],
      ['application/x-www-form-urlencoded', 'List-Unsubscribe=One-Click', { 'content-encoding': 'br' }],
      ['application/json', '{not json'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--x--\r\n'],
    ];
    for (const [type, body, headers] of bodies) {
      const email = emailOf('one-click');
      const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
      const res = await fetch(`${base}/unsubscribe/${manage}`, { method: 'POST', headers: { 'content-type': type, ...headers }, body });
      expect(res.status, type).toBe(200);
      expect(await subscriber(email), type).toMatchObject([{ status: 'unsubscribed' }]);
    }
    // A link with the punctuation after it taken in, as a mail client may make it: the pages move
    // to their address, and a post is read with the token alone.
    const email = emailOf('one-click-dot');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    for (const page of ['unsubscribe', 'preferences']) {
      const moved = await fetch(`${base}/${page}/${manage}%3E`, { redirect: 'manual' });
      expect(moved.status, page).toBe(301);
      expect(moved.headers.get('location'), page).toBe(`/${page}/${manage}`);
    }
    const res = await fetch(`${base}/unsubscribe/${manage}.`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
    expect(res.status).toBe(200);
    expect(await subscriber(email)).toMatchObject([{ status: 'unsubscribed' }]);
  });

  it('answers an unknown token with 404 and changes nothing', async () => {
    const email = emailOf('bystander');
    await subscribeAndConfirm(ctx, base, email, caseSlug);
    const statuses = async () => (await ctx.db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM subscribers GROUP BY status ORDER BY status')).rows;
    const before = await statuses();
    const unknown = 'A'.repeat(43);
    const oneClick = await fetch(`${base}/unsubscribe/${unknown}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(oneClick.status).toBe(404);
    expect((await fetch(`${base}/unsubscribe/x`)).status).toBe(404);
    expect((await postForm(`${base}/unsubscribe/x`, {})).status).toBe(404);
    expect((await fetch(`${base}/preferences/${unknown}`)).status).toBe(404);
    expect((await postForm(`${base}/preferences/${unknown}`, { all: 'on' })).status).toBe(404);
    expect((await fetch(`${base}/subscribe/confirm/${unknown}`)).status).toBe(404);
    expect((await postForm(`${base}/subscribe/confirm/${unknown}`, {})).status).toBe(404);
    expect(await statuses()).toEqual(before);
  });

  it('refuses bad input with the field named, an unknown case with 404 and an oversize body with 413', async () => {
    const api = await postJson(`${base}/api/v1/subscribers`, { email: 'not-an-address' });
    expect(api.status).toBe(422);
    expect(((await api.json()) as { error: { fields: Record<string, string> } }).error.fields).toHaveProperty('email');

    const form = await postForm(`${base}/subscribe`, { email: 'nope', case: caseSlug });
    expect(form.status).toBe(400);
    const html = await form.text();
    expect(html).toContain('aria-invalid="true"');
    expect(html).toContain('value="nope"');
    expect(html).toContain('href="#s-email"');

    expect((await postJson(`${base}/api/v1/subscribers`, { email: emailOf('x'), caseSlug: 'no-such-case' })).status).toBe(404);
    expect((await postForm(`${base}/subscribe`, { email: emailOf('x'), case: 'no-such-case' })).status).toBe(404);
    expect((await postJson(`${base}/api/v1/subscribers`, { email: emailOf('x'), padding: 'x'.repeat(40_000) })).status).toBe(413);
    expect((await postForm(`${base}/subscribe`, { email: emailOf('x'), padding: 'x'.repeat(40_000) })).status).toBe(413);
  });

  it('stores and sends nothing for a filled honeypot, answering as if it had', async () => {
    const email = emailOf('bot');
    const form = await postForm(`${base}/subscribe`, { email, website: 'http://spam.example' });
    expect(form.status).toBe(303);
    expect(form.headers.get('location')).toBe('/subscribe/check-email');
    expect((await postJson(`${base}/api/v1/subscribers`, { email, website: 'x' })).status).toBe(202);
    expect(await subscriber(email)).toEqual([]);
    // Its mistakes are answered as a person's would be: a 202 for a bad address would give it away.
    expect((await postJson(`${base}/api/v1/subscribers`, { email: 'not-an-address', website: 'x' })).status).toBe(422);
    expect((await postJson(`${base}/api/v1/subscribers`, { email, caseSlug: 'no-such-case', website: 'x' })).status).toBe(404);
    expect((await postForm(`${base}/subscribe`, { email: 'not-an-address', website: 'x' })).status).toBe(400);
    expect((await postForm(`${base}/subscribe`, { email, case: 'no-such-case', website: 'x' })).status).toBe(404);
    expect(await subscriber(email)).toEqual([]);
  });

});

describe('posting the same subscription again and again', () => {
  let ctx: TestContext;
  let base: string;
  beforeAll(async () => {
    // No workers: the first opt-in stays on its way, so every later post sends nothing.
    ctx = await createTestContext({ db: 'postgres', env: { RATE_LIMIT_PER_IP: '0' } });
    base = await ctx.startWeb();
  });
  afterAll(async () => {
    await ctx?.close();
  });

  it('queues one opt-in, and refuses the 11th post as it would if each had sent one, so the 429 tells nothing', async () => {
    const email = emailOf('again');
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await postJson(`${base}/api/v1/subscribers`, { email, caseSlug: i % 2 ? caseSlug : undefined })).status);
    for (let i = 0; i < 3; i++) statuses.push((await postForm(`${base}/subscribe`, { email })).status);
    expect(statuses).toEqual([...Array(8).fill(202), 303, 303, 429]);
    const { rows } = await ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM deliveries WHERE kind = 'optin' AND recipient = $1`, [email]);
    expect(rows[0]!.n).toBe(1);
    // A post refused for what it is (an unknown case) does not count, by the hour nor by the day.
    const other = emailOf('typo');
    for (let i = 0; i < 21; i++) expect((await postJson(`${base}/api/v1/subscribers`, { email: other, caseSlug: 'no-such-case' })).status).toBe(404);
    expect((await postJson(`${base}/api/v1/subscribers`, { email: other })).status).toBe(202);
  });

  it('refuses the 21st post naming one address within a day, hours apart as they may be', async () => {
    const email = emailOf('daily');
    // The web's counts are in its memory, and expire by the clock.
    const now = Date.now.bind(Date);
    let later = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => now() + later);
    onTestFinished(() => clock.mockRestore());
    const hourPassed = () => void (later += 3601_000);
    for (let hour = 0; hour < 2; hour++) {
      for (let i = 0; i < 10; i++) expect((await postJson(`${base}/api/v1/subscribers`, { email })).status).toBe(202);
      hourPassed();
    }
    const refused = await postJson(`${base}/api/v1/subscribers`, { email });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(20 * 3600);
    expect((await refused.json()).error.message).toMatch(/too many requests recently .*Please try again in 2[2-4] hours\./);
    const form = await postForm(`${base}/subscribe`, { email });
    expect(form.status).toBe(429);
    expect(await form.text()).toMatch(/try again in 2[2-4] hours/);
    // The day over, the address has its ten posts an hour again.
    later += 86_400_000 - 2 * 3601_000 + 1000;
    for (let i = 0; i < 10; i++) expect((await postJson(`${base}/api/v1/subscribers`, { email })).status).toBe(202);
    expect((await postJson(`${base}/api/v1/subscribers`, { email })).status).toBe(429);
  });
});

describe('subscribing from one address too often', () => {
  let ctx: TestContext;
  let base: string;
  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres', env: { RATE_LIMIT_PER_IP: '3' } });
    base = await ctx.startWeb();
  });
  afterAll(async () => {
    await ctx?.close();
  });

  it('answers 429 with Retry-After once the per-IP limit is used up; neither IP nor address reaches Redis', async () => {
    const emails = Array.from({ length: 4 }, () => emailOf('ip'));
    const statuses: number[] = [];
    for (const email of emails) statuses.push((await postForm(`${base}/subscribe`, { email })).status);
    expect(statuses).toEqual([303, 303, 303, 429]);
    const api = await postJson(`${base}/api/v1/subscribers`, { email: emailOf('ip') });
    expect(api.status).toBe(429);
    expect(Number(api.headers.get('retry-after'))).toBeGreaterThan(0);
    // A Redis dump (or its append-only file, which keeps the order of writes) must not list who
    // asked, nor from where: the web's counts, per IP and per client and address, stay in its
    // memory (the emails' counts, the workers', are keyed hashes: see address-allowance.test.ts).
    expect(await ctx.redis.client.keys(`${ctx.config.queuePrefix}:rl:*`)).toEqual([]);
  });
});

describe('subscribers on Postgres: more cases than a page lists, and requests racing an unsubscribe or an unpublish', () => {
  let ctx: TestContext;
  let base: string;

  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres', env: { RATE_LIMIT_PER_IP: '0' } });
    base = await ctx.startWeb();
    await ctx.startWorkers();
  }, 60_000);
  afterAll(async () => {
    await ctx?.close();
  });

  it('lists the cases they follow whatever their names, and saves more than fifty ticked at once', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = emailOf('many');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    // 520 announced cases whose names sort before the followed one's ("Aigerim Test").
    await ctx.db.query(
      `WITH k AS (
         INSERT INTO cases (slug, person_name, summary, status)
         SELECT 'many-' || g, 'Aa ' || lpad(g::text, 4, '0'), 'Detained.', 'detained' FROM generate_series(1, 520) g RETURNING id
       ) INSERT INTO case_updates (case_id, title, body) SELECT id, 'Hearing set', 'A date was set.' FROM k`,
    );
    const page = await (await fetch(`${base}/preferences/${manage}`)).text();
    expect(page).toContain(`value="${caseSlug}" checked`);
    expect(page.match(/name="cases"/g)).toHaveLength(500);

    const more = Array.from({ length: 60 }, (_, i) => `many-${i + 1}`);
    const saved = await postForm(`${base}/preferences/${manage}`, { cases: [caseSlug, ...more] });
    expect(saved.status).toBe(303);
    const { rows } = await ctx.db.query<{ n: number; followed: boolean }>(
      `SELECT count(*)::int AS n, bool_or(c.slug = $2) AS followed FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
         JOIN cases c ON c.id = x.case_id WHERE s.email = $1 AND x.status = 'active'`,
      [email, caseSlug],
    );
    expect(rows).toEqual([{ n: 61, followed: true }]);

    // The page's last case not followed is ticked after a case that sorts first was announced: the save
    // decides what the page listed, so it is followed, though the list would now end before it.
    const opened = await (await fetch(`${base}/preferences/${manage}`)).text();
    const listed = /name="listed" value="([\d ]+)"/.exec(opened)![1]!;
    const last = [...opened.matchAll(/name="cases" type="checkbox" value="([^"]+)">/g)].at(-1)![1]!;
    await ctx.db.query(
      `WITH k AS (INSERT INTO cases (slug, person_name, summary, status) VALUES ($1, 'Aa 0000', 'Detained.', 'detained') RETURNING id)
       INSERT INTO case_updates (case_id, title, body) SELECT id, 'Arrested', 'Today.' FROM k`,
      [uniq('first')],
    );
    const ticked = [...opened.matchAll(/name="cases" type="checkbox" value="([^"]+)" checked/g)].map((m) => m[1]!);
    expect((await postForm(`${base}/preferences/${manage}`, { cases: [...ticked, last], listed })).status).toBe(303);
    const following = async () => (await ctx.db.query<{ slug: string }>(
      `SELECT c.slug FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id JOIN cases c ON c.id = x.case_id WHERE s.email = $1 AND x.status = 'active' ORDER BY c.slug`,
      [email],
    )).rows.map((r) => r.slug);
    expect(await following()).toContain(last);
    expect(await following()).toHaveLength(62);
    // What a page did not list is left as it is: only many-1 was listed, and it is unticked.
    const { rows: [one] } = await ctx.db.query<{ id: number }>(`SELECT id FROM cases WHERE slug = 'many-1'`);
    expect((await postForm(`${base}/preferences/${manage}`, { listed: String(one!.id) })).status).toBe(303);
    expect(await following()).toHaveLength(61);
    expect(await following()).not.toContain('many-1');
  }, 60_000);

  it('leaves alone what a page that listed no case did not show', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = emailOf('listed-none');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    // A page opened when there was no case to list, saved with "every case" ticked.
    expect((await postForm(`${base}/preferences/${manage}`, { all: 'on', listed: '' })).status).toBe(303);
    const { rows } = await ctx.db.query<{ slug: string | null }>(
      `SELECT c.slug FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id LEFT JOIN cases c ON c.id = x.case_id WHERE s.email = $1 ORDER BY c.slug NULLS FIRST`,
      [email],
    );
    expect(rows).toEqual([{ slug: null }, { slug: caseSlug }]);
  });

  const subscriptionsOf = async (id: number) =>
    (await ctx.db.query<{ status: string }>('SELECT status FROM subscriptions WHERE subscriber_id = $1', [id])).rows;

  it('leaves nothing followed when a preferences save meets an unsubscribe', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const { caseSlug: other } = await createLiveCampaign(ctx.db);
    const email = emailOf('prefs-race');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    const { rows: [sub] } = await ctx.db.query<{ id: number }>('SELECT id FROM subscribers WHERE email = $1', [email]);
    // The unsubscribe has run its statements and not yet committed when the save comes.
    const saved = await whileHeld(ctx.db, (tx) => markUnsubscribed(tx, sub!.id), () => updatePreferences(ctx.db, manage, { all: false, caseSlugs: [caseSlug, other] }));
    expect(saved).toEqual({ status: 'fulfilled', value: false });
    expect(await subscriptionsOf(sub!.id)).toEqual([]);
  });

  it('does not deadlock, nor lose the unsubscribe, when an opt-in is confirmed as the subscriber leaves', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const { caseSlug: other } = await createLiveCampaign(ctx.db);
    const email = emailOf('confirm-race');
    await subscribeAndConfirm(ctx, base, email, caseSlug);
    await requestSubscription(ctx.db, ctx, { email, caseSlug: other }, 'api');
    const { rows: [sub] } = await ctx.db.query<{ id: number; optin_round: number }>('SELECT id, optin_round FROM subscribers WHERE email = $1', [email]);
    // The unsubscribe holds the subscriber (its first statement) when the confirmation comes, and
    // deletes the subscriptions once the confirmation waits.
    const confirmed = await whileHeld(
      ctx.db,
      async (tx) => void (await tx.query(`UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = now() WHERE id = $1`, [sub!.id])),
      () => confirmSubscription(ctx.db, ctx, optinToken(ctx.secret, sub!)),
      (tx) => markUnsubscribed(tx, sub!.id),
    );
    expect(confirmed.status).toBe('rejected');
    expect((confirmed as PromiseRejectedResult).reason).toBeInstanceOf(NotFoundError);
    expect((await ctx.db.query('SELECT status FROM subscribers WHERE id = $1', [sub!.id])).rows).toEqual([{ status: 'unsubscribed' }]);
    expect(await subscriptionsOf(sub!.id)).toEqual([]);
  });

  it('refuses to follow a case unpublished while the request waited', async () => {
    const { rows: [kase] } = await ctx.db.query<{ id: number; slug: string }>(
      `INSERT INTO cases (slug, person_name, summary, status) VALUES ($1, 'Not Yet Announced', 'S', 'detained') RETURNING id, slug`,
      [uniq('quiet')],
    );
    const email = emailOf('unpublished-race');
    const asked = await whileHeld(
      ctx.db,
      async (tx) => void (await tx.query('UPDATE cases SET published = false WHERE id = (SELECT id FROM cases WHERE id = $1 FOR UPDATE)', [kase!.id])),
      () => requestSubscription(ctx.db, ctx, { email, caseSlug: kase!.slug }, 'api'),
    );
    expect(asked.status).toBe('rejected');
    expect((asked as PromiseRejectedResult).reason).toBeInstanceOf(NotFoundError);
    expect((await ctx.db.query('SELECT 1 FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id WHERE s.email = $1', [email])).rows).toEqual([]);
  });
});
