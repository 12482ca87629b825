import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConsoleClient, createOrganizer, PASSWORD, signedIn } from '../helpers/admin-client.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { addressCounterKeys } from '../../src/deliveries/allowance.ts';
import { createApiTokenOnce } from '../../src/organizers/service.ts';
import { ForbiddenError } from '../../src/errors.ts';
import { createLiveCampaign, uniq } from '../helpers/fixtures.ts';
import { postJson, settled } from '../helpers/signing.ts';
import { getCase } from '../../src/cases/service.ts';
import { changeCampaignStatus, getCampaign } from '../../src/campaigns/service.ts';
import { addTargets } from '../../src/campaigns/targets.ts';
import { STARTER_PLACEHOLDER } from '../../src/campaigns/letter-template.ts';
import { STARTER_BODY } from '../../src/web/routes/admin/campaigns.ts';
import { subscribeConfirmedSigner } from '../../src/subscribers/service.ts';
import { insertPendingSubscription, upsertSubscriber } from '../../src/subscribers/queries.ts';
import { deliveryJobId } from '../../src/queues.ts';
import { waitForMail } from '../helpers/subscribers.ts';

const actions = async (ctx: TestContext, organizerId: number) =>
  (await ctx.db.query<{ action: string; object: string; detail: Record<string, unknown> | null }>('SELECT action, object, detail FROM audit_log WHERE organizer_id = $1 ORDER BY id', [organizerId])).rows;

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`gave up waiting; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the organizer console on PGlite', () => {
  let ctx: TestContext;
  let base: string;
  let client: ConsoleClient;
  let organizerId: number;

  beforeAll(async () => {
    ctx = await createTestContext({ db: 'pglite' });
    base = await ctx.startWeb();
    // No schedule: a quarter-hour digest check would write to these campaigns while a test looks.
    await ctx.startWorkers({ schedule: false });
    const s = await signedIn(base, ctx.db, 'admin');
    client = s.client;
    organizerId = s.organizer.id;
  });
  afterAll(async () => {
    await ctx?.close();
  });

  it('runs a case and a campaign from forms and records every action in the audit log', async () => {
    const caseSlug = uniq('case');
    const slug = uniq('camp');
    expect((await client.post('/admin/cases', { slug: caseSlug, person_name: 'Nurlan Test', summary: 'Held at the border.', status: 'detained', location: '' })).status).toBe(303);
    expect((await client.post(`/admin/cases/${caseSlug}/status`, { status: 'on_trial' })).status).toBe(303);
    // Mistakes and an unknown case at once, named in the summary as the form labels them.
    const wrong = await client.post('/admin/campaigns/new', {
      slug, case_slug: 'no-such-case', title: '', summary: '', letter_subject: 'S', letter_body: 'B', delivery_mode: 'each', digest_hour: '9', goal: '',
      require_confirmation: 'on', targets_csv: 'Judge One,Judge,judge@court.example,Your Honour\n',
    });
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('Case: no case has this slug');
    expect(wrong.text).toContain('>Title: is required<');
    const fields = {
      slug, case_slug: caseSlug, title: 'Free Nurlan', summary: '', letter_subject: 'About {{case.personName}}',
      letter_body: 'Dear {{target.name}},\nfree {{case.personName}}.\n{{supporter.fullName}}', delivery_mode: 'each', digest_hour: '9', goal: '50',
      require_confirmation: 'on', targets_csv: 'Judge One,Judge,judge@court.example,Your Honour\nMinistry,,mfa@gov.example,Dear Minister\n',
    };
    // A deadline already past: refused with the form, and no draft made behind it.
    const past = await client.post('/admin/campaigns/new', { ...fields, deadline: '2020-01-01' });
    expect(past.status).toBe(400);
    expect(past.text).toContain('has passed: give the day the officials must act by, today or later');
    // A letter that does not compile is a 422, as through the API, with the line named.
    const uncompiled = await client.post('/admin/campaigns/new', { ...fields, letter_body: 'a\nb\n{{supporter.fullName' });
    expect(uncompiled.status).toBe(422);
    expect(uncompiled.text).toContain('Line 3: syntax error: a tag is not closed with }}');
    expect((await ctx.db.query('SELECT 1 FROM campaigns WHERE slug = $1', [slug])).rows).toEqual([]);
    const created = await client.post('/admin/campaigns/new', fields);
    expect(created.status).toBe(303);
    expect(created.location).toBe(`/admin/campaigns/${slug}`);
    // Sent again (a double press without the page's script): created, as the first answer said,
    // not "exists already"; a campaign with other details wanting the slug is told it is taken.
    const again = await client.post('/admin/campaigns/new', fields);
    expect([again.status, again.location]).toEqual([303, `/admin/campaigns/${slug}`]);
    expect((await client.open(again.location!)).text).toContain('Draft campaign created with 2 targets.');
    expect((await client.post('/admin/campaigns/new', { ...fields, title: 'Free Nurlan now' })).text).toContain('exists already');
    // Sent twice at the same moment: both answers say created, one campaign is made.
    const twin = { ...fields, slug: uniq('twin') };
    const twins = await Promise.all([1, 2].map(() => client.post('/admin/campaigns/new', twin)));
    expect(twins.map((r) => [r.status, r.location])).toEqual([[303, `/admin/campaigns/${twin.slug}`], [303, `/admin/campaigns/${twin.slug}`]]);
    // A target's address corrected after going Back is no double press: answered "created", the fix would be lost unseen.
    expect((await client.post('/admin/campaigns/new', { ...fields, targets_csv: fields.targets_csv.replace('judge@court.example', 'judge.one@court.example') })).text).toContain('exists already');
    expect((await client.post(`/admin/campaigns/${slug}/targets`, { name: 'Embassy', title: '', email: 'consul@embassy.example', salutation: '', disclose: 'name' })).status).toBe(303);
    expect((await client.post(`/admin/campaigns/${slug}/letter`, { action: 'save', letter_subject: 'Free {{case.personName}}', letter_body: 'Dear {{target.name}}, act now.' })).status).toBe(303);
    for (const action of ['launch', 'pause', 'launch', 'close']) {
      expect((await client.post(`/admin/campaigns/${slug}/${action}`, {})).status, action).toBe(303);
    }
    const csv = await client.get(`/admin/campaigns/${slug}/signatures.csv`);
    expect(csv.res.headers.get('content-type')).toMatch(/^text\/csv/);
    // A byte-order mark first, so Excel reads the names as UTF-8 (the API's export has none).
    expect(Buffer.from(await csv.res.arrayBuffer()).subarray(0, 3).toString('hex')).toBe('efbbbf');
    expect((await client.get(`/admin/campaigns/${slug}/signatures?q=Dana`)).status).toBe(200);

    expect((await actions(ctx, organizerId)).filter((a) => a.object.includes(slug) || a.object.includes(caseSlug)).map((a) => a.action)).toEqual([
      'case.create', 'case.status', 'campaign.create', 'target.add', 'campaign.letter',
      'campaign.launch', 'campaign.pause', 'campaign.resume', 'campaign.close', 'signatures.export', 'signatures.view',
    ]);
    // Where each official's letters go, and what it learns, is kept from the start: an address
    // added and removed again would otherwise be found nowhere.
    const { rows: made } = await ctx.db.query<{ action: string; detail: { targets?: object[] } & Record<string, unknown> }>(
      `SELECT action, detail FROM audit_log WHERE action IN ('campaign.create', 'target.add') AND object = $1 ORDER BY id`, [`campaign:${slug}`],
    );
    expect(made[0]!.detail.targets).toEqual([
      expect.objectContaining({ name: 'Judge One', email: expect.stringContaining('@'), disclose: expect.any(String) }),
      expect.objectContaining({ name: 'Ministry', email: 'mfa@gov.example', disclose: 'name_place' }),
    ]);
    expect(made[1]!.detail).toMatchObject({ name: 'Embassy', email: 'consul@embassy.example', disclose: 'name' });
    expect((await client.get('/admin/audit?action=campaign.create')).text).toContain('targets: [{&quot;name&quot;:&quot;Judge One&quot;,&quot;email&quot;:');
    // Whether a list was searched is kept; what was searched for (a name, perhaps) is not.
    const { rows: [viewed] } = await ctx.db.query(`SELECT * FROM audit_log WHERE action = 'signatures.view' AND object = $1`, [`campaign:${slug}`]);
    expect(JSON.stringify(viewed)).not.toContain('Dana');
    expect(JSON.stringify(viewed).toLowerCase()).not.toContain('dana');
    expect(viewed!.detail).toMatchObject({ search: true, older: false });
    const page = await client.get('/admin/audit?action=campaign');
    expect(page.text).toContain(`campaign:${slug}`);
    expect(page.text).not.toContain(`case:${caseSlug}`);
    // A wrong password typed for an account is not its organizer's doing, and the log says so.
    const stranger = new ConsoleClient(base);
    const { rows: [me] } = await ctx.db.query<{ email: string }>('SELECT email FROM organizers WHERE id = $1', [organizerId]);
    await stranger.open('/admin/login');
    expect((await stranger.post('/admin/login', { email: me!.email, password: 'not-the-password' })).status).toBe(401);
    expect((await client.get('/admin/audit?action=login.failed')).text).toMatch(/someone signing in as<\/span> <a href="[^"]+">[^<]*<\/a><\/td><td><code>login\.failed<\/code>/);
    await ctx.db.query(`INSERT INTO audit_log (organizer_id, actor, action, object, detail) VALUES ($1, $2, 'login.refused', $3, '{"reason":"locked"}')`, [organizerId, me!.email, `organizer:${organizerId}`]);
    expect((await client.get('/admin/audit?action=login.refused')).text).toMatch(/someone signing in as<\/span> <a href="[^"]+">[^<]*<\/a><\/td><td><code>login\.refused<\/code>/);
  });

  it("shows organizers a draft's public page before it is public, with a form that signs nothing; a launched one's is its own", async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db, {}, 'draft');
    expect((await client.get(`/c/${slug}`)).status).toBe(404);
    expect((await client.get(`/admin/campaigns/${slug}`)).text).toContain(`not public yet (<a href="/admin/campaigns/${slug}/page">preview its page</a>)`);
    // The launch question names the address it will have, and links to what is there now: the preview.
    const ask = await client.get(`/admin/campaigns/${slug}/launch`);
    expect(ask.text).toContain(`will be ${ctx.config.publicUrl}/c/${slug} (<a href="/admin/campaigns/${slug}/page">preview it</a>)`);
    expect(ask.text).not.toContain(`href="${ctx.config.publicUrl}/c/${slug}"`);

    const preview = await client.get(`/admin/campaigns/${slug}/page`);
    expect(preview.status).toBe(200);
    expect(preview.text).toContain('A preview for organizers: this page is not public until the campaign is launched, and its form signs nothing.');
    expect(preview.text).toContain('About Aigerim Test');
    expect(preview.text).toContain('<bdi>Judge One</bdi> (<bdi>District judge</bdi>)');
    expect(preview.text).toContain('<button type="submit" disabled>Sign the letter</button>');
    expect(preview.text).toContain(`<a href="/cases/${caseSlug}">Aigerim Test</a>`);
    // A case not published yet has no public page to link to: its name alone.
    const { publishCase, unpublishCase } = await import('../../src/cases/service.ts');
    await unpublishCase(ctx.db, caseSlug);
    const hidden = await client.get(`/admin/campaigns/${slug}/page`);
    expect(hidden.text).toMatch(/<p class="muted">Aigerim Test · /);
    expect(hidden.text).not.toContain(`href="/cases/${caseSlug}"`);
    await publishCase(ctx.db, caseSlug);
    // Nobody signed in sees it.
    const stranger = await new ConsoleClient(base).get(`/admin/campaigns/${slug}/page`);
    expect(stranger.text).not.toContain('About Aigerim Test');

    // A draft put away (closed, never launched) reads as the draft it was, not as a campaign that wrote.
    const { slug: discarded } = await createLiveCampaign(ctx.db, {}, 'draft');
    await changeCampaignStatus(ctx.db, discarded, 'close');
    const away = await client.get(`/admin/campaigns/${discarded}/page`);
    expect(away.status).toBe(200);
    expect(away.text).toMatch(/It goes to\s+<bdi>Judge One<\/bdi>/);

    await changeCampaignStatus(ctx.db, slug, 'launch');
    expect(await client.get(`/admin/campaigns/${slug}/page`)).toMatchObject({ status: 303, location: `/c/${slug}` });
    expect((await client.get(`/admin/campaigns/${slug}/launch`)).text).not.toContain('preview it');
  });

  it('shows every campaign of a case on its page, and pages the campaign list instead of stopping at 200', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    // 201 more of this case's campaigns, closed long ago: last in every list, so no other test's are pushed off a page.
    const cols = (await ctx.db.query<{ c: string }>(
      `SELECT column_name AS c FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'campaigns' AND column_name NOT IN ('id', 'slug', 'status', 'updated_at')
          AND is_generated = 'NEVER' AND is_identity = 'NO'`,
    )).rows.map((r) => r.c).join(', ');
    await ctx.db.query(
      `INSERT INTO campaigns (slug, status, updated_at, ${cols})
       SELECT slug || '-old-' || g, 'closed', '2001-01-01', ${cols} FROM campaigns, generate_series(1, 201) g WHERE slug = $1`,
      [slug],
    );
    const casePage = await client.open(`/admin/cases/${caseSlug}`);
    expect(casePage.text).toContain(`href="/admin/campaigns/${slug}"`);
    expect(casePage.text).toContain(`href="/admin/campaigns/${slug}-old-1"`);
    const first = await client.open('/admin/campaigns');
    // The oldest is last of all: past the first page, and on the next.
    expect(first.text).not.toContain(`${slug}-old-1"`);
    const more = /href="(\/admin\/campaigns\?before=[^"]+)"/.exec(first.text)?.[1];
    expect(more).toBeDefined();
    // Read from where the first page ended (the 201 share one time: their ids order them), not by
    // counting rows off, so a campaign changed meanwhile neither repeats nor drops out.
    const second = await client.open(more!.replaceAll('&amp;', '&'));
    expect(second.status).toBe(200);
    expect(second.text).toContain(`href="/admin/campaigns/${slug}-old-1"`);
    expect(second.text).toContain('href="/admin/campaigns">First page</a>');
    const listed = (html: string) => [...html.matchAll(/href="\/admin\/campaigns\/([^"/]+)"/g)].map((m) => m[1]);
    const both = [...listed(first.text), ...listed(second.text)].filter((s) => s !== 'new');
    expect(new Set(both).size).toBe(both.length);
    // A cursor that is not one shows the first page.
    expect((await client.get('/admin/campaigns?before=garbage')).text).not.toContain('First page');
  });

  it('asks to pause, close or rewrite a live campaign once its case is settled, on the status change and on the dashboard', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db, { title: 'Halt the deportation of Aigerim' });
    const changed = await client.post(`/admin/cases/${caseSlug}/status`, { status: 'granted_stay' });
    expect(changed.status).toBe(303);
    const page = await client.open(changed.location!);
    expect(page.text).toContain('Status is now “granted stay”. Nobody was emailed: post an update to tell the case’s followers. “Halt the deportation of Aigerim” still takes signatures and sends letters: close or pause it, or change the letter, if it no longer fits.');
    const dashboard = await client.open('/admin');
    expect(dashboard.text).toContain(`href="/admin/campaigns/${slug}"`);
    expect(dashboard.text).toContain('“Halt the deportation of Aigerim” still takes signatures and sends letters, though Aigerim Test’s case is now “granted stay”');
    // Closed, nothing is asked any more; a case still open asks nothing either.
    expect((await client.post(`/admin/campaigns/${slug}/close`, {})).status).toBe(303);
    expect((await client.open('/admin')).text).not.toContain('“Halt the deportation of Aigerim” still takes signatures');
    const other = await createLiveCampaign(ctx.db);
    const detained = await client.post(`/admin/cases/${other.caseSlug}/status`, { status: 'on_trial' });
    expect((await client.open(detained.location!)).text).not.toContain('still takes signatures');
  });

  it('sends the letters a relay took for an address since corrected again, once, to the address the official has now', async () => {
    const old = `${uniq('old')}@court.example`;
    const fixed = `${uniq('fixed')}@court.example`;
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false, targets: [{ name: 'Judge Moved', email: old }, { name: 'Ministry', email: `${uniq('mfa')}@gov.example` }] });
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Early Signer', email: `${uniq('early')}@supporter.example` })).status).toBe(202);
    await until(async () => ctx.sink!.messages.some((m) => JSON.stringify(m.to).includes(old)), (arrived) => arrived);
    await settled(ctx.db);
    const { rows: [target] } = await ctx.db.query<{ id: number }>(`SELECT t.id FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE c.slug = $1 AND t.name = 'Judge Moved'`, [slug]);
    const edited = await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/edit`, { name: 'Judge Moved', title: '', email: fixed, salutation: '', disclose: 'name_place' });
    const list = await client.open(edited.location!);
    expect(list.text).toContain('1 letter went to the old address already; if it did not work, send it again from this list.');
    expect(list.text).toContain(`1 letter sent to <span class="break">${old}</span> before the address was corrected can go again to this address.`);
    // An organizer who is no admin is told, and refused: one click would take every signer's
    // letter to an address of the account's choosing (an account taken over, say).
    const { client: organizer } = await signedIn(base, ctx.db, 'organizer');
    expect((await organizer.open(`/admin/campaigns/${slug}/targets`)).text).toContain('An admin can send it again to this address.');
    const refused = await organizer.post(`/admin/campaigns/${slug}/targets/${target!.id}/send-again`, {});
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('Only an admin may send letters again');
    expect(list.text).toContain('Send it again to this address');
    // Sent without the page's script, the form asks first, naming where the letters would go.
    const asked = await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/send-again`, { question: 'Send 1 letter again?' });
    expect([asked.status, asked.text.includes('Send 1 letter again?')]).toEqual([200, true]);
    expect(list.text).toContain(`to ${fixed}? Check in the audit log (target.edit) who corrected the address`);
    const again = await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/send-again`, { confirmed: '1' });
    expect(again.status).toBe(303);
    expect((await client.open(again.location!)).text).toContain(`1 letter goes again, to ${fixed}.`);
    await until(async () => ctx.sink!.messages.some((m) => JSON.stringify(m.to).includes(fixed) && !!m.text?.includes('Early Signer')), (arrived) => arrived);
    await settled(ctx.db);
    // Sent twice (a double click, a reload), it goes once, and the second answer says it went, not
    // that there was nothing to send; the offer is gone. Letters signed since to the new address
    // went there first, and are not counted among those sent again.
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Late Signer', email: `${uniq('late')}@supporter.example` })).status).toBe(202);
    await settled(ctx.db);
    expect((await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/send-again`, { confirmed: '1' })).status).toBe(303);
    const after = await client.open(`/admin/campaigns/${slug}/targets`);
    expect(after.text).toContain(`1 letter was sent again to ${fixed} moments ago: nothing more to send.`);
    expect(after.text).not.toContain('before the address was corrected');
    await settled(ctx.db);
    expect(ctx.sink!.messages.filter((m) => JSON.stringify(m.to).includes(fixed) && !!m.text?.includes('Early Signer'))).toHaveLength(1);
    // Corrected once more: the early letter went to two old addresses, and it is offered, and sent,
    // once, with the late one.
    const third = `${uniq('third')}@court.example`;
    await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/edit`, { name: 'Judge Moved', title: '', email: third, salutation: '', disclose: 'name_place' });
    expect((await client.open(`/admin/campaigns/${slug}/targets`)).text).toMatch(/2 letters sent to <span class="break">[^<]+<\/span> before the address was corrected can go again/);
    await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/send-again`, { confirmed: '1' });
    expect((await client.open(`/admin/campaigns/${slug}/targets`)).text).toContain(`2 letters go again, to ${third}.`);
  });

  it('offers nothing it cannot send: two officials whose addresses were swapped each had the other\'s letter already', async () => {
    const [x, y] = [`${uniq('x')}@court.example`, `${uniq('y')}@court.example`];
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false, targets: [{ name: 'Judge X', email: y }, { name: 'Judge Y', email: x }] });
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Swap Signer', email: `${uniq('swap')}@supporter.example` })).status).toBe(202);
    await until(async () => (await ctx.db.query(`SELECT 1 FROM deliveries WHERE campaign_id = (SELECT id FROM campaigns WHERE slug = $1) AND status = 'sent'`, [slug])).rowCount, (n) => n === 2);
    const { rows: [tx, ty] } = await ctx.db.query<{ id: number }>('SELECT t.id FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE c.slug = $1 ORDER BY t.id', [slug]);
    const edit = (id: number, name: string, email: string) => client.post(`/admin/campaigns/${slug}/targets/${id}/edit`, { name, title: '', email, salutation: '', disclose: 'name_place' });
    await edit(ty!.id, 'Judge Y', `${uniq('tmp')}@court.example`);
    await edit(tx!.id, 'Judge X', x);
    await edit(ty!.id, 'Judge Y', y);
    // Each address has a letter of this signature (the unique key is the email and its recipient):
    // a button that added nothing would stay for ever.
    expect((await client.open(`/admin/campaigns/${slug}/targets`)).text).not.toContain('before the address was corrected');
  });

  it('keeps an invalid letter in the form and names the line of the error; nothing is saved', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    await client.open(`/admin/campaigns/${slug}/letter`);
    const body = 'Dear {{target.name}},\n\nplease {{#each targets}}x{{/each}}\n';
    const res = await client.post(`/admin/campaigns/${slug}/letter`, { action: 'save', letter_subject: 'Hi', letter_body: body });
    // A template that does not compile is a 422, as through the API.
    expect(res.status).toBe(422);
    expect(res.text).toContain('Line 3: {{#each}} is not available: only {{#if variable}} and {{#unless variable}} blocks are allowed');
    expect(res.text).toContain('please {{#each targets}}x{{/each}}');
    const { rows } = await ctx.db.query<{ letter_body: string }>('SELECT letter_body FROM campaigns WHERE slug = $1', [slug]);
    expect(rows[0]!.letter_body).not.toContain('#each');
    expect(res.text).toContain('The letter does not compile');
    // A letter that compiles but is refused (too long) is "not saved", not "does not compile".
    const long = await client.post(`/admin/campaigns/${slug}/letter`, { action: 'save', letter_subject: 'Hi', letter_body: 'x'.repeat(20_001) });
    expect(long.status).toBe(400);
    expect(long.text).toMatch(/Body: must be at most/);
    expect(long.text).toContain('Not saved');
    expect(long.text).not.toContain('does not compile');
    // Nor is one too long parsed, or rendered for the preview: deep nesting overflowed the stack (500).
    const nested = '{{#if date}}'.repeat(2_000) + 'x' + '{{/if}}'.repeat(2_000);
    const preview = await client.post(`/admin/campaigns/${slug}/letter/preview`, { letter_subject: 'Hi', letter_body: nested });
    expect(preview.status).toBe(200);
    expect(preview.text).toContain('must be at most 20000 characters');
    const deep = await client.post(`/admin/campaigns/${slug}/letter`, { action: 'save', letter_subject: 'Hi', letter_body: nested });
    expect(deep.status).toBe(400);
    expect(deep.text).toMatch(/Body: must be at most 20000 characters/);
  });

  it('shows the newest signers on the campaign page by name, without their addresses or places, which only the recorded list shows', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const address = `${uniq('recent')}@supporter.example`;
    await ctx.db.query(
      `INSERT INTO signatures (campaign_id, full_name, email, city, country, status, confirmed_at) SELECT id, 'Rena Recent', $2, 'Zharkent', 'Kazakhstan', 'confirmed', now() FROM campaigns WHERE slug = $1`,
      [slug, address],
    );
    const views = async () => (await ctx.db.query(`SELECT 1 FROM audit_log WHERE action = 'signatures.view' AND object = $1`, [`campaign:${slug}`])).rowCount;
    const overview = await client.get(`/admin/campaigns/${slug}`);
    expect(overview.text).toContain('Rena Recent');
    // Nor the home town: the list of signers, recorded, has it.
    expect(overview.text).not.toContain(address);
    expect(overview.text).not.toContain('Zharkent');
    expect(await views()).toBe(0);
    // HEAD shows nobody: not recorded (as the CSV's is not).
    const head = await fetch(`${base}/admin/campaigns/${slug}/signatures`, { method: 'HEAD', headers: { cookie: [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    expect(head.status).toBe(200);
    expect(await views()).toBe(0);
    const list = await client.get(`/admin/campaigns/${slug}/signatures`);
    expect(list.text).toContain(address);
    expect(await views()).toBe(1);
  });

  it('renders the live preview for the target chosen, leaving out what that target may not see', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const targets = (await ctx.db.query<{ id: number; disclose: string }>('SELECT t.id, t.disclose FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE c.slug = $1 ORDER BY t.position', [slug])).rows;
    const body = '{{target.salutation}}, from {{supporter.fullName}} of {{supporter.city}}';
    const place = await client.post(`/admin/campaigns/${slug}/letter/preview`, { letter_subject: 'S', letter_body: body, target: String(targets[0]!.id) });
    expect(place.text).toContain('Your Honour, from Dana Example of Lyon');
    const nameOnly = await client.post(`/admin/campaigns/${slug}/letter/preview`, { letter_subject: 'S', letter_body: body, target: String(targets[1]!.id) });
    expect(nameOnly.text).toContain('Dear Minister, from Dana Example of\n');
    expect(nameOnly.text).not.toContain('<html');
    // That gap is pointed out, with where to put the words that belong to the field.
    expect(nameOnly.text).toContain('Left with a gap where it is empty: <code>{{supporter.city}}</code> (line 1).');
    expect(place.text).toContain('<code>{{supporter.city}}</code> (line 1)');
    const guarded = await client.post(`/admin/campaigns/${slug}/letter/preview`, {
      letter_subject: 'S', letter_body: '{{target.salutation}}, from {{supporter.fullName}}{{#if supporter.city}} of {{supporter.city}}{{/if}}\n{{supporter.personalNote}}', target: String(targets[1]!.id),
    });
    expect(guarded.text).toContain('Dear Minister, from Dana Example\n');
    expect(guarded.text).not.toContain('Left with a gap');
    // The subject too: what the official sees first in the inbox.
    const subject = await client.post(`/admin/campaigns/${slug}/letter/preview`, { letter_subject: 'A letter from {{supporter.city}} about {{case.personName}}', letter_body: 'Hi', target: String(targets[1]!.id) });
    expect(subject.text).toContain('Left with a gap where it is empty: <code>{{supporter.city}}</code> (in the subject).');
    // The envelope as the official sees it: from the organization's address in the supporter's
    // name, and a reply reaches the supporter only where the target sees everything.
    expect(place.text).toContain('<dt>From</dt><dd>&quot;Dana Example via Appeal Test&quot; &lt;letters@appeal.test&gt;</dd>');
    expect(place.text).toContain('<dt>To</dt><dd>&quot;Judge One&quot; &lt;judge@court.example&gt; (District judge)</dd>');
    expect(place.text).not.toContain('Reply-To');
    const [full] = (await ctx.db.query<{ id: number }>(`UPDATE targets SET disclose = 'full' WHERE id = $1 RETURNING id`, [targets[1]!.id])).rows;
    const everything = await client.post(`/admin/campaigns/${slug}/letter/preview`, { letter_subject: 'S', letter_body: body, target: String(full!.id) });
    expect(everything.text).toContain('<dt>Reply-To</dt><dd>&quot;Dana Example&quot; &lt;the supporter&#x27;s address, once confirmed&gt;</dd>');
    const seesEmail = 'sees name, place, note and email';
    expect((await client.get(`/admin/campaigns/${slug}/letter`)).text).toContain(`(${seesEmail})`);
    expect((await client.get(`/admin/campaigns/${slug}/targets`)).text).toContain(`>${seesEmail.slice(5)}<`);
    // Without confirmation nobody confirms an address: no official gets one to reply to, and the
    // console's lists of what each target sees say so too.
    await ctx.db.query('UPDATE campaigns SET require_confirmation = false WHERE slug = $1', [slug]);
    const unconfirmed = await client.post(`/admin/campaigns/${slug}/letter/preview`, { letter_subject: 'S', letter_body: body, target: String(full!.id) });
    expect(unconfirmed.text).toContain('<dt>From</dt>');
    expect(unconfirmed.text).not.toContain('Reply-To');
    for (const page of ['letter', 'targets']) {
      const text = (await client.get(`/admin/campaigns/${slug}/${page}`)).text;
      expect(text).not.toContain('note and email');
      expect(text).toContain('name, place and note (no email: this campaign sends without confirming it)');
    }
  });

  // When the next digest goes, in nextDigestWords's three forms: the hour today, the next quarter
  // hour once today's hour has passed (the fixture's 9:00 UTC, after 9 in the morning), tomorrow.
  const NEXT_DIGEST_WORDS = /^1 confirmed signature waits for the next digest, (at \d+:\d\d UTC( \(today's hour, 9:00 UTC, has passed\))?|tomorrow at 9:00 UTC)\.$/;

  it('previews a digest campaign as the digest sends it, and says a saved letter is for signatures from now on', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { deliveryMode: 'digest', requireConfirmation: false });
    const body = '{{target.salutation}},\n\nFree her.\n\n{{supporter.fullName}}\n{{supporter.city}}';
    const preview = await client.post(`/admin/campaigns/${slug}/letter/preview`, { letter_subject: 'About {{case.personName}}', letter_body: body });
    expect(preview.text).not.toContain('Dana Example');
    expect(preview.text).toContain('<dt>From</dt><dd>&quot;3 supporters via Appeal Test&quot; &lt;letters@appeal.test&gt;</dd>');
    expect(preview.text).toMatch(/About [^<]+ \(3 supporters, \d{1,2} \w+ \d{4}\)/);
    expect(preview.text).toContain('Then the list of everyone who signed');
    const quiet = await client.get(`/admin/campaigns/${slug}/letter`);
    // Those who signed keep their text: a day's digest is split by it (digest.test.ts).
    expect(quiet.text).toContain('Signatures made before you save keep the letter their signers saw (a day’s digest is split into a letter per text when they differ)');
    const draft = await createLiveCampaign(ctx.db, { deliveryMode: 'digest', digestHour: 17 }, 'draft');
    expect((await client.get(`/admin/campaigns/${draft.slug}/launch`)).text).toContain('Once a day, at 17:00 UTC, each target gets one letter');

    const { rows: [c] } = await ctx.db.query<{ id: number }>('SELECT id FROM campaigns WHERE slug = $1', [slug]);
    expect((await client.get(`/admin/campaigns/${slug}`)).text).toContain('<p id="digest-waiting">No confirmed signature waits for the next digest.</p>');
    await ctx.db.query(`INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) VALUES ($1, 'Wai Ting', 'wait@supporter.example', 'confirmed', now())`, [c!.id]);
    // The page's counts poll says it too, so an open page does not read "none waits" beside 1 confirmed.
    expect(JSON.parse((await client.get(`/admin/campaigns/${slug}/stats.json`)).text).waitingForDigest).toMatch(NEXT_DIGEST_WORDS);
    // The campaign page counts who waits for the digest: no letter is queued for them yet.
    expect((await client.get(`/admin/campaigns/${slug}`)).text).toMatch(/1 confirmed signature waits for the next digest, (at|tomorrow at) \d+:\d\d UTC/);
  });

  // Two right-to-left values with only punctuation between them read as one run: swapped.
  it('keeps right-to-left names and titles in their places in the console\'s lists and messages', async () => {
    const targets = [
      { name: 'ئابدۇرېشىت تۇرسۇن', title: 'سوتچى', email: 'judge@court.example' },
      { name: 'مۇختەر ئەلى', title: 'مىنىستىر', email: 'mfa@ministry.example' },
    ];
    const { slug, caseSlug } = await createLiveCampaign(ctx.db, { title: 'ئايگۈلنى قويۇپ بېرىڭ', targets }, 'draft');
    const launch = (await client.open(`/admin/campaigns/${slug}/launch`)).text;
    expect(launch).toContain('<li><bdi>ئابدۇرېشىت تۇرسۇن</bdi>, <bdi>سوتچى</bdi> <span');
    // Neither has a salutation: the warning names both, each isolated.
    expect(launch).toContain('\u2068ئابدۇرېشىت تۇرسۇن\u2069, \u2068مۇختەر ئەلى\u2069 have no salutation');
    // An <option> holds no <bdi>: its label isolates them.
    expect((await client.get(`/admin/campaigns/${slug}/letter`)).text).toContain('\u2068ئابدۇرېشىت تۇرسۇن\u2069, \u2068سوتچى\u2069 (sees');
    const launched = await client.post(`/admin/campaigns/${slug}/launch`, {});
    expect(launched.status).toBe(303);
    // The campaign's page: its title isolated in the crumbs and the heading, whose status is read
    // apart from it; its flash focused, so a screen reader says what was done.
    const page = (await client.open(launched.location!)).text;
    expect(page).toContain('› <bdi>ئايگۈلنى قويۇپ بېرىڭ</bdi></p>');
    expect(page).toContain('<h1><bdi>ئايگۈلنى قويۇپ بېرىڭ</bdi> <span class="status status-live"><span class="sr-only">(status: </span>live<span class="sr-only">)</span></span></h1>');
    expect(page).toMatch(/<p class="flash" role="status" tabindex="-1" autofocus>/);
    expect((await client.get('/admin/campaigns')).text).toContain('<bdi>ئايگۈلنى قويۇپ بېرىڭ</bdi></a>');
    expect((await client.get(`/admin/campaigns/${slug}/targets`)).text).toContain('<td><bdi>ئابدۇرېشىت تۇرسۇن</bdi>');
    const second = await createLiveCampaign(ctx.db, { title: 'ئايگۈل ئۈچۈن خەت' });
    await ctx.db.query('UPDATE campaigns SET case_id = (SELECT case_id FROM campaigns WHERE slug = $1) WHERE slug = $2', [slug, second.slug]);
    const changed = await client.post(`/admin/cases/${caseSlug}/status`, { status: 'granted_stay' });
    const titles = (await client.open(changed.location!)).text.match(/Status is now “granted stay”\. Nobody was emailed: post an update to tell the case’s followers\. (.*) still take signatures/)![1]!.split(', ');
    expect(titles.sort()).toEqual(['“\u2068ئايگۈل ئۈچۈن خەت\u2069”', '“\u2068ئايگۈلنى قويۇپ بېرىڭ\u2069”']);
  });

  it('warns before launching when officials with no salutation would get a letter opening with a bare comma', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Court', email: 'court@court.example', salutation: 'Your Honour' }, { name: 'Deputy Ospanov', email: 'mp9@parliament.example' }] }, 'draft');
    const launch = await client.open(`/admin/campaigns/${slug}/launch`);
    expect(launch.text).toContain('Deputy Ospanov has no salutation, so their letter opens with “,”');
    expect((await client.get(`/admin/campaigns/${slug}`)).text).toContain('Deputy Ospanov has no salutation');
    // A line the warnings quote reads as the officials will read it: the case's own person, not a stand-in.
    await ctx.db.query(`UPDATE campaigns SET letter_body = 'Dear {{target.salutation}}, free {{case.personName}}.' WHERE slug = $1`, [slug]);
    expect((await client.get(`/admin/campaigns/${slug}/launch`)).text).toContain('their letter opens with “Dear , free Aigerim Test.”');
    // The console's starter letter greets them by name instead: nothing to warn about.
    await ctx.db.query('UPDATE campaigns SET letter_body = $2 WHERE slug = $1', [slug, STARTER_BODY.replace(STARTER_PLACEHOLDER, 'Free her.')]);
    expect((await client.get(`/admin/campaigns/${slug}/launch`)).text).not.toContain('no salutation');
    // An official whose address bounced is listed as such: no letter goes to it.
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES ('mp9@parliament.example', 'bounce: 550 5.1.1', 'letter') ON CONFLICT DO NOTHING`);
    const listed = (await client.get(`/admin/campaigns/${slug}/launch`)).text;
    expect(listed).toMatch(/<bdi>Deputy Ospanov<\/bdi> <span class="muted small">[^<]*<\/span> <span class="badge bad">bounced: no letter goes to it/);
    expect(listed).not.toMatch(/Court <span class="muted small">[^<]*<\/span> <span class="badge bad">/);
    await ctx.db.query(`DELETE FROM suppressions WHERE email = 'mp9@parliament.example'`);
  });

  it('warns before launching a campaign whose letter still holds the starter placeholder, and on its page', async () => {
    const body = `Dear {{target.name}},\n\n${STARTER_PLACEHOLDER}\n\n{{supporter.fullName}}`;
    const { slug } = await createLiveCampaign(ctx.db, { letter: { subject: 'About {{case.personName}}', body } }, 'draft');
    const page = await client.open(`/admin/campaigns/${slug}/launch`);
    expect(page.text).toContain('The letter still says');
    expect(page.text).toContain(`href="/admin/campaigns/${slug}/letter"`);
    expect((await client.get(`/admin/campaigns/${slug}`)).text).toContain('officials would get that line as it is');
    // Written in its place, the warnings go.
    await ctx.db.query(`UPDATE campaigns SET letter_body = 'Dear {{target.name}}, free her.' WHERE slug = $1`, [slug]);
    expect((await client.get(`/admin/campaigns/${slug}/launch`)).text).not.toContain('The letter still says');
    expect((await client.get(`/admin/campaigns/${slug}`)).text).not.toContain('officials would get that line');
    // A warning, not a refusal: one left as it is launches when asked.
    const { slug: asIs } = await createLiveCampaign(ctx.db, { letter: { subject: 'About {{case.personName}}', body } }, 'draft');
    expect((await client.get(`/admin/campaigns/${asIs}/launch`)).text).toContain('Launch the campaign');
    expect((await client.post(`/admin/campaigns/${asIs}/launch`, {})).status).toBe(303);
    expect((await getCampaign(ctx.db, asIs)).status).toBe('live');
  });

  it('says on the close page how many signatures wait for confirmation, which closing leaves without a letter', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    expect((await client.get(`/admin/campaigns/${slug}/close`)).text).not.toContain('waiting for');
    for (const name of ['Pending One', 'Pending Two']) {
      expect((await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: new URLSearchParams({ full_name: name, email: `${uniq('p')}@supporter.example` }), redirect: 'manual' })).status).toBe(303);
    }
    const page = (await client.get(`/admin/campaigns/${slug}/close`)).text;
    expect(page).toContain('takes no signatures or confirmations');
    expect(page).toContain('2 signatures are still waiting for their signers to confirm by email. Closed, the campaign takes no confirmation: they send no letter.');
    // Heard with the button it warns about.
    expect(page).toMatch(/<div class="errors" role="alert" tabindex="-1" id="unconfirmed-warning">/);
    expect(page).toMatch(/<button type="submit" class="danger" aria-describedby="unconfirmed-warning">Close the campaign<\/button>/);
  });

  it('shows on the Targets page how many of each official\'s letters were sent, are waiting and failed', async () => {
    const tag = uniq('counts');
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Court', email: `court-${tag}@gov.example` }, { name: 'Quiet Office', email: `quiet-${tag}@gov.example` }] });
    const { rows: [court] } = await ctx.db.query<{ id: number; campaign_id: number }>('SELECT id, campaign_id FROM targets WHERE email = $1', [`court-${tag}@gov.example`]);
    // Rows alone, no jobs (no sweeper runs here): four signers' letters to the court, as they stand.
    for (const status of ['sent', 'sent', 'retry', 'failed']) {
      await ctx.db.query(
        `WITH s AS (INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) VALUES ($1, 'Signer', $2, 'confirmed', now()) RETURNING id)
         INSERT INTO deliveries (kind, source_id, target_id, recipient, campaign_id, status) SELECT 'letter', s.id, $3, $4, $1, $5 FROM s`,
        [court!.campaign_id, `${uniq('signer')}@supporter.example`, court!.id, `court-${tag}@gov.example`, status],
      );
    }
    const page = (await client.get(`/admin/campaigns/${slug}/targets`)).text;
    expect(page).toContain('<th scope="col">Letters</th>');
    expect(page).toContain(`<td class="nowrap">2 sent<br>1 waiting<br><a class="bad" href="/admin/campaigns/${slug}/letters?status=failed">1 failed</a></td>`);
    expect(page).toContain('<td class="nowrap">0 sent</td>');
  });

  it('removes a target no letter went to yet, with the letters waiting for it, rather than keeping it on record', async () => {
    const tag = uniq('unsent');
    const slow = `slow-${tag}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Court', email: `court-${tag}@gov.example` }, { name: 'Slow Office', email: slow }] });
    const { rows: [target] } = await ctx.db.query<{ id: number; campaign_id: number }>('SELECT id, campaign_id FROM targets WHERE email = $1', [slow]);
    const { rows: [tried] } = await ctx.db.query<{ id: number }>('SELECT id FROM targets WHERE email = $1', [`court-${tag}@gov.example`]);
    const waiting = async (targetId: number, status: string, attempts: number, who: string) => {
      const { rows: [sig] } = await ctx.db.query<{ id: number }>(`INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) VALUES ($1, 'Signer', $2, 'confirmed', now()) RETURNING id`, [target!.campaign_id, `${who}-${tag}@supporter.example`]);
      await ctx.db.query(`INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient, status, attempts) SELECT 'letter', $1, id, campaign_id, email, $3, $4 FROM targets WHERE id = $2`, [sig!.id, targetId, status, attempts]);
    };
    // Two letters to it waiting, never tried.
    await waiting(target!.id, 'queued', 0, 'a');
    await waiting(target!.id, 'queued', 0, 'b');
    await client.open(`/admin/campaigns/${slug}/targets`);
    const removed = await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/remove`, { confirmed: '1' });
    expect((await client.open(removed.location!)).text).toContain('Slow Office removed: 2 letters not yet sent will not be sent.');
    expect((await ctx.db.query('SELECT 1 FROM targets WHERE id = $1', [target!.id])).rows).toEqual([]);
    expect((await ctx.db.query('SELECT 1 FROM deliveries WHERE recipient = $1', [slow])).rows).toEqual([]);

    // A letter waiting for a retry was tried (its server may have taken it before the answer was
    // lost), and so was one that failed and was sent again (its count starts afresh, its error
    // stays): each target stays on record, retired.
    const resent = `resent-${tag}@gov.example`;
    await addTargets(ctx.db, slug, [{ name: 'Spare', email: `spare-${tag}@gov.example` }, { name: 'Resent', email: resent }]);
    const { rows: [again] } = await ctx.db.query<{ id: number }>('SELECT id FROM targets WHERE email = $1', [resent]);
    await waiting(tried!.id, 'retry', 1, 'c');
    await waiting(again!.id, 'queued', 0, 'd');
    await ctx.db.query(`UPDATE deliveries SET last_error = 'timeout after DATA' WHERE recipient = $1`, [resent]);
    for (const [t, name] of [[tried!, 'Court'], [again!, 'Resent']] as const) {
      const retired = await client.post(`/admin/campaigns/${slug}/targets/${t.id}/remove`, { confirmed: '1' });
      expect((await client.open(retired.location!)).text).toContain(`${name} gets no more letters: 1 letter not yet sent will not be sent. Letters went to it or were tried already, so it stays on record.`);
      expect((await ctx.db.query('SELECT retired_at IS NOT NULL AS retired FROM targets WHERE id = $1', [t.id])).rows).toEqual([{ retired: true }]);
    }
  });

  it('stops writing to a target letters went to: it stays on record, gets no new letter, and can be written to again', async () => {
    const tag = uniq('retire');
    const court = `court-${tag}@gov.example`;
    const gone = `gone-${tag}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false, targets: [{ name: 'Court', email: court }, { name: 'Former Minister', email: gone }] });
    const letters = async (to: string) => (await ctx.db.query<{ status: string }>(`SELECT status FROM deliveries WHERE kind = 'letter' AND recipient = $1 ORDER BY id`, [to])).rows.map((r) => r.status);
    const sign = async (name: string) =>
      expect((await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: new URLSearchParams({ full_name: name, email: `${uniq('s')}@supporter.example` }), redirect: 'manual' })).status).toBe(303);
    await sign('First Signer');
    await until(() => letters(gone), (l) => l.length === 1 && l[0] === 'sent');
    const { rows: [target] } = await ctx.db.query<{ id: number; campaign_id: number }>('SELECT id, campaign_id FROM targets WHERE email = $1', [gone]);
    // A letter to it still waiting (no worker has it: no job) is dropped with the retirement.
    const { rows: [sig] } = await ctx.db.query<{ id: number }>(`INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) VALUES ($1, 'Waiting Signer', $2, 'confirmed', now()) RETURNING id`, [target!.campaign_id, `${tag}@supporter.example`]);
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient) VALUES ('letter', $1, $2, $3, $4)`, [sig!.id, target!.id, target!.campaign_id, gone]);

    // Without the page's script nothing is removed yet: a page asks first, in the form's words.
    const asked = await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/remove`, { question: 'Remove Former Minister from this campaign?' });
    expect(asked.status).toBe(200);
    expect(asked.text).toContain('Remove Former Minister from this campaign?');
    expect(asked.text).toContain('name="confirmed" value="1"');
    expect((await ctx.db.query('SELECT retired_at FROM targets WHERE id = $1', [target!.id])).rows[0]).toEqual({ retired_at: null });
    const removed = await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/remove`, { confirmed: '1' });
    expect(removed.status).toBe(303);
    expect((await client.open(removed.location!)).text).toContain('Former Minister gets no more letters: 1 letter not yet sent will not be sent.');
    expect(await letters(gone)).toEqual(['sent']);
    expect((await client.get(`/admin/campaigns/${slug}/targets`)).text).toContain('<span class="badge">gets no more letters</span>');
    expect(await (await fetch(`${base}/c/${slug}`)).text()).not.toContain('Former Minister');
    await sign('Second Signer');
    await until(() => letters(court), (l) => l.length === 2 && l.every((x) => x === 'sent'));
    expect(await letters(gone)).toEqual(['sent']);
    // A letter to it that failed earlier is not retried, and stays on record as failed: the list
    // says why instead of offering a Retry that would drop it.
    const { rows: [failed] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient, status, attempts, last_error) VALUES ('letter', $1, $2, $3, $4, 'failed', 1, 'test') RETURNING id`,
      [sig!.id, target!.id, target!.campaign_id, gone]);
    const listed = await client.get('/admin/deliveries/failed');
    expect(listed.text).toContain('Official removed from the campaign: not retried');
    expect(listed.text).not.toContain(`action="/admin/deliveries/${failed!.id}/retry"`);
    const retried = await client.post(`/admin/deliveries/${failed!.id}/retry`, { back: `/admin/campaigns/${slug}` });
    expect((await client.open(retried.location!)).text).toContain('Not retried: its official was removed from the campaign');
    expect((await client.post('/admin/deliveries/failed/retry-all', {})).status).toBe(303);
    expect((await ctx.db.query('SELECT status FROM deliveries WHERE id = $1', [failed!.id])).rows).toEqual([{ status: 'failed' }]);
    expect(ctx.sink!.messages.filter((m) => m.text?.includes('Waiting Signer'))).toEqual([]);
    await ctx.db.query('DELETE FROM deliveries WHERE id = $1', [failed!.id]);
    // A delivery that is gone (deleted with its person, say) is not found, not "not failed any more".
    const gone404 = await client.post(`/admin/deliveries/${failed!.id}/retry`, { back: `/admin/campaigns/${slug}` });
    expect(gone404.status).toBe(404);
    // The last target written to stays.
    const { rows: [courtTarget] } = await ctx.db.query<{ id: number }>('SELECT id FROM targets WHERE email = $1', [court]);
    expect((await client.open((await client.post(`/admin/campaigns/${slug}/targets/${courtTarget!.id}/remove`, { confirmed: '1' })).location!)).text).toContain('A campaign needs at least one target');

    expect((await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/reinstate`, {})).status).toBe(303);
    // Twice (a double click): one change, one audit entry.
    expect((await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/reinstate`, {})).status).toBe(303);
    await sign('Third Signer');
    await until(() => letters(gone), (l) => l.length === 2 && l.every((x) => x === 'sent'));
    expect((await actions(ctx, organizerId)).filter((a) => a.object === `campaign:${slug}`).map((a) => a.action)).toEqual(['target.retire', 'target.reinstate']);
    // The log names the official, which an id alone no longer would once the target is gone.
    expect((await actions(ctx, organizerId)).find((a) => a.action === 'target.retire' && a.object === `campaign:${slug}`)!.detail).toMatchObject({ target: target!.id, name: 'Former Minister' });

    // Closed, an official's letters still waiting can be stopped (one who left office), and the
    // question says that the campaign's page then no longer names it.
    expect((await client.post(`/admin/campaigns/${slug}/close`, {})).status).toBe(303);
    const { rows: [waiting] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient, status, attempts) VALUES ('letter', $1, $2, $3, $4, 'retry', 1) RETURNING id`,
      [sig!.id, target!.id, target!.campaign_id, `other-${gone}`]);
    expect((await client.get(`/admin/campaigns/${slug}/targets`)).text).toContain("Remove Former Minister from this closed campaign? Its letters not yet sent are not sent, and the campaign's page no longer names it");
    const closedRemove = await client.post(`/admin/campaigns/${slug}/targets/${target!.id}/remove`, { confirmed: '1' });
    expect((await client.open(closedRemove.location!)).text).toContain('Former Minister gets no more letters: 1 letter not yet sent will not be sent.');
    expect((await ctx.db.query('SELECT 1 FROM deliveries WHERE id = $1 AND status = $2', [waiting!.id, 'retry'])).rowCount).toBe(0);
    expect(await (await fetch(`${base}/c/${slug}`)).text()).not.toContain('Former Minister');
    // Its last official too: a closed campaign writes to nobody new, and adds no one.
    const last = await client.post(`/admin/campaigns/${slug}/targets/${courtTarget!.id}/remove`, { confirmed: '1' });
    expect((await client.open(last.location!)).text).toContain('Court gets no more letters');
    const page = await (await fetch(`${base}/c/${slug}`)).text();
    expect(page).not.toContain('It goes to');
    expect(page).toContain('This campaign is closed');
  });

  it('corrects a target: letters not sent yet and failed ones follow a new address, sent ones keep theirs; what it learns only narrows once people signed', async () => {
    const tag = uniq('edit');
    const court = `court-${tag}@gov.example`;
    const typo = `minstry-${tag}@gov.example`;
    const fixed = `ministry-${tag}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false, targets: [{ name: 'Court', email: court }, { name: 'Minstry', email: typo, disclose: 'name' }] });
    const { rows: [target] } = await ctx.db.query<{ id: number; campaign_id: number }>('SELECT id, campaign_id FROM targets WHERE email = $1', [typo]);
    const edit = `/admin/campaigns/${slug}/targets/${target!.id}/edit`;
    const form = { name: 'Ministry of Foreign Affairs', title: '', email: fixed, salutation: 'Dear Minister', disclose: 'name' };
    const sign = async (name: string) =>
      expect((await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: new URLSearchParams({ full_name: name, email: `${uniq('s')}@supporter.example`, city: 'Oslo' }), redirect: 'manual' })).status).toBe(303);
    const letters = async () => (await ctx.db.query<{ recipient: string; status: string }>(`SELECT recipient, status FROM deliveries WHERE kind = 'letter' AND target_id = $1 ORDER BY id`, [target!.id])).rows;

    expect((await client.get(`/admin/campaigns/${slug}/targets`)).text).toContain(`href="${edit}"`);
    const page = await client.get(edit);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`value="${typo}"`);
    await sign('First Signer');
    await until(letters, (l) => l.length === 1 && l[0]!.status === 'sent');
    // One that failed at the misspelt address (no job: nothing sends it until it is retried).
    const { rows: [sig] } = await ctx.db.query<{ id: number }>(`INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) VALUES ($1, 'Failed Signer', $2, 'confirmed', now()) RETURNING id`, [target!.campaign_id, `${tag}@supporter.example`]);
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient, status, attempts, last_error) VALUES ('letter', $1, $2, $3, $4, 'failed', 1, '550 no such user')`, [sig!.id, target!.id, target!.campaign_id, typo]);

    // People signed being told it learns their name only: it may not be told more now.
    const wider = await client.post(edit, { ...form, disclose: 'name_place' });
    expect(wider.status).toBe(400);
    expect(wider.text).toContain('What this target learns: people signed being told what this target learns of them: it can be told less now, not more');
    expect(wider.text).toContain('value="Ministry of Foreign Affairs"');
    // Another target's address is refused.
    expect((await client.post(edit, { ...form, email: court.toUpperCase() })).text).toContain('another target of this campaign has this address');
    expect((await ctx.db.query('SELECT name, email, disclose FROM targets WHERE id = $1', [target!.id])).rows[0]).toEqual({ name: 'Minstry', email: typo, disclose: 'name' });

    const saved = await client.post(edit, form);
    expect(saved.status).toBe(303);
    expect((await client.open(saved.location!)).text).toContain('Ministry of Foreign Affairs saved: letters not sent yet go to the new address. 1 letter that failed names it now');
    expect(await letters()).toEqual([{ recipient: typo, status: 'sent' }, { recipient: fixed, status: 'failed' }]);
    // Its error was the old address's, and the failed list says so beside the new one.
    expect((await ctx.db.query(`SELECT last_error FROM deliveries WHERE recipient = $1`, [fixed])).rows).toEqual([{ last_error: 'to the previous address: 550 no such user' }]);
    expect((await actions(ctx, organizerId)).filter((a) => a.object === `campaign:${slug}`).map((a) => a.action)).toEqual(['target.edit']);
    const { rows: [edited] } = await ctx.db.query<{ detail: unknown }>(`SELECT detail FROM audit_log WHERE action = 'target.edit' AND object = $1`, [`campaign:${slug}`]);
    expect(edited!.detail).toMatchObject({ changed: ['name', 'email', 'salutation'], from: typo, to: fixed });
    // Telling less is always allowed.
    const { rows: [courtTarget] } = await ctx.db.query<{ id: number }>('SELECT id FROM targets WHERE email = $1', [court]);
    expect((await client.post(`/admin/campaigns/${slug}/targets/${courtTarget!.id}/edit`, { name: 'Court', title: '', email: court, salutation: '', disclose: 'name' })).status).toBe(303);

    await sign('Second Signer');
    const letter = await waitForMail(ctx, fixed);
    expect([letter.to!].flat()[0]!.value[0]).toEqual({ name: 'Ministry of Foreign Affairs', address: fixed });
    expect(letter.text).toContain('Dear Minister');
    expect((await waitForMail(ctx, court)).text).toContain('Oslo');
    expect((await waitForMail(ctx, court, 2)).text).not.toContain('Oslo');
    // A target added after those signatures was seen by nobody who signed: it may still be told more.
    const late = `late-${tag}@gov.example`;
    expect((await client.post(`/admin/campaigns/${slug}/targets`, { name: 'Late Official', title: '', email: late, salutation: '', disclose: 'name' })).status).toBe(303);
    const { rows: [lateTarget] } = await ctx.db.query<{ id: number }>('SELECT id FROM targets WHERE email = $1', [late]);
    expect((await client.post(`/admin/campaigns/${slug}/targets/${lateTarget!.id}/edit`, { name: 'Late Official', title: '', email: late, salutation: '', disclose: 'name_place' })).status).toBe(303);
    expect((await ctx.db.query('SELECT disclose FROM targets WHERE id = $1', [lateTarget!.id])).rows[0]).toEqual({ disclose: 'name_place' });
  });

  it('keeps a case off the public site until it is published: no page, no subscription, no launch, no update', async () => {
    const caseSlug = uniq('quiet');
    const created = await client.post('/admin/cases', { slug: caseSlug, person_name: 'Quiet Person', summary: 'Not yet agreed with the family.', status: 'detained', location: '', keep_unpublished: 'on' });
    expect(created.status).toBe(303);
    expect((await client.open(created.location!)).text).toContain('Not published.');
    expect((await client.get('/admin/cases')).text).toContain('not published');
    expect((await fetch(`${base}/cases/${caseSlug}`)).status).toBe(404);
    const subscribe = await fetch(`${base}/api/v1/subscribers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: `${uniq('s')}@supporter.example`, caseSlug }) });
    expect(subscribe.status).toBe(404);

    const { slug } = await createLiveCampaign(ctx.db, {}, 'draft');
    await ctx.db.query('UPDATE campaigns SET case_id = (SELECT id FROM cases WHERE slug = $1) WHERE slug = $2', [caseSlug, slug]);
    expect((await client.get(`/admin/campaigns/${slug}/launch`)).text).toContain('is not published yet');
    const refused = await client.post(`/admin/campaigns/${slug}/launch`, {});
    expect((await client.open(refused.location!)).text).toContain('is not published yet: publish it first');
    expect((await getCampaign(ctx.db, slug)).status).toBe('draft');
    expect((await client.get(`/admin/cases/${caseSlug}`)).text).toContain('Updates can be posted once the case is published');
    // Unpublished after its form was shown: what was typed comes back with the reason, not a dead end.
    const preview = await client.post(`/admin/cases/${caseSlug}/updates/preview`, { title: 'News typed', body: 'Something long typed.' });
    expect(preview.status).toBe(409);
    expect(preview.text).not.toContain('Post update');
    for (const answer of [preview, await client.post(`/admin/cases/${caseSlug}/updates`, { title: 'News typed', body: 'Something long typed.' })]) {
      expect(answer.status).toBe(409);
      expect(answer.text).toContain('is not published');
      expect(answer.text).toContain('value="News typed"');
      expect(answer.text).toContain('Something long typed.');
    }
    expect((await ctx.db.query('SELECT 1 FROM case_updates u JOIN cases k ON k.id = u.case_id WHERE k.slug = $1', [caseSlug])).rowCount).toBe(0);

    expect((await client.post(`/admin/cases/${caseSlug}/publish`, {})).status).toBe(303);
    expect((await fetch(`${base}/cases/${caseSlug}`)).status).toBe(200);
    // Not announced yet: it can go back.
    expect((await client.post(`/admin/cases/${caseSlug}/unpublish`, {})).status).toBe(303);
    expect((await fetch(`${base}/cases/${caseSlug}`)).status).toBe(404);
    // A draft of it closed without launching shows nothing of it either.
    const other = await createLiveCampaign(ctx.db, {}, 'draft');
    await ctx.db.query('UPDATE campaigns SET case_id = (SELECT id FROM cases WHERE slug = $1) WHERE slug = $2', [caseSlug, other.slug]);
    expect((await client.get(`/admin/campaigns/${other.slug}/close`)).text).toContain('The draft is put away for good');
    expect((await client.post(`/admin/campaigns/${other.slug}/close`, {})).status).toBe(303);
    expect((await fetch(`${base}/c/${other.slug}`)).status).toBe(404);
    expect((await client.get(`/admin/campaigns/${other.slug}`)).text).toContain('put away: not public');
    for (const page of ['letter', 'targets']) {
      const text = (await client.get(`/admin/campaigns/${other.slug}/${page}`)).text;
      expect(text).toContain('The campaign was put away');
      expect(text).not.toContain('its page');
    }
    expect((await client.post(`/admin/cases/${caseSlug}/publish`, {})).status).toBe(303);
    // Nor once its case is published: it was put away, never launched.
    expect((await fetch(`${base}/c/${other.slug}`)).status).toBe(404);
    expect((await client.post(`/admin/campaigns/${slug}/launch`, {})).status).toBe(303);
    expect((await getCampaign(ctx.db, slug)).status).toBe('live');
    // Announced by its campaign: it stays public, and its page says why there is no Unpublish.
    expect((await client.get(`/admin/cases/${caseSlug}`)).text).toContain('Its page is public, and stays so');
    expect((await client.open((await client.post(`/admin/cases/${caseSlug}/unpublish`, {})).location!)).text).toContain('its page stays public');
    expect((await fetch(`${base}/cases/${caseSlug}`)).status).toBe(200);
    expect((await actions(ctx, organizerId)).filter((a) => a.object === `case:${caseSlug}`).map((a) => a.action)).toEqual(['case.create', 'case.publish', 'case.unpublish', 'case.publish']);
  });

  it('lists a form\'s mistakes in the order of its fields, and heads an edit page with the name saved, not the one typed', async () => {
    const summary = (html: string) => [...html.matchAll(/<li><a href="#f-([\w-]+)">/g)].map((m) => m[1]);
    const bad = await client.post('/admin/cases', { slug: 'Not A Slug', person_name: '', summary: '', status: 'happy', location: '' });
    expect(bad.status).toBe(400);
    expect(summary(bad.text)).toEqual(['person_name', 'slug', 'status', 'summary']);

    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    const edit = await client.post(`/admin/campaigns/${slug}/edit`, { title: '', case_slug: caseSlug, summary: '', letter_subject: '', letter_body: 'B', delivery_mode: 'each', digest_hour: '9', goal: 'x' });
    expect(edit.status).toBe(400);
    expect(summary(edit.text)).toEqual(['title', 'letter_subject', 'goal']);
    expect(edit.text).toContain('<h1>Edit “Free Aigerim”</h1>');
  });

  it('withdraws a case update posted by mistake: off the public page, marked in the console, recorded once', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const title = `Posted by mistake ${uniq('u')}`;
    expect((await client.post(`/admin/cases/${caseSlug}/updates`, { title, body: 'She is held in the building on …', request_key: uniq('k') })).status).toBe(303);
    expect(await (await fetch(`${base}/cases/${caseSlug}`)).text()).toContain(title);
    const { rows: [u] } = await ctx.db.query<{ id: number }>('SELECT id FROM case_updates WHERE title = $1', [title]);
    const withdrawn = await client.post(`/admin/cases/${caseSlug}/updates/${u!.id}/withdraw`, { confirmed: '1' });
    expect(withdrawn.status).toBe(303);
    // Nobody follows this case: nothing went out, and nothing will.
    expect((await client.open(withdrawn.location!)).text).toContain(`“${title}” is withdrawn: it is off the case page, no alert had gone out, and none will.`);
    expect(await (await fetch(`${base}/cases/${caseSlug}`)).text()).not.toContain(title);
    const page = (await client.get(`/admin/cases/${caseSlug}`)).text;
    expect(page).toMatch(new RegExp(`<bdi>${title}</bdi> <span class="badge">withdrawn</span>`));
    expect((await client.post(`/admin/cases/${caseSlug}/updates/${u!.id}/withdraw`, { confirmed: '1' })).status).toBe(303);
    expect((await actions(ctx, organizerId)).filter((a) => a.action === 'case.update_withdraw' && a.object === `case:${caseSlug}`)).toHaveLength(1);
    expect((await client.post(`/admin/cases/${caseSlug}/updates/999999999/withdraw`, { confirmed: '1' })).status).toBe(404);

    // Withdrawn while its alerts go out: how many reached inboxes, and how many are stopped.
    const second = `Also by mistake ${uniq('u')}`;
    expect((await client.post(`/admin/cases/${caseSlug}/updates`, { title: second, body: 'Wrong.', request_key: uniq('k') })).status).toBe(303);
    const { rows: [v] } = await ctx.db.query<{ id: number }>('SELECT id FROM case_updates WHERE title = $1', [second]);
    await ctx.db.query(
      `INSERT INTO deliveries (kind, source_id, recipient, status)
       SELECT 'alert', $1, 'w' || i || '@subscriber.example', CASE WHEN i = 1 THEN 'sent' WHEN i = 2 THEN 'sending' WHEN i = 3 THEN 'failed' ELSE 'queued' END FROM generate_series(1, 6) i`,
      [v!.id],
    );
    const partly = await client.post(`/admin/cases/${caseSlug}/updates/${v!.id}/withdraw`, { confirmed: '1' });
    // One sent, one being sent (it goes if written already). One failed (it reached no one) and three queued: stopped, none retried later.
    expect((await client.open(partly.location!)).text).toContain(`“${second}” is withdrawn: it is off the case page, 1 alert had gone out and cannot be taken back; 1 alert was being sent, and goes only if already written; the other 4 alerts will not be sent. A correction posted as a new update is emailed to the case’s followers again.`);
    const { rows: [entry] } = await ctx.db.query<{ detail: unknown }>(`SELECT detail FROM audit_log WHERE action = 'case.update_withdraw' ORDER BY id DESC LIMIT 1`);
    expect(entry!.detail).toMatchObject({ update: v!.id, dropped: 4, sent: 1, sending: 1 });
  });

  // Back after posting shows the preview again (Resend): its Post button must not alert everyone twice.
  it('says on a preview of an update posted already that it was, and posting it again sends nothing', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const form = { title: `Hearing moved ${uniq('u')}`, body: 'The hearing is now on Monday.' };
    const keyOf = (html: string) => /name="request_key" value="([^"]+)"/.exec(html)![1]!;
    const seenOf = (html: string) => /name="seen_posted" value="(\d+)"/.exec(html)![1]!;
    const first = await client.post(`/admin/cases/${caseSlug}/updates/preview`, form);
    expect(first.text).not.toContain('You posted this update already');
    expect((await client.post(`/admin/cases/${caseSlug}/updates`, { ...form, request_key: keyOf(first.text) })).status).toBe(303);

    const again = await client.post(`/admin/cases/${caseSlug}/updates/preview`, form);
    expect(again.text).toMatch(/You posted this update already, at \d{4}-\d\d-\d\d \d\d:\d\d UTC: its alert went to 0 subscribers\. Posting it again sends nothing more/);
    const repeat = await client.post(`/admin/cases/${caseSlug}/updates`, { ...form, request_key: keyOf(again.text) });
    expect((await client.open(repeat.location!)).text).toMatch(new RegExp(`“${form.title}” was posted already, at .* UTC: its alert went to 0 subscribers, and is not sent again\\.`));
    const posted = await ctx.db.query('SELECT 1 FROM case_updates WHERE title = $1', [form.title]);
    expect(posted.rowCount).toBe(1);
    // Other text is another update.
    expect((await client.post(`/admin/cases/${caseSlug}/updates/preview`, { ...form, body: 'The hearing is now on Tuesday.' })).text).not.toContain('You posted this update already');
    // Another organizer is told it was posted, and may post it again as their own (a second alert), not refused for a key not theirs.
    const other = await signedIn(base, ctx.db, 'organizer');
    const theirs = await other.client.post(`/admin/cases/${caseSlug}/updates/preview`, form);
    expect(theirs.text).toContain('This update was posted already, at');
    // Nobody follows this case: no alert to send twice.
    expect(theirs.text).toContain('Posting it again puts it on the case page twice.');
    expect((await other.client.post(`/admin/cases/${caseSlug}/updates`, { ...form, request_key: keyOf(theirs.text), seen_posted: seenOf(theirs.text) })).status).toBe(303);
    expect((await ctx.db.query('SELECT 1 FROM case_updates WHERE title = $1', [form.title])).rowCount).toBe(2);
    // The first organizer's own post is still found first: their Back and Resend sends nothing.
    const mine = await client.post(`/admin/cases/${caseSlug}/updates/preview`, form);
    expect(mine.text).toContain('You posted this update already');
    await client.post(`/admin/cases/${caseSlug}/updates`, { ...form, request_key: keyOf(mine.text) });
    expect((await ctx.db.query('SELECT 1 FROM case_updates WHERE title = $1', [form.title])).rowCount).toBe(2);
  });

  // Two organizers preview the same news before either posts it: neither preview can warn, so Post looks again.
  it('does not post an update whose text was posted after its preview was made, and says so on the preview again', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const form = { title: `Hearing moved ${uniq('u')}`, body: 'The hearing is now on Monday.' };
    const fieldsOf = (html: string) => ({
      ...form,
      request_key: /name="request_key" value="([^"]+)"/.exec(html)![1]!,
      seen_posted: /name="seen_posted" value="(\d+)"/.exec(html)![1]!,
    });
    const count = async () => (await ctx.db.query('SELECT 1 FROM case_updates WHERE title = $1', [form.title])).rowCount;
    const other = await signedIn(base, ctx.db, 'organizer');
    const mine = fieldsOf((await client.post(`/admin/cases/${caseSlug}/updates/preview`, form)).text);
    const theirs = fieldsOf((await other.client.post(`/admin/cases/${caseSlug}/updates/preview`, form)).text);
    expect((await client.post(`/admin/cases/${caseSlug}/updates`, mine)).status).toBe(303);

    const held = await other.client.post(`/admin/cases/${caseSlug}/updates`, theirs);
    expect(held.status).toBe(409);
    expect(held.text).toMatch(/<strong>Not posted\.<\/strong> This update was posted already, at .* UTC: its alert went to 0 subscribers\. Posting it again puts it on the case page twice\./);
    expect(await count()).toBe(1);
    // Pressed again on the page that said so, it posts: a second alert, chosen knowingly.
    expect((await other.client.post(`/admin/cases/${caseSlug}/updates`, fieldsOf(held.text))).status).toBe(303);
    expect(await count()).toBe(2);

    // Both pressed at the same moment: one posts, the other is held back.
    const news = { ...form, title: `Verdict ${uniq('v')}` };
    const previews = await Promise.all([client, other.client].map(async (c) => fieldsOf((await c.post(`/admin/cases/${caseSlug}/updates/preview`, news)).text)));
    const pressed = await Promise.all([client, other.client].map((c, i) => c.post(`/admin/cases/${caseSlug}/updates`, { ...previews[i]!, title: news.title })));
    expect(pressed.map((r) => r.status).sort()).toEqual([303, 409]);
    expect((await ctx.db.query('SELECT 1 FROM case_updates WHERE title = $1', [news.title])).rowCount).toBe(1);

    // The same organizer's second tab: told it went already, and its Post now sends nothing more.
    const tabs = [1, 2].map(async () => fieldsOf((await client.post(`/admin/cases/${caseSlug}/updates/preview`, { ...form, body: 'Now Tuesday.' })).text));
    const [tab1, tab2] = await Promise.all(tabs);
    expect((await client.post(`/admin/cases/${caseSlug}/updates`, { ...tab1!, body: 'Now Tuesday.' })).status).toBe(303);
    const second = await client.post(`/admin/cases/${caseSlug}/updates`, { ...tab2!, body: 'Now Tuesday.' });
    expect(second.text).toContain('<strong>Not posted.</strong> You posted this update already');
    expect((await client.post(`/admin/cases/${caseSlug}/updates`, { ...fieldsOf(second.text), body: 'Now Tuesday.' })).status).toBe(303);
    expect(await count()).toBe(3);
  });

  it('keeps right-to-left names in their own direction: typed with dir=auto, listed in <bdi>', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    const form = await (await fetch(`${base}/c/${slug}`)).text();
    for (const field of ['full_name', 'city', 'country']) expect(form).toMatch(new RegExp(`<input id="f-${field}" name="${field}" dir="auto"`));
    expect(form).toContain('<textarea id="f-personal_note" name="personal_note" dir="auto"');
    const name = 'ئايگېرىم قاسىمقىزى';
    await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: new URLSearchParams({ full_name: name, email: `${uniq('rtl')}@supporter.example`, city: 'غۇلجا' }), redirect: 'manual' });
    const listed = await client.get(`/admin/campaigns/${slug}/signatures`);
    expect(listed.text).toContain(`<bdi>${name}</bdi>`);
    expect(listed.text).toContain('<bdi>غۇلجا</bdi>');
  });

  it('puts the saved letter into the editor exactly as saved, line for line', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const page = await client.get(`/admin/campaigns/${slug}/letter`);
    const shown = /<textarea id="f-letter_body"[^>]*>([\s\S]*?)<\/textarea>/.exec(page.text)![1]!
      .replace(/&#x3D;/g, '=').replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    const { rows } = await ctx.db.query<{ letter_body: string }>('SELECT letter_body FROM campaigns WHERE slug = $1', [slug]);
    expect(shown).toBe(rows[0]!.letter_body);
    expect(page.text).toMatch(/<pre class="letter" data-preview="body">[^\n]*\n\nI write about/);
  });

  it('previews a CSV import row by row, refuses it while a row is wrong, then imports it', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const bad = 'name,title,email,salutation\nNew Judge,Judge,new@court.example,Your Honour\nNo Address,,,\nJudge One,Judge,judge@court.example,\n';
    const preview = await client.post(`/admin/campaigns/${slug}/targets/import`, { csv: bad, step: 'import' });
    expect(preview.status).toBe(400);
    expect(preview.text).toMatch(/<td>3<\/td><td>No Address<\/td>[\s\S]*?email is required|email must be a valid email address/);
    expect(preview.text).toContain('already a target: skipped');
    expect(preview.text).toContain('No Address'); // the input is kept
    const count = async () => (await ctx.db.query('SELECT t.id FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE c.slug = $1', [slug])).rows.length;
    expect(await count()).toBe(2);

    const good = bad.replace('No Address,,,\n', '');
    const ok = await client.post(`/admin/campaigns/${slug}/targets/import`, { csv: good, step: 'preview' });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('Import 1 target');
    expect(await count()).toBe(2);
    expect((await client.post(`/admin/campaigns/${slug}/targets/import`, { csv: good, step: 'import' })).status).toBe(303);
    expect(await count()).toBe(3);
    expect((await client.get(`/admin/campaigns/${slug}`)).text).toContain('1 target imported; 1 already on the list was skipped.');
  });

  it('answers a 5 MB CSV with 413 and imports nothing', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const row = 'Someone Example,Official,someone@gov.example,Dear Official\n';
    const huge = row.repeat(Math.ceil((5 * 1024 * 1024) / row.length));
    const res = await client.post(`/admin/campaigns/${slug}/targets/import`, { csv: huge, step: 'import' });
    expect(res.status).toBe(413);
    const { rows } = await ctx.db.query('SELECT t.id FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE c.slug = $1', [slug]);
    expect(rows).toHaveLength(2);
  });

  it('imports targets from a chosen file posted without JavaScript, and answers a 5 MB file with 413 and a field not in UTF-8 with 400', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    const count = async () => (await ctx.db.query('SELECT t.id FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE c.slug = $1', [slug])).rows.length;
    const csv = 'name,title,email,salutation\nFile Judge,Judge,file-judge@court.example,Your Honour\n';
    const preview = await client.postFiles(`/admin/campaigns/${slug}/targets/import`, { csv: '', step: 'preview' }, { csv_file: { name: 'targets.csv', content: csv } });
    expect(preview.status).toBe(200);
    expect(preview.text).toContain('File Judge');
    const ok = await client.postFiles(`/admin/campaigns/${slug}/targets/import`, { csv: '', step: 'import' }, { csv_file: { name: 'targets.csv', content: csv } });
    expect(ok.status).toBe(303);
    expect(await count()).toBe(3);

    const row = 'Someone Example,Official,someone@gov.example,Dear Official\n';
    const huge = row.repeat(Math.ceil((5 * 1024 * 1024) / row.length));
    const res = await client.postFiles(`/admin/campaigns/${slug}/targets/import`, { csv: '', step: 'import' }, { csv_file: { name: 'huge.csv', content: huge } });
    expect(res.status).toBe(413);
    expect(await count()).toBe(3);

    // A text field whose bytes are not UTF-8 (a script's, not a browser's) is refused, not stored garbled.
    const boundary = 'appeal-test-boundary';
    const part = (name: string, value: Buffer) => Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`), value, Buffer.from('\r\n')]);
    const newSlug = uniq('latin');
    const fields: Record<string, string> = { _csrf: client.csrf!, slug: newSlug, case_slug: caseSlug, letter_subject: 'Free her', letter_body: 'Dear {{target.name}}', delivery_mode: 'each', targets_csv: 'name,email\nJudge,judge@court.example' };
    const body = Buffer.concat([
      ...Object.entries(fields).map(([k, v]) => part(k, Buffer.from(v))),
      part('title', Buffer.concat([Buffer.from('Free Ay'), Buffer.from([0xff, 0xfe]), Buffer.from('gerim')])),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    const latin = await client.raw('/admin/campaigns/new', body, `multipart/form-data; boundary=${boundary}`);
    expect(latin.status).toBe(400);
    expect((await ctx.db.query('SELECT 1 FROM campaigns WHERE slug = $1', [newSlug])).rowCount).toBe(0);

    // Sent in chunks with no length, a form could pass its parts' limits many times over: a
    // browser always says the length, so one that does not is refused before it is read.
    const chunked = await client.raw(`/admin/campaigns/${slug}/targets/import`, body, `multipart/form-data; boundary=${boundary}`, true);
    expect(chunked.status).toBe(411);
    expect(chunked.text).toContain('must say its length');
  });

  it('keeps a CSV form whose chosen file is not UTF-8 as typed, saying so, and takes a U+FFFD a browser sent as text', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    // "Суд,Судья,sud@example.org" as Excel's "CSV" on Russian Windows saves it (Windows-1251).
    const cp1251 = new Uint8Array([0xd1, 0xf3, 0xe4, 0x2c, 0xd1, 0xf3, 0xe4, 0xfc, 0xff, ...Buffer.from(',sud@example.org\n')]);
    const typed = 'name,email\nTyped Judge,typed-judge@court.example';
    const preview = await client.postFiles(`/admin/campaigns/${slug}/targets/import`, { csv: typed, step: 'preview' }, { csv_file: { name: 'cp1251.csv', content: cp1251 } });
    expect(preview.status).toBe(400);
    expect(preview.text).toContain('not saved as UTF-8');
    expect(preview.text).toContain('typed-judge@court.example');
    expect(preview.text).not.toContain('\uFFFD\uFFFD');
    // The form as it came back, with a file saved right: read as the file says.
    const good = await client.postFiles(`/admin/campaigns/${slug}/targets/import`, { csv: typed, step: 'preview' }, { csv_file: { name: 'good.csv', content: 'name,email\nGood Judge,good-judge@court.example\n' } });
    expect(good.status).toBe(200);
    expect(good.text).toContain('good-judge@court.example');

    // A letter pasted from a garbled email holds U+FFFD: valid UTF-8, taken as the letter editor takes it.
    const newSlug = uniq('fffd');
    const fields = { slug: newSlug, title: 'Free Aigerim', case_slug: caseSlug, letter_subject: 'Free her', letter_body: 'Dear {{target.name}}, the caf\uFFFD owner saw her taken.', delivery_mode: 'each', targets_csv: '' };
    const refused = await client.postFiles('/admin/campaigns/new', fields, { targets_file: { name: 'cp1251.csv', content: cp1251 } });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('not saved as UTF-8');
    expect(refused.text).toContain('the caf\uFFFD owner saw her taken.');
    const created = await client.postFiles('/admin/campaigns/new', fields, { targets_file: { name: 'good.csv', content: 'name,email\nGood Judge,good-judge@court.example\n' } });
    expect(created.status).toBe(303);
    const { rows } = await ctx.db.query<{ letter_body: string }>('SELECT letter_body FROM campaigns WHERE slug = $1', [newSlug]);
    expect(rows[0]?.letter_body).toContain('caf\uFFFD owner');

    // A script may label a part's charset (curl's `;type=text/plain; charset=utf-8`): its text is read as that.
    const boundary = 'appeal-labelled';
    const labelled = uniq('labelled');
    const part = (name: string, value: string, type = '') => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n${type}\r\n${value}\r\n`;
    const body = Buffer.from(
      Object.entries({ ...fields, _csrf: client.csrf!, slug: labelled, targets_csv: 'name,email\nJudge,judge@court.example' }).filter(([k]) => k !== 'title').map(([k, v]) => part(k, v)).join('') +
        part('title', 'Свобода Айгерим é', 'Content-Type: text/plain; charset=utf-8\r\n') + `--${boundary}--\r\n`,
    );
    expect((await client.raw('/admin/campaigns/new', body, `multipart/form-data; boundary=${boundary}`)).status).toBe(303);
    expect((await ctx.db.query('SELECT title FROM campaigns WHERE slug = $1', [labelled])).rows).toEqual([{ title: 'Свобода Айгерим é' }]);
  });

  it('reads a UTF-16 file (Excel\'s "Unicode Text") as a browser does, and says at the preview when a file would pass 500 targets', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const text = '\uFEFFФамилия\tИмя\tEmail\nИванова\tАйгуль\taigul-utf16@gov.example\n';
    const utf16 = new Uint8Array(Buffer.from(text, 'utf16le'));
    const preview = await client.postFiles(`/admin/campaigns/${slug}/targets/import`, { csv: '', step: 'preview' }, { csv_file: { name: 'unicode.txt', content: utf16 } });
    expect(preview.status).toBe(200);
    expect(preview.text).toContain('Иванова Айгуль');
    expect(preview.text).not.toContain('\u0000');

    // 2 targets now: 499 more would pass 500. The preview says how many fit and offers no import; an import is refused, the CSV kept.
    const many = Array.from({ length: 499 }, (_, i) => `Member ${i},MP,mp${i}-${slug}@parliament.example`).join('\n');
    const tooMany = await client.post(`/admin/campaigns/${slug}/targets/import`, { csv: `name,title,email\n${many}`, step: 'preview' });
    expect(tooMany.status).toBe(409);
    expect(tooMany.text).toContain('this one has 2, so at most 498 more fit, and this CSV adds 499');
    expect(tooMany.text).not.toContain('value="import"');
    const refused = await client.post(`/admin/campaigns/${slug}/targets/import`, { csv: `name,title,email\n${many}`, step: 'import' });
    expect(refused.status).toBe(409);
    expect(refused.text).toContain('Member 498,MP');
    const { rows } = await ctx.db.query('SELECT t.id FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE c.slug = $1', [slug]);
    expect(rows).toHaveLength(2);
  });

  it('after a relay outage, retries every failed delivery at once from the failed list, which names their campaigns', async () => {
    const tag = uniq('outage');
    ctx.sink!.behavior.onRcptTo = (address) => (address.address.includes(tag) ? { code: 554, message: '5.7.1 Relay access denied' } : undefined);
    const { slug } = await createLiveCampaign(ctx.db, {
      requireConfirmation: false,
      title: `Outage ${tag}`,
      targets: [{ name: 'Court', email: `court-${tag}@gov.example` }, { name: 'Ministry', email: `ministry-${tag}@gov.example` }],
    });
    await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: new URLSearchParams({ full_name: 'Ola Outage', email: `${uniq('ola')}@supporter.example` }), redirect: 'manual' });
    const statuses = async () => (await ctx.db.query<{ status: string }>(`SELECT d.status FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id WHERE c.slug = $1 AND d.kind = 'letter'`, [slug])).rows.map((r) => r.status);
    await until(statuses, (s) => s.length === 2 && s.every((x) => x === 'failed'));
    // BullMQ moves a job to failed a moment after its row says so; a job still active keeps its id.
    const { rows: failedIds } = await ctx.db.query<{ id: number }>(`SELECT d.id FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id WHERE c.slug = $1 AND d.kind = 'letter'`, [slug]);
    for (const { id } of failedIds) {
      await vi.waitFor(async () => expect(await ctx.queues.send.getJobState(deliveryJobId(id))).toBe('failed'), { timeout: 10_000, interval: 50 });
    }
    const page = await client.open('/admin/deliveries/failed');
    expect(page.text).toContain(`Outage ${tag}`);
    expect(page.text).toMatch(/Retry all \d+/);

    delete ctx.sink!.behavior.onRcptTo;
    const retried = await client.post('/admin/deliveries/failed/retry-all', {});
    expect(retried.status).toBe(303);
    expect((await client.open(retried.location!)).text).toMatch(/\d+ failed deliver(y is|ies are) queued again/);
    await until(statuses, (s) => s.every((x) => x === 'sent'));
    expect((await actions(ctx, organizerId)).map((a) => a.action)).toContain('delivery.retry_all');
  });

  it('answers a malformed page cursor or a broken upload with 400, not 500', async () => {
    for (const offset of ['+99', '+14:99']) {
      const page = await client.get(`/admin/deliveries/failed?before=${encodeURIComponent(`2026-01-01 00:00:00${offset}`)}~1`);
      expect(page.status).toBeLessThan(500);
    }
    const { slug } = await createLiveCampaign(ctx.db, {}, 'draft');
    await client.open(`/admin/campaigns/${slug}/targets/import`);
    for (const type of ['multipart/form-data', 'multipart/form-data; boundary=b']) {
      const res = await client.post(`/admin/campaigns/${slug}/targets/import`, { step: 'preview' }, { headers: { 'content-type': type } });
      expect(res.status).toBe(400);
      expect(res.text).toContain('The form could not be read');
    }
  });

  it('pages through failed deliveries past the first hundred, also when many failed within one millisecond', async () => {
    const tag = uniq('many');
    await ctx.db.query(
      `INSERT INTO deliveries (kind, source_id, recipient, status, attempts, last_error, updated_at)
       SELECT 'confirm', 900000 + i, 'x' || i || '-${tag}@supporter.example', 'failed', 1, 'test', now() - make_interval(secs => i % 3 * 0.0000017)
         FROM generate_series(1, 130) AS i`,
    );
    const first = await client.get('/admin/deliveries/failed');
    const older = /href="\/admin\/deliveries\/failed\?before=([^"]+)"/.exec(first.text)?.[1];
    expect(older).toBeDefined();
    const second = await client.get(`/admin/deliveries/failed?before=${older}`);
    const shown = (html: string) => new Set([...html.matchAll(new RegExp(`x(\\d+)-${tag}`, 'g'))].map((m) => m[1]));
    const a = shown(first.text);
    const b = shown(second.text);
    expect([...a].filter((x) => b.has(x))).toEqual([]);
    expect(a.size + b.size).toBe(130);
    await ctx.db.query(`DELETE FROM deliveries WHERE recipient LIKE $1`, [`%-${tag}@supporter.example`]);

    // A subscriber's address is for admins, as the subscriber list is.
    const reader = `reader-${tag}@reader.example`;
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, recipient, status, attempts, last_error) VALUES ('alert', 1, $1, 'failed', 1, 'test')`, [reader]);
    expect((await client.get('/admin/deliveries/failed')).text).toContain(reader);
    const { client: organizer } = await signedIn(base, ctx.db, 'organizer');
    const seen = await organizer.get('/admin/deliveries/failed');
    expect(seen.status).toBe(200);
    expect(seen.text).not.toContain(reader);
    expect(seen.text).toContain('a subscriber (admins see the address)');
    await ctx.db.query('DELETE FROM deliveries WHERE recipient = $1', [reader]);

    // A signer's suppressed address is marked so, and links to the suppression list only for
    // whom that list shows it (admins): an organizer's search there would answer "no match".
    // An organizer sees a signer's address on the signature list, which records each view, not
    // here or on the campaign page, which would be a way round that.
    const signer = `bounced-${tag}@supporter.example`;
    const { slug } = await createLiveCampaign(ctx.db);
    await ctx.db.query(
      `INSERT INTO deliveries (kind, source_id, campaign_id, recipient, status, attempts, last_error)
       SELECT 'confirm', 1, id, $2, 'failed', 1, '550 5.1.1' FROM campaigns WHERE slug = $1`,
      [slug, signer],
    );
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES ($1, 'bounce: 550 5.1.1', 'confirm')`, [signer]);
    // The link names the delivery, not the address, which a proxy would log with the URL.
    const { rows: [failed] } = await ctx.db.query<{ id: number }>('SELECT id FROM deliveries WHERE recipient = $1', [signer]);
    const link = `<a class="badge bad" href="/admin/suppressions?delivery=${failed!.id}">suppressed</a>`;
    expect((await client.get('/admin/deliveries/failed')).text).toContain(link);
    expect((await client.get(`/admin/campaigns/${slug}`)).text).toContain(link);
    const found = (await client.get(`/admin/suppressions?delivery=${failed!.id}`)).text;
    expect(found).toContain(`value="${signer}"`);
    expect(found).toContain('bounce: 550 5.1.1');
    // An organizer who asks for it by the delivery's id learns no signer's address.
    expect((await organizer.get(`/admin/suppressions?delivery=${failed!.id}`)).text).not.toContain(signer);
    for (const page of ['/admin/deliveries/failed', `/admin/campaigns/${slug}`]) {
      const plain = (await organizer.get(page)).text;
      expect(plain).not.toContain(signer);
      expect(plain).toContain('a signer (the signature list shows the address)</span> <span class="badge bad">suppressed</span>');
    }
    await ctx.db.query('DELETE FROM deliveries WHERE recipient = $1', [signer]);
    await ctx.db.query('DELETE FROM suppressions WHERE email = $1', [signer]);
  });

  it('finds an address by its domain as it was written, and shows it so beside the form it is sent to', async () => {
    const tag = uniq('idn');
    const official = `kense-${tag}@сот.қаз`;
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false, targets: [{ name: 'Сот', email: official }] });
    const stored = (await ctx.db.query<{ email: string }>('SELECT t.email FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE c.slug = $1', [slug])).rows[0]!.email;
    expect(stored).toBe(`kense-${tag}@xn--n1afe.xn--80ao21a`);
    const signer = `${tag}@почта.қаз`;
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Айгүл Сәрсен', email: signer })).status).toBe(202);
    const shown = `${signer} <span class="muted small">(${tag}@xn--80a1acny.xn--80ao21a)</span>`;
    for (const q of [signer, 'почта.қаз', 'xn--80a1acny']) {
      expect((await client.get(`/admin/campaigns/${slug}/signatures?q=${encodeURIComponent(q)}`)).text, q).toContain(shown);
    }
    expect((await client.get(`/admin/campaigns/${slug}/signatures?q=${encodeURIComponent('сот.қаз')}`)).text).not.toContain(shown);
    // A name sent with its marks apart (й as и and a breve) is kept composed: a search typed either
    // way finds it.
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'А\u0438\u0306гу\u0308ль Decomposed', email: `nfd-${signer}` })).status).toBe(202);
    for (const q of ['Айгӱль', 'А\u0438\u0306гу\u0308ль']) {
      expect((await client.get(`/admin/campaigns/${slug}/signatures?q=${encodeURIComponent(q)}`)).text, q).toContain('Айгӱль Decomposed');
    }
    expect((await client.get(`/admin/campaigns/${slug}/targets`)).text).toContain(`${official} <span class="muted small">(${stored})</span>`);
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES ($1, 'bounce: 550', 'letter')`, [stored]);
    for (const q of [official, 'сот.қаз']) {
      expect((await client.get(`/admin/suppressions?q=${encodeURIComponent(q)}`)).text, q).toContain(`${official} <span class="muted small">(${stored})</span>`);
    }
    await ctx.db.query('DELETE FROM suppressions WHERE email = $1', [stored]);
  });

  it('shows an organizer who is not an admin the officials on the suppression list, and no supporter or subscriber, in the list, its search or its removal', async () => {
    const tag = uniq('supp');
    const official = `judge-${tag}@court.example`;
    const reader = `reader-${tag}@reader.example`;
    // The reader is also added as a target somewhere: what makes an address an official's is the
    // letter refused, not a target any organizer can add.
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Judge', email: official }, { name: 'Not an official', email: reader }] });
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES ($1, 'bounce: 550', 'letter'), ($2, 'bounce: 550', 'alert')`, [official, reader]);
    const { client: organizer } = await signedIn(base, ctx.db, 'organizer');
    // Nor on the targets page, where any organizer could add any address to ask about it: the
    // subscriber's bounce holds no letter, so the page has nothing to say of it.
    const rows = (await organizer.get(`/admin/campaigns/${slug}/targets`)).text.split('<tr');
    expect(rows.find((r) => r.includes(official))).toContain('>bounced</a>');
    // Its badge links by the target, not by the address, and finds it on the list.
    const badge = /href="(\/admin\/suppressions\?[^"]+)"[^>]*>bounced</.exec(rows.find((r) => r.includes(official))!)![1]!.replace(/&amp;/g, '&');
    expect(badge).toMatch(/^\/admin\/suppressions\?campaign=[\w-]+&target=\d+$/);
    expect((await organizer.get(badge)).text).toContain(`${official}</td>`);
    expect(rows.find((r) => r.includes(reader))).not.toContain('bounced');
    for (const path of ['/admin/suppressions', `/admin/suppressions?q=${tag}`, `/admin/suppressions?q=reader-${tag}`]) {
      const page = await organizer.get(path);
      expect(page.text).not.toContain(reader);
      if (!path.includes('reader-')) expect(page.text).toContain(official);
    }
    // Kept before kinds were recorded (kind NULL): a supporter's, counted with them.
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES ($1, 'legacy', NULL)`, [`legacy-${tag}@reader.example`]);
    const others = (await ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM suppressions WHERE kind IS NULL OR kind NOT IN ('letter', 'digest')`)).rows[0]!.n;
    expect((await organizer.get('/admin/suppressions')).text).toContain(`${others} more (supporters', subscribers') are shown to admins only`);
    expect((await organizer.post('/admin/suppressions/remove', { email: reader, reason: 'asked by phone' })).status).toBe(400);
    expect((await ctx.db.query('SELECT 1 FROM suppressions WHERE email = $1', [reader])).rows).toHaveLength(1);
    expect((await client.get(`/admin/suppressions?q=${tag}`)).text).toContain(reader);
    // Its pages are numbered, not marked by the address they end on, which the link would carry.
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) SELECT 'page-' || lpad(n::text, 3, '0') || '-' || $1 || '@court.example', 'bounce', 'letter' FROM generate_series(1, 105) n`, [tag]);
    const first = (await client.get(`/admin/suppressions?q=page-`)).text;
    expect(first).toContain(`page-100-${tag}@court.example`);
    expect(first).not.toContain(`page-101-${tag}@court.example`);
    const next = /<a href="([^"]+)">Next page<\/a>/.exec(first)![1]!.replace(/&amp;/g, '&');
    expect(next).toBe('/admin/suppressions?page=2&q=page-');
    const second = (await client.get(next)).text;
    expect(second).toContain(`page-101-${tag}@court.example`);
    expect(second).toContain(`page-105-${tag}@court.example`);
    expect(second).not.toContain(`page-100-${tag}@court.example`);
    expect([...`${first}${second}`.matchAll(/href="([^"]*)"/g)].filter((m) => m[1]!.includes('@') || m[1]!.includes('%40'))).toEqual([]);
    await ctx.db.query(`DELETE FROM suppressions WHERE email LIKE 'page-%'`);
    // A reason the audit log cannot keep (a NUL) is refused, and the suppression stays with no entry missing.
    expect((await organizer.post('/admin/suppressions/remove', { email: official, reason: 'quietly\u0000' })).status).toBe(400);
    expect((await ctx.db.query('SELECT 1 FROM suppressions WHERE email = $1', [official])).rows).toHaveLength(1);
    expect((await organizer.post('/admin/suppressions/remove', { email: official, reason: 'mailbox restored' })).status).toBe(303);
    const lifted = await client.post('/admin/suppressions/remove', { email: reader, reason: 'asked by phone' });
    expect(lifted.status).toBe(303);
    // Its flash rides in a cookie, with no address in it.
    expect(decodeURIComponent(client.lastSetCookies.join('\n'))).not.toContain(reader);
    expect((await ctx.db.query('SELECT 1 FROM suppressions WHERE email IN ($1, $2)', [official, reader])).rows).toHaveLength(0);
    // Nor in the audit log of those removals: the official's is there for everyone, the reader's for admins.
    const log = (await organizer.get('/admin/audit?action=suppression')).text;
    expect(log).toContain(`suppression:${official}`);
    expect(log).not.toContain(reader);
    expect(log).not.toContain('asked by phone');
    expect(log).toContain('suppression: an address only admins see');
    expect((await client.get('/admin/audit?action=suppression')).text).toContain(`suppression:${reader}`);
  });

  it('shows a refused letter with its error, takes the address off the suppression list with a reason, and retries it to sent', async () => {
    const refused = `${uniq('gone')}@gov.example`;
    ctx.sink!.behavior.onRcptTo = (address) => (address.address === refused ? { code: 550, message: 'no such mailbox' } : undefined);
    const { slug } = await createLiveCampaign(ctx.db, {
      requireConfirmation: false,
      targets: [{ name: 'Gone Official', email: refused, salutation: 'Dear Official' }],
    });
    await fetch(`${base}/c/${slug}/sign`, { method: 'POST', body: new URLSearchParams({ full_name: 'Aru Signer', email: `${uniq('aru')}@supporter.example` }), redirect: 'manual' });
    const failed = (await until(
      async () => (await ctx.db.query<{ id: number; status: string }>(`SELECT id, status FROM deliveries WHERE recipient = $1`, [refused])).rows[0],
      (d) => d?.status === 'failed',
    ))!;
    const page = await client.open(`/admin/campaigns/${slug}`);
    expect(page.text).toContain('no such mailbox');
    expect((await client.get('/admin/suppressions')).text).toContain(refused);
    expect((await client.get(`/admin/campaigns/${slug}/targets`)).text).toMatch(/bounced<\/a>/);

    // A letter the relay turned away for now shows why, and when it goes again.
    const { rows: [later] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient, status, attempts, last_error, next_attempt_at)
       SELECT 'letter', d.source_id + 1000000, d.target_id, d.campaign_id, d.recipient, 'retry', 2, '451 4.7.1 try again later', now() + interval '4 minutes'
         FROM deliveries d WHERE d.id = $1 RETURNING id`,
      [failed.id],
    );
    const retryingPage = (await client.get(`/admin/campaigns/${slug}`)).text;
    expect(retryingPage).toContain('<h3>Retrying</h3>');
    expect(retryingPage).toContain('451 4.7.1 try again later');
    await ctx.db.query('DELETE FROM deliveries WHERE id = $1', [later!.id]);
    // The campaign's letters, all of them or by status: which official, what happened, no signer.
    const letters = (await client.get(`/admin/campaigns/${slug}/letters`)).text;
    expect(letters).toContain('Gone Official');
    expect(letters).toContain('no such mailbox');
    expect(letters).not.toContain('Aru Signer');
    const failedOnes = (await client.get(`/admin/campaigns/${slug}/letters?status=failed`)).text;
    expect(failedOnes).toContain('Gone Official');
    // An official's bounced address: corrected, not taken off the list, is the likelier way out.
    expect((await client.get('/admin/deliveries/failed')).text).toContain(`An address that is wrong is corrected on the campaign’s <a href="/admin/campaigns/${slug}/targets">Targets</a> page`);
    // By the id the log names it by (deliveryId), here and on the failed deliveries page.
    expect(failedOnes).toContain(`>id ${failed.id}</span>`);
    expect((await client.get('/admin/deliveries/failed')).text).toContain(`>id ${failed.id}</span>`);
    // Each filter's page has a title of its own, as a screen reader hears first.
    expect(failedOnes).toMatch(/<title>Letters of “[^”]+”: failed · /);
    expect((await client.get('/admin/campaigns?status=live')).text).toMatch(/<title>Campaigns: live · /);
    expect((await client.get(`/admin/campaigns/${slug}/letters?status=sent`)).text).toContain('No letter with this status yet.');

    const stillSuppressed = await client.post(`/admin/deliveries/${failed.id}/retry`, { back: `/admin/campaigns/${slug}` });
    expect(stillSuppressed.status).toBe(303);
    expect((await client.open(stillSuppressed.location!)).text).toContain('Not retried: its address is on the suppression list');
    expect((await ctx.db.query<{ status: string }>('SELECT status FROM deliveries WHERE id = $1', [failed.id])).rows[0]!.status).toBe('failed');

    const noReason = await client.post('/admin/suppressions/remove', { email: refused, reason: '' });
    expect(noReason.status).toBe(400);
    expect((await ctx.db.query('SELECT 1 FROM suppressions WHERE email = $1', [refused])).rows).toHaveLength(1);
    expect((await client.post('/admin/suppressions/remove', { email: refused, reason: 'mailbox restored, checked by phone' })).status).toBe(303);
    expect((await ctx.db.query('SELECT 1 FROM suppressions WHERE email = $1', [refused])).rows).toHaveLength(0);

    ctx.sink!.behavior.onRcptTo = undefined;
    const retry = await client.post(`/admin/deliveries/${failed.id}/retry`, { back: `/admin/campaigns/${slug}` });
    expect(retry.status).toBe(303);
    expect(retry.location).toBe(`/admin/campaigns/${slug}`);
    await until(async () => (await ctx.db.query<{ status: string }>('SELECT status FROM deliveries WHERE id = $1', [failed.id])).rows[0]!.status, (s) => s === 'sent');
    const log = (await actions(ctx, organizerId)).map((a) => a.action);
    expect(log).toContain('suppression.remove');
    expect(log).toContain('delivery.retry');
  });

  it('answers a body it cannot read with 415 and a method a console address does not take with 405 and Allow', async () => {
    await client.open('/admin/cases');
    // Not "this form has expired": the CSRF token may be right, the body is what was not read.
    for (const type of ['text/plain', 'application/json']) {
      const res = await client.post('/admin/cases', { slug: uniq('case'), person_name: 'X' }, { headers: { 'content-type': type } });
      expect(res.status, type).toBe(415);
      expect(res.text).toContain('application/x-www-form-urlencoded');
    }
    const cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    for (const [method, path, allow] of [['PUT', '/admin/cases', 'GET, HEAD, POST, OPTIONS'], ['DELETE', '/admin/tokens', 'GET, HEAD, POST, OPTIONS'], ['POST', '/admin/audit', 'GET, HEAD, OPTIONS']] as const) {
      const res = await fetch(base + path, { method, headers: { cookie, 'x-csrf-token': client.csrf! }, redirect: 'manual' });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
    }
    // Without the page's token it is refused before anything else, as a forged form is.
    expect((await fetch(`${base}/admin/cases`, { method: 'PUT', headers: { cookie }, redirect: 'manual' })).status).toBe(403);
  });

  it('creates an API token shown once, shows its last use, and revokes it', async () => {
    await client.open('/admin/tokens');
    // A form sent back for a mistake keeps whom the token was to act as: sent again, it is theirs.
    const other = await createOrganizer(ctx.db);
    const unlabelled = await client.post('/admin/tokens', { label: '', organizer: other.email });
    expect(unlabelled.status).toBe(400);
    expect(unlabelled.text).toContain(`<option value="${other.email}" selected>`);
    const created = await client.post('/admin/tokens', { label: 'nightly export' });
    const token = /value="(apl_[^"]+)"/.exec(created.text)![1]!;
    expect((await client.get('/admin/tokens')).text).not.toContain(token);
    const api = await fetch(`${base}/api/v1/campaigns/nope/stats`, { headers: { authorization: `Bearer ${token}` } });
    expect(api.status).toBe(404);
    const listed = await client.open('/admin/tokens');
    const id = (await ctx.db.query<{ id: number }>(`SELECT id FROM api_tokens WHERE label = 'nightly export'`)).rows[0]!.id;
    // Listed by the number its creation and its use are logged by.
    expect(listed.text).toMatch(new RegExp(`<span class="muted">#${id}</span> nightly export</td><td class="break">[^<]+</td><td class="break"><span class="muted">—</span></td><td class="nowrap">[^<]+</td><td class="nowrap">\\d{4}-`));
    const { rows: [made] } = await ctx.db.query<{ detail: object }>(`SELECT detail FROM audit_log WHERE action = 'token.create' AND detail ->> 'label' = 'nightly export'`);
    expect(made!.detail).toEqual({ token: Number(id), label: 'nightly export' });
    expect((await client.post(`/admin/tokens/${id}/revoke`, { confirmed: '1' })).status).toBe(303);
    expect((await fetch(`${base}/api/v1/campaigns/nope/stats`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    // Again: a no-op; a token that never was: not found, not "revoked already".
    expect((await client.post(`/admin/tokens/${id}/revoke`, { confirmed: '1' })).status).toBe(303);
    expect((await client.post('/admin/tokens/99999999/revoke', { confirmed: '1' })).status).toBe(404);
    // The console's JSON answers its errors in JSON too.
    const stats = await client.get('/admin/campaigns/nope/stats.json');
    expect(stats.status).toBe(404);
    expect(JSON.parse(stats.text)).toMatchObject({ error: { code: 'not_found' } });
    // A label past 100 characters is refused with the form, not cut short without a word.
    const long = await client.post('/admin/tokens', { label: 'x'.repeat(101) });
    expect(long.status).toBe(400);
    expect(long.text).toContain('at most 100 characters');
    // As every one-line field: no control characters, no line breaks.
    for (const label of ['a\x01\x1b[31mb', 'export\r\nBcc: x@y.example']) {
      const bad = await client.post('/admin/tokens', { label });
      expect(bad.status).toBe(400);
      expect(bad.text).toContain('must be one line of text');
    }
    expect((await ctx.db.query(`SELECT 1 FROM api_tokens WHERE label ~ '[[:cntrl:]]'`)).rowCount).toBe(0);
    expect((await actions(ctx, organizerId)).map((a) => a.action)).toEqual(expect.arrayContaining(['token.create', 'token.revoke']));
  });

  it('adds an organizer with a password shown once, who can sign in and must choose their own first', async () => {
    await client.open('/admin/organizers');
    const email = `${uniq('new')}@appeal.test`;
    const res = await client.post('/admin/organizers', { email, name: 'New Person', role: 'organizer' });
    expect(res.status).toBe(200);
    const password = /value="([^"]+)" aria-label="Generated password"/.exec(res.text)![1]!;
    const fresh = new ConsoleClient(base);
    expect((await fresh.login(email, password)).status).toBe(303);
    // The password was shown to the admin: every page leads to choosing their own first, and then
    // on to the page that was opened.
    expect((await fresh.get('/admin')).location).toBe('/admin/password');
    expect((await fresh.get('/admin/campaigns?status=live')).location).toBe('/admin/password?next=%2Fadmin%2Fcampaigns%3Fstatus%3Dlive');
    const page = await fresh.open('/admin/password?next=%2Fadmin%2Fcampaigns%3Fstatus%3Dlive');
    expect(page.text).toContain('Your password was made for you');
    const chosen = 'correct horse battery staple 42';
    const refused = await fresh.post('/admin/password', { current_password: password, new_password: 'short', confirm_password: 'short', next: '/admin/campaigns?status=live' });
    expect(refused.status).toBe(400);
    const changed = await fresh.post('/admin/password', { current_password: password, new_password: chosen, confirm_password: chosen, next: /name="next" value="([^"]*)"/.exec(refused.text)![1]!.replace(/&#x3D;/g, '=') });
    expect(changed.status).toBe(303);
    expect(changed.location).toBe('/admin/campaigns?status=live');
    expect((await fresh.open('/admin')).status).toBe(200);
    expect((await fresh.get('/admin/organizers')).status).toBe(403);
    // The outbox shows every email's links and recipients: admins only, as the subscriber list.
    expect((await fresh.get('/admin/outbox')).status).toBe(403);
    expect((await fresh.get('/admin/outbox/any.eml')).status).toBe(403);
  });

  it('shows a new organizer\'s password or a new token once however often its form is sent, and gives an organizer a new password', async () => {
    const keyOf = (html: string) => /name="request_key" value="([^"]+)"/.exec(html)![1]!;
    const page = await client.open('/admin/organizers');
    const csrf = client.csrf!;
    const email = `${uniq('twice')}@appeal.test`;
    const form = { email, name: 'Twice Sent', role: 'organizer', request_key: keyOf(page.text) };
    // A double click: the same form twice at once; and a reload of its answer after.
    const [a, b] = await Promise.all([client.post('/admin/organizers', form, { csrf }), client.post('/admin/organizers', form, { csrf })]);
    const reload = await client.post('/admin/organizers', form, { csrf });
    const answers = [a, b, reload];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    const shown = answers.map((r) => /value="([^"]+)" aria-label="Generated password"/.exec(r.text)?.[1]).filter(Boolean);
    expect(shown).toHaveLength(1);
    expect(answers.filter((r) => r.text.includes('This form was sent more than once, and added')).length).toBe(2);
    expect((await ctx.db.query('SELECT 1 FROM organizers WHERE email = $1', [email])).rowCount).toBe(1);
    // Someone else's form for that address (another key) is told the address is taken.
    const other = await client.post('/admin/organizers', { ...form, request_key: keyOf((await client.open('/admin/organizers')).text) });
    expect(other.status).toBe(409);
    expect(other.text).toContain('exists already');

    // The same key with another address (a browser restoring the form's fields) adds that one.
    const restoredForm = { ...form, email: `${uniq('restored')}@appeal.test` };
    const restored = await client.post('/admin/organizers', restoredForm, { csrf });
    expect(restored.status).toBe(200);
    expect(restored.text).toMatch(/aria-label="Generated password"/);
    // And that form sent twice is one form too.
    const restoredAgain = await client.post('/admin/organizers', restoredForm, { csrf });
    expect(restoredAgain.status).toBe(200);
    expect(restoredAgain.text).toContain('This form was sent more than once, and added');

    // A password not copied: a new one, shown once; the first stops working. Sent twice (a reload
    // of its answer, a double click), it resets once: the password shown first stays the one that works.
    const { rows: [added] } = await ctx.db.query<{ id: number }>('SELECT id FROM organizers WHERE email = $1', [email]);
    const listKey = keyOf((await client.open('/admin/organizers')).text);
    const resets = await Promise.all([0, 1].map(() => client.post(`/admin/organizers/${added!.id}/password`, { confirmed: '1', request_key: listKey }, { csrf: client.csrf! })));
    const resetAgain = await client.post(`/admin/organizers/${added!.id}/password`, { confirmed: '1', request_key: listKey });
    const newer = [...resets, resetAgain].find((r) => r.text.includes('aria-label="Generated password"'))!;
    expect([...resets, resetAgain].filter((r) => r.text.includes('This form was sent more than once, and gave')).length).toBe(2);
    expect(newer.status).toBe(200);
    expect(newer.text).toContain('new password; the old one no longer works');
    const password = /value="([^"]+)" aria-label="Generated password"/.exec(newer.text)![1]!;
    expect((await new ConsoleClient(base).login(email, shown[0]!)).status).not.toBe(303);
    const fresh = new ConsoleClient(base);
    expect((await fresh.login(email, password)).status).toBe(303);
    expect((await fresh.get('/admin')).location).toBe('/admin/password');
    expect((await actions(ctx, organizerId)).filter((x) => x.action === 'organizer.password_reset')).toHaveLength(1);
    // A later reset from a list shown since works; the older answer reloaded after it does nothing.
    const laterKey = keyOf((await client.open('/admin/organizers')).text);
    const later = await client.post(`/admin/organizers/${added!.id}/password`, { confirmed: '1', request_key: laterKey });
    const latest = /value="([^"]+)" aria-label="Generated password"/.exec(later.text)![1]!;
    expect((await client.post(`/admin/organizers/${added!.id}/password`, { confirmed: '1', request_key: listKey })).text).toContain('This form was sent more than once, and gave');
    expect((await new ConsoleClient(base).login(email, latest)).status).toBe(303);
    // Its answer's address opened again (history, a Cancel leading back to it): the list.
    expect((await client.get(`/admin/organizers/${added!.id}/password`)).location).toBe('/admin/organizers');
    // Without its confirmation (no script ran), it asks first.
    expect((await client.post(`/admin/organizers/${added!.id}/password`, {})).text).toContain('Are you sure?');

    const tokens = await client.open('/admin/tokens');
    const tokenForm = { label: `twice ${uniq('t')}`, request_key: keyOf(tokens.text) };
    const sent = await Promise.all([0, 1, 2].map(() => client.post('/admin/tokens', tokenForm, { csrf: client.csrf! })));
    expect(sent.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(sent.filter((r) => /value="apl_/.test(r.text))).toHaveLength(1);
    expect(sent.filter((r) => r.text.includes('This form was sent more than once, and created the token')).length).toBe(2);
    expect((await ctx.db.query('SELECT 1 FROM api_tokens WHERE label = $1', [tokenForm.label])).rowCount).toBe(1);
    // Its key with another label (a browser restoring the form's fields) makes that token.
    const relabelled = await client.post('/admin/tokens', { ...tokenForm, label: `${tokenForm.label} 2` });
    expect(relabelled.text).toMatch(/value="apl_/);
    expect((await client.post('/admin/tokens', { ...tokenForm, label: `${tokenForm.label} 2` })).text).toContain('This form was sent more than once, and created the token');
    expect((await ctx.db.query('SELECT 1 FROM api_tokens WHERE label = $1', [`${tokenForm.label} 2`])).rowCount).toBe(1);
  });

  it('exports subscribers with the cases they follow, neutralising formula cells, and records the export', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const kase = await getCase(ctx.db, caseSlug);
    const address = `=cmd-${uniq('sub')}@supporter.example`;
    await subscribeConfirmedSigner(ctx.db, address, kase.id, 'sign form');
    // Someone else types the same address into another case's form: no consent until confirmed.
    const other = await getCase(ctx.db, (await createLiveCampaign(ctx.db)).caseSlug);
    const subscriber = await upsertSubscriber(ctx.db, address);
    await insertPendingSubscription(ctx.db, subscriber.id, other.id, 'case page', 'Keep me updated');
    // A subscriber who never confirmed: exported without the address nobody has shown is theirs.
    const pending = await upsertSubscriber(ctx.db, `${uniq('pendingsub')}@supporter.example`);
    const res = await client.get('/admin/subscribers.csv');
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(pending.email);
    const lines = res.text.split('\r\n');
    expect(lines[0]).toBe('email,status,follows,consent_at,consent_source,created_at,confirmed_at,unsubscribed_at,awaiting_confirmation');
    const line = lines.find((l) => l.includes(address))!;
    expect(line.startsWith(`'=cmd-`)).toBe(true);
    expect(line).toContain(`,active,${caseSlug},`);
    expect(line.endsWith(`,${other.slug}`)).toBe(true);
    expect((await actions(ctx, organizerId)).map((a) => a.action)).toContain('subscribers.export');
    expect((await client.get('/admin/subscribers')).text).toContain('active');
  });

  it("gives out no supporter list to another site's page: it asks first, and records nothing", async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const recorded = async () => (await ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log WHERE action IN ('signatures.view', 'signatures.export', 'subscribers.export')`)).rows[0]!.n;
    for (const path of [`/admin/campaigns/${slug}/signatures`, `/admin/campaigns/${slug}/signatures.csv`, '/admin/subscribers.csv']) {
      const before = await recorded();
      // `none`: a link in a mail or chat app, a stranger's link redirecting here, or a bookmark.
      for (const site of ['cross-site', 'same-site', 'none']) {
        const refused = await client.get(path, { headers: { 'sec-fetch-site': site, 'sec-fetch-mode': 'navigate' } });
        expect(refused.status, `${path} ${site}`).toBe(403);
        expect(refused.res.headers.get('content-disposition')).toBeNull();
        expect(refused.text).toContain(`<a class="button" href="${path}">Open it</a>`);
      }
      expect(await recorded()).toBe(before);
      // Asked from a console page, or by a client that says nothing of where it was asked.
      for (const headers of [{ 'sec-fetch-site': 'same-origin' }, {}] as Record<string, string>[]) expect((await client.get(path, { headers })).status, `${path} ${JSON.stringify(headers)}`).toBe(200);
      expect(await recorded()).toBe(before + 2);
    }
  });

  it("leads sign-in, from another site's link naming a supporter list, to the page it is asked from, not to the list", async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const organizer = await createOrganizer(ctx.db);
    const landings: Record<string, string> = {
      [`/admin/campaigns/${slug}/signatures.csv`]: `/admin/campaigns/${slug}`,
      [`/admin/Campaigns/${slug}/SIGNATURES/?q=a`]: `/admin/campaigns/${slug}`,
      '/admin/./subscribers.csv': '/admin/subscribers',
      '/admin/outbox/x.eml': '/admin/outbox',
      [`/admin/campaigns/${slug}/letters?status=failed`]: `/admin/campaigns/${slug}/letters?status=failed`,
    };
    for (const [next, landing] of Object.entries(landings)) {
      const browser = new ConsoleClient(base);
      await browser.open(`/admin/login?next=${encodeURIComponent(next)}`);
      const signedInNow = await browser.post('/admin/login', { email: organizer.email, password: PASSWORD, next }, { headers: { 'sec-fetch-site': 'same-origin' } });
      expect([signedInNow.status, signedInNow.location], next).toEqual([303, landing]);
    }
  });

  it('names kinds of email in words on the dashboard and the failed list, and a resumed campaign is resumed, not launched', async () => {
    const source = 900_000_000 + Math.floor(Math.random() * 1e6);
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, recipient, status, attempts, last_error) VALUES ('optin', $1, 'gone@example.net', 'failed', 1, '550 no such user')`, [source]);
    try {
      expect((await client.get('/admin')).text).toMatch(/\d+ failed subscription confirmation emails?/);
      expect((await client.get('/admin/deliveries/failed')).text).toContain('<td>subscription confirmation<br>');
    } finally {
      await ctx.db.query('DELETE FROM deliveries WHERE source_id = $1', [source]);
    }
    const { slug } = await createLiveCampaign(ctx.db, {}, 'paused');
    const page = (await client.get(`/admin/campaigns/${slug}/launch`)).text;
    expect(page).toContain('The campaign page takes signatures again');
    expect(page).not.toContain('becomes public');
    expect(page).toContain('The public page is <a');
  });

  it('keeps failed letters of a campaign closed long ago in sight on the dashboard, whose totals say what they count', async () => {
    const { slug } = await createLiveCampaign(ctx.db, {}, 'closed');
    const { rows: [campaign] } = await ctx.db.query<{ id: number }>(`UPDATE campaigns SET updated_at = now() - interval '31 days' WHERE slug = $1 RETURNING id`, [slug]);
    const source = 900_000_000 + Math.floor(Math.random() * 1e6);
    await ctx.db.query(
      `INSERT INTO deliveries (kind, source_id, campaign_id, recipient, status, attempts, last_error) VALUES ('letter', $1, $2, 'judge@court.example', 'failed', 1, '550 no such user')`,
      [source, campaign!.id],
    );
    try {
      const text = (await client.get('/admin')).text;
      expect(text).toMatch(/<a href="\/admin\/deliveries\/failed">\d+ letters? failed in campaigns not listed here<\/a>/);
      expect(text).toContain('Live campaigns and those changed in the last 30 days:');
    } finally {
      await ctx.db.query('DELETE FROM deliveries WHERE source_id = $1', [source]);
    }
  });

  it('does not count a closed campaign\'s unconfirmed signatures as pending: no letter waits on them', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    for (const name of ['Never Confirmed', 'Nor This One']) {
      expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: name, email: `${uniq('never')}@supporter.example` })).status).toBe(202);
    }
    const pendingTotal = async () => Number(/<span class="n">(\d+)<\/span> pending/.exec((await client.get('/admin')).text)?.[1]);
    const before = await pendingTotal();
    expect((await client.get(`/admin/campaigns/${slug}`)).text).toMatch(/data-stat="pending">2<\/span> pending</);
    await changeCampaignStatus(ctx.db, slug, 'close');
    expect(await pendingTotal()).toBe(before - 2);
    expect((await client.get(`/admin/campaigns/${slug}`)).text).toMatch(/data-stat="pending">2<\/span> never confirmed \(closed: no letter goes for them\)/);
    expect((await client.get('/admin/campaigns')).text).toContain('title="2 never confirmed: closed, no letter goes for them">—</span>');
    // Nor does the list of who signed call them pending, as if a confirmation could still come.
    for (const page of [`/admin/campaigns/${slug}`, `/admin/campaigns/${slug}/signatures`]) {
      const { text } = await client.get(page);
      expect(text.match(/<span class="status status-pending">[^<]*<\/span>/g), page).toEqual(Array(2).fill('<span class="status status-pending">never confirmed</span>'));
    }
  });

  it('says on the dashboard which emails a relay has held back for long, before their attempts run out', async () => {
    const source = 900_000_000 + Math.floor(Math.random() * 1e6);
    await ctx.db.query(
      `INSERT INTO deliveries (kind, source_id, recipient, status, attempts, last_error, created_at)
       VALUES ('optin', $1, 'held@example.net', 'retry', 4, '421 4.7.0 [recipient] try again later', now() - interval '2 hours'),
              ('optin', $1, 'fresh@example.net', 'retry', 1, '451 greylisted', now())`,
      [source],
    );
    try {
      const text = (await client.get('/admin')).text;
      expect(text).toContain('1 subscription confirmation email is still being retried more than 30 minutes after it was asked for; the mail relay said: 421 4.7.0 [recipient] try again later');
    } finally {
      await ctx.db.query('DELETE FROM deliveries WHERE source_id = $1', [source]);
    }
  });

  /** The campaign's edit form as the console shows it, filled in with what is saved; `revision` too only when asked for. */
  async function editForm(slug: string, { withRevision = false } = {}): Promise<Record<string, string>> {
    const page = await client.open(`/admin/campaigns/${slug}/edit`);
    const values = Object.fromEntries([...page.text.matchAll(/<input id="f-(\w+)" name="\w+" type="(?:text|number|date)"(?: dir="auto")? value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const revision = withRevision ? /name="revision" value="(\d+)"/.exec(page.text)![1] : undefined;
    const body = /<textarea id="f-letter_body"[^>]*>([\s\S]*?)<\/textarea>/.exec(page.text)![1]!.replace(/&#x3D;/g, '=');
    const caseSlug = (await ctx.db.query<{ slug: string }>('SELECT k.slug FROM cases k JOIN campaigns c ON c.case_id = k.id WHERE c.slug = $1', [slug])).rows[0]!.slug;
    return { ...values, ...(revision ? { revision } : {}), case_slug: caseSlug, letter_body: body, delivery_mode: 'each', require_confirmation: 'on' };
  }

  // Sent twice at once (a double press without the page's script), the second found the details
  // saved and the deadline not yet, and was told someone else had saved the campaign.
  it('saves a campaign form\'s deadline with its details, in one transaction, and answers one sent twice at once as saved', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    await ctx.db.query(`CREATE TABLE campaign_writes (tx bigint, title text, deadline text)`);
    await ctx.db.query(`CREATE FUNCTION note_campaign_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO campaign_writes VALUES (txid_current(), NEW.title, to_char(NEW.deadline, 'YYYY-MM-DD')); RETURN NEW; END $$`);
    await ctx.db.query(`CREATE TRIGGER note_campaign_write AFTER UPDATE ON campaigns FOR EACH ROW WHEN (NEW.slug = '${slug}') EXECUTE FUNCTION note_campaign_write()`);
    try {
      const form = { ...(await editForm(slug, { withRevision: true })), title: 'Free Aigerim now', deadline: new Date(Date.now() + 40 * 86_400_000).toISOString().slice(0, 10) };
      const answers = await Promise.all([1, 2].map(() => client.post(`/admin/campaigns/${slug}/edit`, form)));
      // Not 409 "Someone saved this campaign after you opened this form": both say saved (one flash, as they share a session).
      expect(answers.map((a) => a.status)).toEqual([303, 303]);
      expect((await client.open(answers[1]!.location!)).text).toContain('Campaign saved.');
      const { rows } = await ctx.db.query<{ tx: string; title: string; deadline: string | null }>('SELECT tx, title, deadline FROM campaign_writes');
      expect(new Set(rows.map((r) => r.tx)).size).toBe(1);
      expect(rows.at(-1)).toMatchObject({ title: form.title, deadline: form.deadline });
    } finally {
      for (const drop of ['DROP TRIGGER note_campaign_write ON campaigns', 'DROP FUNCTION note_campaign_write()', 'DROP TABLE campaign_writes']) await ctx.db.query(drop);
    }
  });

  // The same for a new campaign: saved after it, a form sent twice at once on Postgres found the
  // campaign made and its deadline not yet, and was told the slug was taken.
  it('makes a campaign and its deadline in one transaction', async () => {
    const { caseSlug } = await createLiveCampaign(ctx.db);
    const slug = uniq('dated');
    await ctx.db.query(`CREATE TABLE campaign_writes (tx bigint, deadline text)`);
    await ctx.db.query(`CREATE FUNCTION note_campaign_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO campaign_writes VALUES (txid_current(), to_char(NEW.deadline, 'YYYY-MM-DD')); RETURN NEW; END $$`);
    await ctx.db.query(`CREATE TRIGGER note_campaign_write AFTER INSERT OR UPDATE ON campaigns FOR EACH ROW WHEN (NEW.slug = '${slug}') EXECUTE FUNCTION note_campaign_write()`);
    try {
      const deadline = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
      const made = await client.post('/admin/campaigns/new', {
        slug, case_slug: caseSlug, title: 'Free Nurlan', summary: '', letter_subject: 'About {{case.personName}}', letter_body: 'Dear {{target.name}},\nfree {{case.personName}}.\n{{supporter.fullName}}',
        delivery_mode: 'each', digest_hour: '9', goal: '', require_confirmation: 'on', targets_csv: 'Judge One,Judge,judge@court.example,Your Honour\n', deadline,
      });
      expect([made.status, made.location]).toEqual([303, `/admin/campaigns/${slug}`]);
      const { rows } = await ctx.db.query<{ tx: string; deadline: string | null }>('SELECT tx, deadline FROM campaign_writes');
      expect(new Set(rows.map((r) => r.tx)).size).toBe(1);
      expect(rows.at(-1)!.deadline).toBe(deadline);
    } finally {
      for (const drop of ['DROP TRIGGER note_campaign_write ON campaigns', 'DROP FUNCTION note_campaign_write()', 'DROP TABLE campaign_writes']) await ctx.db.query(drop);
    }
  });

  it('refuses a console form that sends a field twice with 400, saving nothing, not reading it as empty', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const before = await getCampaign(ctx.db, slug);
    // Read as empty, the box ticked twice turned confirmation off, and the form said "saved".
    const twice = await client.post(`/admin/campaigns/${slug}/edit`, { ...(await editForm(slug)), title: 'Not saved', require_confirmation: ['on', 'on'] });
    expect(twice.status).toBe(400);
    expect(twice.text).toContain('The form sent the field &quot;require_confirmation&quot; more than once.');
    expect(await getCampaign(ctx.db, slug)).toMatchObject({ title: before.title, require_confirmation: true, revision: before.revision });
    // A `%` that escapes nothing is refused too, not kept as typed.
    const broken = await fetch(`${client.base}/admin/campaigns/${slug}/edit`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'title=Z%ZZ', redirect: 'manual' });
    expect(broken.status).toBe(400);
    // And a console form said to be in `utf8` or `us-ascii`, UTF-8's alias and subset, is read as UTF-8.
    const form = await editForm(slug);
    const aliased = await client.post(`/admin/campaigns/${slug}/edit`, { ...form, title: 'Айгерім must go free' }, { headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf8' } });
    expect(aliased.status).toBe(303);
    expect((await getCampaign(ctx.db, slug)).title).toBe('Айгерім must go free');
  });

  it('warns on the dashboard when a live campaign nears its deadline, and refuses a date that is not one', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const form = await editForm(slug);
    const bad = await client.post(`/admin/campaigns/${slug}/edit`, { ...form, deadline: '2026-02-30' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('must be a date like');
    // Year 0000 is a calendar day to JavaScript and none to Postgres: refused with the form, and
    // nothing of it saved (the details went in before the deadline failed).
    const revision = (await ctx.db.query<{ revision: number }>('SELECT revision FROM campaigns WHERE slug = $1', [slug])).rows[0]!.revision;
    const yearZero = await client.post(`/admin/campaigns/${slug}/edit`, { ...form, title: 'Not saved', deadline: '0000-06-01' });
    expect(yearZero.status).toBe(400);
    expect(yearZero.text).toContain('must be a date like');
    expect((await ctx.db.query('SELECT title, revision FROM campaigns WHERE slug = $1', [slug])).rows[0]).toMatchObject({ revision });
    // Every mistake at once, each in its own words, not only the form's first.
    const many = await client.post(`/admin/campaigns/${slug}/edit`, { ...form, title: '', goal: '-5', delivery_mode: 'digest', digest_hour: '25', deadline: 'soon' });
    expect(many.status).toBe(400);
    for (const said of ['must be a date like', 'must be a whole number of at least 1', 'must be an hour from 0 to 23']) expect(many.text).toContain(said);
    expect(many.text).toMatch(/Title: [^<]*(required|at least)/);
    const soon = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    // The digest hour is a digest's: sending each letter at once, a slip in it stops nothing.
    expect((await client.post(`/admin/campaigns/${slug}/edit`, { ...form, digest_hour: '25', deadline: soon })).status).toBe(303);
    const dashboard = await client.get('/admin');
    // 2 days when midnight UTC passed between the date above and the dashboard's own now().
    expect(dashboard.text).toMatch(new RegExp(`ends in [23] days \\(${soon}\\)`));
    // The audit log says what each save changed, and a safeguard turned off in so many words.
    const lastSave = async () => (await ctx.db.query<{ detail: unknown }>(`SELECT detail FROM audit_log WHERE action = 'campaign.update' AND object = $1 ORDER BY id DESC LIMIT 1`, [`campaign:${slug}`])).rows[0]!.detail;
    // This form sends no summary: saved empty, and said so.
    expect(await lastSave()).toEqual({ changed: 'summary, deadline' });
    const { require_confirmation: _on, ...unticked } = form;
    expect((await client.post(`/admin/campaigns/${slug}/edit`, { ...unticked, deadline: soon })).status).toBe(303);
    expect(await lastSave()).toEqual({ changed: 'confirmation', confirmation: 'off' });
    // A day already past is a slip of the year; one that passed while the campaign ran stays as it is.
    const past = await client.post(`/admin/campaigns/${slug}/edit`, { ...unticked, deadline: '2020-01-01' });
    expect(past.status).toBe(400);
    expect(past.text).toContain('has passed: give the day the officials must act by');
    await ctx.db.query(`UPDATE campaigns SET deadline = '2020-01-01' WHERE slug = $1`, [slug]);
    expect((await client.post(`/admin/campaigns/${slug}/edit`, { ...unticked, deadline: '2020-01-01' })).status).toBe(303);
  });

  it('refuses to save a form opened before someone else saved, keeping what was typed, and saves it when sent again', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    const revisionIn = (html: string) => /name="revision" value="(\d+)"/.exec(html)![1]!;
    // Tab B opens the details; tab A then saves a new letter.
    const details = await client.open(`/admin/campaigns/${slug}/edit`);
    const values = Object.fromEntries([...details.text.matchAll(/<input id="f-(\w+)" name="\w+" type="(?:text|number|date)"(?: dir="auto")? value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    // Text fields take the direction of what is typed in them: a Uyghur title reads right to left.
    expect(details.text).toMatch(/<input id="f-title" name="title" type="text" dir="auto"/);
    expect(details.text).toMatch(/<textarea id="f-summary" name="summary" rows="\d+" dir="auto"/);
    const oldBody = /<textarea id="f-letter_body"[^>]*>([\s\S]*?)<\/textarea>/.exec(details.text)![1]!.replace(/&#x3D;/g, '=');
    const form = { ...values, case_slug: caseSlug, summary: (await getCampaign(ctx.db, slug)).summary, letter_body: oldBody, delivery_mode: 'each', require_confirmation: 'on', revision: revisionIn(details.text) };
    const letterPage = await client.open(`/admin/campaigns/${slug}/letter`);
    const newLetter = { action: 'save', letter_subject: 'About {{case.personName}}', letter_body: 'Dear {{target.name}}, the new text.', revision: revisionIn(letterPage.text) };
    expect((await client.post(`/admin/campaigns/${slug}/letter`, newLetter)).status).toBe(303);

    const stale = await client.post(`/admin/campaigns/${slug}/edit`, { ...form, goal: '50' });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('Someone saved this campaign after you opened this form');
    // Which fields: saving again would also put back the older letter, which this tab never touched.
    expect(stale.text).toContain('What is saved differs from this form in: Body, Goal (your own changes among them).');
    expect(stale.text).toContain('value="50"');
    expect((await getCampaign(ctx.db, slug))).toMatchObject({ letter_body: 'Dear {{target.name}}, the new text.', goal: 100 });
    // Sent again from the page that said so, it replaces what is there, knowingly.
    expect((await client.post(`/admin/campaigns/${slug}/edit`, { ...form, goal: '50', revision: revisionIn(stale.text) })).status).toBe(303);
    expect((await getCampaign(ctx.db, slug)).goal).toBe(50);

    // The letter editor opened before that save is refused too.
    const staleLetter = await client.post(`/admin/campaigns/${slug}/letter`, { ...newLetter, letter_body: 'Dear {{target.name}}, an older draft.' });
    expect(staleLetter.status).toBe(409);
    expect(staleLetter.text).toContain('an older draft');
    const seenIn = (html: string) => /name="letter_seen" value="([^"]+)"/.exec(html)![1]!;
    // A letter editor open while the goal alone is saved elsewhere (another tab) saves its letter,
    // keeping that goal: nothing the other tab saved is undone.
    const editor = await client.open(`/admin/campaigns/${slug}/letter`);
    const now = await client.open(`/admin/campaigns/${slug}/edit`);
    const body = /<textarea id="f-letter_body"[^>]*>([\s\S]*?)<\/textarea>/.exec(now.text)![1]!.replace(/&#x3D;/g, '=');
    expect((await client.post(`/admin/campaigns/${slug}/edit`, { ...form, letter_body: body, goal: '70', revision: revisionIn(now.text) })).status).toBe(303);
    const meanwhile = await client.post(`/admin/campaigns/${slug}/letter`, { action: 'save', letter_subject: 'About {{case.personName}}', letter_body: 'Dear {{target.name}}, saved beside the goal.', revision: revisionIn(editor.text), letter_seen: seenIn(editor.text) });
    expect(meanwhile.status).toBe(303);
    expect(await getCampaign(ctx.db, slug)).toMatchObject({ letter_body: 'Dear {{target.name}}, saved beside the goal.', goal: 70 });
    // A page from before the editor carried its letter (none sent), previewed after another's save, is
    // checked by its revision still: it does not take on the letter as it is now.
    const old = await client.open(`/admin/campaigns/${slug}/letter`);
    const theirs = await client.open(`/admin/campaigns/${slug}/letter`);
    expect((await client.post(`/admin/campaigns/${slug}/letter`, { action: 'save', letter_subject: 'About {{case.personName}}', letter_body: 'Dear {{target.name}}, saved by someone else.', revision: revisionIn(theirs.text), letter_seen: seenIn(theirs.text) })).status).toBe(303);
    const previewed = await client.post(`/admin/campaigns/${slug}/letter`, { action: 'preview', letter_subject: 'About {{case.personName}}', letter_body: 'Dear {{target.name}}, mine.', revision: revisionIn(old.text) });
    expect(previewed.text).toContain('name="letter_seen" value=""');
    expect((await client.post(`/admin/campaigns/${slug}/letter`, { action: 'save', letter_subject: 'About {{case.personName}}', letter_body: 'Dear {{target.name}}, mine.', revision: revisionIn(previewed.text), letter_seen: '' })).status).toBe(409);
    expect((await getCampaign(ctx.db, slug)).letter_body).toBe('Dear {{target.name}}, saved by someone else.');
    // One open while the letter itself is saved elsewhere is refused: it would undo that letter.
    const [first, second] = [await client.open(`/admin/campaigns/${slug}/letter`), await client.open(`/admin/campaigns/${slug}/letter`)];
    const save = (page: string, text: string) => client.post(`/admin/campaigns/${slug}/letter`, { action: 'save', letter_subject: 'About {{case.personName}}', letter_body: text, revision: revisionIn(page), letter_seen: seenIn(page) });
    expect((await save(first.text, 'Dear {{target.name}}, the first tab.')).status).toBe(303);
    const undoing = await save(second.text, 'Dear {{target.name}}, the second tab.');
    expect(undoing.status).toBe(409);
    expect(undoing.text).toContain('the second tab.');
    expect((await getCampaign(ctx.db, slug)).letter_body).toBe('Dear {{target.name}}, the first tab.');
    // Sent again from the page that said so, it replaces it, knowingly.
    expect((await save(undoing.text, 'Dear {{target.name}}, the second tab.')).status).toBe(303);
    expect((await getCampaign(ctx.db, slug)).letter_body).toBe('Dear {{target.name}}, the second tab.');

    // A case edited while its status changed on the case page.
    const caseForm = await client.open(`/admin/cases/${caseSlug}/edit`);
    expect((await client.post(`/admin/cases/${caseSlug}/status`, { status: 'released' })).status).toBe(303);
    const staleCase = await client.post(`/admin/cases/${caseSlug}`, { person_name: 'Aigerim Test', summary: 'A new summary.', status: 'detained', location: 'Almaty', revision: revisionIn(caseForm.text) });
    expect(staleCase.status).toBe(409);
    expect(staleCase.text).toContain('Someone saved this case');
    expect(staleCase.text).toContain('What is saved differs from this form in: Status, Summary (your own changes among them).');
    expect((await getCase(ctx.db, caseSlug))).toMatchObject({ status: 'released', summary: 'Fled the camps.' });

    // A target: one organizer fixes its address and tells it less; another's stale form would put both back.
    const { rows: [target] } = await ctx.db.query<{ id: number }>(`SELECT t.id FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE c.slug = $1 ORDER BY t.id LIMIT 1`, [slug]);
    const edit = `/admin/campaigns/${slug}/targets/${target!.id}/edit`;
    const opened = await client.open(edit);
    const fields = (html: string): Record<string, string> => ({ ...Object.fromEntries([...html.matchAll(/<input id="f-(\w+)" name="\w+" type="(?:text|email)"(?: dir="auto")? value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!])), disclose: /<option value="(\w+)" selected/.exec(html)![1]!, revision: revisionIn(html) });
    const staleTarget = fields(opened.text);
    expect((await client.post(edit, { ...fields((await client.open(edit)).text), email: 'court-new@gov.example', disclose: 'name' })).status).toBe(303);
    const refused = await client.post(edit, { ...staleTarget, salutation: 'Dear Judge Stale' });
    expect(refused.status).toBe(409);
    expect(refused.text).toContain('Someone saved this target');
    expect(refused.text).toContain('value="Dear Judge Stale"');
    expect(refused.text).toContain('What is saved differs from this form in: Email, Salutation, What this target learns (your own changes among them).');
    expect((await ctx.db.query('SELECT email, disclose, salutation FROM targets WHERE id = $1', [target!.id])).rows[0]).toEqual({ email: 'court-new@gov.example', disclose: 'name', salutation: staleTarget.salutation });
    // The same correction sent twice (a double click): both answers say saved.
    const correction = { ...fields((await client.open(edit)).text), title: 'Presiding judge' };
    const twice = [await client.post(edit, correction), await client.post(edit, correction)];
    expect(twice.map((r) => [r.status, r.location])).toEqual([[303, `/admin/campaigns/${slug}/targets`], [303, `/admin/campaigns/${slug}/targets`]]);
    expect((await client.open(twice[1]!.location!)).text).toContain('saved.');
  });

  it('names a delivery mode that may no longer change together with the form\'s other mistakes', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    await ctx.db.query(`INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) SELECT id, 'Early Signer', 'early@supporter.example', 'confirmed', now() FROM campaigns WHERE slug = $1`, [slug]);
    const details = await client.open(`/admin/campaigns/${slug}/edit`);
    const values = Object.fromEntries([...details.text.matchAll(/<input id="f-(\w+)" name="\w+" type="(?:text|number|date)"(?: dir="auto")? value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const body = /<textarea id="f-letter_body"[^>]*>([\s\S]*?)<\/textarea>/.exec(details.text)![1]!.replace(/&#x3D;/g, '=');
    const res = await client.post(`/admin/campaigns/${slug}/edit`, { ...values, title: '', case_slug: caseSlug, letter_body: body, delivery_mode: 'digest', require_confirmation: 'on' });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/Title: [^<]*(required|at least)/);
    expect(res.text).toContain('Delivery mode: cannot change once people have signed');
    // Each line of the summary leads to its field, and the field says what is wrong with it.
    const linked = [...res.text.matchAll(/<li><a href="#(f-[\w-]+)">/g)].map((m) => m[1]!);
    expect(linked).toEqual(['f-title', 'f-delivery_mode']);
    for (const id of linked) expect(res.text, id).toMatch(new RegExp(`<(?:input|textarea|select|div)\\b[^>]*\\bid="${id}"`));
    expect(res.text).toMatch(/<div role="radiogroup"[^>]* aria-invalid="true" aria-describedby="f-delivery_mode-error">/);
    expect(res.text).toMatch(/<p class="error" id="f-delivery_mode-error">cannot change/);
  });

  it('answers a case or letter form sent twice (a double click) as done both times, and one that differs from what was saved as a conflict', async () => {
    const slug = uniq('case');
    const fields = { slug, person_name: 'Saved Twice', summary: 'Held.', status: 'detained', location: '' };
    // Created twice (the page's script not running): both answers say created; another case wanting the slug is told it is taken.
    const created = [await client.post('/admin/cases', fields), await client.post('/admin/cases', fields)];
    expect(created.map((r) => [r.status, r.location])).toEqual([[303, `/admin/cases/${slug}`], [303, `/admin/cases/${slug}`]]);
    const clash = await client.post('/admin/cases', { ...fields, person_name: 'Someone Else' });
    expect(clash.status).toBe(409);
    expect(clash.text).toContain('exists already');
    const revision = /name="revision" value="(\d+)"/.exec((await client.get(`/admin/cases/${slug}/edit`)).text)![1]!;
    const edited = { ...fields, summary: 'Held since March.', revision };
    const [first, second] = [await client.post(`/admin/cases/${slug}`, edited), await client.post(`/admin/cases/${slug}`, edited)];
    expect([first.status, first.location, second.status, second.location]).toEqual([303, `/admin/cases/${slug}`, 303, `/admin/cases/${slug}`]);
    expect((await client.open(second.location!)).text).toContain('Case saved.');
    const other = await client.post(`/admin/cases/${slug}`, { ...edited, summary: 'Something else.' });
    expect(other.status).toBe(409);

    // The letter editor too.
    const { slug: campaign } = await createLiveCampaign(ctx.db);
    const editor = (await client.get(`/admin/campaigns/${campaign}/letter`)).text;
    const letter = { revision: /name="revision" value="(\d+)"/.exec(editor)![1]!, letter_subject: 'Release her', letter_body: 'Dear judge, release her.', action: 'save' };
    const [a, b] = [await client.post(`/admin/campaigns/${campaign}/letter`, letter), await client.post(`/admin/campaigns/${campaign}/letter`, letter)];
    expect([a.status, b.status]).toEqual([303, 303]);
  });

  it("revokes the tokens an admin made to act as others once that admin stops being one or is removed, and names their maker", async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const { client: maker, organizer: admin } = await signedIn(base, ctx.db, 'admin');
    const user = await createOrganizer(ctx.db);
    const makeToken = async (actsAs: string, label: string) => {
      await maker.open('/admin/tokens');
      const made = await maker.post('/admin/tokens', { label, organizer: actsAs, request_key: crypto.randomUUID() });
      return /class="copy mono" readonly value="([^"]+)"/.exec(made.text)![1]!;
    };
    const works = async (token: string) => (await fetch(`${base}/api/v1/campaigns/${slug}/stats`, { headers: { authorization: `Bearer ${token}` } })).status;
    const forUser = await makeToken(user.email, 'backup sync');
    const own = await makeToken(admin.email, 'own script');
    const listed = (await client.get('/admin/tokens')).text;
    expect(listed).toMatch(new RegExp(`backup sync</td><td class="break">${user.email.replace(/[.]/g, '\\.')}</td><td class="break">${admin.email.replace(/[.]/g, '\\.')}</td>`));
    expect(listed).toMatch(/own script<\/td><td class="break">[^<]+<\/td><td class="break"><span class="muted">—<\/span><\/td>/);
    expect([await works(forUser), await works(own)]).toEqual([200, 200]);

    await client.open('/admin/organizers');
    expect((await client.post(`/admin/organizers/${admin.id}/role`, { role: 'organizer' })).status).toBe(303);
    const { rows: [revokedFirst] } = await ctx.db.query<{ id: string }>(`SELECT id FROM api_tokens WHERE label = 'backup sync' AND organizer_id = $1`, [user.id]);
    expect((await client.get('/admin/organizers')).text).toContain(`The API token they made to act as other organizers (#${revokedFirst!.id}) is revoked`);
    expect([await works(forUser), await works(own)]).toEqual([401, 200]);

    await ctx.db.query(`UPDATE organizers SET role = 'admin' WHERE id = $1`, [admin.id]);
    const again = await makeToken(user.email, 'second sync');
    expect(await works(again)).toBe(200);
    const { rows: [ownToken] } = await ctx.db.query<{ id: string }>(`SELECT id FROM api_tokens WHERE label = 'own script' AND organizer_id = $1`, [admin.id]);
    expect((await client.post(`/admin/organizers/${admin.id}/remove`, { confirmed: '1' })).status).toBe(303);
    expect(await works(again)).toBe(401);
    const removal = await ctx.db.query<{ detail: { tokensRevoked: number[] } }>(`SELECT detail FROM audit_log WHERE action = 'organizer.remove' AND object = $1`, [`organizer:${admin.id}`]);
    expect(removal.rows[0]!.detail.tokensRevoked).toHaveLength(1);
    // Their own token went with them: its end is in the log, as its creation is.
    expect(removal.rows[0]!.detail).toMatchObject({ tokensDeleted: [Number(ownToken!.id)] });
    // The organizer it acted as keeps their own account and tokens.
    expect((await ctx.db.query('SELECT 1 FROM organizers WHERE id = $1', [user.id])).rowCount).toBe(1);
    // A token asked for by one no longer an admin (demoted while the form was on its way) is not made.
    const { organizer: former } = await signedIn(base, ctx.db, 'organizer');
    await expect(createApiTokenOnce(ctx.db, user.email, 'late', { by: former.id, requestKey: crypto.randomUUID() })).rejects.toThrow(ForbiddenError);
    expect((await ctx.db.query(`SELECT 1 FROM api_tokens WHERE label = 'late'`)).rowCount).toBe(0);
  });

  it("reads the audit log for one organizer, one removed since too, by their address in any case", async () => {
    const { client: leaving, organizer } = await signedIn(base, ctx.db, 'organizer');
    const { slug } = await createLiveCampaign(ctx.db);
    expect((await leaving.get(`/admin/campaigns/${slug}/signatures.csv`)).status).toBe(200);
    await client.open('/admin/organizers');
    expect((await client.post(`/admin/organizers/${organizer.id}/remove`, { confirmed: '1' })).status).toBe(303);
    const page = await client.get(`/admin/audit?by=${encodeURIComponent(organizer.email.toUpperCase())}`);
    const actions = [...page.text.matchAll(/<td><code>([^<]+)<\/code><\/td>/g)].map((m) => m[1]);
    expect(actions).toEqual(['signatures.export', 'login']);
    expect(page.text).toContain(`<a href="/admin/audit?by=${encodeURIComponent(organizer.email)}">${organizer.email}</a> <span class="badge">removed since</span>`);
    expect((await client.get(`/admin/audit?by=nobody%40appeal.test`)).text).toContain('Nothing recorded by nobody@appeal.test.');
  });

  it('erases a person on request for an admin, asking first, and keeps only that it ran in the audit log', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const email = `${uniq('erase')}@supporter.example`;
    const signed = await fetch(`${base}/api/v1/campaigns/${slug}/signatures`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fullName: 'Erase Me', email }) });
    expect(signed.status).toBe(202);
    await ctx.db.query(`INSERT INTO subscribers (email, status) VALUES ($1, 'active')`, [email]);
    const [hourKey] = addressCounterKeys(ctx.config.queuePrefix, ctx.secret, email);
    await ctx.redis.client.incr(hourKey!);
    await ctx.redis.client.expire(hourKey!, 60);
    const held = async () => (await ctx.db.query(`SELECT 1 FROM signatures WHERE email = $1 UNION ALL SELECT 1 FROM subscribers WHERE email = $1`, [email])).rowCount;
    expect(await held()).toBe(2);
    // A letter in their name waiting for a retry: dropped with them, and said.
    await ctx.db.query(
      `INSERT INTO deliveries (kind, source_id, target_id, recipient, campaign_id, status)
       SELECT 'letter', s.id, t.id, t.email, s.campaign_id, 'retry' FROM signatures s JOIN targets t ON t.campaign_id = s.campaign_id WHERE s.email = $1 LIMIT 1`,
      [email],
    );

    await client.open('/admin/forget');
    const mistaken = await client.post('/admin/forget', { email: 'not an address' });
    expect(mistaken.status).toBe(400);
    expect(mistaken.text).toContain('<title>Error: Erase a person · ');
    // Sent without the script's question: the page asks, naming the address, and erases nothing.
    const asked = await client.post('/admin/forget', { email, confirmed: '' });
    expect(asked.status).toBe(200);
    expect(asked.text).toContain(`Erase everything held for <strong class="break">${email}</strong>?`);
    expect(await held()).toBe(2);
    const erased = await client.post('/admin/forget', { email, confirmed: '1' });
    // Answered by a redirect, so a reload does not erase (and log) it again.
    expect([erased.status, erased.location]).toEqual([303, '/admin/forget']);
    // The hour's count set above, and the day's too once the worker has sent the confirmation.
    expect((await client.get('/admin/forget')).text).toMatch(/Erased 1 signature, 1 subscriber record and 1 email to that address, and (1 rate-limit count|2 rate-limit counts) that named it\. 1 letter in their name not sent yet is dropped: no official gets it\./);
    expect(await held()).toBe(0);
    expect(await ctx.redis.client.exists(...addressCounterKeys(ctx.config.queuePrefix, ctx.secret, email))).toBe(0);
    const { rows: [entry] } = await ctx.db.query(`SELECT * FROM audit_log WHERE action = 'person.forget' ORDER BY id DESC LIMIT 1`);
    expect(entry).toMatchObject({ organizer_id: organizerId, object: 'person:(forgotten)', detail: { signatures: 1, subscribers: 1, emails: 1, unsent: 1, by: 'console' } });
    expect((await ctx.db.query(`SELECT 1 FROM audit_log WHERE object ILIKE $1 OR detail::text ILIKE $1`, [`%${email}%`])).rowCount).toBe(0);
    // Not an organizer's to do: the subscriber list is admins' only.
    const { client: organizer } = await signedIn(base, ctx.db, 'organizer');
    expect((await organizer.post('/admin/forget', { email, confirmed: '1' })).status).toBe(403);
  });

  it("offers an admin to erase a signer from the campaign's list, asking first, and tells an organizer whom to ask", async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const email = `${uniq('off')}@supporter.example`;
    const signed = await fetch(`${base}/api/v1/campaigns/${slug}/signatures`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fullName: 'Take Me Off', email }) });
    expect(signed.status).toBe(202);
    const list = await client.get(`/admin/campaigns/${slug}/signatures`);
    const form = list.text.match(/<form method="post" action="\/admin\/forget" class="inline">.*?<\/form>/s)?.[0];
    expect(form).toContain(`<input type="hidden" name="email" value="${email}">`);
    expect(form).toContain('Erase…<span class="sr-only"> <bdi>Take Me Off</bdi></span>');
    // Its press is the erase page's question, naming the address; nothing is erased yet.
    const asked = await client.post('/admin/forget', { email });
    expect(asked.text).toContain(`Erase everything held for <strong class="break">${email}</strong>?`);
    expect((await ctx.db.query('SELECT 1 FROM signatures WHERE email = $1', [email])).rowCount).toBe(1);

    const { client: organizer } = await signedIn(base, ctx.db, 'organizer');
    const theirs = await organizer.get(`/admin/campaigns/${slug}/signatures`);
    expect(theirs.text).not.toContain('action="/admin/forget"');
    const { rows: [admin] } = await ctx.db.query<{ name: string; email: string }>(`SELECT name, email FROM organizers WHERE role = 'admin' ORDER BY id LIMIT 1`);
    expect(theirs.text).toContain(`Only an admin erases a person (from every campaign and list; letters already sent stay sent): ask ${admin!.name ? `${admin!.name} (${admin!.email})` : admin!.email}`);
  });

  it("lets an admin correct an organizer's address and name, who then signs in with the new address", async () => {
    const { client: them, organizer } = await signedIn(base, ctx.db, 'organizer');
    const other = await createOrganizer(ctx.db);
    const corrected = `${uniq('corrected')}@appeal.test`;
    expect((await client.get(`/admin/organizers/${organizer.id}/edit`)).text).toContain(`value="${organizer.email}"`);
    // Another organizer's address, in other capitals: refused, what was typed kept.
    const taken = await client.post(`/admin/organizers/${organizer.id}`, { email: other.email.toUpperCase(), name: 'Dana' });
    expect(taken.status).toBe(409);
    expect(taken.text).toContain(`An organizer with the email ${other.email.toUpperCase()} exists already.`);
    const mistaken = await client.post(`/admin/organizers/${organizer.id}`, { email: 'not an address', name: '' });
    expect(mistaken.status).toBe(400);
    // Said once: the first thing a screen reader reads.
    expect(mistaken.text).toContain(`<title>Error: Edit ${organizer.email} · `);
    const saved = await client.post(`/admin/organizers/${organizer.id}`, { email: corrected, name: 'Dana Corrected' });
    expect([saved.status, saved.location]).toEqual([303, '/admin/organizers']);
    expect((await client.get('/admin/organizers')).text).toContain(`Saved. They sign in as ${corrected} from now on: tell them.`);
    const { rows: [entry] } = await ctx.db.query(`SELECT organizer_id, detail FROM audit_log WHERE action = 'organizer.update' AND object = $1`, [`organizer:${organizer.id}`]);
    expect(entry).toEqual({ organizer_id: organizerId, detail: { email: { from: organizer.email, to: corrected }, name: { from: 'Test organizer', to: 'Dana Corrected' } } });
    // The audit log follows them: found by either address, the old entries marked with the new.
    const byNew = await client.get(`/admin/audit?by=${encodeURIComponent(corrected)}`);
    expect(byNew.text).toContain(`${organizer.email}</a> <span class="badge">now ${corrected}</span>`);
    // Their session goes on; a new sign-in takes the new address, not the old.
    expect((await them.get('/admin')).status).toBe(200);
    expect((await new ConsoleClient(base).login(organizer.email)).status).toBe(401);
    expect((await new ConsoleClient(base).login(corrected)).status).toBe(303);
    // Not an organizer's to do, for anyone.
    expect((await them.post(`/admin/organizers/${organizer.id}`, { email: corrected, name: 'Me' })).status).toBe(403);
  });

  it('keeps the last admin an admin, and removing an organizer ends their sessions', async () => {
    const admins = async () => (await ctx.db.query(`SELECT id FROM organizers WHERE role = 'admin'`)).rows.length;
    expect(await admins()).toBe(1);
    await client.open('/admin/organizers');
    expect((await client.post(`/admin/organizers/${organizerId}/role`, { role: 'organizer' })).status).toBe(303);
    expect(await admins()).toBe(1);
    expect((await client.get('/admin/organizers')).text).toContain('The last admin cannot stop being an admin.');

    const { client: other, organizer } = await signedIn(base, ctx.db, 'organizer');
    expect((await other.get('/admin')).status).toBe(200);
    // Only either button's role: none, or another word, is refused, not read as "organizer".
    await ctx.db.query(`UPDATE organizers SET role = 'admin' WHERE id = $1`, [organizer.id]);
    for (const form of [{}, { role: 'owner' }] as Record<string, string>[]) expect((await client.post(`/admin/organizers/${organizer.id}/role`, form)).status).toBe(400);
    expect(await admins()).toBe(2);
    await ctx.db.query(`UPDATE organizers SET role = 'organizer' WHERE id = $1`, [organizer.id]);
    // What they do before they are removed stays theirs in the audit log.
    const { slug } = await createLiveCampaign(ctx.db);
    expect((await other.get(`/admin/campaigns/${slug}/signatures.csv`)).status).toBe(200);
    expect((await client.post(`/admin/organizers/${organizerId}/remove`, { confirmed: '1' })).status).toBe(303);
    expect((await client.get('/admin')).status).toBe(200);
    expect((await client.post(`/admin/organizers/${organizer.id}/remove`, { confirmed: '1' })).status).toBe(303);
    expect((await other.get('/admin')).status).toBe(303);
    expect((await actions(ctx, organizerId)).map((a) => a.action)).toContain('organizer.remove');
    // The removal keeps who they were, and their own entries keep their author.
    const removal = await ctx.db.query<{ detail: object }>(`SELECT detail FROM audit_log WHERE action = 'organizer.remove' AND object = $1`, [`organizer:${organizer.id}`]);
    expect(removal.rows[0]!.detail).toEqual({ email: organizer.email, role: 'organizer' });
    const audit = await client.get('/admin/audit?action=signatures.export');
    expect(audit.text).toMatch(new RegExp(`${organizer.email.replace(/[.]/g, '\\.')}</a> <span class="badge">removed since</span></td><td><code>signatures.export</code></td><td class="break">campaign:${slug}<`));
  });
});
