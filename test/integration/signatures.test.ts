import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ParsedMail } from 'mailparser';
import { DB_KINDS } from '../helpers/db.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign, uniq } from '../helpers/fixtures.ts';
import { mailTo, pastResendGap, postJson, settled, until } from '../helpers/signing.ts';
import { backendOf, blockedBy } from '../helpers/locks.ts';
import { openPostgres, type Db } from '../../src/db/index.ts';
import { confirmSignature, confirmToken, findSignatureByToken, pretendToSign, sign, SIGN_ANSWER_MIN_MS, SIGN_BUSY_AT } from '../../src/signatures/service.ts';
import { enqueueDeliveries } from '../../src/queues.ts';
import { hashToken } from '../../src/tokens.ts';
import { publicSignatureCounts, signaturesChanged, updateCampaignDetails } from '../../src/campaigns/service.ts';
import { createWebApp } from '../../src/web/app.ts';
import { formatLetterDate } from '../../src/signatures/emails.ts';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const addressOf = (a: ParsedMail['to'] | ParsedMail['from'] | ParsedMail['replyTo']) =>
  (Array.isArray(a) ? a : a ? [a] : []).flatMap((x) => x.value.map((v) => v.address));

function confirmLink(mail: ParsedMail): string {
  const match = /\/confirm\/([A-Za-z0-9_-]+)/.exec(mail.text ?? '');
  if (!match) throw new Error('no confirmation link in the email');
  return match[1]!;
}

async function post(url: string, form: Record<string, string>) {
  return fetch(url, { method: 'POST', body: new URLSearchParams(form), redirect: 'manual' });
}

