import { parse } from 'csv-parse/sync';
import type { ParsedMail } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepReplacedLetter, lockCampaign } from '../../src/campaigns/queries.ts';
import { getCampaign, updateCampaignDetails } from '../../src/campaigns/service.ts';
import { addTargets } from '../../src/campaigns/targets.ts';
import { sweepDeliveries } from '../../src/deliveries/service.ts';
import { createDigest, runDueDigests } from '../../src/digests/service.ts';
import { formatLetterDate } from '../../src/signatures/emails.ts';
import { confirmSignature, confirmToken, sign } from '../../src/signatures/service.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { DB_KINDS } from '../helpers/db.ts';
import { createLiveCampaign, uniq } from '../helpers/fixtures.ts';
import { eventually, mailsTo, waitForMail } from '../helpers/subscribers.ts';
import { settled, until } from '../helpers/signing.ts';
import { checkedQuarterHour, scheduleMaintenance } from '../../workers/maintenance.ts';

const DAY_MS = 24 * 3600_000;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Signer {
  fullName: string;
  city: string;
  country: string;
  personalNote: string;
  email: string;
}

const csvOf = (mail: ParsedMail) => parse(mail.attachments[0]!.content.toString('utf8'), { columns: true, bom: true }) as Record<string, string>[];

describe.each(DB_KINDS)('letters in digest mode on %s', (kind) => {
  let ctx: TestContext;

  /**
   * A live digest campaign, due every day from midnight UTC, so it is due whenever the test runs.
   * With `confirmByEmail` it asks signers to confirm, and each does with the token their email's
   * link carries (derived here as the app derives it).
   */
  async function digestCampaign({ confirmByEmail = false } = {}) {
    const tag = uniq('digest');
    const targets = {
      name: `court@${tag}.example`,
      place: `ministry@${tag}.example`,
      full: `ombudsman@${tag}.example`,
    };
    const { slug } = await createLiveCampaign(ctx.db, {
      deliveryMode: 'digest',
      digestHour: 0,
      requireConfirmation: confirmByEmail,
      targets: [
        { name: 'District Court', email: targets.name, salutation: 'Your Honour', disclose: 'name' },
        { name: 'Foreign Ministry', email: targets.place, salutation: 'Dear Minister', disclose: 'name_place' },
        { name: 'Ombudsman', email: targets.full, disclose: 'full' },
      ],
    });
    const campaign = await getCampaign(ctx.db, slug);
    let n = 0;
    const addSigner = async (fields: Partial<Signer> = {}): Promise<Signer> => {
      n += 1;
      const s = { fullName: `Signer ${n} ${tag}`, email: `s${n}@${tag}.example`, city: `City${n}`, country: 'France', personalNote: n % 2 ? `Note ${n}` : '', ...fields };
      const result = await sign(ctx.db, ctx, slug, s);
      expect(result.kind).toBe(confirmByEmail ? 'confirmation-sent' : 'signed');
      if (confirmByEmail) {
        const { rows } = await ctx.db.query<{ id: number }>('SELECT id FROM signatures WHERE campaign_id = $1 AND email = $2', [campaign.id, s.email]);
        expect((await confirmSignature(ctx.db, ctx, confirmToken(ctx.secret, rows[0]!.id), 0)).kind).toBe('confirmed');
      }
      return s;
    };
    return { slug, id: campaign.id, targets, addSigner };
  }

  beforeAll(async () => {
    ctx = await createTestContext({ db: kind });
    // No maintenance schedules: their own digest run (renewed every minute) could land mid-test;
    // these tests run the digest task themselves.
    await ctx.startWorkers({ schedule: false });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  it('checks for due digests on the quarter hours of the clock, whenever a worker started', async () => {
    await scheduleMaintenance(ctx.queues);
    const scheduler = await ctx.queues.maintenance.getJobScheduler('digest');
    expect(scheduler).toMatchObject({ pattern: '0,15,30,45 * * * *' });
    expect(Number(scheduler!.next) % (15 * 60_000)).toBe(0);
    // A check run a little early or late by its worker's clock counts as of its quarter hour.
    expect(checkedQuarterHour(new Date('2026-12-03T20:59:59.950Z')).toISOString()).toBe('2026-12-03T21:00:00.000Z');
    expect(checkedQuarterHour(new Date('2026-12-03T21:00:04.000Z')).toISOString()).toBe('2026-12-03T21:00:00.000Z');
    // One held up behind a long job is still its own quarter hour's: 21:00's digests do not go at 20:53.
    expect(checkedQuarterHour(new Date('2026-12-03T20:53:00.000Z')).toISOString()).toBe('2026-12-03T20:45:00.000Z');
    expect(checkedQuarterHour(new Date('2026-12-03T21:13:30.000Z')).toISOString()).toBe('2026-12-03T21:00:00.000Z');
    // The other tests here run the tasks themselves.
    for (const id of ['sweep', 'purge', 'digest']) await ctx.queues.maintenance.removeJobScheduler(id);
  });

  it('sends each target one letter naming every new signer with a CSV, and nothing when there is no new signer', async () => {
    const c = await digestCampaign({ confirmByEmail: true });
    const signers = [await c.addSigner(), await c.addSigner(), await c.addSigner({ personalNote: 'Line one\nline two' })];
    // Confirming a signature in digest mode sends no letter by itself.
    await pause(300);
    expect(mailsTo(ctx, c.targets.name)).toEqual([]);

    // The maintenance task, as its schedule runs it.
    await ctx.queues.maintenance.add('digest', { task: 'digest' });
    const [court, ministry, ombudsman] = await Promise.all([c.targets.name, c.targets.place, c.targets.full].map((t) => waitForMail(ctx, t)));
    // The sink has them before the worker records them sent; the next day's letter counts those marked sent.
    await settled(ctx.db);
    for (const letter of [court!, ministry!, ombudsman!]) {
      expect(letter.from!.value[0]).toEqual({ name: '3 supporters via Appeal Test', address: 'letters@appeal.test' });
      expect(letter.subject).toContain('3 supporters');
      for (const s of signers) expect(letter.text).toContain(s.fullName);
      expect(letter.text).toContain('Note 1');
      expect(letter.attachments).toHaveLength(1);
      expect(letter.attachments[0]!.contentType).toBe('text/csv');
      expect(letter.attachments[0]!.filename).toMatch(/-signers-\d{4}-\d\d-\d\d\.csv$/);
      // One letter today: nothing says it is a part.
      expect(`${letter.subject} ${letter.text}`).not.toMatch(/letter \d of \d/);
    }
    expect(court!.text).toContain('Your Honour');
    // Paragraphs in the HTML part, not one block with `white-space: pre-wrap` (which Outlook ignores).
    expect(court!.html).toMatch(/<div dir="auto">Your Honour,?<\/div>/);
    // A signer's name, place and address are each isolated, so a Uyghur name keeps its comma and
    // brackets where they belong; each line of a note takes its own direction.
    expect(court!.html).toMatch(/<li><bdi>[^<]+<\/bdi>/);
    expect(court!.html).not.toContain('pre-wrap');
    // A byte order mark, so that Excel reads the names as UTF-8.
    expect(court!.attachments[0]!.content.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    // A note's line break is quoted, or a strict reader would end the record there.
    expect(court!.attachments[0]!.content.toString('utf8')).toContain(',"Line one\nline two"\r\n');
    expect(court!.text).not.toMatch(/City1|France/);
    // Only the columns this official may see: no empty place columns for a name-only one.
    expect(csvOf(court!)).toEqual(signers.map((s) => ({ name: s.fullName, note: s.personalNote })));
    expect(ministry!.text).toContain('City2, France');
    expect(csvOf(ministry!)).toEqual(signers.map((s) => ({ name: s.fullName, city: s.city, country: s.country, note: s.personalNote })));
    expect(JSON.stringify([ministry!.text, ministry!.html, csvOf(ministry!)])).not.toContain(signers[0]!.email);
    expect(csvOf(ombudsman!)[0]).toEqual({ name: signers[0]!.fullName, city: 'City1', country: 'France', note: 'Note 1', email: signers[0]!.email });

    // The same day again, and the next day with nobody new: nothing. Days as the job counted them:
    // it ran as of the nearest quarter hour, which near midnight is the next day's first.
    const { rows: [made] } = await ctx.db.query<{ created_at: Date }>('SELECT created_at FROM digests WHERE campaign_id = $1', [c.id]);
    const nextDay = new Date(made!.created_at.getTime() + DAY_MS);
    expect(await runDueDigests(ctx.db, ctx.queues, made!.created_at)).toEqual([]);
    expect(await runDueDigests(ctx.db, ctx.queues, nextDay)).toEqual([]);

    // The next day's digest names only who signed since.
    const newcomer = `newcomer@${uniq('since')}.example`;
    await addTargets(ctx.db, c.slug, [{ name: 'Added Between', email: newcomer }]);
    await pause(5);
    const late = await c.addSigner();
    expect(await runDueDigests(ctx.db, ctx.queues, made!.created_at)).toEqual([]);
    const [next] = await runDueDigests(ctx.db, ctx.queues, nextDay);
    expect(next).toMatchObject({ campaignId: c.id, signatures: 1 });
    const second = await waitForMail(ctx, c.targets.place, 2);
    expect(second.from!.value[0]!.name).toBe('1 supporter via Appeal Test');
    expect(csvOf(second).map((r) => r.name)).toEqual([late.fullName]);
    // Since the letter it got, not since they signed: one who confirms days later is new to it too.
    expect(second.text).toContain(`added since our letter of ${formatLetterDate(made!.created_at)}`);
    // Added after the first digest: this is the first letter it gets, and says no "since".
    const first = await waitForMail(ctx, newcomer);
    expect(csvOf(first).map((r) => r.name)).toEqual([late.fullName]);
    expect(first.text).toContain('This letter is signed by the supporter below.');
    await waitForMail(ctx, c.targets.name, 2);
    await pause(300);
    expect(mailsTo(ctx, c.targets.name)).toHaveLength(2);
  });

  it('says "since our letter of" only after a letter that reached the official', async () => {
    const c = await digestCampaign();
    await c.addSigner();
    const first = (await runDueDigests(ctx.db, ctx.queues, new Date())).find((r) => r.campaignId === c.id);
    await waitForMail(ctx, c.targets.name);
    // Every first letter on record as sent (a sent mark commits just after the relay takes it),
    // or the ministry's second would find no letter that reached it yet.
    await until(async () => (await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'digest' AND source_id = $1 AND status <> 'sent'`, [first!.digestId])).rowCount === 0, 'the first digest letters marked sent');
    // The court's server refused that one for good: it never had it.
    await ctx.db.query(`UPDATE deliveries SET status = 'failed', sent_at = NULL WHERE kind = 'digest' AND source_id = $1 AND recipient = $2`, [first!.digestId, c.targets.name]);
    const { rows: [made] } = await ctx.db.query<{ created_at: Date }>('SELECT created_at FROM digests WHERE id = $1', [first!.digestId]);
    await c.addSigner();
    await runDueDigests(ctx.db, ctx.queues, new Date(made!.created_at.getTime() + DAY_MS));
    const [court, ministry] = await Promise.all([waitForMail(ctx, c.targets.name, 2), waitForMail(ctx, c.targets.place, 2)]);
    expect(court!.text).toContain('This letter is signed by the supporter below.');
    expect(ministry!.text).toContain(`added since our letter of ${formatLetterDate(made!.created_at)}`);
  });

  it('passes on no address its owner did not confirm: signed without confirmation, a `full` target sees none', async () => {
    const c = await digestCampaign();
    const signer = await c.addSigner();
    await ctx.queues.maintenance.add('digest', { task: 'digest' });
    const ombudsman = await waitForMail(ctx, c.targets.full);
    expect(csvOf(ombudsman)).toEqual([{ name: signer.fullName, city: signer.city, country: signer.country, note: signer.personalNote, email: '' }]);
    expect(JSON.stringify([ombudsman.text, ombudsman.html])).not.toContain(signer.email);
  });

  it('leaves out a signer who has not confirmed yet, and names them in the first digest after they do', async () => {
    const c = await digestCampaign({ confirmByEmail: true });
    const confirmed = await c.addSigner();
    const pending = { fullName: `Pending Signer ${uniq('p')}`, email: `pending@${uniq('p')}.example`, city: 'Oslo', country: 'Norway', personalNote: 'Not yet' };
    expect((await sign(ctx.db, ctx, c.slug, pending)).kind).toBe('confirmation-sent');
    const { rows: [row] } = await ctx.db.query<{ id: number }>('SELECT id FROM signatures WHERE campaign_id = $1 AND email = $2', [c.id, pending.email]);

    const now = new Date();
    expect((await runDueDigests(ctx.db, ctx.queues, now)).find((r) => r.campaignId === c.id)).toMatchObject({ signatures: 1 });
    const first = await waitForMail(ctx, c.targets.full);
    expect(csvOf(first).map((r) => r.name)).toEqual([confirmed.fullName]);
    expect(JSON.stringify([first.text, first.html, first.attachments[0]!.content.toString('utf8')])).not.toMatch(new RegExp(`${pending.fullName}|${pending.email}|Not yet`));
    const { rows: [unclaimed] } = await ctx.db.query<{ digest_id: number | null }>('SELECT digest_id FROM signatures WHERE id = $1', [row!.id]);
    expect(unclaimed!.digest_id).toBeNull();

    expect((await confirmSignature(ctx.db, ctx, confirmToken(ctx.secret, row!.id), 0)).kind).toBe('confirmed');
    const next = (await runDueDigests(ctx.db, ctx.queues, new Date(now.getTime() + DAY_MS))).find((r) => r.campaignId === c.id);
    expect(next).toMatchObject({ signatures: 1 });
    const second = await waitForMail(ctx, c.targets.full, 2);
    expect(csvOf(second)).toEqual([{ name: pending.fullName, city: 'Oslo', country: 'Norway', note: 'Not yet', email: pending.email }]);
    expect(second.text).toContain(pending.fullName);
  });

  it('keeps each line of a note inside its signer: a line of a note cannot pass for one more signer', async () => {
    const c = await digestCampaign();
    await c.addSigner({ fullName: 'Real Signer', personalNote: 'Free them.\n- Famous Person, Astana, Kazakhstan\n\n<b>bold</b> & more\u2028- Another Person, Almaty' });
    await ctx.queues.maintenance.add('digest', { task: 'digest' });
    const court = await waitForMail(ctx, c.targets.name);
    expect(court.text).toContain('This letter is signed by the supporter below.');
    expect(court.text).toContain('- Real Signer\n  > Free them.\n  > - Famous Person, Astana, Kazakhstan\n  >\n  > <b>bold</b> & more\n  > - Another Person, Almaty\n');
    expect(court.text).not.toMatch(/^- Famous/m);
    // A line separator ends a line in a reader as a line feed does: not a signer's line either.
    expect(court.text).not.toMatch(/(^|\u2028)- Another/m);
    expect(court.html).toContain('<blockquote style="margin:0.25em 0 0.5em 1em"><div dir="auto">Free them.</div><div dir="auto">- Famous Person, Astana, Kazakhstan</div><div dir="auto"><br></div><div dir="auto">&lt;b&gt;bold&lt;/b&gt; &amp; more</div><div dir="auto">- Another Person, Almaty</div></blockquote>');
  });

  it('keeps a right-to-left name and place in their places in the text list, as <bdi> does in the HTML', async () => {
    const c = await digestCampaign();
    await c.addSigner({ fullName: 'ئابدۇرېھىم ئەخمەت', city: 'ئۈرۈمچى', country: '中国', personalNote: '' });
    await c.addSigner({ fullName: 'Dana Latin', city: 'Lyon', country: 'France', personalNote: '' });
    await ctx.queues.maintenance.add('digest', { task: 'digest' });
    const ministry = await waitForMail(ctx, c.targets.place);
    // Bare, the line is one right-to-left paragraph: the city reads before the name.
    // City and country apart: isolated together, a Uyghur city and a country after it swapped.
    expect(ministry.text).toContain('- \u2068ئابدۇرېھىم ئەخمەت\u2069, \u2068ئۈرۈمچى\u2069, 中国\n');
    expect(ministry.text).toContain('- Dana Latin, Lyon, France\n');
    expect(ministry.html).toContain('<bdi>ئابدۇرېھىم ئەخمەت</bdi>, <bdi>ئۈرۈمچى</bdi>, <bdi>中国</bdi>');
  });

  it('marks the letter in a digest with its case\'s language, and the rest, in English, not', async () => {
    const c = await digestCampaign();
    await ctx.db.query(`UPDATE cases SET language = 'ug' WHERE id = (SELECT case_id FROM campaigns WHERE id = $1)`, [c.id]);
    await c.addSigner();
    expect(await runDueDigests(ctx.db, ctx.queues, new Date())).toHaveLength(1);
    const html = String((await waitForMail(ctx, c.targets.place)).html);
    expect(html).toContain('<div style="font-family:Georgia,serif" lang="ug">');
    expect(html).toMatch(/<\/div>\s*<p>This letter is signed by the supporter below/);
  });

  it('gives a target added since some signed only the signers who came after it', async () => {
    const c = await digestCampaign();
    const before = await c.addSigner();
    const added = `added@${uniq('later')}.example`;
    await addTargets(ctx.db, c.slug, [{ name: 'Added Later', email: added, disclose: 'full' }]);
    await pause(5);
    const after = await c.addSigner();

    await ctx.queues.maintenance.add('digest', { task: 'digest' });
    const [court, later] = await Promise.all([waitForMail(ctx, c.targets.name), waitForMail(ctx, added)]);
    expect(csvOf(court!).map((r) => r.name)).toEqual([before.fullName, after.fullName]);
    expect(csvOf(later!).map((r) => r.name)).toEqual([after.fullName]);
    expect(later!.text).not.toContain(before.fullName);
    expect(later!.from!.value[0]!.name).toBe('1 supporter via Appeal Test');
  });

  it('splits a run with more waiting signers than one letter carries into several letters, each signer in one', async () => {
    const c = await digestCampaign();
    const signers: Signer[] = [];
    for (let i = 0; i < 5; i++) signers.push(await c.addSigner());
    // A name as typed, `=?` and all: a body decodes nothing, so it is not broken up there.
    await ctx.db.query(`UPDATE signatures SET full_name = full_name || ' =?x?=' WHERE email = $1`, [signers[0]!.email]);

    const runs = await runDueDigests(ctx.db, ctx.queues, new Date(), 2);
    expect(runs.map((r) => r.signatures)).toEqual([2, 2, 1]);
    // Done for today: the parts are one day's digest.
    expect(await runDueDigests(ctx.db, ctx.queues, new Date(), 2)).toEqual([]);

    const letters = await waitForMail(ctx, c.targets.place, 3).then(() => mailsTo(ctx, c.targets.place));
    expect(letters).toHaveLength(3);
    const named = letters.flatMap((l) => csvOf(l).map((r) => r.name));
    expect(named.sort()).toEqual([`${signers[0]!.fullName} =?x?=`, ...signers.slice(1).map((s) => s.fullName)].sort());
    expect(letters.map((l) => l.from!.value[0]!.name).sort()).toEqual(['1 supporter via Appeal Test', '2 supporters via Appeal Test', '2 supporters via Appeal Test']);
    expect(letters.some((l) => l.text!.includes(`${signers[0]!.fullName} =?x?=`))).toBe(true);
    // A first digest: no part claims an earlier one ("since our letter of") because of its sibling.
    for (const l of letters) expect(l.text).not.toContain('since our letter');
    // Each says which of the day's letters it is, in the subject, the text, the HTML and its file's name.
    const byPart = letters.map((l) => /letter (\d) of 3\)$/.exec(l.subject!)?.[1]).sort();
    expect(byPart).toEqual(['1', '2', '3']);
    for (const l of letters) {
      const k = /letter (\d) of 3\)$/.exec(l.subject!)![1];
      expect(l.text).toContain(`this is letter ${k} of 3, and each lists different supporters`);
      expect(l.html).toContain(`this is letter ${k} of 3`);
      expect(l.attachments[0]!.filename).toMatch(new RegExp(`-part-${k}-of-3\\.csv$`));
    }
  });

  it('puts each signer under the text they confirmed: a letter saved anew while they waited goes to those after only', async () => {
    const c = await digestCampaign();
    const early = [await c.addSigner(), await c.addSigner()];
    const campaign = await getCampaign(ctx.db, c.slug);
    const caseSlug = (await ctx.db.query<{ slug: string }>('SELECT slug FROM cases WHERE id = $1', [campaign.case_id])).rows[0]!.slug;
    const rewritten = 'We, the undersigned, now say something else entirely.\n\n{{date}}';
    await updateCampaignDetails(ctx.db, c.slug, { caseSlug, title: campaign.title, summary: campaign.summary, deliveryMode: 'digest', digestHour: campaign.digest_hour, requireConfirmation: campaign.require_confirmation, letter: { subject: campaign.letter_subject, body: rewritten } });
    const late = await c.addSigner();

    const runs = await runDueDigests(ctx.db, ctx.queues, new Date());
    expect(runs.map((r) => r.signatures)).toEqual([2, 1]);
    const letters = await waitForMail(ctx, c.targets.place, 2).then(() => mailsTo(ctx, c.targets.place));
    const under = (name: string) => letters.find((l) => csvOf(l).some((r) => r.name === name))!;
    for (const s of early) {
      expect(under(s.fullName).text).not.toContain('something else entirely');
      // The words of the text they signed (the fixture's), not a line of it reduced to a comma.
      expect(under(s.fullName).text).toContain('I write about');
    }
    expect(under(late.fullName).text).toContain('We, the undersigned, now say something else entirely.');
    expect(csvOf(under(late.fullName)).map((r) => r.name)).toEqual([late.fullName]);
    // The official is told why the day's letters read differently.
    for (const l of letters) expect(l.text!.replace(/\s+/g, ' ')).toContain("Our letter was worded anew while people were signing it, so today's digest comes in 2 letters, sent together, each signed by those who signed its words");
  });

  it('does not split a day\'s signers by a text saved back as it was', async () => {
    const c = await digestCampaign();
    const first = await c.addSigner();
    const campaign = await getCampaign(ctx.db, c.slug);
    const caseSlug = (await ctx.db.query<{ slug: string }>('SELECT slug FROM cases WHERE id = $1', [campaign.case_id])).rows[0]!.slug;
    const save = (body: string) => updateCampaignDetails(ctx.db, c.slug, { caseSlug, title: campaign.title, summary: campaign.summary, deliveryMode: 'digest', digestHour: campaign.digest_hour, requireConfirmation: campaign.require_confirmation, letter: { subject: campaign.letter_subject, body } });
    await save('A draft saved by mistake.\n\n{{date}}');
    await save(campaign.letter_body);
    const second = await c.addSigner();
    const runs = await runDueDigests(ctx.db, ctx.queues, new Date());
    expect(runs.map((r) => r.signatures)).toEqual([2]);
    const [letter] = await waitForMail(ctx, c.targets.place, 1).then(() => mailsTo(ctx, c.targets.place));
    expect(csvOf(letter!).map((r) => r.name).sort()).toEqual([first.fullName, second.fullName].sort());
    expect(letter!.text).not.toContain('A draft saved by mistake.');
  });

  // PGlite has one connection: a save and a digest cannot meet there.
  it.runIf(kind === 'postgres')('lets a save of the letter that meets the day\'s digest wait for it, or it for the save, never deadlock', async () => {
    const c = await digestCampaign();
    const signers = [await c.addSigner(), await c.addSigner()];
    // The save as updateCampaignDetails makes it, held between its two steps while the digest runs.
    let digest!: Promise<unknown>;
    await ctx.db.transaction(async (tx) => {
      await lockCampaign(tx, c.id);
      const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      digest = runDueDigests(ctx.db, ctx.queues, new Date());
      digest.catch(() => {});
      await until(async () => {
        const waiting = await ctx.db.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))', [rows[0]!.pid]);
        return waiting.rowCount! > 0;
      }, 'the digest to wait for the save');
      await keepReplacedLetter(tx, c.id, { subject: 'New subject', body: 'Worded anew while the digest was being made.\n\n{{date}}' });
    });
    await expect(digest).resolves.toMatchObject([{ signatures: 2 }]);
    const [letter] = await waitForMail(ctx, c.targets.place, 1).then(() => mailsTo(ctx, c.targets.place));
    expect(csvOf(letter!).map((r) => r.name).sort()).toEqual(signers.map((s) => s.fullName).sort());
    expect(letter!.text).not.toContain('Worded anew');
  });

  it('sends a digest made before the letter was saved anew with the text it was made under', async () => {
    const c = await digestCampaign();
    const signer = await c.addSigner();
    const campaign = await getCampaign(ctx.db, c.slug);
    const caseSlug = (await ctx.db.query<{ slug: string }>('SELECT slug FROM cases WHERE id = $1', [campaign.case_id])).rows[0]!.slug;
    // Made (its letters queued, not yet sent), then the letter saved anew before they go.
    await ctx.db.transaction((tx) => createDigest(tx, c.id, new Date()));
    await updateCampaignDetails(ctx.db, c.slug, { caseSlug, title: campaign.title, summary: campaign.summary, deliveryMode: 'digest', digestHour: campaign.digest_hour, requireConfirmation: campaign.require_confirmation, letter: { subject: campaign.letter_subject, body: 'Rewritten after the digest was made.\n\n{{date}}' } });
    await sweepDeliveries(ctx.db, ctx.queues, 0);
    const [letter] = await waitForMail(ctx, c.targets.place, 1).then(() => mailsTo(ctx, c.targets.place));
    expect(csvOf(letter!).map((r) => r.name)).toEqual([signer.fullName]);
    expect(letter!.text).not.toContain('Rewritten after the digest was made.');
  });

  it('splits a day\'s signers by the bytes their letters will weigh, not only by their number', async () => {
    // A note of blank lines weighs many times its characters in the HTML part, one element a line;
    // Unicode's line and paragraph separators are kept as a line break and a blank line.
    for (const separator of ['\n', '\u2028', '\u2029']) {
      const c = await digestCampaign();
      const heavy = `Free her${separator.repeat(separator === '\u2029' ? 990 : 1985)}now`;
      await c.addSigner({ personalNote: heavy });
      await c.addSigner({ personalNote: heavy });
      for (let i = 0; i < 3; i++) await c.addSigner({ personalNote: 'Short.' });
      // A budget one heavy note passes: each heavy signer ends a letter; the light ones share one.
      const runs = await runDueDigests(ctx.db, ctx.queues, new Date(), 250, 50_000);
      expect(runs.map((r) => r.signatures), JSON.stringify(separator)).toEqual([1, 1, 3]);
      await waitForMail(ctx, c.targets.full, 3);
      expect(mailsTo(ctx, c.targets.full).map((m) => csvOf(m).length).sort()).toEqual([1, 1, 3]);
    }
  });

  it('numbers the parts a target added during the day gets among those it gets, not among the day\'s', async () => {
    const c = await digestCampaign();
    for (let i = 0; i < 2; i++) await c.addSigner();
    const added = `added@${uniq('parts')}.example`;
    await addTargets(ctx.db, c.slug, [{ name: 'Added Later', email: added }]);
    await pause(5);
    const after = await c.addSigner();

    expect((await runDueDigests(ctx.db, ctx.queues, new Date(), 2)).map((r) => r.signatures)).toEqual([2, 1]);
    const [letter] = await waitForMail(ctx, added).then(() => mailsTo(ctx, added));
    expect(csvOf(letter!).map((r) => r.name)).toEqual([after.fullName]);
    // It gets no "letter 1 of 2": this one is all it gets that day, and must not tell it one is missing.
    expect(letter!.subject).not.toMatch(/letter \d of \d/);
    expect(letter!.text).not.toContain('this is letter');
    expect(letter!.attachments[0]!.filename).not.toContain('-part-');
  });

  it('sends no second digest the same day after a run that ended on a full letter', async () => {
    const c = await digestCampaign();
    for (let i = 0; i < 4; i++) await c.addSigner();
    const now = new Date();
    expect((await runDueDigests(ctx.db, ctx.queues, now, 2)).map((r) => r.signatures)).toEqual([2, 2]);
    // Someone confirms later the same day: tomorrow's digest, not a third letter today.
    await c.addSigner();
    // A minute later, or the day's last moment when that is sooner (a run at 23:59).
    const later = new Date(Math.min(now.getTime() + 60_000, Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) - 1));
    expect(await runDueDigests(ctx.db, ctx.queues, later, 2)).toEqual([]);
    expect((await runDueDigests(ctx.db, ctx.queues, new Date(now.getTime() + DAY_MS), 2)).map((r) => r.signatures)).toEqual([1]);
  });

  it('sends no second digest the same day when the digest hour moves later after today\'s went', async () => {
    const c = await digestCampaign();
    await c.addSigner();
    const now = new Date();
    expect((await runDueDigests(ctx.db, ctx.queues, now)).map((r) => r.signatures)).toEqual([1]);
    await ctx.db.query('UPDATE campaigns SET digest_hour = 23 WHERE id = $1', [c.id]);
    await c.addSigner();
    const lateToday = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 23, 30));
    expect(await runDueDigests(ctx.db, ctx.queues, lateToday)).toEqual([]);
    expect((await runDueDigests(ctx.db, ctx.queues, new Date(lateToday.getTime() + DAY_MS))).map((r) => r.signatures)).toEqual([1]);
  });

  it('lets a confirmation someone waits for go before the rest of a day\'s digests, not after all of them', async () => {
    const c = await digestCampaign();
    for (let i = 0; i < 8; i++) await c.addSigner();
    const digestTargets = new Set(Object.values(c.targets));
    // A relay slow enough for each digest that a day's run is still going when someone signs.
    const arrived: string[] = [];
    ctx.sink!.behavior.onData = async (session) => {
      const to = session.envelope.rcptTo[0]!.address;
      if (digestTargets.has(to)) await pause(150);
      arrived.push(to);
      return undefined;
    };
    try {
      // One signer a letter: 8 parts to each of 3 targets, 24 digests, more than the worker has slots.
      const runs = await runDueDigests(ctx.db, ctx.queues, new Date(), 1);
      expect(runs).toHaveLength(8);
      await until(() => arrived.length > 0 || undefined, 'the first digest');

      const other = await createLiveCampaign(ctx.db, { requireConfirmation: true });
      const signer = `waiting@${uniq('digest')}.example`;
      expect((await sign(ctx.db, ctx, other.slug, { fullName: 'Someone Waiting', email: signer })).kind).toBe('confirmation-sent');
      await waitForMail(ctx, signer);
      // First come, first served, it would have waited for the 14 digests queued before it
      // besides those in the worker's ten slots.
      const before = arrived.slice(0, arrived.indexOf(signer)).filter((a) => digestTargets.has(a)).length;
      expect(before).toBeLessThanOrEqual(4);
      await until(() => arrived.filter((a) => digestTargets.has(a)).length === 24 || undefined, 'every digest');
    } finally {
      ctx.sink!.behavior.onData = undefined;
    }
  });

  it('puts each signer in exactly one digest across a crash, a re-run, and two runs at once', async () => {
    const c = await digestCampaign();
    const first = [await c.addSigner(), await c.addSigner(), await c.addSigner(), await c.addSigner()];
    const now = new Date();

    // A crash before the digest's transaction commits leaves nothing claimed.
    await expect(ctx.db.transaction(async (tx) => {
      await createDigest(tx, c.id, now);
      throw new Error('worker died');
    })).rejects.toThrow('worker died');
    expect((await ctx.db.query('SELECT 1 FROM signatures WHERE campaign_id = $1 AND digest_id IS NOT NULL', [c.id])).rowCount).toBe(0);

    // A crash after the commit, before any job was added: the letters wait as queued rows.
    const committed = await ctx.db.transaction((tx) => createDigest(tx, c.id, now));
    expect(committed).toMatchObject([{ signatures: 4 }]);
    expect(committed![0]!.deliveryIds).toHaveLength(3);

    // The re-run creates nothing; the sweeper sends what the crashed run left.
    expect(await runDueDigests(ctx.db, ctx.queues, now)).toEqual([]);
    await sweepDeliveries(ctx.db, ctx.queues, 0);
    await Promise.all(Object.values(c.targets).map((t) => waitForMail(ctx, t)));

    // Next day, two runs at once (two maintenance workers) make one digest.
    const second = [await c.addSigner(), await c.addSigner()];
    const tomorrow = new Date(now.getTime() + DAY_MS);
    const runs = (await Promise.all([runDueDigests(ctx.db, ctx.queues, tomorrow), runDueDigests(ctx.db, ctx.queues, tomorrow)])).flat();
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ signatures: 2 });
    await Promise.all(Object.values(c.targets).map((t) => waitForMail(ctx, t, 2)));
    await pause(300);

    for (const target of Object.values(c.targets)) {
      const letters = mailsTo(ctx, target);
      expect(letters).toHaveLength(2);
      const named = letters.flatMap((l) => csvOf(l).map((r) => r.name));
      expect(named.sort()).toEqual([...first, ...second].map((s) => s.fullName).sort());
    }
    const digests = await ctx.db.query<{ digest_id: number; n: number }>(
      'SELECT digest_id, count(*)::int AS n FROM signatures WHERE campaign_id = $1 GROUP BY digest_id ORDER BY digest_id',
      [c.id],
    );
    expect(digests.rows.map((r) => r.n)).toEqual([4, 2]);
    expect(digests.rows.every((r) => r.digest_id !== null)).toBe(true);
    await eventually(async () => {
      const { rows } = await ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM deliveries WHERE campaign_id = $1 AND kind = 'digest' AND status = 'sent'`, [c.id]);
      return rows[0]!.n === 6 ? true : undefined;
    });
  });
});
