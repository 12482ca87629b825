import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleClient, signedIn } from '../helpers/admin-client.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign, createToken, uniq } from '../helpers/fixtures.ts';

/** Every page of a list, following its "next" link from `first`. */
async function allPages(get: (path: string) => Promise<string>, first: string, next: RegExp): Promise<string[]> {
  const pages: string[] = [];
  for (let path: string | undefined = first; path; ) {
    const html = await get(path);
    pages.push(html);
    path = next.exec(html)?.[1]?.replace(/&amp;/g, '&');
  }
  return pages;
}

describe('an installation with more cases and campaigns than a page lists', () => {
  let ctx: TestContext;
  let base: string;
  let client: ConsoleClient;
  let oldest: { slug: string; caseSlug: string };

  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres' });
    base = await ctx.startWeb();
    client = (await signedIn(base, ctx.db, 'admin')).client;
    // The first campaign, changed longest ago, then 520 cases and 260 live campaigns after it,
    // each with one confirmed signature.
    oldest = await createLiveCampaign(ctx.db);
    await ctx.db.query(`UPDATE cases SET updated_at = now() - interval '1 year' WHERE slug = $1`, [oldest.caseSlug]);
    await ctx.db.query(`UPDATE campaigns SET updated_at = now() - interval '1 year' WHERE slug = $1`, [oldest.slug]);
    await ctx.db.query(
      `WITH k AS (
         INSERT INTO cases (slug, person_name, summary, status)
         SELECT 'many-case-' || g, 'Person ' || g, 'Detained.', 'detained' FROM generate_series(1, 520) g RETURNING id, slug
       ), c AS (
         INSERT INTO campaigns (slug, case_id, title, letter_subject, letter_body, status)
         SELECT 'many-camp-' || n || '-' || k.slug, k.id, 'Free them', 'S', 'B', 'live'
           FROM k CROSS JOIN generate_series(1, 2) n WHERE k.slug <= 'many-case-2' RETURNING id
       )
       INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at)
       SELECT id, 'Signer', 'signer-' || id || '@supporter.example', 'confirmed', now() FROM c`,
    );
  }, 120_000);
  afterAll(async () => {
    await ctx?.close();
  });

  it('pages the home page through every live campaign', async () => {
    const live = Number((await ctx.db.query<{ n: string }>(`SELECT count(*) AS n FROM campaigns WHERE status = 'live'`)).rows[0]!.n);
    expect(live).toBeGreaterThan(200);
    const pages = await allPages(async (path) => (await fetch(`${base}${path}`)).text(), '/', /<a href="(\/\?before=[^"]+)">More campaigns<\/a>/);
    const slugs = pages.flatMap((html) => [...html.matchAll(/<a class="button" href="\/c\/([^"]+)">Read and sign<\/a>/g)].map((m) => m[1]));
    expect(new Set(slugs).size).toBe(live);
    expect(slugs).toHaveLength(live);
    expect(slugs.at(-1)).toBe(oldest.slug);
    expect(pages.at(-1)).toContain('Back to the latest campaigns');
    // A cursor that is not one shows the first page.
    expect(await (await fetch(`${base}/?before=nonsense`)).text()).toContain('More campaigns');
  });

  it('counts every campaign in scope on the dashboard, not only those its table lists, and says which needs attention', async () => {
    // The oldest campaign, past the 200 the table lists, reaches its goal.
    const { rows: [old] } = await ctx.db.query<{ id: number; title: string }>(`UPDATE campaigns SET goal = 1 WHERE slug = $1 RETURNING id, title`, [oldest.slug]);
    await ctx.db.query(`INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) VALUES ($1, 'Goal Signer', 'goal@supporter.example', 'confirmed', now())`, [old!.id]);
    const { rows: [all] } = await ctx.db.query<{ live: number; confirmed: number }>(
      `SELECT count(*) FILTER (WHERE status = 'live')::int AS live,
              (SELECT count(*)::int FROM signatures WHERE status = 'confirmed') AS confirmed FROM campaigns`,
    );
    const { text } = await client.get('/admin');
    expect(text).toContain(`<span class="n">${all!.live}</span> live campaigns`);
    expect(text).toContain(`<span class="n">${all!.confirmed}</span> confirmed signatures`);
    expect(text).toMatch(/the 200 live first and changed last are listed, \d+ more are counted above/);
    expect(text).toContain(`“${old!.title}” reached its goal of 1`);
  });

  it('pages the console\'s cases, and keeps a campaign\'s own case on its edit form however far back it is', async () => {
    const pages = await allPages(async (path) => (await client.get(path)).text, '/admin/cases', /<a href="(\/admin\/cases\?before=[^"]+)">Cases changed earlier<\/a>/);
    const slugs = pages.flatMap((html) => [...html.matchAll(/<span class="muted small">([^<]+)<\/span><\/td>/g)].map((m) => m[1]));
    const cases = Number((await ctx.db.query<{ n: string }>('SELECT count(*) AS n FROM cases')).rows[0]!.n);
    expect(new Set(slugs).size).toBe(cases);
    expect(slugs.at(-1)).toBe(oldest.caseSlug);

    const form = (await client.get(`/admin/campaigns/${oldest.slug}/edit`)).text;
    expect(form).toContain(`<option value="${oldest.caseSlug}" selected>`);
    // As a browser sends the form back, with text in a script of three bytes a character.
    const long = '拘留'.repeat(9_995);
    const saved = await client.post(`/admin/campaigns/${oldest.slug}/edit`, {
      revision: /name="revision" value="(\d+)"/.exec(form)![1]!, title: 'Free them', case_slug: oldest.caseSlug,
      summary: long, letter_subject: 'Release her', letter_body: long, delivery_mode: 'each', digest_hour: '9', goal: '', deadline: '', require_confirmation: 'on',
    });
    expect(saved.status, saved.text.slice(0, 300)).toBe(303);
    expect((await ctx.db.query<{ n: number }>('SELECT length(letter_body) AS n FROM campaigns WHERE slug = $1', [oldest.slug])).rows[0]!.n).toBe(19_990);
  });

  it('takes a campaign of 500 targets through the API from a client that escapes every character outside ASCII', async () => {
    const token = await createToken(ctx.db);
    const line = 'Депутат Мажилиса Парламента '.repeat(8).slice(0, 200);
    const targets = Array.from({ length: 500 }, (_, i) => ({ name: `${line.slice(0, 190)} ${i}`, title: line, salutation: line, email: `mp-${i}@parlam.example` }));
    const body = JSON.stringify({ slug: uniq('mps'), caseSlug: oldest.caseSlug, title: line, summary: line.repeat(99), letter: { subject: 'Release her', body: line.repeat(99) }, targets })
      .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    expect(body.length).toBeGreaterThan(1.5 * 1024 * 1024);
    const res = await fetch(`${base}/api/v1/campaigns`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
    expect(res.status, await res.clone().text().then((t) => t.slice(0, 300))).toBe(201);
  });
});
