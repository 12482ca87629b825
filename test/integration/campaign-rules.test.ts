import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeCampaignStatus, getCampaign, updateCampaignDetails } from '../../src/campaigns/service.ts';
import { countSignaturesPerDay } from '../../src/campaigns/queries.ts';
import { createCase, getCase, unpublishCase } from '../../src/cases/service.ts';
import { confirmSubscription, getPreferences, optinToken, requestSubscription } from '../../src/subscribers/service.ts';
import { addTargets, listTargets, reinstateTarget, removeTarget, updateTarget } from '../../src/campaigns/targets.ts';
import type { Db } from '../../src/db/index.ts';
import type { Delivery } from '../../src/deliveries/types.ts';
import { MAX_TARGETS } from '../../src/campaigns/types.ts';
import { ValidationError } from '../../src/errors.ts';
import { confirmSignature, confirmToken, sign } from '../../src/signatures/service.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign, createToken, LETTER_BODY, uniq } from '../helpers/fixtures.ts';
import { createLetterCampaign, insertLetters } from '../helpers/faults.ts';
import { countSentElsewhere, sendAgainToCurrentAddress } from '../../src/deliveries/service.ts';
import { forgetPerson } from '../../src/retention/service.ts';
import { whileHeld } from '../helpers/locks.ts';
import { createComposers } from '../../workers/index.ts';

