import http from 'node:http';
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type Db } from '../../src/db/index.ts';
import { createWebApp } from '../../src/web/app.ts';
import { addressCounterKeys } from '../../src/deliveries/allowance.ts';
import { DB_KINDS } from '../helpers/db.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign, createToken, LETTER_BODY, uniq } from '../helpers/fixtures.ts';
import { addressOf, confirmToken, mailTo, pastResendGap, postForm, postJson, rowCounts, settled } from '../helpers/signing.ts';
import { changeCampaignStatus, createCampaign } from '../../src/campaigns/service.ts';
import { createCase } from '../../src/cases/service.ts';

/** What a browser script would need to run; escaped text never contains these. */
const RAW_MARKUP = /<script>alert|<img src=x|<b onmouseover|<i>Signer/;
const SCRIPT = '<script>alert(1)</script>';
const IMG = '"><img src=x onerror=alert(1)>';

describe.each(DB_KINDS)('bad input on %s', (kind) => {
  let ctx: TestContext;
  let base: string;
  let token: string;
  const rcpts: string[] = [];

  beforeAll(async () => {
    ctx = await createTestContext({ db: kind, env: { RATE_LIMIT_PER_IP: '0' } });
    base = await ctx.startWeb();
    await ctx.startWorkers();
    token = await createToken(ctx.db);
    ctx.sink!.behavior.onRcptTo = (address) => {
      rcpts.push(address.address);
      return undefined;
    };
  });
  afterAll(async () => {
    await ctx?.close();
  });

  const auth = () => ({ authorization: `Bearer ${token}` });
  const signForm = (slug: string, form: Record<string, string>, headers?: Record<string, string>) => postForm(`${base}/c/${slug}/sign`, form, headers);
  const signJson = (slug: string, body: unknown, headers?: Record<string, string>) => postJson(`${base}/api/v1/campaigns/${slug}/signatures`, body, headers);
  const valid = () => ({ full_name: 'Valid Signer', email: `${uniq('v')}@supporter.example` });

  /** Runs `act` and checks that it stored nothing and sent nothing. */
  async function changesNothing(act: () => Promise<void>): Promise<void> {
    // What earlier requests do after their answer (a repeat's new confirmation) ends before the count.
    await ctx.queues.settled();
    await settled(ctx.db);
    const before = await rowCounts(ctx.db);
    const sent = ctx.sink!.messages.length;
    await act();
    // Every email is first a deliveries row, so unchanged rows mean nothing is on its way either.
    await ctx.queues.settled();
    await settled(ctx.db);
    expect(await rowCounts(ctx.db)).toEqual(before);
    expect(ctx.sink!.messages.length).toBe(sent);
  }

  it('answers malformed JSON with 400 in the error shape', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    await changesNothing(async () => {
      for (const res of [
        await postJson(`${base}/api/v1/cases`, '{"slug": "x",', auth()),
        await signJson(slug, '{fullName: nope}'),
      ]) {
        expect(res.status).toBe(400);
        expect(await res.json()).toEqual({ error: { code: 'invalid_json', message: 'The request body is not valid JSON: send one JSON object.' } });
      }
      // JSON, but no object: not called invalid, and an array not answered field by field.
      for (const res of [
        ...(await Promise.all(['null', '"text"', '1', '[]', '[{"fullName": "A"}]'].map((body) => signJson(slug, body)))),
        await postJson(`${base}/api/v1/cases`, '[]', auth()),
        await postJson(`${base}/api/v1/subscribers`, '[]'),
      ]) {
        expect(res.status).toBe(400);
        expect(await res.json()).toEqual({ error: { code: 'invalid_json', message: 'The request body is JSON, but not an object: send one JSON object.' } });
      }
    });
  });

  it('answers schema errors in JSON with 422 and a message per field', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    await changesNothing(async () => {
      const kase = await postJson(`${base}/api/v1/cases`, { slug: 'Not A Slug!', status: 'happy' }, auth());
      expect(kase.status).toBe(422);
      const k = await kase.json();
      expect(k.error.code).toBe('invalid_input');
      expect(Object.keys(k.error.fields).sort()).toEqual(['personName', 'slug', 'status', 'summary']);

      const campaign = await postJson(`${base}/api/v1/campaigns`, {
        slug: uniq('camp'), caseSlug, title: 'T', letter: { subject: 'S', body: 'B' },
        targets: [{ name: '', email: 'not-an-email' }], deliveryMode: 'sometimes',
      }, auth());
      expect(campaign.status).toBe(422);
      expect((await campaign.json()).error.fields).toMatchObject({
        'targets.0.name': expect.any(String),
        'targets.0.email': 'must be a valid email address',
        deliveryMode: 'must be one of: each, digest',
      });

      const noCase = await postJson(`${base}/api/v1/campaigns`, {
        slug: uniq('camp'), caseSlug: 'no-such-case', title: 'T', letter: { subject: 'S', body: 'B' }, targets: [{ name: 'N', email: 'n@gov.example' }],
      }, auth());
      expect(noCase.status).toBe(422);
      expect((await noCase.json()).error.fields).toEqual({ caseSlug: expect.any(String) });

      const signature = await signJson(slug, { fullName: '', email: 'nope', personalNote: 7 });
      expect(signature.status).toBe(422);
      expect(Object.keys((await signature.json()).error.fields).sort()).toEqual(['email', 'fullName', 'personalNote']);

      const subscriber = await postJson(`${base}/api/v1/subscribers`, { email: `${uniq('sub')}@supporter.example`, caseSlug: 'Not A Slug!' });
      expect(subscriber.status).toBe(422);
      expect((await subscriber.json()).error.fields).toEqual({ caseSlug: 'use Latin letters a–z (lowercase), digits and single hyphens' });
    });
  });

  it('re-renders an invalid sign form with 400, the messages, and the typed values kept and escaped', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    await changesNothing(async () => {
      const res = await signForm(slug, { full_name: IMG, email: 'not-an-email', city: 'Oslo', country: 'Norway', personal_note: SCRIPT, subscribe: 'on' });
      expect(res.status).toBe(400);
      const html = await res.text();
      expect(html).toContain('must be a valid email address');
      expect(html).toMatch(/id="f-email"[^>]*value="not-an-email"/);
      expect(html).toMatch(/id="f-city"[^>]*value="Oslo"/);
      expect(html).toMatch(/id="f-subscribe"[^>]*checked/);
      expect(html).toMatch(/id="f-full_name"[^>]*value="&quot;&gt;&lt;img src&#x3D;x onerror&#x3D;alert\(1\)&gt;"/);
      expect(html).toContain('>&lt;script&gt;alert(1)&lt;/script&gt;</textarea>');
      // An empty address is asked for, not called invalid; the page's header leads to case alerts.
      const empty = await (await signForm(slug, { full_name: 'Ana', email: '  ' })).text();
      expect(empty).toContain('please give your email address');
      expect(empty).toContain('<a class="alerts" href="/subscribe">Case alerts by email</a>');
      // The preview shows the typed note too, as text.
      expect(html).toMatch(/data-field="personal_note"[^>]*>&lt;script&gt;alert\(1\)&lt;\/script&gt;</);
      expect(html).not.toMatch(RAW_MARKUP);
    });
  });

  it('answers a JSON body whose fields are objects, posted to the HTML forms, with 400 and the form again', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    await changesNothing(async () => {
      const json = { 'content-type': 'application/json' };
      const sign = await fetch(`${base}/c/${slug}/sign`, { method: 'POST', headers: json, body: JSON.stringify({ full_name: { toString: 1 }, email: 'x', city: ['Oslo'] }) });
      expect(sign.status).toBe(400);
      expect(await sign.text()).toMatch(/id="f-city"[^>]*value="Oslo"/);
      const subscribe = await fetch(`${base}/subscribe`, { method: 'POST', headers: json, body: JSON.stringify({ email: { toString: 1 } }) });
      expect(subscribe.status).toBe(400);
      expect(await subscribe.text()).toContain('name="email"');
    });
  });

  it('answers a body over the limit with 413', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    await changesNothing(async () => {
      const form = await signForm(slug, { ...valid(), personal_note: 'x'.repeat(40_000) });
      expect(form.status).toBe(413);
      expect(await form.text()).toContain('too large');
      const json = await signJson(slug, { fullName: 'Big Signer', email: `${uniq('big')}@supporter.example`, personalNote: 'x'.repeat(40_000) });
      expect(json.status).toBe(413);
      expect((await json.json()).error.code).toBe('too_large');
    });
  });

  it('refuses a personal note over 2,000 characters naming the field, and takes one of 2,000', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    await changesNothing(async () => {
      const form = await signForm(slug, { ...valid(), personal_note: 'x'.repeat(2_001) });
      expect(form.status).toBe(400);
      expect(await form.text()).toContain('must be at most 2000 characters');
      const json = await signJson(slug, { fullName: 'Long Note', email: `${uniq('long')}@supporter.example`, personalNote: 'x'.repeat(2_001) });
      expect(json.status).toBe(422);
      expect((await json.json()).error.fields).toEqual({ personalNote: 'must be at most 2000 characters' });
    });
    const json = await signJson(slug, { fullName: 'Long Note', email: `${uniq('long')}@supporter.example`, personalNote: 'x'.repeat(2_000) });
    expect(json.status).toBe(202);
  });

  it('answers a body that is not UTF-8, or a lone half of a character, with 400 and stores nothing', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const bytes = (text: string) => Buffer.from(text, 'latin1');
    await changesNothing(async () => {
      // Ay\xf0\x9fgerim: a cut-off four-byte character, which the JSON decoder would turn into U+FFFD.
      const json = await fetch(`${base}/api/v1/campaigns/${slug}/signatures`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: bytes(`{"fullName":"Ay\xf0\x9fgerim","email":"${uniq('u8')}@supporter.example"}`),
      });
      expect(json.status).toBe(400);
      expect(await json.json()).toEqual({ error: { code: 'invalid_encoding', message: expect.stringContaining('UTF-8') } });
      const kase = await fetch(`${base}/api/v1/cases`, {
        method: 'POST', headers: { 'content-type': 'application/json', ...auth() },
        body: bytes(`{"slug":"${uniq('enc')}","personName":"P\xff\xfe","summary":"S","status":"detained"}`),
      });
      expect(kase.status).toBe(400);
      // Declared in another charset: refused by its media type, with the code the README's table gives.
      const latin1 = await fetch(`${base}/api/v1/cases`, {
        method: 'POST', headers: { 'content-type': 'application/json; charset=latin1', ...auth() }, body: '{}',
      });
      expect(latin1.status).toBe(415);
      expect((await latin1.json()).error.code).toBe('unsupported_encoding');
      // UTF-16 too, though the parser could read it: the README's rule is UTF-8 alone.
      const utf16Slug = uniq('utf16');
      const utf16 = await fetch(`${base}/api/v1/cases`, {
        method: 'POST', headers: { 'content-type': 'application/json; charset=utf-16le', ...auth() },
        body: Buffer.from(JSON.stringify({ slug: utf16Slug, personName: 'P', summary: 'S', status: 'detained' }), 'utf16le'),
      });
      expect(utf16.status).toBe(415);
      expect((await utf16.json()).error).toMatchObject({ code: 'unsupported_encoding', message: expect.stringContaining('must be UTF-8') });
      expect((await ctx.db.query('SELECT 1 FROM cases WHERE slug = $1', [utf16Slug])).rowCount).toBe(0);
      // UTF-32 behind a quoted parameter that reads as charset=utf-8 to a plain search: its code
      // point past U+10FFFF would be stored as U+FFFD.
      const hiddenSlug = uniq('utf32');
      const utf32 = Buffer.concat([...JSON.stringify({ slug: hiddenSlug, personName: 'Ann X', summary: 'S', status: 'detained' })]
        .map((ch) => { const b = Buffer.alloc(4); b.writeUInt32BE(ch === 'X' ? 0x110000 : ch.codePointAt(0)!); return b; }));
      const hidden = await fetch(`${base}/api/v1/cases`, {
        method: 'POST', headers: { 'content-type': 'application/json; x=";charset=utf-8"; charset=utf-32be', ...auth() }, body: utf32,
      });
      expect(hidden.status).toBe(415);
      expect((await hidden.json()).error.code).toBe('unsupported_encoding');
      expect((await ctx.db.query('SELECT 1 FROM cases WHERE slug = $1', [hiddenSlug])).rowCount).toBe(0);
      // `utf8` is UTF-8's common alias, and read as such: here as far as its missing summary.
      const alias = await fetch(`${base}/api/v1/cases`, {
        method: 'POST', headers: { 'content-type': 'application/json; charset="UTF8"', ...auth() },
        body: JSON.stringify({ slug: uniq('utf8'), personName: 'Айгерім', status: 'detained' }),
      });
      expect(alias.status).toBe(422);
      expect(Object.keys((await alias.json()).error.fields)).toEqual(['summary']);
      // A damaged percent-escape in the address.
      const damaged = await fetch(`${base}/api/v1/cases/%E0%A4%A`, { headers: auth() });
      expect(damaged.status).toBe(400);
      expect((await damaged.json()).error.code).toBe('bad_link');
      // A Latin-1 page's form: %E9 is é there, and no UTF-8 at all.
      const form = await fetch(`${base}/c/${slug}/sign`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, redirect: 'manual',
        body: `full_name=Dana%E9Ex&email=${uniq('l1')}%40supporter.example`,
      });
      expect(form.status).toBe(400);
      expect(await form.text()).toContain('UTF-8');
      // A `%` that escapes nothing, which the parser would keep as typed, to reach officials so.
      const broken = await fetch(`${base}/c/${slug}/sign`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, redirect: 'manual',
        body: `full_name=Z%ZZ&email=${uniq('pct')}%40supporter.example`,
      });
      expect(broken.status).toBe(400);
      expect(await broken.text()).toContain('send % itself as %25');
      const half = await signJson(slug, `{"fullName":"Ay\\ud800gerim","email":"${uniq('sur')}@supporter.example"}`);
      expect(half.status).toBe(422);
      expect((await half.json()).error.fields).toEqual({ fullName: 'contains characters that are not text' });
    });
    // Text that is UTF-8 passes, escaped or not, as does a form that says it is ISO-8859-1.
    const ok = await signForm(slug, { full_name: 'Айгерім 😀 Dana', email: `${uniq('ok8')}@supporter.example`, personal_note: '100% sure: %E9 is not é' });
    expect(ok.status).toBe(303);
    const latin1 = await fetch(`${base}/c/${slug}/sign`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' }, redirect: 'manual',
      body: `full_name=Ren%E9e+Example&email=${uniq('iso')}%40supporter.example`,
    });
    expect(latin1.status).toBe(303);
    const { rows } = await ctx.db.query<{ full_name: string }>(`SELECT full_name FROM signatures WHERE full_name LIKE 'Ren%Example'`);
    expect(rows.map((r) => r.full_name)).toEqual(['Renée Example']);
    // Said to be `utf8` (UTF-8's common alias) or `us-ascii` (its subset): read as UTF-8.
    for (const charset of ['utf8', 'US-ASCII']) {
      const aliased = await fetch(`${base}/c/${slug}/sign`, {
        method: 'POST', headers: { 'content-type': `application/x-www-form-urlencoded; charset=${charset}` }, redirect: 'manual',
        body: `full_name=Ay%C3%A9+${charset}&email=${uniq('alias')}%40supporter.example`,
      });
      expect(aliased.status).toBe(303);
    }
    expect((await ctx.db.query(`SELECT 1 FROM signatures WHERE full_name IN ('Ayé utf8', 'Ayé US-ASCII')`)).rowCount).toBe(2);
  });

  it('refuses a subscribe value that says neither yes nor no, and reads a form sending the box twice', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    await changesNothing(async () => {
      for (const subscribe of ['maybe', ['no', 'perhaps'], 2]) {
        const res = await signJson(slug, { fullName: 'Unsure Signer', email: `${uniq('cb')}@supporter.example`, subscribe });
        expect(res.status).toBe(422);
        expect((await res.json()).error.fields).toEqual({ subscribe: 'must be true or false' });
      }
    });
    const twice = `${uniq('tw')}@supporter.example`;
    const res = await fetch(`${base}/c/${slug}/sign`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, redirect: 'manual',
      body: `full_name=Box+Twice&email=${encodeURIComponent(twice)}&subscribe=0&subscribe=on`,
    });
    expect(res.status).toBe(303);
    const { rows } = await ctx.db.query<{ subscribe: boolean }>('SELECT subscribe FROM signatures WHERE email = $1', [twice]);
    expect(rows).toEqual([{ subscribe: true }]);
  });

  it('answers launch, pause and close sent fields they do not take with 422, and changes nothing', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    await changesNothing(async () => {
      const res = await postJson(`${base}/api/v1/campaigns/${slug}/close`, { status: 'live', force: true }, auth());
      expect(res.status).toBe(422);
      expect((await res.json()).error.fields).toEqual({ status: expect.any(String), force: expect.any(String) });
      // A list is no object of fields: refused as JSON that is not one.
      const list = await postJson(`${base}/api/v1/campaigns/${slug}/pause`, [], auth());
      expect(list.status).toBe(400);
      expect((await list.json()).error.code).toBe('invalid_json');
    });
    expect((await ctx.db.query('SELECT status FROM campaigns WHERE slug = $1', [slug])).rows[0]).toEqual({ status: 'live' });
    // No body, or an empty object, is what they take.
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/pause`, {}, auth())).status).toBe(200);
    expect((await fetch(`${base}/api/v1/campaigns/${slug}/launch`, { method: 'POST', headers: auth() })).status).toBe(200);
  });

  it('reads a multipart form posted to the public forms as the fields it holds', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const email = `${uniq('mp')}@supporter.example`;
    const multipart = new FormData();
    multipart.set('full_name', 'Айгерим Multipart');
    multipart.set('email', email);
    multipart.set('city', 'Алматы');
    const sign = await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: multipart, redirect: 'manual' });
    expect(sign.status).toBe(303);
    const { rows } = await ctx.db.query('SELECT full_name, city, status FROM signatures WHERE email = $1', [email]);
    expect(rows).toEqual([{ full_name: 'Айгерим Multipart', city: 'Алматы', status: 'pending' }]);
  });

  it('answers a multipart form with a file, with bytes that are not UTF-8, or too large, with a 4xx, and a subscribe naming a case by a number with 400', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    await changesNothing(async () => {
      const withFile = new FormData();
      withFile.set('full_name', 'File Part');
      withFile.set('email', `${uniq('mp')}@supporter.example`);
      withFile.set('personal_note', new Blob(['a note in a file']), 'note.txt');
      const file = await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: withFile, redirect: 'manual' });
      expect(file.status).toBe(400);
      expect(await file.text()).toContain('parts this page does not take');

      // A Latin-1 name in a form part: multer would read é as U+FFFD.
      const boundary = 'b0undary';
      const latin1 = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="full_name"\r\n\r\nRen`),
        Buffer.from([0xe9]),
        Buffer.from(`e\r\n--${boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\n${uniq('l1')}@supporter.example\r\n--${boundary}--\r\n`),
      ]);
      const notUtf8 = await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: latin1, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, redirect: 'manual' });
      expect(notUtf8.status).toBe(400);
      expect(await notUtf8.text()).toContain('not valid UTF-8');

      const big = new FormData();
      big.set('full_name', 'Big Note');
      big.set('email', `${uniq('big')}@supporter.example`);
      big.set('personal_note', 'x'.repeat(40_000));
      expect((await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: big, redirect: 'manual' })).status).toBe(413);
      const many = new FormData();
      for (let i = 0; i < 60; i++) many.append(`f${i}`, 'x');
      const tooMany = await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: many, redirect: 'manual' });
      expect(tooMany.status).toBe(413);
      expect(await tooMany.text()).toContain('more fields than this page takes');
      // A name read as an index into an array of a billion slots, which a route would walk.
      for (const path of [`/c/${slug}/sign`, '/subscribe', '/preferences/not-a-token']) {
        const sparse = new FormData();
        sparse.append('cases[1000000000]', 'x');
        sparse.append('full_name[1000000000]', 'x');
        expect((await fetch(`${base}${path}`, { method: 'POST', body: sparse, redirect: 'manual' })).status, path).toBe(400);
      }
      const cut = await fetch(`${base}/subscribe`, { method: 'POST', body: `--${boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\nx`, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, redirect: 'manual' });
      expect(cut.status).toBe(400);
      // Text is still not a form.
      expect((await fetch(`${base}/subscribe`, { method: 'POST', body: 'email=a@b.example', headers: { 'content-type': 'text/plain' }, redirect: 'manual' })).status).toBe(415);
      // A button posting no body at all has no type to refuse: the link is looked up as ever.
      expect((await fetch(`${base}/subscribe/confirm/no-such-token`, { method: 'POST', redirect: 'manual' })).status).toBe(404);
      const numbered = await postJson(`${base}/subscribe`, { email: `${uniq('num')}@supporter.example`, case: 5 }, { accept: 'text/html' });
      expect(numbered.status).toBe(400);
      expect(await numbered.text()).toContain('choose one case, or none for all cases');
    });
  });

  it('answers an unknown or draft campaign, and an unknown confirmation link, with 404', async () => {
    const { slug: draft } = await createLiveCampaign(ctx.db, {}, 'draft');
    await changesNothing(async () => {
      for (const slug of ['no-such-campaign', draft]) {
        expect((await fetch(`${base}/c/${slug}`)).status).toBe(404);
        const form = await signForm(slug, valid());
        expect(form.status).toBe(404);
        expect(await form.text()).toContain('does not exist');
        const json = await signJson(slug, { fullName: 'Some Signer', email: `${uniq('u')}@supporter.example` });
        expect(json.status).toBe(404);
        expect((await json.json()).error.code).toBe('not_found');
      }
      expect((await fetch(`${base}/cases/no-such-case`)).status).toBe(404);
      expect((await fetch(`${base}/confirm/not-a-token`)).status).toBe(404);
      expect((await postForm(`${base}/confirm/not-a-token`, {})).status).toBe(404);
      // A version that is no text (a JSON client's object) is one no page showed, not a crash.
      for (const v of [{ toString: 1 }, { toString: null }, [], true]) {
        expect((await postJson(`${base}/confirm/not-a-token`, { v })).status).toBe(404);
      }
      // A link mangled on its way says so, not only that the request was not understood.
      for (const path of ['/confirm/%ff%fe', '/c/%zz']) {
        const res = await fetch(`${base}${path}`);
        expect(res.status).toBe(400);
        expect(await res.text()).toContain('copy the whole link from the email');
      }
    });
  });

  it('answers a signature on a paused campaign with a 409 page saying so', async () => {
    const { slug } = await createLiveCampaign(ctx.db, {}, 'paused');
    await changesNothing(async () => {
      // Paused after the page was opened: the campaign page again, and the note typed is kept.
      const form = await signForm(slug, { ...valid(), personal_note: 'Please <free> her' });
      expect(form.status).toBe(409);
      const html = await form.text();
      expect(html).toMatch(/paused and not taking signatures/);
      expect(html).toContain('Your signature was not sent.');
      expect(html).toContain('<h2 id="sign-heading">Signing is paused</h2>');
      // Where to look, on a phone too: the notice takes focus, and the title says it was refused.
      expect(html).toMatch(/<p class="notice" role="alert" tabindex="-1" autofocus>This campaign is paused/);
      expect(html).toMatch(/<title>Error: /);
      expect(html).toMatch(/<textarea id="kept-note" readonly rows="6" dir="auto">Please &lt;free&gt; her<\/textarea>/);
      const json = await signJson(slug, { fullName: 'Some Signer', email: `${uniq('p')}@supporter.example` });
      expect(json.status).toBe(409);
      expect((await json.json()).error.code).toBe('campaign_paused');
    });
    const opened = await (await fetch(`${base}/c/${slug}`)).text();
    expect(opened).toContain('This campaign is paused');
    expect(opened).not.toContain('autofocus>This campaign');
    // Someone moving by headings hears what the section holds: a notice, no form to sign.
    expect(opened).toContain('<h2 id="sign-heading">Signing is paused</h2>');
    expect(opened).not.toMatch(/>Sign it</);
    // Its thanks page (a signer's "see the progress") asks nobody to sign it.
    const thanks = await (await fetch(`${base}/c/${slug}/thanks`)).text();
    expect(thanks).toContain('The campaign is paused: it takes no signatures for now.');
    expect(thanks).not.toContain('Ask others to sign');
  });

  it('answers a signature on a closed campaign with a 410 page saying so', async () => {
    const { slug } = await createLiveCampaign(ctx.db, {}, 'closed');
    await changesNothing(async () => {
      const form = await signForm(slug, valid());
      expect(form.status).toBe(410);
      expect(await form.text()).toMatch(/is closed and no longer takes signatures/);
      const json = await signJson(slug, { fullName: 'Some Signer', email: `${uniq('c')}@supporter.example` });
      expect(json.status).toBe(410);
      expect((await json.json()).error.code).toBe('campaign_closed');
    });
    // Nobody signed it: its page says no letter went, and asks nobody to sign.
    const unsigned = await (await fetch(`${base}/c/${slug}`)).text();
    expect(unsigned).toMatch(/It was to go to\s/);
    expect(unsigned).toContain('Nobody confirmed a signature before it closed, so no letter was sent.');
    expect(unsigned).not.toMatch(/It went to|received their own copy/);
    // Signed, and its letter sent: its page speaks of the letters in the past.
    const signer = `${uniq('closed')}@supporter.example`;
    await ctx.db.query(
      `WITH s AS (INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) SELECT id, 'Closed Signer', $2, 'confirmed', now() FROM campaigns WHERE slug = $1 RETURNING id, campaign_id)
       INSERT INTO deliveries (kind, source_id, target_id, recipient, campaign_id, status, sent_at)
       SELECT 'letter', s.id, t.id, t.email, s.campaign_id, 'sent', now() FROM s JOIN targets t ON t.campaign_id = s.campaign_id`,
      [slug, signer],
    );
    const { signaturesChanged } = await import('../../src/campaigns/service.ts');
    signaturesChanged(ctx.db);
    const page = await (await fetch(`${base}/c/${slug}`)).text();
    expect(page).toMatch(/It went to\s/);
    expect(page).toContain('Each official received their own copy.');
    expect(page).toContain('<h2 id="sign-heading">Signing has closed</h2>');
    expect(page).not.toMatch(/It goes to|receives their own copy|>Sign it<|no letter was sent/);
    // Its signer erased since: the letters went all the same, and the page still says so.
    const { forgetPerson } = await import('../../src/retention/service.ts');
    expect((await forgetPerson(ctx.db, signer, 'cli')).signatures).toBe(1);
    const erased = await (await fetch(`${base}/c/${slug}`)).text();
    expect(erased).toMatch(/It went to\s/);
    expect(erased).not.toContain('no letter was sent');
  });

  it.each([true, false])('answers a filled honeypot as a real signature is answered (confirmation %s), and stores and sends nothing', async (requireConfirmation) => {
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation });
    const realForm = await signForm(slug, valid());
    const realJson = await signJson(slug, { fullName: 'Real Signer', email: `${uniq('real')}@supporter.example` });
    const realBody = await realJson.json();
    await changesNothing(async () => {
      const form = await signForm(slug, { ...valid(), website: 'http://spam.example' });
      expect(form.status).toBe(realForm.status);
      expect(form.headers.get('location')).toBe(realForm.headers.get('location'));
      const json = await signJson(slug, { fullName: 'Bot Signer', email: `${uniq('bot')}@supporter.example`, website: 'x' });
      expect(json.status).toBe(realJson.status);
      expect(await json.json()).toEqual(realBody);
      // A bot's invalid input is refused as a person's would be.
      expect((await signForm(slug, { ...valid(), email: 'nope', website: 'x' })).status).toBe(400);
    });
  });

  it('answers 429 to the 11th post naming one address within the hour, whatever the capitals, and a repeat counts as a new signature does', async () => {
    const email = `${uniq('busy')}@supporter.example`;
    const slugs = await Promise.all(Array.from({ length: 6 }, async () => (await createLiveCampaign(ctx.db)).slug));
    // Five new signatures and five repeats: had a repeat not counted, when the 429 came would
    // tell anyone whether this address signed.
    for (const slug of slugs.slice(0, 5)) expect((await signForm(slug, { full_name: 'Busy Signer', email })).status).toBe(303);
    // Their confirmations gone a while ago, so the repeats' new ones go at once (see RESEND_GAP_SECONDS).
    await settled(ctx.db);
    await pastResendGap(ctx.db, email);
    for (const slug of slugs.slice(0, 5)) expect((await signForm(slug, { full_name: 'Busy Signer', email })).status).toBe(303);
    await changesNothing(async () => {
      const form = await signForm(slugs[5]!, { full_name: 'Busy Signer', email: email.toUpperCase() });
      expect(form.status).toBe(429);
      expect(Number(form.headers.get('retry-after'))).toBeGreaterThan(0);
      const html = await form.text();
      // Beside the email field it is about, not under a "Form" label.
      expect(html).toMatch(/href="#f-email">Email: this address has been used in too many requests recently \(we limit each address so nobody can flood a mailbox\); please try again in \d+ minutes/);
      expect(html).toMatch(/id="f-full_name"[^>]*value="Busy Signer"/);
      const json = await signJson(slugs[5]!, { fullName: 'Busy Signer', email });
      expect(json.status).toBe(429);
      expect((await json.json()).error.code).toBe('rate_limited');
      // Another spelling of the same inbox shares its allowance.
      expect((await signForm(slugs[5]!, { full_name: 'Busy Signer', email: email.replace('@', '+again@') })).status).toBe(429);
    });
  });

  it('does not count posts refused for what they are against the address, so they cannot lock it out', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const paused = await createLiveCampaign(ctx.db);
    await ctx.db.query(`UPDATE campaigns SET status = 'paused' WHERE slug = $1`, [paused.slug]);
    const email = `${uniq('victim')}@supporter.example`;
    await changesNothing(async () => {
      for (let i = 0; i < 4; i++) {
        expect((await signForm(slug, { full_name: 'Bot', email, website: 'x' })).status).toBe(303); // honeypot
        expect((await signForm('no-such-campaign', { full_name: 'Lost', email })).status).toBe(404);
        expect((await signForm(paused.slug, { full_name: 'Late', email })).status).toBe(409);
        expect((await signJson(slug, { fullName: '', email })).status).toBe(422);
      }
    });
    // Nor is anything of them in Redis: the counts there are of emails sent (the workers' own).
    const counters = addressCounterKeys(ctx.config.queuePrefix, ctx.secret, email);
    expect(await ctx.redis.client.exists(...counters)).toBe(0);
    expect((await signForm(slug, { full_name: 'The Real Person', email })).status).toBe(303);
    await settled(ctx.db);
    expect(await ctx.redis.client.exists(...counters)).toBe(2);
  });

  describe('CR/LF in a field that reaches a header', () => {
    const injected = 'Eve\r\nBcc: victim@evil.example\r\nX-Injected: yes';

    it('refuses it in the supporter fields with 400 and stores nothing', async () => {
      const { slug } = await createLiveCampaign(ctx.db);
      await changesNothing(async () => {
        for (const field of ['full_name', 'city', 'country'] as const) {
          const res = await signForm(slug, { ...valid(), [field]: injected });
          expect(res.status).toBe(400);
          expect(await res.text()).toContain('must be one line of text');
        }
        // Unicode's own line breaks: some mail clients show them as one.
        for (const separator of ['\u2028', '\u2029', '\u0085']) {
          const res = await signForm(slug, { ...valid(), full_name: `Real Person${separator}Minister of Justice` });
          expect(res.status).toBe(400);
          expect(await res.text()).toContain('must be one line of text');
        }
        const email = await signForm(slug, { full_name: 'Eve', email: 'eve@supporter.example\r\nBcc: victim@evil.example' });
        expect(email.status).toBe(400);
        const json = await signJson(slug, { fullName: injected, email: `${uniq('e')}@supporter.example` });
        expect(json.status).toBe(422);
      });
    });

    it('refuses it in case, campaign and target fields with 422 and stores nothing', async () => {
      const { caseSlug } = await createLiveCampaign(ctx.db);
      const campaign = (over: Record<string, unknown>, target: Record<string, unknown> = {}) => ({
        slug: uniq('camp'), caseSlug, title: 'Title', letter: { subject: 'About {{case.personName}}', body: LETTER_BODY },
        targets: [{ name: 'Judge', email: `${uniq('j')}@court.example`, ...target }], ...over,
      });
      await changesNothing(async () => {
        const bad: [unknown, string][] = [
          [campaign({}, { name: injected }), 'targets.0.name'],
          [campaign({}, { salutation: injected }), 'targets.0.salutation'],
          [campaign({}, { email: 'judge@court.example\r\nBcc: victim@evil.example' }), 'targets.0.email'],
          [campaign({ title: injected }), 'title'],
          [campaign({ letter: { subject: `About {{case.personName}}\r\nBcc: victim@evil.example`, body: 'B' } }), 'letter.subject'],
        ];
        for (const [body, field] of bad) {
          const res = await postJson(`${base}/api/v1/campaigns`, body, auth());
          expect(res.status).toBe(422);
          expect(Object.keys((await res.json()).error.fields)).toContain(field);
        }
        const kase = await postJson(`${base}/api/v1/cases`, { slug: uniq('case'), personName: injected, summary: 'S', status: 'detained', location: injected }, auth());
        expect(kase.status).toBe(422);
        expect(Object.keys((await kase.json()).error.fields).sort()).toEqual(['location', 'personName']);
      });
    });

    it('renders a multi-line personal note used in the subject on one line, with no header added', async () => {
      const target = `${uniq('subj')}@gov.example`;
      const { slug } = await createLiveCampaign(ctx.db, {
        requireConfirmation: false,
        letter: { subject: 'From {{supporter.fullName}}: {{supporter.personalNote}}', body: LETTER_BODY },
        targets: [{ name: 'Official', email: target, disclose: 'full' }],
      });
      const res = await signForm(slug, { full_name: 'Eve "Boss" <boss@evil.example>', email: `${uniq('eve')}@supporter.example`, personal_note: injected });
      expect(res.status).toBe(303);
      const [letter] = await mailTo(ctx.sink!, target);
      expect(letter!.subject).toBe('From Eve "Boss" <boss@evil.example>: Eve Bcc: victim@evil.example X-Injected: yes');
      expect(letter!.headers.has('x-injected')).toBe(false);
      expect(letter!.bcc).toBeUndefined();
      expect(addressOf(letter!.to)).toEqual([target]);
      // A name that looks like an address stays a display name, and shows no address of its own:
      // the From address is MAIL_FROM's.
      expect(letter!.from!.value).toEqual([{ name: 'Eve "Boss" boss evil.example via Appeal Test', address: 'letters@appeal.test' }]);
      // Signed without confirmation: the address is not passed on (letters.test.ts), so no Reply-To to inject into.
      expect(letter!.replyTo).toBeUndefined();
      await settled(ctx.db);
      expect(rcpts).not.toContain('victim@evil.example');
      expect(rcpts).not.toContain('boss@evil.example');
    });
  });

  describe('markup in a field shown on a page', () => {
    let slug: string;
    let caseSlug: string;

    beforeAll(async () => {
      caseSlug = uniq('case');
      await createCase(ctx.db, { slug: caseSlug, personName: `Aigerim ${IMG}`, summary: `She fled. ${SCRIPT}`, status: 'detained', location: `Almaty ${SCRIPT}` });
      slug = uniq('camp');
      await createCampaign(ctx.db, {
        slug,
        caseSlug,
        title: `Free her ${SCRIPT}`,
        summary: `Summary ${IMG}`,
        letter: { subject: 'About <b onmouseover=x>{{case.personName}}</b>', body: `<i>Signer</i> {{supporter.fullName}} for {{case.personName}}\n{{supporter.personalNote}}` },
        targets: [{ name: `<b onmouseover=x>Judge</b>`, title: SCRIPT, email: `${uniq('j')}@court.example`, disclose: 'full' }],
        requireConfirmation: false,
      });
      await changeCampaignStatus(ctx.db, slug, 'launch');
    });

    it('escapes it on the campaign page: case, campaign, targets and the letter preview', async () => {
      const html = await (await fetch(`${base}/c/${slug}`)).text();
      expect(html).not.toMatch(RAW_MARKUP);
      expect(html).toContain('Free her &lt;script&gt;alert(1)&lt;/script&gt;');
      expect(html).toContain('&lt;b onmouseover&#x3D;x&gt;Judge&lt;/b&gt;');
      expect(html).toContain('She fled. &lt;script&gt;');
      expect(html).toContain('&lt;i&gt;Signer&lt;/i&gt;');
    });

    it('escapes it on the home page, the case page, and the pages after signing', async () => {
      for (const path of ['/', `/cases/${caseSlug}`, `/c/${slug}/check-email`, `/c/${slug}/thanks`]) {
        const res = await fetch(`${base}${path}`);
        expect(res.status).toBe(200);
        const html = await res.text();
        expect(html).toContain('Free her &lt;script&gt;');
        expect(html).not.toMatch(RAW_MARKUP);
      }
    });

    it('escapes the name, place and note a signer gave on the confirmation page their email links to', async () => {
      const confirming = await createLiveCampaign(ctx.db, { requireConfirmation: true });
      const email = `${uniq('cm')}@supporter.example`;
      const res = await signForm(confirming.slug, { full_name: `Mark ${IMG}`, email, city: `Almaty ${SCRIPT}`, personal_note: `Free her ${SCRIPT}\n${IMG}` });
      expect(res.status).toBe(303);
      const [mail] = await mailTo(ctx.sink!, email);
      const page = await fetch(`${base}/confirm/${confirmToken(mail!)}`);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).not.toMatch(RAW_MARKUP);
      expect(html).toContain('<bdi>Mark &quot;&gt;&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;</bdi>');
      expect(html).toContain('<bdi>Almaty &lt;script&gt;alert(1)&lt;/script&gt;</bdi>');
      expect(html).toContain('Free her &lt;script&gt;alert(1)&lt;/script&gt;\n&quot;&gt;&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;</dd>');
    });

    it('keeps the letter itself as plain text with an escaped HTML part', async () => {
      const target = (await ctx.db.query<{ email: string }>('SELECT t.email FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE c.slug = $1', [slug])).rows[0]!.email;
      await signForm(slug, { full_name: 'Mark Up', email: `${uniq('mu')}@supporter.example`, personal_note: SCRIPT });
      const [letter] = await mailTo(ctx.sink!, target);
      expect(letter!.text).toContain(SCRIPT);
      expect(letter!.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(String(letter!.html)).not.toMatch(RAW_MARKUP);
    });
  });

  describe('a letter template that does not compile', () => {
    it('is a 422 naming the line, and creates nothing', async () => {
      const { caseSlug } = await createLiveCampaign(ctx.db);
      const create = (letter: { subject: string; body: string }) =>
        postJson(`${base}/api/v1/campaigns`, { slug: uniq('camp'), caseSlug, title: 'T', letter, targets: [{ name: 'N', email: 'n@gov.example' }] }, auth());
      await changesNothing(async () => {
        const unclosed = await create({ subject: 'S', body: 'Dear {{target.name}},\n\n{{#if supporter.city}}\nfrom {{supporter.city}}' });
        expect(unclosed.status).toBe(422);
        const u = await unclosed.json();
        expect(u.error.code).toBe('invalid_template');
        expect(u.error.fields['letter.body']).toMatch(/^Line 3: syntax error: the \{\{#if\}\} block opened here is never closed/);

        // An inverted block has no program of its own: checking it once answered 500.
        const inverted = await create({ subject: 'S', body: 'Dear {{target.name}},\n{{^if supporter.email}}x{{/if}}' });
        expect(inverted.status).toBe(422);
        expect((await inverted.json()).error.fields['letter.body']).toMatch(/^Line 2: unknown variable "supporter\.email"/);

        const unknown = await create({ subject: 'S', body: 'Dear {{target.name}},\n\nreply to {{supporter.email}}' });
        expect((await unknown.json()).error.fields['letter.body']).toMatch(/^Line 3: unknown variable "supporter\.email"/);

        const subject = await create({ subject: 'About {{constructor.constructor}}', body: 'B' });
        expect(subject.status).toBe(422);
        expect((await subject.json()).error.fields['letter.subject']).toMatch(/^Line 1: unknown variable/);

        const both = await postJson(`${base}/api/v1/campaigns`, {
          slug: uniq('camp'), caseSlug, title: '', letter: { subject: '{{nope}}', body: 'Hi\n{{supporter.email}}' }, targets: [{ name: 'N', email: 'n@gov.example' }],
        }, auth());
        expect(both.status).toBe(422);
        const fields = (await both.json()).error.fields;
        expect(Object.keys(fields).sort()).toEqual(['letter.body', 'letter.subject', 'title']);
        expect(fields['letter.body']).toMatch(/^Line 2: unknown variable/);
      });
    });
  });

  it('takes a letter with inverted blocks ({{^if}}, {{^unless}}) and sends it as written', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const slug = uniq('inv');
    const created = await postJson(`${base}/api/v1/campaigns`, {
      slug, caseSlug, title: 'T', requireConfirmation: false,
      letter: { subject: 'Letter{{^if supporter.city}} (no city){{/if}}', body: 'Dear {{target.name}},\n{{^if supporter.city}}No city given.{{/if}}\n{{^unless supporter.city}}From {{supporter.city}}.{{/unless}}' },
      targets: [{ name: 'Inv Target', email: `${slug}@gov.example` }],
    }, auth());
    expect(created.status).toBe(201);
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/launch`, {}, auth())).status).toBe(200);
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'No Place', email: `${uniq('np')}@supporter.example` })).status).toBe(202);
    const [letter] = await mailTo(ctx.sink!, `${slug}@gov.example`);
    expect(letter!.subject).toBe('Letter (no city)');
    expect(letter!.text).toContain('No city given.');
    expect(letter!.text).not.toContain('From');
  });

  it('names an unknown case and a taken slug with the other mistakes of a new campaign, not after they are mended', async () => {
    const { slug: taken } = await createLiveCampaign(ctx.db);
    const all = await postJson(`${base}/api/v1/campaigns`, {
      slug: taken, caseSlug: 'no-such-case', title: '', letter: { subject: 'S', body: 'B' }, targets: [{ name: 'N', email: 'n@gov.example' }],
    }, auth());
    expect(all.status).toBe(422);
    expect((await all.json()).error.fields).toMatchObject({ title: expect.any(String), caseSlug: 'no case has this slug', slug: 'is taken already: choose another' });
    // A field the route does not take is one of those mistakes too.
    const unknown = await postJson(`${base}/api/v1/campaigns`, {
      slug: taken, caseSlug: 'no-such-case', title: 'T', summary: 'S', letter: { subject: 'S', body: 'B' }, targets: [{ name: 'N', email: 'n@gov.example' }], deliveryMode: 'each', bogus: 1,
    }, auth());
    expect(unknown.status).toBe(422);
    expect((await unknown.json()).error.fields).toEqual({ bogus: expect.stringContaining('not a field'), caseSlug: 'no case has this slug', slug: 'is taken already: choose another' });
    // The two alone: both named in the 422, not the slug as a 409 once the case is mended.
    const both = await postJson(`${base}/api/v1/campaigns`, {
      slug: taken, caseSlug: 'no-such-case', title: 'T', letter: { subject: 'S', body: 'B' }, targets: [{ name: 'N', email: 'n@gov.example' }],
    }, auth());
    expect(both.status).toBe(422);
    expect((await both.json()).error.fields).toEqual({ caseSlug: 'no case has this slug', slug: 'is taken already: choose another' });
  });

  it('answers a public page asked with a method it does not take with 405 and Allow, not 404', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const put = await fetch(`${base}/c/${slug}/sign`, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST, OPTIONS');
    // Opening the form's own address (a reload after a form with mistakes) leads to the campaign.
    const opened = await fetch(`${base}/c/${slug}/sign`, { redirect: 'manual' });
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe(`/c/${slug}`);
    const del = await fetch(`${base}/c/${slug}`, { method: 'DELETE' });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
    expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/c/${slug}/nothing-here`)).status).toBe(404);
  });

  it('answers subscriber pages asked with a method they do not take with 405, naming the one-click POST in Allow', async () => {
    const put = await fetch(`${base}/subscribe`, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST, OPTIONS');
    const del = await fetch(`${base}/unsubscribe/some-token`, { method: 'DELETE' });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET, HEAD, POST, OPTIONS');
    const options = await fetch(`${base}/unsubscribe/some-token`, { method: 'OPTIONS' });
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')).toBe('GET, HEAD, POST, OPTIONS');
    // The one-click POST is still the one-click unsubscribe, not a 405.
    expect((await fetch(`${base}/unsubscribe/some-token`, { method: 'POST' })).status).not.toBe(405);
  });

  it('sends a CSP and no X-Powered-By', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    for (const res of [await fetch(`${base}/`), await fetch(`${base}/c/${slug}`), await fetch(`${base}/nowhere`), await signJson(slug, {})]) {
      expect(res.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
      expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
      expect(res.headers.get('content-security-policy')).toMatch(/font-src 'self'(;|$)/);
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
  });

  it('sends an address typed or rewritten with capitals to its own, and /favicon.ico to the icon', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    const to = async (path: string, method = 'GET') => {
      const res = await fetch(`${base}${path}`, { method, redirect: 'manual' });
      return [res.status, res.headers.get('location')];
    };
    expect(await to(`/c/${slug.toUpperCase()}?ref=share`)).toEqual([301, `/c/${slug}?ref=share`]);
    expect(await to(`/C/${slug}/thanks`)).toEqual([301, `/c/${slug}/thanks`]);
    expect(await to(`/cases/${caseSlug.replace(/^./, (c) => c.toUpperCase())}`, 'HEAD')).toEqual([301, `/cases/${caseSlug}`]);
    // The console's cookie is sent to /admin alone: a signed-in organizer would be asked to sign in.
    expect(await to('/ADMIN/campaigns?status=live')).toEqual([301, '/admin/campaigns?status=live']);
    expect(await to('/Admin')).toEqual([301, '/admin']);
    // As they are: addresses already lowercase, tokens (whose case is theirs), posts.
    expect((await to(`/c/${slug}`))[0]).toBe(200);
    expect((await to('/confirm/AbCdEf'))[0]).toBe(404);
    expect((await to(`/c/${slug.toUpperCase()}/sign`, 'POST'))[0]).not.toBe(301);
    const [status, icon] = await to('/favicon.ico');
    expect(status).toBe(302);
    const svg = await fetch(`${base}${icon}`);
    expect([svg.status, svg.headers.get('content-type')]).toEqual([200, 'image/svg+xml']);
  });

  it('has browsers fetch over https behind an https PUBLIC_URL, except on an onion address in front of it', async () => {
    expect((await fetch(`${base}/`)).headers.get('content-security-policy')).not.toMatch(/upgrade-insecure-requests/);
    const server = await new Promise<Server>((resolve) => {
      const s = createWebApp({ ...ctx, config: Object.freeze({ ...ctx.config, publicUrl: 'https://appeal.example' }) }).listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const cspFor = (host: string) =>
        new Promise<string>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/', headers: { host } }, (res) => {
            res.resume();
            resolve(String(res.headers['content-security-policy']));
          }).on('error', reject);
        });
      expect(await cspFor('appeal.example')).toMatch(/upgrade-insecure-requests/);
      // Tor's own encryption, no certificate: upgraded, its forms would go to a port nobody serves.
      const onion = await cspFor('appealxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion');
      expect(onion).not.toMatch(/upgrade-insecure-requests/);
      expect(onion).toMatch(/default-src 'self'/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses to be framed by both headers, and says an error page depends on what the client accepts', async () => {
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    // The same address answers HTML or JSON: a cache that keeps a 404 must key it by Accept.
    const asJson = await fetch(`${base}/c/no-such-campaign`, { headers: { accept: 'application/json' } });
    expect(asJson.headers.get('content-type')).toMatch(/json/);
    expect(asJson.headers.get('vary')).toMatch(/Accept/);
    expect((await fetch(`${base}/c/no-such-campaign`)).headers.get('vary')).toMatch(/Accept/);
  });

  it("links its script and stylesheets by their content's version, kept a year by that version only", async () => {
    const html = await (await fetch(`${base}/`)).text();
    const script = /<script src="(\/static\/app\.js\?v=[\w-]{10})"/.exec(html)?.[1];
    const style = /<link rel="stylesheet" href="(\/static\/app\.css\?v=[\w-]{10})"/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect(style).toBeDefined();
    const current = await fetch(`${base}${script}`);
    expect(current.status).toBe(200);
    expect(current.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    // Another version (an older page's), or none, may change with the next release.
    for (const other of ['/static/app.js?v=AAAAAAAAAA', '/static/app.js']) {
      expect((await fetch(`${base}${other}`)).headers.get('cache-control')).toBe('public, max-age=3600');
    }
  });

  it('answers /healthz and /readyz with 200, kept by no cache', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ database: 'ok', redis: 'ok' });
    for (const res of [health, ready]) expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('has a CDN ask again for a public page each time, by its ETag, so a campaign closed shows closed', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    for (const path of ['/', `/c/${slug}`, `/cases/${caseSlug}`, '/subscribe', `/c/${slug}/thanks`, '/no-such-page']) {
      const res = await fetch(`${base}${path}`);
      expect(res.headers.get('cache-control'), path).toBe('no-cache');
    }
    // As a cache revalidates: fetch would add `Cache-Control: no-cache` to a conditional request.
    const revalidate = (etag: string) => new Promise<number>((resolve, reject) => {
      http.get(`${base}/c/${slug}`, { headers: { 'if-none-match': etag } }, (res) => resolve(res.resume().statusCode!)).on('error', reject);
    });
    const etag = (await fetch(`${base}/c/${slug}`)).headers.get('etag');
    expect(etag).toBeTruthy();
    expect(await revalidate(etag!)).toBe(304);
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/close`, {}, auth())).status).toBe(200);
    // The page changed (no form, "closed"): sent whole again.
    expect(await revalidate(etag!)).toBe(200);
    // What sets its own keeps it: the API, the console, the token pages.
    expect((await fetch(`${base}/api/v1/campaigns/${slug}/stats`, { headers: auth() })).headers.get('cache-control')).toBe('no-store');
    expect((await fetch(`${base}/admin/login`)).headers.get('cache-control')).toBe('no-store');
    expect((await fetch(`${base}/confirm/not-a-token`)).headers.get('cache-control')).toBe('no-store, private');
  });
});

describe('the per-IP limit', () => {
  // Counters live in Redis alone, so one database kind is enough here.
  const limited = (env: Record<string, string>) => {
    let ctx: TestContext;
    let base: string;
    let slug: string;
    const warnings: string[] = [];
    beforeAll(async () => {
      const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
      ctx = await createTestContext({ db: 'postgres', env: { RATE_LIMIT_PER_IP: '3', ...env }, log });
      base = await ctx.startWeb();
      ({ slug } = await createLiveCampaign(ctx.db));
    });
    afterAll(async () => {
      await ctx?.close();
    });
    // Posts that pass the limiter are refused later (no email), so they store nothing.
    const post = (ip: string) => postForm(`${base}/c/${slug}/sign`, { full_name: 'Limit Tester' }, { 'x-forwarded-for': ip });
    return { ctx: () => ctx, post, base: () => base, slug: () => slug, warnings };
  };

  describe('without TRUST_PROXY', () => {
    const t = limited({});

    it('answers the 4th post from one address with a 429 page saying when to try again, whatever X-Forwarded-For says', async () => {
      for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) expect((await t.post(ip)).status).toBe(400);
      const before = await rowCounts(t.ctx().db);
      const res = await t.post('203.0.113.4');
      expect(res.status).toBe(429);
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(500);
      expect(retryAfter).toBeLessThanOrEqual(600);
      const html = await res.text();
      expect(html).toContain('Please try again in 10 minutes.');
      // Said of the network, not of the person: a Tor exit's users share one allowance.
      expect(html).toContain('people who share a connection (a Tor exit, a mobile carrier, an office) count together');
      expect(html).toContain("Your browser's Back button should take you back to the form.");
      // A flood gets the plain page: nothing of the campaign is read for it.
      expect(html).not.toContain('id="f-full_name"');
      // Answers to a sign form are never cached, so Back may bring it back empty: the note is on the page.
      const noted = await postForm(`${t.base()}/c/${t.slug()}/sign`, { full_name: 'Limit Tester', personal_note: '<b>Free her</b>\n& now' }, { 'x-forwarded-for': '203.0.113.5' });
      expect(noted.status).toBe(429);
      expect(await noted.text()).toContain('<textarea id="kept-note" readonly rows="6" dir="auto">&lt;b&gt;Free her&lt;/b&gt;\n&amp; now</textarea>');
      // Not a note another site's page posted: our page would show a stranger's words as if they were ours.
      for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { origin: 'https://evil.example' }] as Record<string, string>[]) {
        const planted = await postForm(`${t.base()}/c/no-such-campaign/sign`, { full_name: 'X', personal_note: 'NOTICE FROM APPEAL: email your passport scan to help@evil.example' }, headers);
        expect(planted.status).toBe(429);
        const page = await planted.text();
        expect(page).toContain('Please try again in');
        expect(page).not.toContain('passport');
      }
      const json = await postJson(`${t.base()}/api/v1/campaigns/${t.slug()}/signatures`, { fullName: 'Limit Tester', email: 'limit@supporter.example' });
      expect(json.status).toBe(429);
      expect(json.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await rowCounts(t.ctx().db)).toEqual(before);
      // A proxy in front that nothing trusts is said once, not per request.
      expect(t.warnings.filter((w) => w.includes('X-Forwarded-For, but TRUST_PROXY trusts no proxy'))).toHaveLength(1);
    });
  });

  describe('with TRUST_PROXY=0, which trusts no proxy either', () => {
    const t = limited({ TRUST_PROXY: '0' });

    it('says once that a request came through a proxy nothing trusts', async () => {
      for (const ip of ['203.0.113.1', '203.0.113.2']) expect((await t.post(ip)).status).toBe(400);
      expect(t.warnings.filter((w) => w.includes('X-Forwarded-For, but TRUST_PROXY trusts no proxy'))).toHaveLength(1);
    });
  });

  describe('with TRUST_PROXY=loopback', () => {
    const t = limited({ TRUST_PROXY: 'loopback' });

    it('counts each client behind the proxy separately', async () => {
      for (let i = 0; i < 3; i++) expect((await t.post('198.51.100.7')).status).toBe(400);
      expect((await t.post('198.51.100.7')).status).toBe(429);
      expect((await t.post('198.51.100.8')).status).toBe(400);
      expect((await t.post('198.51.100.9, 198.51.100.7')).status).toBe(429);
      expect(t.warnings).toEqual([]);
    });

    it('counts a client the proxy forwards with its port as one client, whatever port each connection came from', async () => {
      // Express keeps `address:port` from X-Forwarded-For as req.ip; only the limiter drops the port.
      for (const port of [1001, 1002, 1003]) expect((await t.post(`198.51.100.20:${port}`)).status).toBe(400);
      expect((await t.post('198.51.100.20:1004')).status).toBe(429);
      expect((await t.post('198.51.100.20')).status).toBe(429);
      for (const port of [1001, 1002, 1003]) expect((await t.post(`[2001:db8:20::1]:${port}`)).status).toBe(400);
      expect((await t.post('[2001:db8:20::1]:1004')).status).toBe(429);
      expect(t.warnings).toEqual([]);
    });
  });
});

describe('a database that will not take the work', () => {
  let ctx: TestContext;
  let slug: string;
  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres', env: { RATE_LIMIT_PER_IP: '0' } });
    ({ slug } = await createLiveCampaign(ctx.db));
  });
  afterAll(async () => {
    await ctx?.close();
  });

  /** Runs `act` against a web app of its own on `db`. */
  async function onDatabase(db: Db, act: (base: string) => Promise<void>) {
    const server = await new Promise<Server>((resolve) => {
      const s = createWebApp({ ...ctx, db }).listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      await act(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await db.close();
    }
  }

  it('takes no writes (a standby, or a primary a failover demoted): not ready, and a signature is 503 "send it again", storing nothing', async () => {
    const readOnly = openPostgres(`${ctx.testDb.url!}${encodeURIComponent(' -c default_transaction_read_only=on')}`, { max: 2 });
    await onDatabase(readOnly, async (base) => {
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'unavailable', database: 'read-only' });
      expect((await fetch(`${base}/c/${slug}`)).status).toBe(200);
      const before = await rowCounts(ctx.db);
      const signed = await postForm(`${base}/c/${slug}/sign`, { full_name: 'Read Only', email: `${uniq('ro')}@supporter.example` });
      expect(signed.status).toBe(503);
      expect(signed.headers.get('retry-after')).toBe('30');
      expect(await signed.text()).toContain('may not have been saved');
      expect(await rowCounts(ctx.db)).toEqual(before);
    });
  });

  it('cannot be reached: a page only opened says it cannot be shown, not that something sent may be lost', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    await new Promise((r) => server.close(r));
    await onDatabase(openPostgres(`postgres://postgres@127.0.0.1:${port}/none`, { max: 1 }), async (base) => {
      const page = await fetch(`${base}/c/${slug}`);
      expect(page.status).toBe(503);
      const text = await page.text();
      expect(text).toContain('This page cannot be shown right now');
      expect(text).not.toContain('may not have been saved');
      // An API client asked for no page.
      const stats = await fetch(`${base}/api/v1/campaigns/${slug}/stats`, { headers: { authorization: 'Bearer not-checked-while-away' } });
      expect(stats.status).toBe(503);
      expect(await stats.json()).toEqual({ error: { code: 'unavailable', message: 'This cannot be answered right now: our database is unavailable. Please try again in a minute.' } });
      const signed = await postForm(`${base}/c/${slug}/sign`, { full_name: 'Far Away', email: `${uniq('far')}@supporter.example` });
      expect(signed.status).toBe(503);
      expect(await signed.text()).toContain('may not have been saved');
    });
  });
});
