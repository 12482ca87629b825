import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { DB_KINDS } from '../helpers/db.ts';
import { hashToken } from '../../src/tokens.ts';
import { createCase } from '../../src/cases/service.ts';
import { ensureManageToken } from '../../src/subscribers/service.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign, createToken, LETTER_BODY, uniq } from '../helpers/fixtures.ts';
import { confirmToken, mailTo, postForm, postJson, rowCounts, settled, until } from '../helpers/signing.ts';

describe.each(DB_KINDS)('the JSON API on %s', (kind) => {
  let ctx: TestContext;
  let base: string;
  let token: string;
  const auth = () => ({ authorization: `Bearer ${token}` });
  const api = (path: string, body?: unknown, headers: Record<string, string> = auth()) =>
    body === undefined
      ? fetch(`${base}/api/v1${path}`, { method: 'POST', headers })
      : postJson(`${base}/api/v1${path}`, body, headers);
  const get = (path: string, headers: Record<string, string> = auth()) => fetch(`${base}/api/v1${path}`, { headers });

  beforeAll(async () => {
    ctx = await createTestContext({ db: kind, env: { RATE_LIMIT_PER_IP: '0' } });
    base = await ctx.startWeb();
    await ctx.startWorkers();
    token = await createToken(ctx.db);
  });
  afterAll(async () => {
    await ctx?.close();
  });

  async function newCase(): Promise<string> {
    const slug = uniq('case');
    const res = await api('/cases', { slug, personName: 'Serik Test', summary: 'Detained at the border.', status: 'detained', location: 'Almaty' });
    expect(res.status).toBe(201);
    return slug;
  }

  const campaignBody = (caseSlug: string, extra: Record<string, unknown> = {}) => ({
    slug: uniq('camp'),
    caseSlug,
    title: 'Free Serik',
    summary: 'Write to the ministry.',
    letter: { subject: 'About {{case.personName}}', body: LETTER_BODY },
    targets: [
      { name: 'Minister', title: 'Interior', email: `${uniq('min')}@gov.example`, salutation: 'Dear Minister' },
      { name: 'Judge', email: `${uniq('judge')}@court.example`, disclose: 'full' },
    ],
    deliveryMode: 'each',
    goal: 50,
    ...extra,
  });

  it('creates a case, then a draft campaign with its targets', async () => {
    const caseSlug = uniq('case');
    const created = await api('/cases', { slug: caseSlug, personName: 'Serik Test', summary: 'Detained.', status: 'at risk' });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ slug: caseSlug, personName: 'Serik Test', status: 'at_risk', location: '' });
    // The same slug again: a conflict, naming the field as input errors do.
    const again = await api('/cases', { slug: caseSlug, personName: 'Other', summary: 'Other.', status: 'detained' });
    expect(again.status).toBe(409);
    expect(await again.json()).toEqual({ error: { code: 'slug_taken', message: expect.stringContaining(caseSlug), fields: { slug: expect.stringContaining('taken') } } });
    // "new" is the console's form for a new one (/admin/cases/new): a case by that name would have no page there.
    const reserved = await api('/cases', { slug: 'new', personName: 'Other', summary: 'Other.', status: 'detained' });
    expect(reserved.status).toBe(422);
    expect((await reserved.json()).error.fields).toEqual({ slug: expect.stringContaining("console's form for a new one") });
    const reservedCampaign = await api('/campaigns', { ...campaignBody(caseSlug), slug: 'new' });
    expect(reservedCampaign.status).toBe(422);
    expect((await reservedCampaign.json()).error.fields).toEqual({ slug: expect.stringContaining("console's form for a new one") });
    // One named so before the rule is still saved under its name.
    const { updateCase } = await import('../../src/cases/service.ts');
    const older = uniq('older');
    await api('/cases', { slug: older, personName: 'Older', summary: 'Older.', status: 'detained' });
    await ctx.db.query(`UPDATE cases SET slug = 'new' WHERE slug = $1`, [older]);
    await expect(updateCase(ctx.db, 'new', { personName: 'Older', summary: 'Saved again.', status: 'detained' })).resolves.toMatchObject({ slug: 'new', summary: 'Saved again.' });
    await ctx.db.query(`DELETE FROM cases WHERE slug = 'new'`);

    const body = campaignBody(caseSlug);
    const res = await api('/campaigns', body);
    expect(res.status).toBe(201);
    const campaign = await res.json();
    expect(campaign).toMatchObject({
      slug: body.slug,
      caseSlug,
      title: 'Free Serik',
      status: 'draft',
      deliveryMode: 'each',
      goal: 50,
      requireConfirmation: true,
      letter: body.letter,
    });
    expect(campaign.targets).toEqual([
      { name: 'Minister', title: 'Interior', email: body.targets[0]!.email, salutation: 'Dear Minister', disclose: 'name_place' },
      { name: 'Judge', title: '', email: body.targets[1]!.email, salutation: '', disclose: 'full' },
    ]);
    const fetched = await get(`/campaigns/${body.slug}`);
    expect((await fetched.json()).targets).toHaveLength(2);

    const digest = await api('/campaigns', campaignBody(caseSlug, { deliveryMode: 'digest', digestHour: 0 }));
    expect(digest.status).toBe(201);
    expect(await digest.json()).toMatchObject({ deliveryMode: 'digest', digestHour: 0 });
  });

  it('takes the language a case is written in, and marks its pages, its letters and its alerts\' text with it', async () => {
    const bad = await api('/cases', { slug: uniq('case'), personName: 'Айгерім', summary: 'Ұсталды.', status: 'detained', language: 'Kazakh!' });
    expect(bad.status).toBe(422);
    expect((await bad.json()).error.fields).toEqual({ language: expect.stringContaining('language tag such as kk') });
    const caseSlug = uniq('case');
    const created = await api('/cases', { slug: caseSlug, personName: 'Айгерім', summary: 'Шекарада ұсталды.', status: 'detained', language: 'KK-cyrl' });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ language: 'kk-Cyrl' });
    const body = { ...campaignBody(caseSlug), title: 'Айгерімді босатыңыз', requireConfirmation: false };
    expect((await api('/campaigns', body)).status).toBe(201);
    expect((await api(`/campaigns/${body.slug}/launch`)).status).toBe(200);

    const page = await (await fetch(`${base}/c/${body.slug}`)).text();
    expect(page).toContain('<h1 dir="auto" lang="kk-Cyrl">Айгерімді босатыңыз</h1>');
    expect(page).toContain('<div class="pre" data-preview="body" lang="kk-Cyrl">');
    expect(await (await fetch(`${base}/`)).text()).toContain('<h2 dir="auto" lang="kk-Cyrl"><a href="/c/' + body.slug + '">Айгерімді босатыңыз</a></h2>');
    expect(await (await fetch(`${base}/cases/${caseSlug}`)).text()).toContain('<p class="pre" lang="kk-Cyrl">Шекарада ұсталды.</p>');
    // The case page's status form (the status alone) keeps it.
    const { updateCase } = await import('../../src/cases/service.ts');
    expect(await updateCase(ctx.db, caseSlug, { personName: 'Айгерім', summary: 'Шекарада ұсталды.', status: 'on_trial' })).toMatchObject({ language: 'kk-Cyrl' });

    const judge = body.targets[1]!.email;
    expect((await postJson(`${base}/api/v1/campaigns/${body.slug}/signatures`, { fullName: 'Dana Test', email: `${uniq('s')}@supporter.example` })).status).toBe(202);
    const [letter] = await mailTo(ctx.sink!, judge);
    expect(String(letter!.html)).toMatch(/^<!doctype html><html lang="kk-Cyrl">/);

    // The pages a signer passes through on the way: the title, and the letter they confirm word for word.
    await ctx.db.query('UPDATE campaigns SET require_confirmation = true WHERE slug = $1', [body.slug]);
    const email = `${uniq('s')}@supporter.example`;
    expect((await postJson(`${base}/api/v1/campaigns/${body.slug}/signatures`, { fullName: 'Dana Test', email })).status).toBe(202);
    expect(await (await fetch(`${base}/c/${body.slug}/check-email`)).text()).toContain('“<bdi lang="kk-Cyrl">Айгерімді босатыңыз</bdi>”');
    const [asked] = await mailTo(ctx.sink!, email);
    const confirm = await (await fetch(`${base}/confirm/${confirmToken(asked!)}`)).text();
    expect(confirm).toContain('on “<bdi lang="kk-Cyrl">Айгерімді босатыңыз</bdi>” for <bdi lang="kk-Cyrl">Айгерім</bdi>');
    expect(confirm).toMatch(/<div class="pre" dir="auto" lang="kk-Cyrl">[^<]*Dana Test/);
  });

  it('reads JSON alone, organizer bodies as large as their fields allow, null as "none", and says where it put what it made', async () => {
    const caseSlug = uniq('case');
    // Not JSON: 415 saying so, not 422 "is required" for every field; a public post the same.
    const plain = await fetch(`${base}/api/v1/cases`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'text/plain' },
      body: JSON.stringify({ slug: caseSlug, personName: 'Serik Test', summary: 'Detained.', status: 'detained' }),
    });
    expect(plain.status).toBe(415);
    expect(await plain.json()).toMatchObject({ error: { code: 'unsupported_media_type', message: expect.stringContaining('application/json') } });
    // The token is checked before the body is read: a stranger's 1.2 MB is refused as a stranger's (401), not read (413).
    const stranger = await fetch(`${base}/api/v1/cases`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ summary: 'x'.repeat(1_200_000) }) });
    expect(stranger.status).toBe(401);
    const form = await postForm(`${base}/api/v1/subscribers`, { email: `${uniq('form')}@supporter.example` });
    expect(form.status).toBe(415);
    expect(form.headers.get('access-control-allow-origin')).toBe('*');

    // About 19,000 characters, mostly Cyrillic: 34 kB of UTF-8, over the public limit, within a case's.
    const summary = 'Задержан на границе. '.repeat(900).trim();
    const created = await api('/cases', { slug: caseSlug, personName: 'Serik Test', summary, status: 'detained', location: null });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/api/v1/cases/${caseSlug}`);
    expect(await created.json()).toMatchObject({ summary, location: '' });

    const body = campaignBody(caseSlug, { summary: null, goal: null, targets: [{ name: 'Minister', title: null, salutation: null, email: `${uniq('min')}@gov.example` }] });
    const campaign = await api('/campaigns', body);
    expect(campaign.status).toBe(201);
    expect(campaign.headers.get('location')).toBe(`/api/v1/campaigns/${body.slug}`);
    expect(await campaign.json()).toMatchObject({ summary: '', goal: null, targets: [{ title: '', salutation: '', disclose: 'name_place' }] });
    // A state change answers with the campaign as every other route does, targets included.
    expect(await (await api(`/campaigns/${body.slug}/launch`)).json()).toMatchObject({ status: 'live', targets: [{ name: 'Minister' }] });

    // Mistakes name their field in plain words, a NUL included (Postgres would refuse it).
    const wrong = await api('/campaigns', campaignBody(caseSlug, { goal: 1e20, summary: 'a\u0000b' }));
    expect(wrong.status).toBe(422);
    expect((await wrong.json()).error.fields).toEqual({ goal: 'is too large', summary: 'contains characters that are not text' });
    // A letter too long is refused for its length, unparsed: deeply nested blocks held the process for minutes.
    const nested = '{{#if date}}'.repeat(6_000) + '{{/if}}'.repeat(6_000);
    const long = await api('/campaigns', campaignBody(caseSlug, { letter: { subject: 'S', body: nested } }));
    expect(long.status).toBe(422);
    expect((await long.json()).error.fields).toEqual({ 'letter.body': 'must be at most 20000 characters' });
    const unticked = await postJson(`${base}/api/v1/campaigns/${body.slug}/signatures`, { fullName: 'Ana', email: `${uniq('ana')}@supporter.example`, subscribe: 5 });
    expect((await unticked.json()).error.fields).toEqual({ subscribe: 'must be true or false' });
  });

  it('refuses fields an organizer route does not take, by name, and stores nothing', async () => {
    const caseSlug = await newCase();
    const { slug } = await createLiveCampaign(ctx.db);
    const before = await rowCounts(ctx.db);
    // A misspelt `disclose` would have sent an embassy the signer's city and country.
    const body = campaignBody(caseSlug, { requireConfirmaton: false, goal: 0 });
    body.targets[1] = { name: 'Embassy', email: `${uniq('emb')}@embassy.example`, Disclose: 'name' } as unknown as (typeof body.targets)[1];
    const res = await api('/campaigns', body);
    expect(res.status).toBe(422);
    const { error } = await res.json();
    expect(error.message).toBe('Unknown fields: targets.1.Disclose, requireConfirmaton.');
    // The body's other mistakes are named beside them, so one round fixes all.
    expect(error.fields).toEqual({
      requireConfirmaton: expect.stringContaining('not a field'),
      'targets.1.Disclose': expect.stringContaining('not a field'),
      goal: 'must be a whole number of at least 1',
    });
    // The letter's template errors too: that it does not compile is learnt in the same round.
    const uncompiled = await api('/campaigns', campaignBody(caseSlug, { zz: 1, letter: { subject: 'S', body: 'Dear\n{{nope}}' } }));
    expect(uncompiled.status).toBe(422);
    const both = (await uncompiled.json()).error;
    expect(both.code).toBe('invalid_template');
    expect(both.fields).toEqual({ zz: expect.stringContaining('not a field'), 'letter.body': expect.stringMatching(/^Line 2: unknown variable "nope"/) });
    expect((await api('/cases', { slug: uniq('case'), personName: 'X', summary: 'Y', status: 'detained', bogus: 1 })).status).toBe(422);
    expect(await rowCounts(ctx.db)).toEqual(before);
    // The public routes pass extra fields over: a page embedding the form may post its own, and a
    // signature refused for them would be lost.
    const embedded = await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Ana', email: `${uniq('ana')}@supporter.example`, consent: true, website: '' });
    expect(embedded.status).toBe(202);
    expect((await postJson(`${base}/api/v1/subscribers`, { email: `${uniq('ana')}@supporter.example`, source: 'embed' })).status).toBe(202);
  });

  it('answers a honeypot a JSON bot fills with a number, true or a list as it answers a real post, and stores and sends nothing', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const sign = (website?: unknown) => postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Ana', email: `${uniq('ana')}@supporter.example`, ...(website === undefined ? {} : { website }) });
    const subscribe = (website?: unknown) => postJson(`${base}/api/v1/subscribers`, { email: `${uniq('ana')}@supporter.example`, ...(website === undefined ? {} : { website }) });
    const realSign = await sign();
    const realSubscribe = await subscribe();
    expect([realSign.status, realSubscribe.status]).toEqual([202, 202]);
    const [signBody, subscribeBody] = [await realSign.json(), await realSubscribe.json()];
    // What the real posts do after their answer (their emails) ends before the count.
    await ctx.queues.settled();
    await settled(ctx.db);
    const before = await rowCounts(ctx.db);
    const sent = ctx.sink!.messages.length;
    for (const website of [1, true, ['x'], { url: 'x' }]) {
      const signed = await sign(website);
      expect(signed.status, JSON.stringify(website)).toBe(202);
      expect(await signed.json()).toEqual(signBody);
      const subscribed = await subscribe(website);
      expect(subscribed.status, JSON.stringify(website)).toBe(202);
      expect(await subscribed.json()).toEqual(subscribeBody);
    }
    await ctx.queues.settled();
    await settled(ctx.db);
    expect(await rowCounts(ctx.db)).toEqual(before);
    expect(ctx.sink!.messages.length).toBe(sent);
  });

  it('names a slug holding a NUL beside the body\'s other mistakes, and stores nothing', async () => {
    const caseSlug = await newCase();
    const before = await rowCounts(ctx.db);
    // Postgres refuses a NUL in any query: a slug that looked up would hide every other field's error.
    for (const body of [campaignBody(caseSlug, { slug: 'a\u0000b', title: '' }), campaignBody('a\u0000b', { title: '' })]) {
      const res = await api('/campaigns', body);
      expect(res.status).toBe(422);
      const { error } = await res.json();
      expect(Object.keys(error.fields).sort()).toEqual([body.slug === 'a\u0000b' ? 'slug' : 'caseSlug', 'title']);
    }
    expect(await rowCounts(ctx.db)).toEqual(before);
  });

  it('keeps its answers out of caches, and answers /api itself in JSON', async () => {
    const stats = await get(`/campaigns/${(await createLiveCampaign(ctx.db)).slug}/stats`);
    expect(stats.headers.get('cache-control')).toBe('no-store');
    const csv = await get(`/campaigns/${(await createLiveCampaign(ctx.db)).slug}/signatures.csv`);
    expect(csv.headers.get('cache-control')).toBe('no-store');
    await csv.text();
    const root = await fetch(`${base}/api`);
    expect(root.status).toBe(404);
    expect(await root.json()).toMatchObject({ error: { code: 'not_found' } });
  });

  it('answers an address it has no endpoint at with 404, whatever the body: no form parser reads it', async () => {
    const bodies: [string, string][] = [['application/json', `{"a":"${'x'.repeat(40_000)}"}`], ['application/json', '{"a":'], ['text/plain', 'hello']];
    for (const [type, body] of bodies) {
      const res = await fetch(`${base}/api/v1/campaign`, { method: 'POST', headers: { 'content-type': type }, body });
      expect(res.status, `${type} ${body.slice(0, 10)}`).toBe(404);
      expect(await res.json()).toMatchObject({ error: { code: 'not_found' } });
    }
  });

  it('answers 409 to launching a campaign, or posting an update, of a case kept unpublished', async () => {
    const caseSlug = uniq('quiet');
    await createCase(ctx.db, { slug: caseSlug, personName: 'Quiet Person', summary: 'Being prepared.', status: 'detained' }, { published: false });
    expect(await (await get(`/cases/${caseSlug}`)).json()).toMatchObject({ slug: caseSlug, published: false });
    const body = campaignBody(caseSlug);
    expect((await api('/campaigns', body)).status).toBe(201);
    const launch = await api(`/campaigns/${body.slug}/launch`);
    expect(launch.status).toBe(409);
    expect((await launch.json()).error).toMatchObject({ code: 'case_unpublished', message: expect.stringContaining('publish it first') });
    const update = await api(`/cases/${caseSlug}/updates`, { title: 'News', body: 'Something happened.' });
    expect(update.status).toBe(409);
    expect((await update.json()).error.code).toBe('case_unpublished');
    // A draft closed (discarded) can never launch: that is said, not that the case needs publishing.
    expect((await api(`/campaigns/${body.slug}/close`)).status).toBe(200);
    const closed = await api(`/campaigns/${body.slug}/launch`);
    expect(closed.status).toBe(409);
    expect((await closed.json()).error).toEqual({ code: 'invalid_transition', message: 'A closed campaign cannot launch.' });
  });

  it('answers an action that was done as done when its audit entry cannot be written, so it is not sent again', async () => {
    const caseSlug = uniq('unaudited');
    // The audit log refuses this case's entries, as it would a write during an outage.
    await ctx.db.exec(`ALTER TABLE audit_log ADD CONSTRAINT refuse_${caseSlug.replace(/\W/g, '_')} CHECK (object <> 'case:${caseSlug}') NOT VALID`);
    const created = await api('/cases', { slug: caseSlug, personName: 'Serik Test', summary: 'Detained.', status: 'detained' });
    expect(created.status).toBe(201);
    const update = await api(`/cases/${caseSlug}/updates`, { title: 'Court adjourned', body: 'Until further notice.' });
    expect(update.status).toBe(202);
    const { rows } = await ctx.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM case_updates u JOIN cases k ON k.id = u.case_id WHERE k.slug = $1',
      [caseSlug],
    );
    expect(rows[0]!.n).toBe(1);
    await until(async () => (await ctx.db.query('SELECT 1 FROM case_updates u JOIN cases k ON k.id = u.case_id WHERE k.slug = $1 AND u.fanned_out_at IS NOT NULL', [caseSlug])).rowCount || undefined, 'the update fanned out');
  });

  it('launches, pauses and closes a campaign, and answers 409 to a move its state does not allow', async () => {
    const { slug } = (await (await api('/campaigns', campaignBody(await newCase()))).json()) as { slug: string };
    const move = async (action: string) => {
      const res = await api(`/campaigns/${slug}/${action}`);
      return { status: res.status, body: await res.json() };
    };
    expect(await move('pause')).toMatchObject({ status: 409, body: { error: { code: 'invalid_transition' } } });
    expect(await move('launch')).toMatchObject({ status: 200, body: { status: 'live' } });
    expect(await move('launch')).toMatchObject({ status: 200, body: { status: 'live' } });
    // Two at once (a double click, two organizers) make one change, and both are answered as done.
    expect(await Promise.all([move('pause'), move('pause')])).toMatchObject([{ status: 200, body: { status: 'paused' } }, { status: 200, body: { status: 'paused' } }]);
    expect(await move('launch')).toMatchObject({ status: 200, body: { status: 'live' } });
    expect(await move('close')).toMatchObject({ status: 200, body: { status: 'closed' } });
    const refused = await move('launch');
    expect(refused).toMatchObject({ status: 409, body: { error: { code: 'invalid_transition' } } });
    expect(refused.body.error.message).toEqual(expect.any(String));
    expect(await move('pause')).toMatchObject({ status: 409 });
    expect(await move('close')).toMatchObject({ status: 200, body: { status: 'closed' } });
    expect((await api('/campaigns/no-such-campaign/launch')).status).toBe(404);

    const { rows } = await ctx.db.query<{ action: string; detail: { via?: string } | null }>('SELECT action, detail FROM audit_log WHERE object = $1 ORDER BY id', [`campaign:${slug}`]);
    // What changed the campaign, once each: asking for the state it is in is no action. A paused
    // campaign launched again is resumed.
    expect(rows.map((r) => r.action)).toEqual(['campaign.create', 'campaign.launch', 'campaign.pause', 'campaign.resume', 'campaign.close']);
    // Done with a token, not in the console: each entry names it, so a stolen token's acts stand apart.
    const { rows: [used] } = await ctx.db.query<{ id: number; label: string }>('SELECT id, label FROM api_tokens WHERE token_hash = $1', [hashToken(token)]);
    expect(rows.map((r) => r.detail?.via)).toEqual(Array(5).fill(`API token #${used!.id} ${JSON.stringify(used!.label)}`));
    // One made to send without confirmation says so: anyone can sign it in anyone's name.
    const open = (await (await api('/campaigns', campaignBody(await newCase(), { requireConfirmation: false }))).json()) as { slug: string };
    const { rows: [made] } = await ctx.db.query<{ detail: object }>(`SELECT detail FROM audit_log WHERE action = 'campaign.create' AND object = $1`, [`campaign:${open.slug}`]);
    expect(made!.detail).toMatchObject({ confirmation: 'off' });
    expect(rows[0]!.detail).not.toHaveProperty('confirmation');
  });

  it('counts signatures and letters in stats as they are confirmed and sent', async () => {
    const { slug, targets } = (await (await api('/campaigns', campaignBody(await newCase()))).json()) as { slug: string; targets: unknown[] };
    await api(`/campaigns/${slug}/launch`);
    const stats = async () => (await get(`/campaigns/${slug}/stats`)).json();
    expect(await stats()).toEqual({ signatures: { pending: 0, confirmed: 0 }, deliveries: { queued: 0, sending: 0, retry: 0, sent: 0, failed: 0 } });

    const emails = [`${uniq('s1')}@supporter.example`, `${uniq('s2')}@supporter.example`];
    for (const email of emails) {
      const res = await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Stat Signer', email });
      expect(res.status).toBe(202);
    }
    await settled(ctx.db);
    expect(await stats()).toEqual({ signatures: { pending: 2, confirmed: 0 }, deliveries: { queued: 0, sending: 0, retry: 0, sent: 0, failed: 0 } });

    const [confirmation] = await mailTo(ctx.sink!, emails[0]!);
    await postForm(`${base}/confirm/${confirmToken(confirmation!)}`, {});
    const after = await until(async () => {
      const s = await stats();
      return s.deliveries.sent === targets.length ? s : undefined;
    }, 'letters counted as sent');
    expect(after).toEqual({ signatures: { pending: 1, confirmed: 1 }, deliveries: { queued: 0, sending: 0, retry: 0, sent: 2, failed: 0 } });
    expect((await get('/campaigns/no-such-campaign/stats')).status).toBe(404);
  });

  it('says in signatures.csv who follows the case now: a signer who ticked the box and left since is no longer "yes"', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const email = `${uniq('follow')}@supporter.example`;
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Follow Now', email, subscribe: true })).status).toBe(202);
    const exported = async () => {
      const rows = parse(await (await get(`/campaigns/${slug}/signatures.csv`)).text(), { columns: true, bom: true }) as Record<string, string>[];
      return rows.find((r) => r.full_name === 'Follow Now')!;
    };
    const subscribeCell = async () => (await exported()).subscribe;
    // Not before the address is confirmed: ticking a box is no consent of the address's owner.
    // Nor is the address exported before: anyone may have typed it.
    expect(await exported()).toMatchObject({ email: '', status: 'pending', subscribe: 'no' });
    const [confirmation] = await mailTo(ctx.sink!, email);
    expect((await postForm(`${base}/confirm/${confirmToken(confirmation!)}`, {})).status).toBe(303);
    expect(await exported()).toMatchObject({ email, status: 'confirmed', subscribe: 'yes' });
    const { rows: [subscriber] } = await ctx.db.query<{ id: number }>('SELECT id FROM subscribers WHERE email = $1', [email]);
    // The link in their first alert (its hash is stored when that alert is composed).
    const link = await ensureManageToken(ctx.db, ctx.secret, subscriber!.id);
    expect((await postForm(`${base}/unsubscribe/${link}`, { 'List-Unsubscribe': 'One-Click' })).status).toBe(200);
    expect(await subscribeCell()).toBe('no');
  });

  it('exports signatures.csv with every signature, formula-like cells neutralised, and records each export (a HEAD reads and records nothing)', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    const evil = { fullName: '=HYPERLINK("http://evil.example","x")', email: `${uniq('csv')}@supporter.example`, city: '+SUM(1,2)', country: '@cmd', personalNote: '-2+3 and, "quoted"' };
    const plain = { fullName: 'Plain Person', email: `${uniq('plain')}@supporter.example`, city: 'Oslo', country: 'Norway', personalNote: 'Line one\nline two' };
    // Excel splits on `;` where that is the list separator (Russian, Kazakh, German), and a quote opens a field there only at its start: what follows a `;` is neutralized too.
    const split = { fullName: 'Ann;=2+5;', email: `${uniq('semi')}@supporter.example`, city: 'Oslo;@SUM(1+1)' };
    for (const s of [evil, plain, split]) expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, s)).status).toBe(202);

    const exports = async () =>
      (await ctx.db.query('SELECT 1 FROM audit_log WHERE action = $1 AND object = $2', ['signatures.export', `campaign:${slug}`])).rows.length;
    const head = await fetch(`${base}/api/v1/campaigns/${slug}/signatures.csv`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(await exports()).toBe(0);

    const res = await get(`/campaigns/${slug}/signatures.csv`);
    expect(res.status).toBe(200);
    expect(await exports()).toBe(1);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('content-disposition')).toMatch(new RegExp(`^attachment; filename="?${slug}-signatures\\.csv"?$`));
    const bytes = Buffer.from(await res.arrayBuffer());
    // No byte-order mark, which a program's CSV reader would take for part of the first column's
    // name (fetch's text() would drop it; Python's csv would not). The console's download has one.
    expect(bytes.subarray(0, 9).toString('latin1')).toBe('full_name');
    // Records end in CRLF (RFC 4180): the header, three rows, and nothing after the last.
    expect(bytes.toString('utf8').split('\r\n')).toHaveLength(5);
    expect(bytes.toString('utf8')).toContain(`\r\n"Ann;'=2+5;",${split.email},"Oslo;'@SUM(1+1)",`);
    // A note's own line break is quoted: a strict reader (Python's csv, a spreadsheet) would
    // otherwise end the record there.
    expect(bytes.toString('utf8')).toContain(',"Line one\nline two",');
    const rows = parse(bytes, { columns: true, bom: true }) as Record<string, string>[];
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatchObject({
      full_name: `'${evil.fullName}`,
      email: evil.email,
      city: `'${evil.city}`,
      country: `'${evil.country}`,
      personal_note: `'${evil.personalNote}`,
      status: 'confirmed',
      subscribe: expect.stringMatching(/^(yes|no)$/),
    });
    expect(rows[1]).toMatchObject({ full_name: 'Plain Person', city: 'Oslo', country: 'Norway', personal_note: 'Line one\nline two', status: 'confirmed' });
    expect(new Date(rows[1]!.signed_at!).getTime()).not.toBeNaN();
  });

  // Exports take their pages in turns: a client that stops reading (a slow line, a script that
  // pauses) must not hold up another organizer's export while it waits.
  it('sends an export whole to each of two clients at once, one of them not reading for a while', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    const count = 40_000;
    await ctx.db.query(
      `INSERT INTO signatures (campaign_id, full_name, email, city, country, personal_note, status, confirmed_at)
       SELECT c.id, 'Signer ' || n, 'bulk-' || n || '@supporter.example', 'Almaty', 'Kazakhstan', repeat('Free her. ', 20), 'confirmed', now()
         FROM campaigns c, generate_series(1, $2::int) AS n WHERE c.slug = $1`,
      [slug, count],
    );
    const url = new URL(`${base}/api/v1/campaigns/${slug}/signatures.csv`);
    // The first client takes the headers, then reads nothing: the file (about 12 MB) stops at what
    // the sockets hold.
    const paused = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      http.get(url, { headers: auth() }, (res) => { res.pause(); resolve(res); }).on('error', reject);
    });
    let pausedEnded = false;
    paused.once('end', () => (pausedEnded = true));
    await new Promise((r) => setTimeout(r, 300));
    const other = Buffer.from(await (await get(`/campaigns/${slug}/signatures.csv`)).arrayBuffer());
    expect(parse(other, { columns: true, bom: true })).toHaveLength(count);
    expect(pausedEnded).toBe(false);
    const chunks: Buffer[] = [];
    paused.on('data', (c: Buffer) => chunks.push(c));
    paused.resume();
    await new Promise((resolve) => paused.once('end', resolve));
    expect(Buffer.concat(chunks).equals(other)).toBe(true);
  }, 60_000);

  describe('the public signature endpoint', () => {
    it('answers a CORS preflight from any origin', async () => {
      const { slug } = await createLiveCampaign(ctx.db);
      const res = await fetch(`${base}/api/v1/campaigns/${slug}/signatures`, {
        method: 'OPTIONS',
        headers: { origin: 'https://embed.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-allow-methods')).toContain('POST');
      expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('content-type');
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      // As every API answer (README).
      expect(res.headers.get('cache-control')).toBe('no-store');
      // Headers the embedding page's script adds is allowed too, so its fetch is not refused.
      const more = await fetch(`${base}/api/v1/subscribers`, {
        method: 'OPTIONS',
        headers: { origin: 'https://embed.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-requested-with' },
      });
      expect(more.status).toBe(204);
      expect(more.headers.get('access-control-allow-headers')).toBe('content-type,x-requested-with');
      expect(more.headers.get('vary')).toContain('Access-Control-Request-Headers');
    });

    it('takes a cross-origin signature with 202 and sends the confirmation', async () => {
      const { slug } = await createLiveCampaign(ctx.db);
      const email = `${uniq('embed')}@supporter.example`;
      const res = await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Embed Signer', email, city: 'Oslo', subscribe: true }, { origin: 'https://embed.example' });
      expect(res.status).toBe(202);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-expose-headers')).toBe('Retry-After');
      expect(await res.json()).toEqual({ status: 'received' });
      await mailTo(ctx.sink!, email);
    });

    it('lets the embedding page read an error about a damaged address too', async () => {
      const res = await postJson(`${base}/api/v1/campaigns/%E0%A4%A/signatures`, { fullName: 'Embed Signer', email: `${uniq('embed')}@supporter.example` }, { origin: 'https://embed.example' });
      expect(res.status).toBe(400);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect((await res.json()).error.code).toBe('bad_link');
    });

    it.each([true, false])('gives the same answer to a second signature by the same address (confirmation %s)', async (requireConfirmation) => {
      const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation });
      const email = `${uniq('again')}@supporter.example`;
      const first = await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Again Signer', email });
      const second = await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Again Signer', email: email.toUpperCase() });
      expect([first.status, second.status]).toEqual([202, 202]);
      expect(await first.json()).toEqual({ status: requireConfirmation ? 'received' : 'signed' });
      expect(await second.json()).toEqual({ status: requireConfirmation ? 'received' : 'signed' });
    });

    it('does not open organizer routes to other origins', async () => {
      const res = await get('/campaigns/whatever/stats', { ...auth(), origin: 'https://embed.example' });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    });
  });

  it('answers a known address asked with a method it does not take with 405 and Allow, in the error shape', async () => {
    const wrong = await fetch(`${base}/api/v1/cases`, { headers: auth() });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST, OPTIONS');
    expect(await wrong.json()).toEqual({ error: { code: 'method_not_allowed', message: expect.stringContaining('POST') } });

    const del = await fetch(`${base}/api/v1/campaigns/any-slug/stats`, { method: 'DELETE', headers: auth() });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET, HEAD, OPTIONS');

    const options = await fetch(`${base}/api/v1/cases`, { method: 'OPTIONS' });
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')).toBe('POST, OPTIONS');

    expect((await get('/no-such-thing')).status).toBe(404);
  });

  describe('without a valid bearer token', () => {
    const cases: [string, Record<string, string>][] = [
      ['missing', {}],
      ['not a bearer token', { authorization: 'Basic dXNlcjpwYXNz' }],
      ['unknown', { authorization: 'Bearer apl_not-a-real-token' }],
      ['empty', { authorization: 'Bearer ' }],
    ];
    it.each(cases)('answers 401 with the error shape when the token is %s, and changes nothing', async (_what, headers) => {
      const caseSlug = uniq('case');
      const before = await rowCounts(ctx.db);
      const responses = [
        await api('/cases', { slug: caseSlug, personName: 'X', summary: 'Y', status: 'detained' }, headers),
        await api('/campaigns', campaignBody('anything'), headers),
        await api('/campaigns/anything/launch', undefined, headers),
        await get('/campaigns/anything/stats', headers),
        await get('/campaigns/anything/signatures.csv', headers),
      ];
      for (const res of responses) {
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
        const body = await res.json();
        expect(body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
        expect(body.error.message.length).toBeGreaterThan(0);
      }
      expect(await rowCounts(ctx.db)).toEqual(before);
    });

    it('keeps only a hash of each token', async () => {
      const { rows } = await ctx.db.query<{ token_hash: string }>('SELECT token_hash FROM api_tokens');
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) expect(r.token_hash).not.toContain(token.slice(4, 20));
    });
  });
});
