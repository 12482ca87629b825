import type { ParsedMail } from 'mailparser';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withdrawCaseUpdate } from '../../src/alerts/service.ts';
import { createCase } from '../../src/cases/service.ts';
import { signedIn } from '../helpers/admin-client.ts';
import { whileHeld } from '../helpers/locks.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { DB_KINDS } from '../helpers/db.ts';
import { createLiveCampaign, createToken, uniq } from '../helpers/fixtures.ts';
import { eventually, getJson, mailsTo, postForm, postJson, subscribeAndConfirm, tokenIn, waitForMail } from '../helpers/subscribers.ts';

const emailOf = (name: string) => `${uniq(name)}@reader.example`;
/** A header as it was sent (mailparser folds List-* headers into one parsed object). */
const header = (mail: ParsedMail, name: string) =>
  (mail.headerLines.find((h) => h.key === name)?.line ?? '').replace(/^[^:]+:\s*/, '').replace(/\r?\n\s+/g, ' ');
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(DB_KINDS)('case alerts on %s', (kind) => {
  let ctx: TestContext;
  let base: string;
  let apiToken: string;

  /** Posts an update through the API and waits until its fan-out has created every delivery. */
  async function postUpdate(caseSlug: string, title = uniq('Hearing moved')) {
    const res = await postJson(`${base}/api/v1/cases/${caseSlug}/updates`, { title, body: 'The court meets on Monday.\nPlease write now: https://news.example/report?a=1&b=2.' }, apiToken);
    expect(res.status).toBe(202);
    const body = (await res.json()) as { id: number; recipients: number };
    await eventually(async () => ((await ctx.db.query('SELECT 1 FROM case_updates WHERE id = $1 AND fanned_out_at IS NOT NULL', [body.id])).rowCount ? true : undefined));
    return { ...body, title };
  }
  const alertStats = (id: number) => getJson(`${base}/api/v1/alerts/${id}`, apiToken);
  const settled = (id: number, recipients: number) =>
    eventually(async () => {
      const { body } = await alertStats(id);
      return (body.sent as number) + (body.failed as number) >= recipients ? body : undefined;
    });

  beforeAll(async () => {
    ctx = await createTestContext({ db: kind, env: { RATE_LIMIT_PER_IP: '0' } });
    base = await ctx.startWeb();
    await ctx.startWorkers();
    apiToken = await createToken(ctx.db);
  });
  afterAll(async () => {
    await ctx?.close();
  });

  it('posts an update once when the same request comes twice with one Idempotency-Key', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = emailOf('twice');
    await subscribeAndConfirm(ctx, base, email, caseSlug);
    const post = (body = 'Write today.', token = apiToken) =>
      fetch(`${base}/api/v1/cases/${caseSlug}/updates`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': 'retry-after-timeout-1' },
        body: JSON.stringify({ title: 'Verdict on Friday', body }),
      });
    const first = (await (await post()).json()) as { id: number };
    const second = (await (await post()).json()) as { id: number };
    expect(second.id).toBe(first.id);
    // The key again with other text, or from another organizer: refused, not answered with the first update.
    const changed = await post('Write today, and call.');
    expect(changed.status).toBe(422);
    expect(((await changed.json()) as { error: { fields: object } }).error.fields).toHaveProperty('idempotencyKey');
    expect((await post('Write today.', await createToken(ctx.db))).status).toBe(422);
    // A key too long to keep whole is refused, not cut: two cut the same way would be one update.
    const long = await fetch(`${base}/api/v1/cases/${caseSlug}/updates`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiToken}`, 'idempotency-key': 'k'.repeat(201) },
      body: JSON.stringify({ title: 'Verdict on Friday', body: 'Write today.' }),
    });
    expect(long.status).toBe(422);
    expect(((await long.json()) as { error: { fields: object } }).error.fields).toEqual({ idempotencyKey: 'must be at most 200 characters' });
    await settled(first.id, 1);
    await pause(500);
    expect(mailsTo(ctx, email).filter((m) => m.subject?.includes('Verdict on Friday'))).toHaveLength(1);
    const { rows } = await ctx.db.query('SELECT id FROM case_updates WHERE title = $1', ['Verdict on Friday']);
    expect(rows).toHaveLength(1);
    // Repeated once the update went out, to someone who subscribed since: they are not sent it,
    // and the update's counts still add up.
    const later = emailOf('later');
    await subscribeAndConfirm(ctx, base, later, caseSlug);
    await eventually(async () => ((await ctx.db.query('SELECT fanned_out_at FROM case_updates WHERE id = $1', [first.id])).rows[0]?.fanned_out_at ? true : undefined));
    expect(((await (await post()).json()) as { id: number; recipients: number })).toMatchObject({ id: first.id, recipients: 1 });
    await pause(1_000);
    expect(mailsTo(ctx, later).filter((m) => m.subject?.includes('Verdict on Friday'))).toEqual([]);
    expect((await alertStats(first.id)).body).toEqual({ recipients: 1, sent: 1, failed: 0, withdrawn: false });
    // Audited once, as the console audits a posted update.
    const audit = await ctx.db.query<{ action: string; detail: object }>(`SELECT action, detail FROM audit_log WHERE object = $1`, [`case:${caseSlug}`]);
    expect(audit.rows).toEqual([{ action: 'case.update_post', detail: { update: first.id, recipients: 1, via: expect.stringMatching(/^API token #\d+ "/) } }]);
  });

  // A 503 after the update committed (its answer lost with the connection) says to send it again,
  // and a client without a key does: that must not alert everyone a second time.
  it('takes the same update sent again without a key by its organizer as the same request; other text, another organizer or a withdrawn update posts anew', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = emailOf('unkeyed');
    await subscribeAndConfirm(ctx, base, email, caseSlug);
    const title = uniq('Trial set');
    const post = async (body: string, token = apiToken) => {
      const res = await postJson(`${base}/api/v1/cases/${caseSlug}/updates`, { title, body }, token);
      expect(res.status).toBe(202);
      return (await res.json()) as { id: number; recipients: number };
    };
    const first = await post('The trial is on Friday.');
    const again = await Promise.all([post('The trial is on Friday.'), post('The trial is on Friday.')]);
    expect(again).toEqual([first, first]);
    const byAnother = await post('The trial is on Friday.', await createToken(ctx.db));
    const other = await post('The trial is on Saturday.');
    expect(new Set([first.id, other.id, byAnother.id]).size).toBe(3);
    // The first words again after other ones of theirs: news again ("cancelled", then "on Friday" after all).
    const back = await post('The trial is on Friday.');
    expect(back.id).toBeGreaterThan(other.id);
    expect(await post('The trial is on Friday.')).toEqual(back);
    // Withdrawn, it is not what they posted last.
    await withdrawCaseUpdate(ctx.db, caseSlug, back.id, null);
    const anew = await post('The trial is on Friday.');
    expect(anew.id).toBeGreaterThan(back.id);
    await Promise.all([first, byAnother, other, anew].map((u) => settled(u.id, 1)));
    await pause(500);
    // One alert per update posted; the withdrawn one's may have gone before it was withdrawn.
    expect(mailsTo(ctx, email).filter((m) => m.text?.includes('The trial is on Friday.')).length).toBeGreaterThanOrEqual(3);
    expect(mailsTo(ctx, email).filter((m) => m.text?.includes('The trial is on Friday.')).length).toBeLessThanOrEqual(4);
    // Audited once per update posted, not per request.
    const audit = await ctx.db.query(`SELECT 1 FROM audit_log WHERE object = $1 AND action = 'case.update_post'`, [`case:${caseSlug}`]);
    expect(audit.rowCount).toBe(5);
  });

  // Two organizers who previewed the same news press Post at the same moment: neither preview could
  // warn of the other's, and each Post looked before either had posted.
  it('posts once an update two organizers previewed and posted at the same moment, and holds the other back; one form sent twice is posted once, both answers saying so', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    await subscribeAndConfirm(ctx, base, emailOf('twice-posted'), caseSlug);
    const news = { title: `Verdict ${uniq('v')}`, body: 'The court ruled today.' };
    const organizers = await Promise.all([signedIn(base, ctx.db, 'organizer'), signedIn(base, ctx.db, 'organizer')]);
    for (let round = 1; round <= 3; round++) {
      const text = { ...news, body: `${news.body} (${round})` };
      const forms = await Promise.all(organizers.map(async ({ client }) => {
        const html = (await client.post(`/admin/cases/${caseSlug}/updates/preview`, text)).text;
        return { ...text, request_key: /name="request_key" value="([^"]+)"/.exec(html)![1]!, seen_posted: /name="seen_posted" value="(\d+)"/.exec(html)![1]! };
      }));
      const answers = await Promise.all(organizers.map(({ client }, i) => client.post(`/admin/cases/${caseSlug}/updates`, forms[i]!)));
      expect(answers.map((a) => a.status).sort()).toEqual([303, 409]);
      expect(answers.find((a) => a.status === 409)!.text).toContain('its alert went to 1 subscriber. Posting it again sends a second alert to everyone.');
      expect((await ctx.db.query('SELECT 1 FROM case_updates WHERE body = $1', [text.body])).rowCount).toBe(1);
      // One Post form sent twice at once (a double click without the page's script): both answers
      // say posted, as the update was, once; not "Not posted".
      const twice = { ...text, title: `${news.title} again` };
      const html = (await organizers[0]!.client.post(`/admin/cases/${caseSlug}/updates/preview`, twice)).text;
      const form = { ...twice, request_key: /name="request_key" value="([^"]+)"/.exec(html)![1]!, seen_posted: /name="seen_posted" value="(\d+)"/.exec(html)![1]! };
      const pressed = await Promise.all([1, 2].map(() => organizers[0]!.client.post(`/admin/cases/${caseSlug}/updates`, form)));
      expect(pressed.map((a) => a.status)).toEqual([303, 303]);
      expect((await ctx.db.query('SELECT 1 FROM case_updates WHERE title = $1 AND body = $2', [twice.title, twice.body])).rowCount).toBe(1);
    }
  });

  it('sends a confirmed subscriber an alert with the case, the update, and preferences and unsubscribe links', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = emailOf('follower');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);

    const update = await postUpdate(caseSlug, 'Hearing moved to Monday');
    expect(update.recipients).toBe(1);
    const alert = await waitForMail(ctx, email, 2);
    expect(alert.subject).toBe('Aigerim Test: Hearing moved to Monday');
    expect(alert.from!.value[0]).toEqual({ name: 'Appeal Test', address: 'letters@appeal.test' });
    for (const part of [alert.text!, alert.html as string]) {
      // Where the case stands, as its page says it.
      expect(part.replace(/<\/?bdi>/g, '')).toContain('Aigerim Test · detained · Almaty');
      expect(part).toContain('Hearing moved to Monday');
      expect(part).toContain('The court meets on Monday.');
      expect(part).toContain(`${base}/cases/${caseSlug}`);
      expect(part).toContain(`${base}/preferences/${manage}`);
      expect(part).toContain(`${base}/unsubscribe/${manage}`);
    }
    // A link in the update is one in the HTML part too, as on the case page.
    expect(alert.html).toContain('<div dir="auto">Please write now: <a href="https://news.example/report?a&#x3D;1&amp;b&#x3D;2" rel="nofollow noopener noreferrer">https://news.example/report?a&#x3D;1&amp;b&#x3D;2</a>.</div>');
    expect(alert.text).toContain('Please write now: https://news.example/report?a=1&b=2.');
    expect(header(alert, 'list-unsubscribe')).toContain(`${base}/unsubscribe/${manage}`);
    expect(header(alert, 'list-unsubscribe')).toContain('mailto:letters@appeal.test');
    expect(header(alert, 'list-unsubscribe-post')).toBe('List-Unsubscribe=One-Click');
    expect(header(alert, 'auto-submitted')).toBe('auto-generated');
    expect(header(alert, 'precedence')).toBe('bulk');
    expect(header(alert, 'x-auto-response-suppress')).toBe('All');
    expect(header(alert, 'list-id')).toContain('case-alerts.appeal.test');
    expect(await settled(update.id, 1)).toEqual({ recipients: 1, sent: 1, failed: 0, withdrawn: false });

    const casePage = await (await fetch(`${base}/cases/${caseSlug}`)).text();
    expect(casePage).toContain('Hearing moved to Monday');
  });

  it('keeps a right-to-left name and place in their places in an alert\'s first line, and in its plain text', async () => {
    const caseSlug = uniq('uy');
    await createCase(ctx.db, { slug: caseSlug, personName: 'ئايگۈل', summary: 'Fled the camps.', status: 'detained', location: 'ئۈرۈمچى' });
    const email = emailOf('rtl');
    await subscribeAndConfirm(ctx, base, email, caseSlug);
    await postUpdate(caseSlug, 'Hearing moved to Monday');
    const alert = await waitForMail(ctx, email, 2);
    // Bare, the line starts a right-to-left paragraph in a plain-text reader, and reads backwards.
    expect(alert.text).toContain('\u2068ئايگۈل\u2069 · detained · \u2068ئۈرۈمچى\u2069\n');
    expect(alert.html).toContain('<bdi>ئايگۈل</bdi> · detained · <bdi>ئۈرۈمچى</bdi>');
    // The opt-in email's list of what was asked for: the name after the dash, not before it.
    expect(mailsTo(ctx, email)[0]!.text).toContain('- \u2068ئايگۈل\u2069\n');
  });

  it('shows the case as it was when the update was posted, whatever it became while its alerts were queued', async () => {
    const { insertCaseUpdate, getAlertPartsBatch } = await import('../../src/alerts/queries.ts');
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = emailOf('snapshot');
    await subscribeAndConfirm(ctx, base, email, caseSlug);
    const { rows: [kase] } = await ctx.db.query<{ id: number; person_name: string; status: string; location: string }>('SELECT id, person_name, status, location FROM cases WHERE slug = $1', [caseSlug]);
    const { rows: [subscriber] } = await ctx.db.query<{ id: number }>('SELECT id FROM subscribers WHERE lower(email) = lower($1)', [email]);
    // Stored only (no fan-out job): the alerts are composed below, after the case changed.
    const update = (await insertCaseUpdate(ctx.db, kase!.id, { title: 'Hearing moved', body: 'To Monday.' }, null, null))!;
    await ctx.db.query(`UPDATE cases SET status = 'released', person_name = 'Renamed Person', location = 'Elsewhere' WHERE id = $1`, [kase!.id]);
    const parts = async () => (await getAlertPartsBatch(ctx.db, [{ caseUpdateId: update.id, subscriberId: subscriber!.id }]))[0];
    expect(await parts()).toMatchObject({ person_name: kase!.person_name, case_status: kase!.status, location: kase!.location, title: 'Hearing moved' });
    // An update posted before the case was kept with it reads the case as it is.
    await ctx.db.query('UPDATE case_updates SET case_person_name = NULL, case_status = NULL, case_location = NULL WHERE id = $1', [update.id]);
    expect(await parts()).toMatchObject({ person_name: 'Renamed Person', case_status: 'released', location: 'Elsewhere' });
  });

  it('sends nothing to an address that never confirmed', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = emailOf('unconfirmed');
    await postJson(`${base}/api/v1/subscribers`, { email, caseSlug });
    await waitForMail(ctx, email, 1);
    const update = await postUpdate(caseSlug);
    expect(update.recipients).toBe(0);
    await pause(500);
    expect(mailsTo(ctx, email).map((m) => m.subject)).toEqual([expect.stringContaining('Please confirm')]);
    expect((await alertStats(update.id)).body).toEqual({ recipients: 0, sent: 0, failed: 0, withdrawn: false });
  });

  it('sends one alert to a follower of the case and of all cases; after a one-click unsubscribe, none', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = emailOf('both');
    await subscribeAndConfirm(ctx, base, email, caseSlug);
    await subscribeAndConfirm(ctx, base, email);
    const mailsBefore = mailsTo(ctx, email).length;

    const update = await postUpdate(caseSlug);
    expect(update.recipients).toBe(1);
    const alert = await waitForMail(ctx, email, mailsBefore + 1);
    await settled(update.id, 1);
    await pause(300);
    expect(mailsTo(ctx, email)).toHaveLength(mailsBefore + 1);
    // Why it came: the case, which it follows besides all cases.
    expect(alert.text).toContain('because you follow Aigerim Test.');
    const everyCase = emailOf('every');
    await subscribeAndConfirm(ctx, base, everyCase);
    // Counted before posting: postUpdate waits for the fan-out, and the alert may be in by then.
    const everyBefore = mailsTo(ctx, everyCase).length;
    const forAll = await postUpdate(caseSlug, 'For every case');
    const everyAlert = await waitForMail(ctx, everyCase, everyBefore + 1);
    expect(everyAlert.text).toContain('because you follow all cases.');
    await settled(forAll.id, 2);

    // What a mailbox provider does (RFC 8058): POST to the https URL, no cookie, no page shown.
    for (const mail of [alert, everyAlert]) {
      const url = /<(http[^>]+\/unsubscribe\/[^>]+)>/.exec(header(mail, 'list-unsubscribe'))![1]!;
      const oneClick = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'List-Unsubscribe=One-Click',
        redirect: 'manual',
      });
      expect(oneClick.status).toBeGreaterThanOrEqual(200);
      expect(oneClick.status).toBeLessThan(300);
    }

    const next = await postUpdate(caseSlug);
    expect(next.recipients).toBe(0);
    await pause(500);
    expect(mailsTo(ctx, email)).toHaveLength(mailsBefore + 2);
  });

  it('lets a signer who ticked "subscribe" hear the outcome once their signature is confirmed', async () => {
    const { caseSlug, slug } = await createLiveCampaign(ctx.db);
    const ticked = emailOf('signer');
    const unticked = emailOf('quiet-signer');
    for (const [email, subscribe] of [[ticked, 'on'], [unticked, undefined]] as const) {
      const res = await postForm(`${base}/c/${slug}/sign`, { full_name: 'Dana Signer', email, ...(subscribe ? { subscribe } : {}) });
      expect(res.status).toBe(303);
      const confirmation = await waitForMail(ctx, email);
      expect((await postForm(`${base}/confirm/${tokenIn(confirmation, 'confirm')}`, {})).status).toBe(303);
    }
    const update = await postUpdate(caseSlug, 'Released on bail');
    expect(update.recipients).toBe(1);
    const alert = await waitForMail(ctx, ticked, 2);
    expect(alert.subject).toBe('Aigerim Test: Released on bail');
    expect(alert.text).toMatch(/\/unsubscribe\/[A-Za-z0-9_-]{40,}/);
    await settled(update.id, 1);
    expect(mailsTo(ctx, unticked)).toHaveLength(1);

    // The signer's manage link works although no form ever gave them one.
    const manage = tokenIn(alert, 'preferences');
    expect((await fetch(`${base}/preferences/${manage}`)).status).toBe(200);
  });

  it('does not send an alert already queued to someone who left before it went out, nor counts it as failed', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const email = emailOf('left-early');
    const manage = await subscribeAndConfirm(ctx, base, email, caseSlug);
    const mailsBefore = mailsTo(ctx, email).length;
    const hold = ctx.sink!.behavior;
    // The relay answers 451 for this address until the subscriber has left, so the alert waits in retry.
    let left = false;
    ctx.sink!.behavior = { ...hold, onRcptTo: (address) => (!left && address.address === email ? { code: 451 } : undefined) };
    try {
      const update = await postUpdate(caseSlug);
      await eventually(async () => ((await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'alert' AND source_id = $1 AND status = 'retry'`, [update.id])).rowCount ? true : undefined));
      expect((await postForm(`${base}/unsubscribe/${manage}`, {})).status).toBe(200);
      left = true;
      // Not a failure: the row goes, as if the fan-out had never reached them, and so does their
      // place among the recipients (sent and failed add up to them).
      await eventually(async () => ((await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'alert' AND source_id = $1`, [update.id])).rowCount === 0 ? true : undefined));
      expect((await alertStats(update.id)).body).toEqual({ recipients: 0, sent: 0, failed: 0, withdrawn: false });
      expect(mailsTo(ctx, email)).toHaveLength(mailsBefore);
    } finally {
      ctx.sink!.behavior = hold;
    }
  });

  it('leaves an address on the suppression list out of the alert and its counts', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const bounced = emailOf('bounced');
    const reader = emailOf('reader');
    await subscribeAndConfirm(ctx, base, bounced, caseSlug);
    await subscribeAndConfirm(ctx, base, reader, caseSlug);
    await ctx.db.query(`INSERT INTO suppressions (email, reason) VALUES (lower($1), 'bounce: 550 test')`, [bounced]);
    const update = await postUpdate(caseSlug);
    expect(update.recipients).toBe(1);
    expect(await settled(update.id, 1)).toEqual({ recipients: 1, sent: 1, failed: 0, withdrawn: false });
    const rows = await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'alert' AND source_id = $1 AND recipient = $2`, [update.id, bounced]);
    expect(rows.rowCount).toBe(0);
    expect(mailsTo(ctx, bounced)).toHaveLength(1);
    expect(mailsTo(ctx, reader)).toHaveLength(2);
  });

  it('marks a subscriber whose address the relay refuses as bounced, and active again once the suppression is lifted', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const gone = emailOf('gone');
    await subscribeAndConfirm(ctx, base, gone, caseSlug);
    const status = async () => (await ctx.db.query<{ status: string }>('SELECT status FROM subscribers WHERE lower(email) = lower($1)', [gone])).rows[0]!.status;
    const hold = ctx.sink!.behavior;
    ctx.sink!.behavior = { onRcptTo: (a) => (a.address === gone ? { code: 550, message: '5.1.1 User unknown' } : undefined) };
    try {
      const update = await postUpdate(caseSlug);
      expect(await settled(update.id, 1)).toEqual({ recipients: 1, sent: 0, failed: 1, withdrawn: false });
    } finally {
      ctx.sink!.behavior = hold;
    }
    expect(await status()).toBe('bounced');
    expect((await postUpdate(caseSlug)).recipients).toBe(0);

    const { removeSuppression } = await import('../../src/deliveries/service.ts');
    expect(await removeSuppression(ctx.db, gone)).toMatchObject({ email: gone.toLowerCase() });
    expect(await status()).toBe('active');
    expect((await postUpdate(caseSlug)).recipients).toBe(1);

    // One who bounced and then left stays gone when the suppression is lifted.
    const left = emailOf('left');
    await subscribeAndConfirm(ctx, base, left, caseSlug);
    const { unsubscribe, manageToken } = await import('../../src/subscribers/service.ts');
    const { rows: [sub] } = await ctx.db.query<{ id: number }>('SELECT id FROM subscribers WHERE lower(email) = lower($1)', [left]);
    const { insertSuppression } = await import('../../src/deliveries/suppression-queries.ts');
    await insertSuppression(ctx.db, left, 'bounce: test', 'alert');
    expect((await ctx.db.query<{ status: string }>('SELECT status FROM subscribers WHERE id = $1', [sub!.id])).rows[0]!.status).toBe('bounced');
    await unsubscribe(ctx.db, manageToken(ctx.secret, sub!.id));
    await removeSuppression(ctx.db, left);
    expect((await ctx.db.query<{ status: string }>('SELECT status FROM subscribers WHERE id = $1', [sub!.id])).rows[0]!.status).toBe('unsubscribed');
  });

  it('keeps only the counts of alerts all settled a month ago: the rows naming each subscriber go, the totals stay', async () => {
    // Other tests' updates in this database are recent: only these three are old enough.
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const { rows: [u] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO case_updates (case_id, title, body, recipients, reached, fanned_out_at) SELECT id, 'Old news', 'B', 3, 3, now() - interval '31 days' FROM cases WHERE slug = $1 RETURNING id`,
      [caseSlug],
    );
    const { rows: [recent] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO case_updates (case_id, title, body, recipients, reached, fanned_out_at) SELECT id, 'Recent news', 'B', 1, 1, now() - interval '29 days' FROM cases WHERE slug = $1 RETURNING id`,
      [caseSlug],
    );
    const { rows: [stuck] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO case_updates (case_id, title, body, recipients, reached, fanned_out_at) SELECT id, 'Still retrying', 'B', 2, 2, now() - interval '40 days' FROM cases WHERE slug = $1 RETURNING id`,
      [caseSlug],
    );
    const tag = uniq('fold');
    // The last one still on its way (held by a live lease, so no worker here touches it).
    await ctx.db.query(
      `INSERT INTO deliveries (kind, source_id, recipient, status, lease_until) VALUES
         ('alert', $1, 'a-${tag}@subscriber.example', 'sent', NULL), ('alert', $1, 'b-${tag}@subscriber.example', 'sent', NULL), ('alert', $1, 'c-${tag}@subscriber.example', 'failed', NULL),
         ('alert', $2, 'a-${tag}@subscriber.example', 'sent', NULL),
         ('alert', $3, 'a-${tag}@subscriber.example', 'sent', NULL), ('alert', $3, 'b-${tag}@subscriber.example', 'sending', now() + interval '1 hour')`,
      [u!.id, recent!.id, stuck!.id],
    );
    const before = await Promise.all([u!.id, recent!.id, stuck!.id].map(async (id) => (await alertStats(id)).body));

    const { purgeExpired } = await import('../../src/retention/service.ts');
    expect(await purgeExpired(ctx.db, ctx.config)).toMatchObject({ alerts: 4 });
    const kept = await ctx.db.query<{ source_id: number }>(`SELECT source_id FROM deliveries WHERE kind = 'alert' AND recipient LIKE $1`, [`%-${tag}@%`]);
    // The one still on its way stays; what went of its update is folded.
    expect(kept.rows.map((r) => Number(r.source_id)).sort()).toEqual([recent!.id, stuck!.id].sort());
    // What the API and the console say has not moved.
    expect(before).toEqual([{ recipients: 3, sent: 2, failed: 1, withdrawn: false }, { recipients: 1, sent: 1, failed: 0, withdrawn: false }, { recipients: 2, sent: 1, failed: 0, withdrawn: false }]);
    expect(await Promise.all([u!.id, recent!.id, stuck!.id].map(async (id) => (await alertStats(id)).body))).toEqual(before);
    // The console counts the folded failure, and links only failures it can still retry (a plain 1 here).
    const { signedIn } = await import('../helpers/admin-client.ts');
    const { client } = await signedIn(base, ctx.db, 'admin');
    const page = (await client.get(`/admin/cases/${caseSlug}`)).text;
    expect(page).toMatch(/Old news<\/bdi><\/td>.*?<td class="num">3<\/td><td class="num">2<\/td><td class="num">1<\/td>/s);
    // One still on its way is said to be, so that sent and failed add up to the recipients.
    expect(page).toMatch(/Still retrying<\/bdi><\/td>.*?<td class="num">2<\/td><td class="num">1 <span class="muted small">\(\+1 waiting\)<\/span><\/td><td class="num">0<\/td>/s);
    expect(await withdrawCaseUpdate(ctx.db, caseSlug, u!.id, null)).toMatchObject({ dropped: 0, sent: 2, sending: 0 });
    // Again: nothing more to fold.
    expect(await purgeExpired(ctx.db, ctx.config)).toMatchObject({ alerts: 0 });
  });

  it.runIf(kind === 'postgres')('folds an update\'s alerts only once it holds the update, as a withdrawal takes them: the other order deadlocks', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const { rows: [u] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO case_updates (case_id, title, body, fanned_out_at) SELECT id, 'Held', 'B', now() - interval '40 days' FROM cases WHERE slug = $1 RETURNING id`,
      [caseSlug],
    );
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, recipient, status) SELECT 'alert', $1, 'held' || i || '@subscriber.example', 'sent' FROM generate_series(1, 3) i`, [u!.id]);
    const { foldAlerts } = await import('../../src/alerts/outcome-queries.ts');
    // A withdrawal's first step: the update locked, its alerts next.
    const withdrawal = new pg.Client(ctx.testDb.url!);
    await withdrawal.connect();
    try {
      await withdrawal.query('BEGIN');
      await withdrawal.query('SELECT id FROM case_updates WHERE id = $1 FOR UPDATE', [u!.id]);
      const folding = foldAlerts(ctx.db, u!.id);
      await new Promise((r) => setTimeout(r, 300));
      // The fold waits for the update and has locked no alert yet: the withdrawal gets them at once.
      expect((await withdrawal.query(`SELECT id FROM deliveries WHERE kind = 'alert' AND source_id = $1 FOR UPDATE NOWAIT`, [u!.id])).rowCount).toBe(3);
      await withdrawal.query('COMMIT');
      expect(await folding).toBe(3);
    } finally {
      await withdrawal.end();
    }
  });

  it.runIf(kind === 'postgres')('drops the alert of a subscriber who left only once it holds the update, as a withdrawal takes them: the other order deadlocks', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const { rows: [u] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO case_updates (case_id, title, body, fanned_out_at, reached) SELECT id, 'Held', 'B', now(), 2 FROM cases WHERE slug = $1 RETURNING id`,
      [caseSlug],
    );
    const { rows: [, left] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO deliveries (kind, source_id, recipient) SELECT 'alert', $1, 'held' || i || '@subscriber.example' FROM generate_series(1, 2) i ORDER BY i RETURNING id`,
      [u!.id],
    );
    const { deleteUnsendable, recordSentAndClaim } = await import('../../src/deliveries/queries.ts');
    // A worker claimed the second alert; its subscriber left meanwhile, so it is to be dropped.
    const [claim] = await recordSentAndClaim(ctx.db, [], [left!.id], 150);
    const withdrawal = new pg.Client(ctx.testDb.url!);
    await withdrawal.connect();
    try {
      // A withdrawal's first step: the update locked, its alerts next.
      await withdrawal.query('BEGIN');
      await withdrawal.query('SELECT id FROM case_updates WHERE id = $1 FOR UPDATE', [u!.id]);
      const dropping = deleteUnsendable(ctx.db, claim!);
      await new Promise((r) => setTimeout(r, 300));
      // The drop waits for the update and has locked no alert yet: the withdrawal gets them at once.
      expect((await withdrawal.query(`SELECT id FROM deliveries WHERE kind = 'alert' AND source_id = $1 FOR UPDATE NOWAIT`, [u!.id])).rowCount).toBe(2);
      await withdrawal.query('COMMIT');
      await dropping;
    } finally {
      await withdrawal.end();
    }
    expect((await ctx.db.query('SELECT reached FROM case_updates WHERE id = $1', [u!.id])).rows[0]).toEqual({ reached: 1 });
  });

  it.runIf(kind === 'postgres')('counts what a fan-out reached without an alert dropped as it finished, in either order', async () => {
    const { deleteUnsendable, recordSentAndClaim } = await import('../../src/deliveries/queries.ts');
    const { markFannedOut } = await import('../../src/alerts/queries.ts');
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const race = async (dropFirst: boolean) => {
      const { rows: [u] } = await ctx.db.query<{ id: number }>(`INSERT INTO case_updates (case_id, title, body) SELECT id, 'Racing', 'B' FROM cases WHERE slug = $1 RETURNING id`, [caseSlug]);
      const { rows: alerts } = await ctx.db.query<{ id: number }>(
        `INSERT INTO deliveries (kind, source_id, recipient) SELECT 'alert', $1::bigint, 'race' || $1::text || '-' || i || '@subscriber.example' FROM generate_series(1, 3) i ORDER BY i RETURNING id`,
        [u!.id],
      );
      // A worker claimed the last alert; its subscriber left meanwhile, so it is to be dropped.
      const [claim] = await recordSentAndClaim(ctx.db, [], [alerts[2]!.id], 150);
      // One of the two holds the update (uncommitted) until the other waits for it.
      const second = await whileHeld(
        ctx.db,
        async (tx) => {
          await tx.query('SELECT 1 FROM case_updates WHERE id = $1 FOR NO KEY UPDATE', [u!.id]);
          if (dropFirst) await tx.query('DELETE FROM deliveries WHERE id = $1', [claim!.id]);
          else await tx.query(`UPDATE case_updates SET fanned_out_at = now(), reached = 3 WHERE id = $1`, [u!.id]);
        },
        () => (dropFirst ? markFannedOut(ctx.db, u!.id) : deleteUnsendable(ctx.db, claim!)),
      );
      expect(second.status).toBe('fulfilled');
      return (await ctx.db.query('SELECT reached FROM case_updates WHERE id = $1', [u!.id])).rows[0];
    };
    expect(await race(true)).toEqual({ reached: 2 });
    expect(await race(false)).toEqual({ reached: 2 });
  });

  it('drops a failed alert with its withdrawn update: no retry offered, none queued by retrying every failed email', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const { rows: [u] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO case_updates (case_id, title, body, fanned_out_at) SELECT id, 'Wrong', 'B', now() FROM cases WHERE slug = $1 RETURNING id`,
      [caseSlug],
    );
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, recipient, status, last_error) VALUES ('alert', $1, 'refused@subscriber.example', 'failed', '550 5.7.1 refused')`, [u!.id]);
    expect(await withdrawCaseUpdate(ctx.db, caseSlug, u!.id, null)).toMatchObject({ dropped: 1, sent: 0, sending: 0 });
    expect((await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'alert' AND source_id = $1`, [u!.id])).rowCount).toBe(0);
  });

  it.runIf(kind === 'postgres')('counts an alert a worker claims while its update is withdrawn as on its way, not as stopped or as nothing', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const { rows: [u] } = await ctx.db.query<{ id: number; case_id: number }>(
      `INSERT INTO case_updates (case_id, title, body, fanned_out_at) SELECT id, 'Withdrawn', 'B', now() FROM cases WHERE slug = $1 RETURNING id, case_id`,
      [caseSlug],
    );
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, recipient) SELECT 'alert', $1, 'race' || i || '@subscriber.example' FROM generate_series(1, 3) i`, [u!.id]);
    // A worker's claim of one of them, not yet committed when the withdrawal comes.
    const worker = new pg.Client(ctx.testDb.url!);
    await worker.connect();
    try {
      await worker.query('BEGIN');
      await worker.query(`UPDATE deliveries SET status = 'sending' WHERE kind = 'alert' AND source_id = $1 AND recipient = 'race1@subscriber.example'`, [u!.id]);
      const withdrawing = withdrawCaseUpdate(ctx.db, caseSlug, u!.id, null);
      await new Promise((r) => setTimeout(r, 300));
      await worker.query('COMMIT');
      expect(await withdrawing).toMatchObject({ dropped: 2, sent: 0, sending: 1 });
    } finally {
      await worker.end();
    }
  });

  it("keeps a case's whole history readable, a page of updates at a time, on its page and in the console", async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    // 23 updates, fanned out already (nobody follows the case), the third withdrawn.
    await ctx.db.query(
      `INSERT INTO case_updates (case_id, title, body, fanned_out_at, withdrawn_at)
       SELECT c.id, 'Update number ' || g, 'Body ' || g, now(), CASE WHEN g = 3 THEN now() END
         FROM cases c, generate_series(1, 23) g WHERE c.slug = $1 ORDER BY g`,
      [caseSlug],
    );
    // Each update once, in the order shown (the console names it again in its Withdraw button).
    const titles = (html: string) => [...new Set([...html.matchAll(/Update number (\d+)/g)].map((m) => Number(m[1])))];
    const olderLink = (html: string) => /href="([^"]*before=\d+)[^"]*"[^>]*>Older updates/.exec(html)?.[1]?.replace(/&amp;/g, '&');
    const first = await (await fetch(`${base}/cases/${caseSlug}`)).text();
    expect(titles(first)).toEqual([23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4]);
    const older = await fetch(`${base}${olderLink(first)!}`);
    expect(older.status).toBe(200);
    const rest = await older.text();
    expect(titles(rest)).toEqual([2, 1]);
    expect(olderLink(rest)).toBeUndefined();
    expect(rest).toContain('Latest updates');
    expect((await fetch(`${base}/cases/${caseSlug}?before=abc`)).status).toBe(404);

    // The console lists withdrawn ones too, so every update can be inspected and withdrawn.
    const { client } = await signedIn(base, ctx.db);
    const console1 = (await client.get(`/admin/cases/${caseSlug}`)).text;
    expect(titles(console1)).toHaveLength(20);
    const console2 = (await client.get(olderLink(console1)!)).text;
    expect(titles(console2)).toEqual([3, 2, 1]);
    expect(console2).toContain(`/admin/cases/${caseSlug}/updates/`);
  });

  it('refuses a bad update, an unknown case or alert, and a missing token', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const bad = await postJson(`${base}/api/v1/cases/${caseSlug}/updates`, { body: 'no title' }, apiToken);
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { error: { fields: object } }).error.fields).toHaveProperty('title');
    expect((await postJson(`${base}/api/v1/cases/no-such-case/updates`, { title: 't', body: 'b' }, apiToken)).status).toBe(404);
    expect((await postJson(`${base}/api/v1/cases/${caseSlug}/updates`, { title: 't', body: 'b' })).status).toBe(401);
    const long = await postJson(`${base}/api/v1/cases/${caseSlug}/updates`, { title: 't', body: 'x'.repeat(40_000) }, apiToken);
    expect(long.status).toBe(422);
    expect((await long.json()).error.fields).toEqual({ body: 'must be at most 20000 characters' });
    expect((await postJson(`${base}/api/v1/cases/${caseSlug}/updates`, { title: 't', body: 'x'.repeat(3_200_000) }, apiToken)).status).toBe(413);
    expect((await alertStats(99_999_999)).status).toBe(404);
    expect((await alertStats('abc' as unknown as number)).status).toBe(404);
  });
});