describe.each(DB_KINDS)('signing a letter on %s', (kind) => {
  let ctx: TestContext;
  let base: string;

  beforeAll(async () => {
    ctx = await createTestContext({ db: kind });
    base = await ctx.startWeb();
    await ctx.startWorkers();
  });
  afterAll(async () => {
    await ctx?.close();
  });

  it('sends a confirmation, then one letter per target once confirmed', async () => {
    const { slug } = await createLiveCampaign(ctx.db, {
      targets: [
        { name: 'Judge Name', email: 'judge@court.example', salutation: 'Your Honour', disclose: 'name' },
        { name: 'Place Official', email: 'place@gov.example', disclose: 'name_place' },
        { name: 'Full Official', email: 'full@gov.example', disclose: 'full' },
      ],
    });
    const res = await post(`${base}/c/${slug}/sign`, {
      full_name: 'Dana Signer', email: 'dana@supporter.example', city: 'Lyon', country: 'France', personal_note: 'Free her now.',
    });
    expect(res.status).toBe(303);
    // Stored with its confirmation email alone: no letter row waits for anything else to hold it back.
    const { rows: stored } = await ctx.db.query<{ kind: string }>(
      `SELECT d.kind FROM deliveries d JOIN signatures s ON s.id = d.source_id JOIN campaigns c ON c.id = s.campaign_id
        WHERE c.slug = $1 AND d.kind IN ('confirm', 'letter')`,
      [slug],
    );
    expect(stored).toEqual([{ kind: 'confirm' }]);
    expect(res.headers.get('location')).toBe(`/c/${slug}/check-email`);
    expect(await (await fetch(`${base}/c/${slug}/check-email`)).text()).toContain('Your letter goes out once you confirm.');
    // A digest's signer adds a name to the day's letter: no letter of their own goes.
    const digest = await createLiveCampaign(ctx.db, { deliveryMode: 'digest' });
    const digestPage = await (await fetch(`${base}/c/${digest.slug}/check-email`)).text();
    expect(digestPage).toContain("Once you confirm, your name goes into the day's letter to the officials.");
    expect(digestPage).not.toContain('Your letter goes out');
    expect(digestPage).not.toContain('your letter has gone');

    const [confirmation] = await ctx.sink!.waitFor(1);
    expect(addressOf(confirmation!.to)).toEqual(['dana@supporter.example']);
    // The row keeps what the letter needs, and nothing of where the signer was.
    const { rows: kept } = await ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM signatures WHERE ip_hash IS NOT NULL');
    expect(kept[0]!.n).toBe(0);
    // Anyone can type any name with any address: mail sent before the address is confirmed
    // must not carry text a stranger chose.
    expect(confirmation!.text).not.toContain('Dana Signer');
    expect(confirmation!.html).not.toContain('Dana Signer');
    // What ignoring it means, with the retention in force (RETENTION_UNCONFIRMED_DAYS, 7 by default).
    expect(confirmation!.text).toContain('your details are deleted after 7 days.');
    expect(confirmation!.html).toContain('your details are deleted after 7 days.');
    // Written by the system, not by a person: vacation replies stay away (RFC 3834).
    expect(confirmation!.headers.get('auto-submitted')).toBe('auto-generated');
    const token = confirmLink(confirmation!);

    const page = await fetch(`${base}/confirm/${token}`);
    const pageHtml = await page.text();
    expect(pageHtml).toContain(`action="/confirm/${token}"`);
    expect(pageHtml).toMatch(/<title>Confirm your signature/);
    expect(ctx.sink!.messages).toHaveLength(1);

    // A mail client may take the punctuation after a link into it: the page moves to its address,
    // and the button's post is read with the token alone.
    for (const tail of ['.', ')', '>', ',', '%20', '%3E', ').']) {
      const moved = await fetch(`${base}/confirm/${token}${tail}?utm=1`, { redirect: 'manual' });
      expect(moved.status, tail).toBe(301);
      expect(moved.headers.get('location'), tail).toBe(`/confirm/${token}?utm=1`);
    }
    expect((await fetch(`${base}/confirm/${token.slice(0, -1)}.`, { redirect: 'manual' })).status).toBe(301);
    expect((await fetch(`${base}/confirm/${token.slice(0, -1)}`)).status).toBe(404);

    const confirmed = await post(`${base}/confirm/${token}.`, {});
    expect(confirmed.status).toBe(303);
    const all = await ctx.sink!.waitFor(4);
    const letters = all.slice(1);
    expect(letters.map((m) => addressOf(m.to)[0]).sort()).toEqual(['full@gov.example', 'judge@court.example', 'place@gov.example']);
    for (const letter of letters) {
      expect(letter.from!.value[0]).toEqual({ name: 'Dana Signer via Appeal Test', address: 'letters@appeal.test' });
      expect(letter.messageId).toMatch(/^<.+@.+>$/);
      // A letter is a person's, signed by them: no Auto-Submitted.
      expect(letter.headers.has('auto-submitted')).toBe(false);
      expect(letter.text).toContain('Free her now.');
      expect(letter.headers.get('from')).not.toMatchObject({ text: expect.stringContaining('dana@supporter.example') });
    }
    const by = (address: string) => letters.find((m) => addressOf(m.to)[0] === address)!;
    const raw = (m: ParsedMail) => JSON.stringify({ h: [...m.headers.entries()], t: m.text, html: m.html });

    expect(raw(by('judge@court.example'))).not.toMatch(/Lyon|France|dana@supporter/);
    expect(addressOf(by('judge@court.example').replyTo)).toEqual([]);
    expect(raw(by('place@gov.example'))).toContain('Lyon');
    expect(raw(by('place@gov.example'))).not.toContain('dana@supporter.example');
    expect(addressOf(by('full@gov.example').replyTo)).toEqual(['dana@supporter.example']);

    const again = await post(`${base}/confirm/${token}`, {});
    expect(again.status).toBe(303);
    // The link opened again: its title says what its heading says, as a screen reader reads it first.
    expect(await (await fetch(`${base}/confirm/${token}`)).text()).toMatch(/<title>Already confirmed[^<]*<\/title>[\s\S]*<h1>Already confirmed<\/h1>/);
    await new Promise((r) => setTimeout(r, 500));
    expect(ctx.sink!.messages).toHaveLength(4);
  });

  it('keeps only a hash of the link it emails, for the first email and for one sent again after signing again', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const email = `${uniq('hash')}@supporter.example`;
    /** Whether any column of the signature, or of a delivery made for it, holds `token`. */
    const stored = async (token: string) => {
      const { rows } = await ctx.db.query<Record<string, unknown>>(
        `SELECT to_jsonb(s) AS signature, (SELECT jsonb_agg(to_jsonb(d)) FROM deliveries d WHERE d.source_id = s.id AND d.kind IN ('confirm', 'letter')) AS deliveries
           FROM signatures s WHERE s.email = $1`,
        [email],
      );
      expect(rows).toHaveLength(1);
      return { holds: JSON.stringify(rows[0]).includes(token), hash: (rows[0]!.signature as { confirm_token_hash: string }).confirm_token_hash };
    };

    expect((await post(`${base}/c/${slug}/sign`, { full_name: 'Hana Hash', email })).status).toBe(303);
    const first = confirmLink((await mailTo(ctx.sink!, email))[0]!);
    expect(await stored(first)).toEqual({ holds: false, hash: hashToken(first) });

    // Signed again with other details once the first email has gone: a new email, a new link.
    await settled(ctx.db);
    await pastResendGap(ctx.db, email);
    expect((await post(`${base}/c/${slug}/sign`, { full_name: 'Hana Hash', email, city: 'Bern' })).status).toBe(303);
    const second = confirmLink((await mailTo(ctx.sink!, email, 2))[1]!);
    expect(second).not.toBe(first);
    await settled(ctx.db);
    expect(await stored(second)).toEqual({ holds: false, hash: hashToken(second) });
    expect((await stored(first)).holds).toBe(false);
  });

  it('sends no letter for a signature still unconfirmed, even when a letter row and its job exist', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Judge Early', email: 'early@court.example' }] });
    const email = `${uniq('early')}@supporter.example`;
    expect((await post(`${base}/c/${slug}/sign`, { full_name: 'Early Letter', email })).status).toBe(303);
    // However it came about (a bug, a hand-edited row), the worker checks the signature itself.
    const { rows } = await ctx.db.query<{ id: number }>(
      `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient)
       SELECT 'letter', s.id, t.id, t.campaign_id, t.email FROM signatures s JOIN targets t ON t.campaign_id = s.campaign_id
        WHERE s.email = $1 RETURNING id`,
      [email],
    );
    expect(rows).toHaveLength(1);
    await enqueueDeliveries(ctx.queues, rows.map((r) => r.id));
    await until(async () => ((await ctx.db.query('SELECT 1 FROM deliveries WHERE id = $1', [rows[0]!.id])).rowCount === 0 ? true : undefined), 'the letter row dropped');
    await settled(ctx.db);
    expect(ctx.sink!.messages.filter((m) => addressOf(m.to).includes('early@court.example'))).toEqual([]);
  });

  it("previews the letter with what was typed for the page's own form, not for another site's", async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const typed = { full_name: 'Dana Preview', email: 'dana@supporter.example', personal_note: 'Typed by hand.' };
    const own = await fetch(`${base}/c/${slug}/preview`, {
      method: 'POST', redirect: 'manual', body: new URLSearchParams(typed),
      headers: { 'sec-fetch-site': 'same-origin' },
    });
    expect(own.status).toBe(200);
    const shown = await own.text();
    expect(shown).toContain('Typed by hand.');
    // Its title and a notice say it is a preview: nothing was signed.
    expect(shown).toMatch(/<title>Preview of your letter: [^<]+<\/title>/);
    expect(shown).toContain('Nothing is signed yet: sign it with the form below.');
    const foreign = await fetch(`${base}/c/${slug}/preview`, {
      method: 'POST', redirect: 'manual', body: new URLSearchParams(typed),
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(foreign.status).toBe(303);
    expect(foreign.headers.get('location')).toBe(`/c/${slug}`);
  });

  it("knows its own pages by PUBLIC_URL when a proxy in front passes on a Host of its own", async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    // nginx's default proxy_pass sends Host: the upstream's address; an old Safari sends Origin alone.
    const app = createWebApp({ ...ctx, config: { ...ctx.config, publicUrl: 'https://appeal.example.org' } });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const { port } = server.address() as AddressInfo;
      const preview = (origin: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
        const body = new URLSearchParams({ full_name: 'Dana Proxied', personal_note: 'Typed behind a proxy.' }).toString();
        const req = request({ port, host: '127.0.0.1', method: 'POST', path: `/c/${slug}/preview`, headers: {
          host: `127.0.0.1:${port}`, origin, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body),
        } }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve({ status: res.statusCode!, body: text }));
        });
        req.on('error', reject).end(body);
      });
      const own = await preview('https://appeal.example.org');
      expect(own.status).toBe(200);
      expect(own.body).toContain('Typed behind a proxy.');
      expect((await preview('https://elsewhere.example')).status).toBe(303);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it("sends back a sign form with a mistake without another site's words in it, and for no cache to keep", async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    // No email: the form comes back (400) with what was typed, which the letter preview shows.
    const typed = { full_name: 'Dana Foreign', personal_note: 'Words a stranger chose.' };
    const send = (site: string) => fetch(`${base}/c/${slug}/sign`, {
      method: 'POST', redirect: 'manual', body: new URLSearchParams(typed), headers: { 'sec-fetch-site': site },
    });
    const foreign = await send('cross-site');
    expect(foreign.status).toBe(400);
    const foreignHtml = await foreign.text();
    expect(foreignHtml).not.toContain('Words a stranger chose.');
    expect(foreignHtml).not.toContain('Dana Foreign');
    // A browser without Fetch Metadata says where the form was with Origin.
    const byOrigin = await fetch(`${base}/c/${slug}/sign`, { method: 'POST', redirect: 'manual', body: new URLSearchParams(typed), headers: { origin: 'https://elsewhere.example' } });
    expect(byOrigin.status).toBe(400);
    expect(await byOrigin.text()).not.toContain('Words a stranger chose.');
    const own = await send('same-origin');
    expect(own.status).toBe(400);
    // It shows a name and a note: kept by no cache, the browser's own on disk included.
    expect(own.headers.get('cache-control')).toBe('no-store');
    expect(await own.text()).toContain('Words a stranger chose.');
  });

  it('shares one count between the views of a campaign page, and counts afresh once a signature is stored or confirmed here', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    const { id } = (await ctx.db.query<{ id: number }>('SELECT id FROM campaigns WHERE slug = $1', [slug])).rows[0]!;
    // The case's public page lists its campaigns, never a draft.
    await ctx.db.query(
      `INSERT INTO campaigns (slug, case_id, title, letter_subject, letter_body, status)
       SELECT slug || '-draft', case_id, 'Unlaunched draft', letter_subject, letter_body, 'draft' FROM campaigns WHERE id = $1`,
      [id],
    );
    const casePage = await (await fetch(`${base}/cases/${caseSlug}`)).text();
    expect(casePage).toContain(`href="/c/${slug}"`);
    expect(casePage).not.toContain('Unlaunched draft');
    const count = async () => Number(/<strong class="count">(\d+)<\/strong>/.exec(await (await fetch(`${base}/c/${slug}`)).text())![1]);
    expect(await count()).toBe(0);
    // An organizer's title in Uyghur or Kazakh Arabic script reads right to left, its punctuation at its end.
    expect(await (await fetch(`${base}/c/${slug}`)).text()).toMatch(/<h1 dir="auto">[^<]+<\/h1>/);
    // Views at the same moment share one count: one statement, however many ask.
    expect(publicSignatureCounts(ctx.db, id)).toBe(publicSignatureCounts(ctx.db, id));
    // A signature stored here shows on the next view, the signer's own included.
    expect((await post(`${base}/c/${slug}/sign`, { full_name: 'Counted Once', email: `counted-${kind}@supporter.example` })).status).toBe(303);
    expect(await count()).toBe(1);
    // Written by another process (a second web app): shown once this process counts again.
    await ctx.db.query(`INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) VALUES ($1, 'Elsewhere', $2, 'confirmed', now())`, [id, `elsewhere-${kind}@supporter.example`]);
    signaturesChanged(ctx.db, id);
    expect(await count()).toBe(2);
    // Against the goal: towards it, reaching it, past it.
    const progress = async (goal: number) => {
      await ctx.db.query('UPDATE campaigns SET goal = $2 WHERE id = $1', [id, goal]);
      return /<strong class="count">\d+<\/strong> ([^<]+)<\/p>/.exec(await (await fetch(`${base}/c/${slug}`)).text())![1];
    };
    expect([await progress(3), await progress(2), await progress(1)]).toEqual([
      'people have signed, towards a goal of 3.', 'people have signed, reaching the goal of 2.', 'people have signed, passing the goal of 1.',
    ]);
    // Its letters go before the next test counts what the sink holds.
    await settled(ctx.db);
  });

  it('keeps the link already sent working when a new confirmation email cannot go (its address suppressed)', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const email = `${uniq('bounced')}@supporter.example`;
    // Bounced once: one email may go to it, asking to confirm; it went with the first signature.
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES (lower($1), 'bounce: 550 5.1.1 test', 'confirm')`, [email]);
    await sign(ctx.db, ctx, slug, { fullName: 'Bounced Once', email, personalNote: 'first' });
    await settled(ctx.db);
    const { rows: [signature] } = await ctx.db.query<{ id: number }>('SELECT id FROM signatures WHERE email = $1', [email]);
    const sent = confirmToken(ctx.secret, signature!.id, 0);
    expect((await findSignatureByToken(ctx.db, sent)).signature.id).toBe(signature!.id);
    // Signed again later (a typo mended): the new email is held by the suppression.
    await pastResendGap(ctx.db, email);
    await sign(ctx.db, ctx, slug, { fullName: 'Bounced Once', email, personalNote: 'second' });
    // A repeat's work is done after its answer.
    await ctx.queues.settled();
    await settled(ctx.db);
    expect((await ctx.db.query<{ status: string }>(`SELECT status FROM deliveries WHERE kind = 'confirm' AND source_id = $1`, [signature!.id])).rows).toEqual([{ status: 'failed' }]);
    // The link that came still opens the signature, as it is now, and confirms it.
    expect((await findSignatureByToken(ctx.db, sent)).signature).toMatchObject({ id: signature!.id, personal_note: 'second' });
    expect((await confirmSignature(ctx.db, ctx, sent)).kind).toBe('confirmed');
    await settled(ctx.db);
  });

  it('sends the letters of one who signs again once confirmation was turned off, as its answer says, and drops the confirmation email still waiting', async () => {
    const tag = uniq('switched');
    const judge = `judge@${tag}.example`;
    const full = `full@${tag}.example`;
    const { slug } = await createLiveCampaign(ctx.db, {
      targets: [{ name: 'Judge', email: judge, disclose: 'name_place' }, { name: 'Full Official', email: full, disclose: 'full' }],
    });
    const email = `${tag}@supporter.example`;
    expect(await sign(ctx.db, ctx, slug, { fullName: 'First Try', email, personalNote: 'first' })).toMatchObject({ confirmationRequired: true });
    await settled(ctx.db);
    const { rows: [signature] } = await ctx.db.query<{ id: number }>('SELECT id FROM signatures WHERE email = $1', [email]);
    // Its confirmation email waits for another try (a relay said 4xx): it should not go after this.
    // It had taken the one email its address may have while on the suppression list: given back.
    const { rows: [confirmation] } = await ctx.db.query<{ id: number }>(
      `UPDATE deliveries SET status = 'retry' WHERE kind = 'confirm' AND source_id = $1 RETURNING id`, [signature!.id],
    );
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind, asked_at, asked_by) VALUES (lower($1), 'bounce: 550 test', 'confirm', now(), $2)`, [email, confirmation!.id]);
    await ctx.db.query('UPDATE campaigns SET require_confirmation = false, revision = revision + 1 WHERE slug = $1', [slug]);

    const again = await sign(ctx.db, ctx, slug, { fullName: 'Second Try', email, city: 'Almaty', personalNote: 'second' });
    expect(again).toMatchObject({ confirmationRequired: false });
    await ctx.queues.settled();
    await settled(ctx.db);
    const [letter] = await mailTo(ctx.sink!, judge, 1);
    expect(letter!.text).toContain('Second Try');
    expect(letter!.text).toContain('second');
    // Nobody confirmed the address: the `full` official is not given it.
    const [toFull] = await mailTo(ctx.sink!, full, 1);
    expect(toFull!.replyTo).toBeUndefined();
    expect(toFull!.text).not.toContain(email);
    expect((await ctx.db.query(`SELECT status FROM signatures WHERE id = $1`, [signature!.id])).rows).toEqual([{ status: 'confirmed' }]);
    expect((await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'confirm' AND source_id = $1`, [signature!.id])).rowCount).toBe(0);
    expect((await ctx.db.query(`SELECT asked_at, asked_by FROM suppressions WHERE email = lower($1)`, [email])).rows).toEqual([{ asked_at: null, asked_by: null }]);
    // The link emailed before opens nothing now.
    await expect(findSignatureByToken(ctx.db, confirmToken(ctx.secret, signature!.id, 0))).rejects.toThrow(/confirmation link/);
  });

  it('keeps the newest details of two signatures by one address moments apart, whichever is applied last', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const email = `${uniq('order')}@supporter.example`;
    const input = (personalNote: string) => ({ fullName: 'Order Signer', email, personalNote });
    await sign(ctx.db, ctx, slug, input('first'));
    // Its email went long enough ago that a new one is not held back a minute.
    await settled(ctx.db);
    await pastResendGap(ctx.db, email);
    const note = async () =>
      (await ctx.db.query<{ personal_note: string }>('SELECT personal_note FROM signatures WHERE email = $1', [email])).rows[0]!.personal_note;
    // The older request's details are applied after the newer one's: its work waited (a busy pool).
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const waits: Db = {
      kind: ctx.db.kind,
      query: (sql, params) => ctx.db.query(sql, params),
      transaction: async (fn) => {
        await gate;
        return ctx.db.transaction(fn);
      },
      exec: (sql) => ctx.db.exec(sql),
      close: async () => {},
    };
    await sign(waits, ctx, slug, input('older'));
    await sign(ctx.db, ctx, slug, input('newer'));
    await until(async () => (await note()) === 'newer' || undefined, 'the newer details');
    release();
    await ctx.queues.settled();
    expect(await note()).toBe('newer');
    await settled(ctx.db);

    // The pending signature deleted (its days are up, or its person asked) while an older request
    // waits: the next one is stored afresh, and the older one's details still do not replace it.
    let releaseAgain!: () => void;
    const gateAgain = new Promise<void>((r) => (releaseAgain = r));
    const waitsAgain: Db = { ...waits, transaction: async (fn) => (await gateAgain, ctx.db.transaction(fn)) };
    await sign(waitsAgain, ctx, slug, input('older again'));
    await ctx.db.query(`DELETE FROM deliveries WHERE kind = 'confirm' AND recipient = $1`, [email]);
    await ctx.db.query('DELETE FROM signatures WHERE email = $1', [email]);
    await sign(ctx.db, ctx, slug, input('stored afresh'));
    releaseAgain();
    await ctx.queues.settled();
    expect(await note()).toBe('stored afresh');
    await settled(ctx.db);
  });

  // A repeat writes less than a first signature: without a floor, the answer's time told which it was.
  it('answers no sooner than SIGN_ANSWER_MIN_MS whether the address signed or not, and a bot caught by the honeypot alike', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    const email = `${uniq('timed')}@supporter.example`;
    const timed = async <T>(act: () => Promise<T>) => {
      const began = performance.now();
      const result = await act();
      return { result, ms: performance.now() - began };
    };
    const first = await timed(() => sign(ctx.db, ctx, slug, { fullName: 'Timed Signer', email }));
    const again = await timed(() => sign(ctx.db, ctx, slug, { fullName: 'Timed Signer', email }));
    const bot = await timed(() => pretendToSign(ctx.db, slug, { fullName: 'Timed Signer', email: `${uniq('bot')}@supporter.example` }));
    expect([first.result.kind, again.result.kind, bot.result.kind]).toEqual(['signed', 'already-signed', 'signed']);
    // A timer may fire a fraction of a millisecond before its time on the clock read here.
    for (const { ms } of [first, again, bot]) expect(ms).toBeGreaterThanOrEqual(SIGN_ANSWER_MIN_MS - 1);
    // A burst of posts caught by the honeypot stores nothing and does not count as a busy process:
    // the post made amid it waits all the same.
    const burst = Array.from({ length: SIGN_BUSY_AT }, () => pretendToSign(ctx.db, slug, { fullName: 'Bot', email: `${uniq('bot')}@supporter.example` }));
    // Their reads done, they wait out their time as the post comes.
    await new Promise((resolve) => setTimeout(resolve, 8));
    const amid = await timed(() => sign(ctx.db, ctx, slug, { fullName: 'Timed Signer', email: `${uniq('amid')}@supporter.example` }));
    await Promise.all(burst);
    expect(amid.ms).toBeGreaterThanOrEqual(SIGN_ANSWER_MIN_MS - 1);
  });

  // Signed through a partner's page (the API), the signer may never have seen the letter; and the
  // campaign's page shows the letter as it reads now, not the one the signature keeps.
  it('shows on the confirmation page the letter the signature sends, word for word, also when the campaign\'s letter changed since', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Judge Alpha', email: `${uniq('alpha')}@court.example`, salutation: 'Dear Judge Alpha' }, { name: 'Ministry Beta', email: `${uniq('beta')}@gov.example` }] });
    const email = `${uniq('partner')}@supporter.example`;
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Partner <Signer>', email, city: 'Almaty' })).status).toBe(202);
    await updateCampaignDetails(ctx.db, slug, { caseSlug, title: 'Free her', summary: '', letter: { subject: 'Version two', body: 'Dear {{target.name}}, VERSION TWO.' }, deliveryMode: 'each' });
    const [mail] = await mailTo(ctx.sink!, email);
    const html = await (await fetch(`${base}/confirm/${confirmLink(mail!)}`)).text();
    expect(html).toContain('<h2>Your letter</h2>');
    expect(html).toContain('As the first of them, <bdi>Judge Alpha</bdi>, will read it');
    expect(html).toContain('Dear Judge Alpha,\n\nI write about');
    expect(html).not.toContain('VERSION TWO');
    // Escaped as everything typed is.
    expect(html).toContain('Partner &lt;Signer&gt;');
    expect(html).not.toContain('Partner <Signer>');
    // In a digest the letter names no signer: they are listed below it.
    const digest = await createLiveCampaign(ctx.db, { deliveryMode: 'digest' });
    const other = `${uniq('partner')}@supporter.example`;
    expect((await postJson(`${base}/api/v1/campaigns/${digest.slug}/signatures`, { fullName: 'Digest Signer', email: other })).status).toBe(202);
    // And it keeps the text the signer signed under, though the letter is saved anew before they confirm.
    await updateCampaignDetails(ctx.db, digest.slug, { caseSlug: digest.caseSlug, title: 'Free her', summary: '', letter: { subject: 'Today', body: 'DIGEST VERSION TWO about {{case.personName}}.' }, deliveryMode: 'digest' });
    const [digestMail] = await mailTo(ctx.sink!, other);
    const digestPage = await (await fetch(`${base}/confirm/${confirmLink(digestMail!)}`)).text();
    expect(digestPage).toContain("with your name in the list of the day's signers below it, under this text even if the campaign's letter is changed before the day's letter goes.");
    expect(digestPage).not.toContain('DIGEST VERSION TWO');
    expect(digestPage).toContain('I write about');
    // Dated the day it goes: tomorrow, once today's digest has gone.
    await ctx.db.query(`INSERT INTO digests (campaign_id) SELECT id FROM campaigns WHERE slug = $1`, [digest.slug]);
    await updateCampaignDetails(ctx.db, digest.slug, { caseSlug: digest.caseSlug, title: 'Free her', summary: '', letter: { subject: 'Today', body: 'Dated {{date}}.' }, deliveryMode: 'digest' });
    const later = `${uniq('later')}@supporter.example`;
    expect((await postJson(`${base}/api/v1/campaigns/${digest.slug}/signatures`, { fullName: 'Later Signer', email: later })).status).toBe(202);
    const [laterMail] = await mailTo(ctx.sink!, later);
    const tomorrow = formatLetterDate(new Date(Date.now() + 86_400_000));
    expect(await (await fetch(`${base}/confirm/${confirmLink(laterMail!)}`)).text()).toContain(`Dated ${tomorrow}.`);
    expect(/<div class="paper confirm-letter">[\s\S]*?<\/div>\s*<\/div>/.exec(digestPage)![0]).not.toContain('Digest Signer');
  });

  it('stores a burst of signatures made at once each exactly once, the same address twice in it too', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const before = ctx.sink!.messages.length;
    const emails = Array.from({ length: 30 }, (_, i) => `burst${i}@supporter.example`);
    // The same addresses again in other capitals, in the same tick: they share statements.
    const inputs = [...emails, ...emails.slice(0, 10).map((e) => e.toUpperCase())];
    const results = await Promise.all(
      inputs.map((email, i) => sign(ctx.db, ctx, slug, { fullName: `Signer ${i}`, email })),
    );
    const kinds = results.map((r) => r.kind);
    expect(kinds.filter((k) => k === 'confirmation-sent')).toHaveLength(30);
    expect(kinds.filter((k) => k === 'already-signed')).toHaveLength(10);

    const { rows } = await ctx.db.query<{ n: number; tokens: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT confirm_token_hash)::int AS tokens
         FROM signatures s JOIN campaigns c ON c.id = s.campaign_id WHERE c.slug = $1`,
      [slug],
    );
    expect(rows[0]).toEqual({ n: 30, tokens: 30 });
    const mail = (await ctx.sink!.waitFor(before + 30)).slice(before);
    await new Promise((r) => setTimeout(r, 500));
    expect(ctx.sink!.messages).toHaveLength(before + 30);
    expect(new Set(mail.map((m) => addressOf(m.to)[0]!.toLowerCase())).size).toBe(30);

    // Each confirmation link confirms its own signature. Which spelling of a repeated address was
    // stored first is not defined; either is the same signer.
    const one = mail.find((m) => addressOf(m.to)[0]!.toLowerCase() === 'burst7@supporter.example')!;
    // The repeat replaced what the first said (signing again before confirming): the button sends
    // the version the page shows.
    const shown = /name="v" value="(\d+)"/.exec(await (await fetch(`${base}/confirm/${confirmLink(one)}`)).text())![1]!;
    expect((await post(`${base}/confirm/${confirmLink(one)}`, { v: shown })).status).toBe(303);
    const confirmed = await ctx.db.query<{ email: string }>(
      `SELECT email FROM signatures s JOIN campaigns c ON c.id = s.campaign_id WHERE c.slug = $1 AND s.status = 'confirmed'`,
      [slug],
    );
    expect(confirmed.rows.map((r) => r.email.toLowerCase())).toEqual(['burst7@supporter.example']);
  });

  it('sends one set of letters for a Confirm button clicked five times at once, and subscribes its signer once', async () => {
    const { slug } = await createLiveCampaign(ctx.db, {
      targets: [
        { name: 'Court Clerk', email: 'clerk@court.example' },
        { name: 'Ministry Desk', email: 'desk@ministry.example' },
      ],
    });
    const email = `${uniq('clicks')}@supporter.example`;
    const before = ctx.sink!.messages.length;
    expect((await post(`${base}/c/${slug}/sign`, { full_name: 'Cleo Clicker', email, subscribe: 'on' })).status).toBe(303);
    const [confirmation] = await mailTo(ctx.sink!, email);
    const link = `${base}/confirm/${confirmLink(confirmation!)}`;
    const page = await (await fetch(link)).text();
    const form = { v: /name="v" value="(\d+)"/.exec(page)![1]!, t: /name="t" value="([^"]*)"/.exec(page)![1]! };

    const answers = await Promise.all(Array.from({ length: 5 }, () => post(link, form)));
    // Every click is answered as the first was: the signature is confirmed.
    expect(answers.map((r) => r.status)).toEqual([303, 303, 303, 303, 303]);
    expect(new Set(answers.map((r) => r.headers.get('location')))).toEqual(new Set([`/c/${slug}/thanks`]));
    await settled(ctx.db);
    const { rows } = await ctx.db.query<{ recipient: string }>(
      `SELECT d.recipient FROM deliveries d JOIN signatures s ON s.id = d.source_id JOIN campaigns c ON c.id = s.campaign_id
        WHERE d.kind = 'letter' AND c.slug = $1 ORDER BY d.recipient`,
      [slug],
    );
    expect(rows.map((r) => r.recipient)).toEqual(['clerk@court.example', 'desk@ministry.example']);
    // Confirming the signature confirmed the address: the ticked box follows the case at once.
    const { rows: follows } = await ctx.db.query<{ status: string }>(
      'SELECT s.status FROM subscribers s JOIN subscriptions sub ON sub.subscriber_id = s.id WHERE lower(s.email) = $1',
      [email],
    );
    expect(follows).toEqual([{ status: 'active' }]);
    await new Promise((r) => setTimeout(r, 300));
    const arrived = ctx.sink!.messages.slice(before).filter((m) => m.text?.includes('Cleo Clicker')).map((m) => addressOf(m.to)[0]!.toLowerCase()).sort();
    expect(arrived).toEqual(['clerk@court.example', 'desk@ministry.example']);
  });

  /** A pool of its own with a short statement limit, and how many statements storing signatures it ran. */
  function withInsertsCounted(statementTimeoutMs: number) {
    const limited = openPostgres(ctx.env.DATABASE_URL!, { statementTimeoutMs, max: 4 });
    let count = 0;
    const counting: Db = {
      ...limited,
      query(sql, params) {
        if (/INSERT INTO signatures/.test(sql)) count++;
        return limited.query(sql, params);
      },
    };
    return { limited, counting, inserts: () => count };
  }

  // Two connections: the campaign held while signatures that share a statement wait for it.
  it.runIf(kind === 'postgres')('gives signatures that shared a statement cancelled for its time the error at once, not each another statement limit', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const { limited, counting, inserts } = withInsertsCounted(500);
    try {
      const outcomes = await ctx.db.transaction(async (tx) => {
        await tx.query('SELECT 1 FROM campaigns WHERE slug = $1 FOR UPDATE', [slug]);
        return Promise.allSettled(
          [1, 2, 3].map((i) => sign(counting, ctx, slug, { fullName: `Slow ${i}`, email: `${uniq('slow')}@supporter.example` })),
        );
      });
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(outcomes.map((o) => (o as PromiseRejectedResult).reason.code)).toEqual(['57014', '57014', '57014']);
      // One statement for the three, not one more each after it.
      expect(inserts()).toBe(1);
    } finally {
      await limited.close();
    }
  });

  // Two connections: the campaign held while the signatures wait for it.
  it.runIf(kind === 'postgres')('gives the signatures queued behind a statement cancelled for its time the error with it, not after a statement limit of their own', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const { limited, counting, inserts } = withInsertsCounted(1_000);
    try {
      const signing = (name: string) =>
        sign(counting, ctx, slug, { fullName: name, email: `${uniq('queued')}@supporter.example` }).then(() => ({ ok: true }), (err: { code?: string }) => ({ ok: false, code: err.code }));
      const outcomes = await ctx.db.transaction(async (tx) => {
        await tx.query('SELECT 1 FROM campaigns WHERE slug = $1 FOR UPDATE', [slug]);
        const holder = await backendOf(tx);
        const first = signing('First');
        // Its statement waits for the campaign; the next two queue behind it.
        await until(async () => ((await blockedBy(ctx.db, holder)).length > 0 ? true : undefined), 'the first statement waiting for the campaign');
        const rest = [signing('Second'), signing('Third')];
        return Promise.all([first, ...rest]);
      });
      expect(outcomes.map((o) => [o.ok, 'code' in o ? o.code : undefined])).toEqual([[false, '57014'], [false, '57014'], [false, '57014']]);
      // Answered with the first statement's cancellation, not after one of their own that waits as long.
      expect(inserts()).toBe(1);
    } finally {
      await limited.close();
    }
  });

  // Two connections: the campaign held while the statement of one signature waits for it.
  it.runIf(kind === 'postgres')('lets the signatures queued behind a batch whose one connection was lost go through: only that batch hears of it', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const pool = openPostgres(ctx.env.DATABASE_URL!, { max: 4 });
    try {
      const signing = (name: string) => {
        const signed = sign(pool, ctx, slug, { fullName: name, email: `${uniq('drop')}@supporter.example` });
        signed.catch(() => {});
        return signed;
      };
      const started = await ctx.db.transaction(async (tx) => {
        await tx.query('SELECT 1 FROM campaigns WHERE slug = $1 FOR UPDATE', [slug]);
        const holder = await backendOf(tx);
        const first = signing('First');
        // Its statement waits for the campaign; the next five queue behind it. Found as blocked by
        // this transaction: another test file's statement waiting in the same database is not it.
        const waiting = { pid: await until(async () => (await blockedBy(ctx.db, holder))[0], 'the first statement waiting for the campaign') };
        const rest = ['Second', 'Third', 'Fourth', 'Fifth', 'Sixth'].map(signing);
        await new Promise((r) => setTimeout(r, 200));
        // That one connection is lost (a backend killed, a failover of one connection).
        await ctx.db.query('SELECT pg_terminate_backend($1)', [waiting.pid]);
        await first.catch(() => {});
        // Held a moment more: the queued ones' own statement waits for the campaign now.
        await new Promise((r) => setTimeout(r, 300));
        return { all: [first, ...rest] };
      });
      const outcomes = await Promise.allSettled(started.all);
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    } finally {
      await pool.close();
    }
  });

  // Two connections: the deletion holds the campaign while the button's request waits for it.
  it.runIf(kind === 'postgres')('answers 404, not thanks, when the signature is deleted (retention, forget) while its button is pressed', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const email = `${uniq('edge')}@supporter.example`;
    expect((await post(`${base}/c/${slug}/sign`, { full_name: 'Edge Signer', email })).status).toBe(303);
    const token = confirmLink(await until(() => ctx.sink!.messages.find((m) => addressOf(m.to).includes(email)), 'the confirmation'));
    const { rows: [signature] } = await ctx.db.query<{ id: number; campaign_id: number }>('SELECT id, campaign_id FROM signatures WHERE email = $1', [email]);
    let pressed: Promise<Response> | undefined;
    await ctx.db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE', [signature!.campaign_id]);
      pressed = post(`${base}/confirm/${token}`, { v: '0' });
      await new Promise((r) => setTimeout(r, 500));
      await tx.query('DELETE FROM deliveries WHERE source_id = $1 AND kind IN ($2, $3)', [signature!.id, 'confirm', 'letter']);
      await tx.query('DELETE FROM signatures WHERE id = $1', [signature!.id]);
    });
    const answer = await pressed!;
    expect(answer.status).toBe(404);
    expect((await ctx.db.query('SELECT 1 FROM deliveries WHERE source_id = $1 AND kind = $2', [signature!.id, 'letter'])).rowCount).toBe(0);
  });
});