describe('campaign rules that keep letters from being lost or doubled', () => {
  let ctx: TestContext;
  let base: string;
  let token: string;

  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres' });
    base = await ctx.startWeb();
    token = await createToken(ctx.db);
  });
  afterAll(async () => {
    await ctx?.close();
  });

  it('refuses two targets with the same email, since the second would never get a letter', async () => {
    const caseRes = await fetch(`${base}/api/v1/cases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ slug: uniq('case'), personName: 'A. Person', summary: 'S', status: 'detained' }),
    });
    const kase = (await caseRes.json()) as { slug: string };
    const before = (await ctx.db.query('SELECT count(*)::int AS n FROM campaigns')).rows[0];
    const res = await fetch(`${base}/api/v1/campaigns`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        slug: uniq('camp'), caseSlug: kase.slug, title: 'T', summary: '',
        letter: { subject: 'S', body: 'B' },
        targets: [{ name: 'One', email: 'same@gov.example' }, { name: 'Two', email: 'SAME@gov.example' }],
      }),
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { fields: Record<string, string> } }).error.fields['targets.1.email']).toMatch(/another target/);
    expect((await ctx.db.query('SELECT count(*)::int AS n FROM campaigns')).rows[0]).toEqual(before);
  });

  it('refuses to switch the delivery mode once people have signed, and allows it before', async () => {
    const fresh = await createLiveCampaign(ctx.db);
    const details = (mode: string) => ({ caseSlug: fresh.caseSlug, title: 'Free Aigerim', letter: { subject: 'S', body: 'B' }, deliveryMode: mode });
    await expect(updateCampaignDetails(ctx.db, fresh.slug, details('digest'))).resolves.toMatchObject({ delivery_mode: 'digest' });

    const signed = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    await sign(ctx.db, ctx, signed.slug, { fullName: 'Early Signer', email: 'early@supporter.example' });
    const change = updateCampaignDetails(ctx.db, signed.slug, { ...details('digest'), caseSlug: signed.caseSlug });
    await expect(change).rejects.toBeInstanceOf(ValidationError);
    const { rows } = await ctx.db.query<{ delivery_mode: string }>('SELECT delivery_mode FROM campaigns WHERE slug = $1', [signed.slug]);
    expect(rows[0]!.delivery_mode).toBe('each');
  });

  it('refuses the switch to a digest when someone signs between its first look and its save', async () => {
    const c = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    // The signature commits after the save counted none and before it locks the campaign: its
    // letters went one by one, and a digest would name the signer to every official again.
    const signsMeanwhile: Db = {
      ...ctx.db,
      transaction: async (fn) => {
        await sign(ctx.db, ctx, c.slug, { fullName: 'Quick Signer', email: `${uniq('quick')}@supporter.example` });
        return ctx.db.transaction(fn);
      },
    };
    const change = updateCampaignDetails(signsMeanwhile, c.slug, { caseSlug: c.caseSlug, title: 'Free Aigerim', letter: { subject: 'S', body: 'B' }, deliveryMode: 'digest' });
    await expect(change).rejects.toMatchObject({ fields: { deliveryMode: expect.stringMatching(/once people have signed/) } });
    expect((await getCampaign(ctx.db, c.slug)).delivery_mode).toBe('each');
  });

  it('sends the letters of a signature that waited for a switch to a digest in the digest only', async () => {
    const c = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    const campaign = await getCampaign(ctx.db, c.slug);
    const email = `${uniq('waited')}@supporter.example`;
    // The switch holds the campaign, as updateCampaignDetails does, while a signature's statement
    // (begun before it committed, so its snapshot says `each`) waits for the row.
    const signed = await whileHeld(
      ctx.db,
      async (tx) => {
        await tx.query('SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE', [campaign.id]);
        await tx.query(`UPDATE campaigns SET delivery_mode = 'digest' WHERE id = $1`, [campaign.id]);
      },
      () => sign(ctx.db, ctx, c.slug, { fullName: 'Waiting Signer', email }),
    );
    expect(signed.status).toBe('fulfilled');
    const { rows } = await ctx.db.query<{ n: number }>(
      `SELECT count(d.id)::int AS n FROM signatures s LEFT JOIN deliveries d ON d.kind = 'letter' AND d.source_id = s.id WHERE s.email = $1`,
      [email],
    );
    expect(rows).toEqual([{ n: 0 }]);
  });

  it('writes to the corrected address when a signature waited for the correction', async () => {
    const c = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    const campaign = await getCampaign(ctx.db, c.slug);
    const [judge] = await listTargets(ctx.db, campaign.id);
    const corrected = `${uniq('corrected')}@court.example`;
    const email = `${uniq('waited')}@supporter.example`;
    // The correction holds the campaign, as updateTarget does, while a signature's statement
    // (begun before it committed, so its snapshot has the old address) waits for the row.
    const signed = await whileHeld(
      ctx.db,
      async (tx) => {
        await tx.query('SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE', [campaign.id]);
        await tx.query('UPDATE targets SET email = $2 WHERE id = $1', [judge!.id, corrected]);
      },
      () => sign(ctx.db, ctx, c.slug, { fullName: 'Waiting Signer', email }),
    );
    expect(signed.status).toBe('fulfilled');
    const { rows } = await ctx.db.query<{ recipient: string }>(
      `SELECT d.recipient FROM signatures s JOIN deliveries d ON d.kind = 'letter' AND d.source_id = s.id WHERE s.email = $1 AND d.target_id = $2`,
      [email, judge!.id],
    );
    expect(rows).toEqual([{ recipient: corrected }]);
  });

  it('sends no confirmation email that waited while its campaign closed', async () => {
    const c = await createLiveCampaign(ctx.db);
    const email = `${uniq('closing')}@supporter.example`;
    await sign(ctx.db, ctx, c.slug, { fullName: 'Closing Signer', email });
    await changeCampaignStatus(ctx.db, c.slug, 'close');
    const { rows: [delivery] } = await ctx.db.query<Delivery>(`SELECT * FROM deliveries WHERE kind = 'confirm' AND recipient = $1`, [email]);
    expect(await createComposers(ctx).confirm!(ctx.db, delivery!)).toBeNull();
  });

  it('refuses to move a campaign to another case once people have signed, and allows it before', async () => {
    const other = await createLiveCampaign(ctx.db);
    const details = (caseSlug: string) => ({ caseSlug, title: 'Free Aigerim', letter: { subject: 'S', body: 'B' }, deliveryMode: 'each' });
    const fresh = await createLiveCampaign(ctx.db);
    const caseOf = async (slug: string) =>
      (await ctx.db.query<{ slug: string }>('SELECT k.slug FROM campaigns c JOIN cases k ON k.id = c.case_id WHERE c.slug = $1', [slug])).rows[0]!.slug;
    await updateCampaignDetails(ctx.db, fresh.slug, details(other.caseSlug));
    expect(await caseOf(fresh.slug)).toBe(other.caseSlug);

    const signed = await createLiveCampaign(ctx.db, { requireConfirmation: false });
    await sign(ctx.db, ctx, signed.slug, { fullName: 'Early Signer', email: 'early-case@supporter.example' });
    const change = updateCampaignDetails(ctx.db, signed.slug, details(other.caseSlug));
    await expect(change).rejects.toMatchObject({ fields: { caseSlug: expect.stringMatching(/once people have signed/) } });
    expect(await caseOf(signed.slug)).toBe(signed.caseSlug);
  });

  it('launches a draft only on a published case, also when a save moved it to an unpublished one as the launch began', async () => {
    const hidden = uniq('hidden');
    await createCase(ctx.db, { slug: hidden, personName: 'Hidden Person Name', summary: 'Not yet agreed with the family.', status: 'detained' }, { published: false });
    const draft = await createLiveCampaign(ctx.db, {}, 'draft');
    const campaign = await getCampaign(ctx.db, draft.slug);
    // The save holds the draft, as updateCampaignDetails does, while the launch (which read the
    // campaign before it) waits for the row.
    const launched = await whileHeld(
      ctx.db,
      async (tx) => {
        await tx.query('SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE', [campaign.id]);
        await tx.query('UPDATE campaigns SET case_id = (SELECT id FROM cases WHERE slug = $2) WHERE id = $1', [campaign.id, hidden]);
      },
      () => changeCampaignStatus(ctx.db, draft.slug, 'launch'),
    );
    expect(launched).toMatchObject({ status: 'rejected', reason: { code: 'case_unpublished' } });
    expect((await getCampaign(ctx.db, draft.slug)).status).toBe('draft');
  });

  it('moves a launched campaign only to a published case, since it would show the person on the home page', async () => {
    const hidden = uniq('hidden');
    await createCase(ctx.db, { slug: hidden, personName: 'Hidden Person Name', summary: 'Not yet agreed with the family.', status: 'detained' }, { published: false });
    // The fixture's letter: a closed campaign's may not change.
    const details = { caseSlug: hidden, title: 'Free Aigerim', letter: { subject: 'About {{case.personName}}', body: LETTER_BODY }, deliveryMode: 'each' };
    for (const status of ['live', 'paused', 'closed'] as const) {
      const { slug, caseSlug } = await createLiveCampaign(ctx.db, {}, status);
      await expect(updateCampaignDetails(ctx.db, slug, details)).rejects.toMatchObject({ fields: { caseSlug: expect.stringMatching(/^is not published yet: publish the case of Hidden Person Name first/) } });
      expect((await getCampaign(ctx.db, slug)).case_id).toBe((await getCase(ctx.db, caseSlug)).id);
    }
    // A draft shows nothing yet: it may be written for the case before the case goes public.
    const draft = await createLiveCampaign(ctx.db, {}, 'draft');
    expect((await updateCampaignDetails(ctx.db, draft.slug, details)).case_id).toBe((await getCase(ctx.db, hidden)).id);
  });

  it('sets a target back to the address its letters went to after a mistaken correction, dropping their copies to the mistaken one', async () => {
    const campaign = await createLetterCampaign(ctx.db, 1);
    await insertLetters(ctx.db, campaign, 1);
    await ctx.db.query(`UPDATE deliveries SET status = 'sent', sent_at = now(), attempts = 1 WHERE campaign_id = $1`, [campaign.id]);
    const [target] = await listTargets(ctx.db, campaign.id);
    const fields = { name: target!.name, title: target!.title, salutation: target!.salutation, disclose: target!.disclose };
    const wrong = `wrong@${campaign.tag}.example`;
    await updateTarget(ctx.db, campaign, target!.id, { ...fields, email: wrong }, null, { admin: true });
    const again = await sendAgainToCurrentAddress(ctx.db, { queues: ctx.queues, log: ctx.log }, campaign.id, target!.id);
    expect(again).toBe(1);
    await ctx.db.query(`UPDATE deliveries SET status = 'failed', attempts = 1, last_error = '550 5.1.1 no such user' WHERE recipient = $1`, [wrong]);
    // Set back: the letter went there already, so its failed copy to the mistaken address goes.
    await updateTarget(ctx.db, campaign, target!.id, { ...fields, email: target!.email }, null, { admin: true });
    expect((await listTargets(ctx.db, campaign.id))[0]!.email).toBe(target!.email);
    expect((await ctx.db.query('SELECT recipient, status FROM deliveries WHERE campaign_id = $1', [campaign.id])).rows).toEqual([{ recipient: target!.email, status: 'sent' }]);
  });

  it('moves letters not sent yet to an address changed only in the case of its letters, dropping none', async () => {
    const campaign = await createLetterCampaign(ctx.db, 1);
    await insertLetters(ctx.db, campaign, 3);
    await ctx.db.query(`UPDATE deliveries SET status = 'failed', attempts = 1, last_error = '451 try later' WHERE id = (SELECT min(id) FROM deliveries WHERE campaign_id = $1)`, [campaign.id]);
    const [target] = await listTargets(ctx.db, campaign.id);
    const capitalised = target!.email.replace(/^o/, 'O');
    const { failedMoved } = await updateTarget(ctx.db, campaign, target!.id, { name: target!.name, title: target!.title, salutation: target!.salutation, disclose: target!.disclose, email: capitalised }, null, { admin: true });
    expect(failedMoved).toBe(1);
    expect((await ctx.db.query('SELECT recipient, status FROM deliveries WHERE campaign_id = $1 ORDER BY id', [campaign.id])).rows).toEqual([
      { recipient: capitalised, status: 'failed' }, { recipient: capitalised, status: 'queued' }, { recipient: capitalised, status: 'queued' },
    ]);
  });

  it("keeps a signed-for official's address an admin's to change: an organizer's letters-in-waiting would follow it anywhere", async () => {
    const campaign = await createLetterCampaign(ctx.db, 1);
    const [target] = await listTargets(ctx.db, campaign.id);
    const fields = { name: target!.name, title: target!.title, salutation: target!.salutation, disclose: target!.disclose };
    // Nobody signed yet: a draft's typo is anyone's to fix.
    const typo = `typo@${campaign.tag}.example`;
    await expect(updateTarget(ctx.db, campaign, target!.id, { ...fields, email: typo }, null, { admin: false })).resolves.toMatchObject({ target: { email: typo } });
    await insertLetters(ctx.db, campaign, 2);
    const elsewhere = updateTarget(ctx.db, campaign, target!.id, { ...fields, email: 'drop@evil.example' }, null, { admin: false });
    await expect(elsewhere).rejects.toMatchObject({ fields: { email: expect.stringMatching(/^people have signed for this official.*only an admin changes it now/) } });
    // It names whom to ask, and what adding the address as another official would not do.
    await createToken(ctx.db, 'admin');
    const { rows: [admin] } = await ctx.db.query<{ name: string; email: string }>(`SELECT name, email FROM organizers WHERE role = 'admin' ORDER BY id LIMIT 1`);
    const refused = await updateTarget(ctx.db, campaign, target!.id, { ...fields, email: 'drop@evil.example' }, null, { admin: false }).catch((err: ValidationError) => err.fields.email!);
    expect(refused).toContain(`send the letters that went to the old address again, to the new one. Ask ${admin!.name ? `${admin!.name} (${admin!.email})` : admin!.email}`);
    expect(refused).toContain('the new address gets the letters of those who sign from now on only, and this one keeps getting theirs until it is removed');
    expect((await ctx.db.query('SELECT DISTINCT recipient FROM deliveries WHERE campaign_id = $1', [campaign.id])).rows).toEqual([{ recipient: typo }]);
    // Its name, or its address in other capitals, stays theirs to correct; an admin may move it.
    await expect(updateTarget(ctx.db, campaign, target!.id, { ...fields, name: 'Judge Corrected', email: typo.toUpperCase() }, null, { admin: false })).resolves.toMatchObject({ target: { name: 'Judge Corrected' } });
    await expect(updateTarget(ctx.db, campaign, target!.id, { ...fields, email: `fixed@${campaign.tag}.example` }, null, { admin: true })).resolves.toMatchObject({ failedMoved: 0 });
  });

  it('offers to send again only letters that can be written again: not those of a signer since forgotten', async () => {
    const campaign = await createLetterCampaign(ctx.db, 1);
    await insertLetters(ctx.db, campaign, 2);
    const forgotten = `${uniq('forgotten')}@supporter.example`;
    await ctx.db.query(`UPDATE signatures SET email = $2 WHERE campaign_id = $1 AND email = 'signer1@supporter.example'`, [campaign.id, forgotten]);
    await ctx.db.query(`UPDATE deliveries SET status = 'sent', sent_at = now(), attempts = 1 WHERE campaign_id = $1`, [campaign.id]);
    await forgetPerson(ctx.db, forgotten, 'cli');
    const [target] = await listTargets(ctx.db, campaign.id);
    await updateTarget(ctx.db, campaign, target!.id, { name: target!.name, title: target!.title, salutation: target!.salutation, disclose: target!.disclose, email: `fixed@${campaign.tag}.example` }, null, { admin: true });
    expect((await countSentElsewhere(ctx.db, campaign.id)).get(target!.id)).toMatchObject({ n: 1 });
    expect(await sendAgainToCurrentAddress(ctx.db, { queues: ctx.queues, log: ctx.log }, campaign.id, target!.id)).toBe(1);
  });

  it('keeps a draft closed without launching private: no page, no listing, no answer from the signing API, its case not announced', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db, { title: 'Discarded draft title' }, 'draft');
    expect((await changeCampaignStatus(ctx.db, slug, 'close')).campaign).toMatchObject({ status: 'closed', discarded: true });
    expect((await fetch(`${base}/c/${slug}`)).status).toBe(404);
    expect(await (await fetch(`${base}/cases/${caseSlug}`)).text()).not.toContain('Discarded draft title');
    // Nor is its case offered to subscribers to follow, as a case a launched campaign made public is.
    const follower = `${uniq('follower')}@supporter.example`;
    await requestSubscription(ctx.db, ctx, { email: follower }, 'api');
    const { rows: [row] } = await ctx.db.query<{ id: number; optin_round: number }>('SELECT id, optin_round FROM subscribers WHERE email = $1', [follower]);
    const confirmed = await confirmSubscription(ctx.db, ctx, optinToken(ctx.secret, row!));
    if (confirmed === 'already-confirmed') throw new Error('the opt-in was confirmed before');
    const offered = async () => (await getPreferences(ctx.db, confirmed.manageToken)).cases.map((c) => c.slug);
    expect(await offered()).not.toContain(caseSlug);
    const signing = await fetch(`${base}/api/v1/campaigns/${slug}/signatures`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fullName: 'Guessing Slugs', email: 'guess@supporter.example' }),
    });
    expect(signing.status).toBe(404);
    expect(await signing.text()).not.toContain('Discarded draft title');
    // Thrown away, it announced nothing: the case may still go back to unpublished.
    expect((await unpublishCase(ctx.db, caseSlug)).changed).toBe(true);
    // A campaign closed after it was launched stays public, as before, and its case may be followed.
    const ended = await createLiveCampaign(ctx.db, { title: 'Ended campaign title' }, 'closed');
    expect((await fetch(`${base}/c/${ended.slug}`)).status).toBe(200);
    expect(await offered()).toContain(ended.caseSlug);
  });

  it('writes to a target put back for signatures made before it was taken off and after, never for one made while it was off', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Court', email: `court-${uniq('t')}@court.example` }, { name: 'Embassy', email: `emb-${uniq('t')}@embassy.example`, disclose: 'name' }] });
    const campaign = await getCampaign(ctx.db, slug);
    const [, embassy] = await listTargets(ctx.db, campaign.id);
    const signAs = async (who: string) => {
      const email = `${who}-${uniq('s')}@supporter.example`;
      await sign(ctx.db, ctx, slug, { fullName: who, email });
      return (await ctx.db.query<{ id: number }>('SELECT id FROM signatures WHERE email = $1', [email])).rows[0]!.id;
    };
    const confirm = async (id: number) => expect((await confirmSignature(ctx.db, ctx, confirmToken(ctx.secret, id), 0)).kind).toBe('confirmed');
    // A letter went to the embassy, so taking it off keeps it on record (retired), not deleted.
    await confirm(await signAs('first'));
    await ctx.db.query(`UPDATE deliveries SET status = 'sent', sent_at = now() WHERE kind = 'letter' AND target_id = $1`, [embassy!.id]);
    const before = await signAs('before');
    expect(await removeTarget(ctx.db, slug, embassy!.id)).toMatchObject({ retired: true });
    // The page this signer saw named the court alone.
    const whileOff = await signAs('while-off');
    await reinstateTarget(ctx.db, campaign, embassy!.id);
    const after = await signAs('after');
    for (const id of [before, whileOff, after]) await confirm(id);
    const { rows } = await ctx.db.query<{ source_id: number }>(`SELECT source_id FROM deliveries WHERE kind = 'letter' AND target_id = $1 AND source_id = ANY ($2) ORDER BY source_id`, [embassy!.id, [before, whileOff, after]]);
    expect(rows.map((r) => r.source_id)).toEqual([before, after]);
    // Those who signed before it was taken off were told it learns their name only: that holds.
    await expect(updateTarget(ctx.db, campaign, embassy!.id, { name: 'Embassy', email: embassy!.email, disclose: 'full' }, null, { admin: true })).rejects.toBeInstanceOf(ValidationError);
  });

  it('writes to a retired target again only while the campaign has room for it (MAX_TARGETS)', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Court', email: `court-${uniq('t')}@court.example` }] });
    const campaign = await getCampaign(ctx.db, slug);
    const [court] = await listTargets(ctx.db, campaign.id);
    await ctx.db.query('UPDATE targets SET retired_at = now() WHERE id = $1', [court!.id]);
    await addTargets(ctx.db, slug, Array.from({ length: MAX_TARGETS }, (_, i) => ({ name: `Member ${i}`, email: `member-${i}-${uniq('m')}@parliament.example` })));
    await expect(reinstateTarget(ctx.db, campaign, court!.id)).rejects.toMatchObject({ code: 'too_many_targets', message: expect.stringContaining(`writes to ${MAX_TARGETS} officials already`) });
    expect((await listTargets(ctx.db, campaign.id)).find((t) => t.id === court!.id)?.retired_at).not.toBeNull();
    // With one taken off, it fits again.
    const [member] = (await listTargets(ctx.db, campaign.id)).filter((t) => t.id !== court!.id);
    await removeTarget(ctx.db, slug, member!.id);
    await expect(reinstateTarget(ctx.db, campaign, court!.id)).resolves.toMatchObject({ changed: true });
  });

  it('keeps a closed campaign\'s letter and officials as they were, while its title and its targets\' addresses may still be corrected', async () => {
    const { slug, caseSlug } = await createLiveCampaign(ctx.db, {}, 'closed');
    const campaign = await getCampaign(ctx.db, slug);
    const details = { caseSlug, title: 'Free Aigerim: she was released', letter: { subject: campaign.letter_subject, body: campaign.letter_body }, deliveryMode: 'each' };
    await expect(updateCampaignDetails(ctx.db, slug, { ...details, letter: { subject: 'New words', body: 'Written after closing' } })).rejects.toMatchObject({
      fields: { 'letter.subject': expect.stringMatching(/closed/), 'letter.body': expect.stringMatching(/closed/) },
    });
    // Nobody signed it, so its mode may change; its letter still may not, alongside or alone.
    await expect(updateCampaignDetails(ctx.db, slug, { ...details, deliveryMode: 'digest', letter: { subject: 'New words', body: campaign.letter_body } })).rejects.toMatchObject({
      fields: { 'letter.subject': expect.stringMatching(/closed/) },
    });
    await expect(updateCampaignDetails(ctx.db, slug, details)).resolves.toMatchObject({ title: 'Free Aigerim: she was released', letter_body: campaign.letter_body });

    await expect(addTargets(ctx.db, slug, [{ name: 'After Close', email: 'after@gov.example' }])).rejects.toMatchObject({ code: 'campaign_closed' });
    const [judge, ministry] = await listTargets(ctx.db, campaign.id);
    await ctx.db.query('UPDATE targets SET retired_at = now() WHERE id = $1', [ministry!.id]);
    await expect(reinstateTarget(ctx.db, campaign, ministry!.id)).rejects.toMatchObject({ code: 'campaign_closed' });
    await expect(updateTarget(ctx.db, campaign, judge!.id, { name: judge!.name, email: 'fixed@court.example' }, null, { admin: true })).resolves.toMatchObject({ target: { email: 'fixed@court.example' } });
    expect((await listTargets(ctx.db, campaign.id, { withRetired: true })).map((t) => [t.name, !!t.retired_at])).toEqual([['Judge One', false], ['Ministry', true]]);

    const page = await fetch(`${base}/c/${slug}`);
    expect(await page.text()).not.toContain('After Close');
  });

  it('answers a NUL character in an address or form with a 4xx, not a server error', async () => {
    expect((await fetch(`${base}/c/%00`)).status).toBe(400);
    expect((await fetch(`${base}/cases/%00`)).status).toBe(400);
    const res = await fetch(`${base}/api/v1/cases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ slug: uniq('case'), personName: 'A', summary: 'with \u0000 inside', status: 'detained' }),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
  it('counts signatures per UTC day on a server whose own time zone keeps summer time', async () => {
    // A window reaching back across a change of Berlin's offset: days counted back from today in
    // Berlin's time would start the first day an hour early or late.
    const offset = (d: Date) => new Intl.DateTimeFormat('en', { timeZone: 'Europe/Berlin', timeZoneName: 'shortOffset' }).formatToParts(d).find((p) => p.type === 'timeZoneName')!.value;
    const today = new Date(new Date().toISOString().slice(0, 10));
    const days = [...Array(200).keys()].map((n) => n + 100).find((n) => offset(new Date(today.getTime() - (n - 1) * 86_400_000)) !== offset(today))!;
    const first = new Date(today.getTime() - (days - 1) * 86_400_000);
    const { slug } = await createLiveCampaign(ctx.db);
    const { id } = await getCampaign(ctx.db, slug);
    await ctx.db.query(
      `INSERT INTO signatures (campaign_id, full_name, email, created_at) VALUES ($1, 'Just In', $2, $3), ($1, 'Just Out', $4, $5)`,
      [id, `${uniq('in')}@supporter.example`, new Date(first.getTime() + 30 * 60_000), `${uniq('out')}@supporter.example`, new Date(first.getTime() - 30 * 60_000)],
    );
    const counted = await ctx.db.transaction(async (tx) => {
      await tx.query("SET LOCAL TimeZone = 'Europe/Berlin'");
      return countSignaturesPerDay(tx, id, days);
    });
    expect(counted).toEqual([{ day: first.toISOString().slice(0, 10), total: 1, confirmed: 0 }]);
  });
});
