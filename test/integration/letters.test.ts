import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ParsedMail } from 'mailparser';
import { insertSuppression } from '../../src/deliveries/suppression-queries.ts';
import { DB_KINDS } from '../helpers/db.ts';
import { whileHeld } from '../helpers/locks.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign, uniq } from '../helpers/fixtures.ts';
import { changeCampaignStatus, getCampaign, updateCampaignDetails } from '../../src/campaigns/service.ts';
import { addTargets, reinstateTarget, removeTarget } from '../../src/campaigns/targets.ts';
import { keepReplacedLetter } from '../../src/campaigns/queries.ts';
import { addressOf, confirmToken, everything, mailTo, pastResendGap, postForm, postJson, settled, until } from '../helpers/signing.ts';
import { RESEND_GAP_SECONDS, sweepDeliveries } from '../../src/deliveries/service.ts';
import { deliveryJobId } from '../../src/queues.ts';

describe.each(DB_KINDS)('letters on %s', (kind) => {
  let ctx: TestContext;
  let base: string;

  beforeAll(async () => {
    ctx = await createTestContext({ db: kind, env: { RATE_LIMIT_PER_IP: '0' } });
    base = await ctx.startWeb();
    // No schedule: a quarter-hour digest check would write to these campaigns while a test looks.
    await ctx.startWorkers({ schedule: false });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  const letterCount = async (slug: string) =>
    (await ctx.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id WHERE c.slug = $1 AND d.kind = 'letter'",
      [slug],
    )).rows[0]!.n;
  const sentTo = (addresses: string[]) => ctx.sink!.messages.filter((m) => addressOf(m.to).some((a) => addresses.includes(a!)));
  /** The job of a confirmation email held back by the resend gap, once added (after the answer that asked for it). */
  const heldJob = (deliveryId: number) =>
    until(async () => {
      const job = await ctx.queues.send.getJob(deliveryJobId(deliveryId));
      return job && (await job.getState()) === 'delayed' ? job : undefined;
    }, 'the held-back email');
  /** Saves a campaign's letter (and a title) as the console's form does, every other detail as it is. */
  const saveLetter = async (slug: string, letter: { subject: string; body: string }, title?: string) => {
    const c = await getCampaign(ctx.db, slug);
    const kase = (await ctx.db.query<{ slug: string }>('SELECT slug FROM cases WHERE id = $1', [c.case_id])).rows[0]!;
    await updateCampaignDetails(ctx.db, slug, {
      caseSlug: kase.slug, title: title ?? c.title, summary: c.summary, deliveryMode: c.delivery_mode, digestHour: c.digest_hour, requireConfirmation: c.require_confirmation, letter,
    });
  };
  const seenLetter = (html: string) => /<input type="hidden" name="letter" value="([^"]+)">/.exec(html)![1]!;
  /** A live campaign writing to one judge, and the `letter` value its sign page carries. */
  const openedPage = async (requireConfirmation: boolean) => {
    const judge = `${uniq('judge')}@court.example`;
    const { slug } = await createLiveCampaign(ctx.db, {
      requireConfirmation,
      letter: { subject: 'Release {{case.personName}}', body: 'Dear {{target.name}},\n\nThe text on the page.\n\n{{supporter.fullName}}' },
      targets: [{ name: 'Judge', email: judge }],
    });
    return { judge, slug, opened: seenLetter(await (await fetch(`${base}/c/${slug}`)).text()) };
  };
  const UNREAD = { subject: 'Deport {{case.personName}}', body: 'Dear {{target.name}},\n\nA text nobody read.\n\n{{supporter.fullName}}' };

  describe('when a supporter signs and confirms', () => {
    const supporter = { full_name: 'Dana Signer', email: `${uniq('dana')}@supporter.example`, city: 'Lyonville', country: 'Freedonia', personal_note: 'Free her now.' };
    const to = { name: `${uniq('name')}@court.example`, place: `${uniq('place')}@gov.example`, full: `${uniq('full')}@gov.example` };
    let slug: string;
    let lettersBeforeConfirm: number;
    let letters: ParsedMail[];
    const letterTo = (address: string) => letters.find((m) => addressOf(m.to)[0] === address)!;

    beforeAll(async () => {
      ({ slug } = await createLiveCampaign(ctx.db, {
        letter: { subject: 'About {{case.personName}}, from {{supporter.city}}', body: 'Dear {{target.name}},\n\n{{supporter.personalNote}}\n\n{{supporter.fullName}}\n{{supporter.city}} {{supporter.country}}' },
        targets: [
          { name: 'Judge Name', email: to.name, salutation: 'Your Honour', disclose: 'name' },
          { name: 'Place Official', email: to.place, disclose: 'name_place' },
          { name: 'Full Official', email: to.full, disclose: 'full' },
        ],
      }));
      const signed = await postForm(`${base}/c/${slug}/sign`, supporter);
      expect(signed.status).toBe(303);
      const [confirmation] = await mailTo(ctx.sink!, supporter.email);
      lettersBeforeConfirm = await letterCount(slug);
      const confirmed = await postForm(`${base}/confirm/${confirmToken(confirmation!)}`, {});
      expect(confirmed.status).toBe(303);
      expect(confirmed.headers.get('location')).toBe(`/c/${slug}/thanks`);
      await settled(ctx.db);
      letters = sentTo(Object.values(to));
    });

    it('sends no letter before the signature is confirmed', () => {
      expect(lettersBeforeConfirm).toBe(0);
    });

    it('sends exactly one letter to each target, addressed to that target alone', () => {
      expect(letters.map((m) => addressOf(m.to)).sort()).toEqual([[to.full], [to.name], [to.place]]);
      for (const m of letters) {
        expect(m.cc).toBeUndefined();
        expect(m.bcc).toBeUndefined();
      }
    });

    it('sends each letter From "<Full Name> via ORG_NAME" at the MAIL_FROM address, with a Message-ID and a plain-text body', () => {
      for (const m of letters) {
        expect(m.from!.value).toEqual([{ name: 'Dana Signer via Appeal Test', address: 'letters@appeal.test' }]);
        expect(m.messageId).toMatch(/^<[^<>@\s]+@[^<>@\s]+>$/);
        expect(m.text).toContain('Free her now.');
        expect(m.text).toContain('Dana Signer');
      }
      expect(letterTo(to.name).text).toMatch(/^Dear Judge Name,/);
    });

    it('tells a `name` target the name only: no city, country or email anywhere in the message', () => {
      const all = everything(letterTo(to.name));
      expect(all).not.toMatch(/Lyonville|Freedonia|supporter\.example/);
      expect(letterTo(to.name).subject).toBe('About Aigerim Test, from');
      expect(letterTo(to.name).replyTo).toBeUndefined();
    });

    it('tells a `name_place` target the city and country but not the email', () => {
      const m = letterTo(to.place);
      expect(m.subject).toBe('About Aigerim Test, from Lyonville');
      expect(m.text).toContain('Lyonville Freedonia');
      expect(everything(m)).not.toContain('supporter.example');
      expect(m.replyTo).toBeUndefined();
    });

    it('gives a `full` target the supporter as Reply-To, and never puts the supporter in From', () => {
      const m = letterTo(to.full);
      expect(addressOf(m.replyTo)).toEqual([supporter.email]);
      expect(m.text).toContain('Lyonville Freedonia');
      expect(addressOf(m.from)).toEqual(['letters@appeal.test']);
    });

    it('sends nothing more when the confirmation is pressed again', async () => {
      const [confirmation] = await mailTo(ctx.sink!, supporter.email);
      const again = await postForm(`${base}/confirm/${confirmToken(confirmation!)}`, {});
      expect(again.status).toBe(303);
      await settled(ctx.db);
      expect(await letterCount(slug)).toBe(3);
      expect(sentTo(Object.values(to))).toHaveLength(3);
    });
  });

  it('sends the letter a supporter signed, even when the organizer changes the text before they confirm', async () => {
    const judge = `${uniq('judge')}@court.example`;
    const { slug } = await createLiveCampaign(ctx.db, {
      letter: { subject: 'Release {{case.personName}}', body: 'Dear {{target.name}},\n\nThe text Ana read.\n\n{{supporter.fullName}}' },
      targets: [{ name: 'Judge', email: judge }],
    });
    const ana = { full_name: 'Ana Early', email: `${uniq('ana')}@supporter.example` };
    expect((await postForm(`${base}/c/${slug}/sign`, ana)).status).toBe(303);
    const [confirmation] = await mailTo(ctx.sink!, ana.email);

    await saveLetter(slug, { subject: 'Free {{case.personName}} now', body: 'Dear {{target.name}},\n\nThe new text.\n\n{{supporter.fullName}}' });

    const ben = { full_name: 'Ben Later', email: `${uniq('ben')}@supporter.example` };
    expect((await postForm(`${base}/c/${slug}/sign`, ben)).status).toBe(303);
    const [benConfirmation] = await mailTo(ctx.sink!, ben.email);
    expect((await postForm(`${base}/confirm/${confirmToken(confirmation!)}`, {})).status).toBe(303);
    expect((await postForm(`${base}/confirm/${confirmToken(benConfirmation!)}`, {})).status).toBe(303);
    await settled(ctx.db);

    const letters = sentTo([judge]);
    const of = (name: string) => letters.find((m) => m.text!.includes(name))!;
    expect(of('Ana Early')).toMatchObject({ subject: expect.stringMatching(/^Release /) });
    expect(of('Ana Early').text).toContain('The text Ana read.');
    expect(of('Ben Later')).toMatchObject({ subject: expect.stringMatching(/^Free .* now$/) });
    expect(of('Ben Later').text).toContain('The new text.');
  });

  it('sends the letter the sign page showed, even when the organizer saved a new one while the supporter typed', async () => {
    const { judge, slug, opened } = await openedPage(false);
    await saveLetter(slug, UNREAD);

    // Signed from the page opened before the edit, from one opened after it, and with no field (the API's way).
    const reloaded = seenLetter(await (await fetch(`${base}/c/${slug}`)).text());
    expect(reloaded).not.toBe(opened);
    for (const [name, letter] of [['Typed Before', opened], ['Opened After', reloaded], ['No Field', undefined]] as const) {
      const form = { full_name: name, email: `${uniq('s')}@supporter.example`, ...(letter ? { letter } : {}) };
      expect((await postForm(`${base}/c/${slug}/sign`, form)).status).toBe(303);
    }
    // A title changed since, the letter not: the page's letter is the one there is.
    await saveLetter(slug, UNREAD, 'Renamed');
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'After Rename', email: `${uniq('s')}@supporter.example`, letter: reloaded })).status).toBe(303);
    await settled(ctx.db);

    const letters = sentTo([judge]);
    expect(letters).toHaveLength(4);
    const of = (name: string) => letters.find((m) => m.text!.includes(name))!;
    expect(of('Typed Before').subject).toMatch(/^Release /);
    expect(of('Typed Before').text).toContain('The text on the page.');
    for (const name of ['Opened After', 'No Field', 'After Rename']) expect(of(name).text).toContain('A text nobody read.');
  });

  it('refuses, keeping what was typed, a signature for a letter the organizer replaced over an hour ago: a withdrawn text goes to nobody', async () => {
    const v1 = { subject: 'Release {{case.personName}} – ümit', body: 'Dear {{target.name}},\n\nThe corrected text, «Қазақ».\n\n{{supporter.fullName}}' };
    const v2 = { ...v1, body: 'Dear {{target.name}},\n\nThe corrected text, «Қазақ», again.\n\n{{supporter.fullName}}' };
    for (const requireConfirmation of [false, true]) {
      const { judge, slug, opened } = await openedPage(requireConfirmation);
      await saveLetter(slug, v1);
      const corrected = seenLetter(await (await fetch(`${base}/c/${slug}`)).text());
      await saveLetter(slug, v2);
      const current = seenLetter(await (await fetch(`${base}/c/${slug}`)).text());
      // The first text was replaced an hour ago; the second moments ago, and its page is still honoured.
      await ctx.db.query(
        `UPDATE letter_versions SET replaced_at = now() - interval '61 minutes'
          WHERE campaign_id = (SELECT id FROM campaigns WHERE slug = $1) AND letter_body LIKE '%The text on the page.%'`,
        [slug],
      );
      const typed = { full_name: 'Old Tab', email: `${uniq('old')}@supporter.example`, personal_note: 'Typed for an hour.' };
      const stale = await postForm(`${base}/c/${slug}/sign`, { ...typed, letter: opened });
      expect(stale.status).toBe(409);
      const page = await stale.text();
      expect(page).toContain('The letter changed while this page was open. Nothing was sent');
      expect(page).toContain('The corrected text, «Қазақ», again.');
      expect(page).toContain('Typed for an hour.');
      expect((await ctx.db.query('SELECT 1 FROM signatures WHERE email = $1', [typed.email])).rows).toEqual([]);
      expect(await letterCount(slug)).toBe(0);

      // Signed again from the page it came back on; from the page of the text replaced moments
      // ago; and, after a rename, from a page of the current text (another revision, the same letter).
      await saveLetter(slug, v2, 'Renamed');
      const signers = [
        { ...typed, letter: seenLetter(page) },
        { full_name: 'Recent Tab', email: `${uniq('recent')}@supporter.example`, letter: corrected },
        { full_name: 'Before Rename', email: `${uniq('rename')}@supporter.example`, letter: current },
        // A field naming no letter at all (damaged, or a form of one's own) is no field; where letters
        // go at once, one that names no targets is refused for that (see below).
        ...(requireConfirmation ? [{ full_name: 'No Fingerprint', email: `${uniq('none')}@supporter.example`, letter: '5' }] : []),
      ];
      for (const signer of signers) {
        expect((await postForm(`${base}/c/${slug}/sign`, signer)).status).toBe(303);
        if (requireConfirmation) {
          const [confirmation] = await mailTo(ctx.sink!, signer.email);
          expect((await postForm(`${base}/confirm/${confirmToken(confirmation!)}`, {})).status).toBe(303);
        }
      }
      await settled(ctx.db);
      const letters = sentTo([judge]);
      expect(letters).toHaveLength(signers.length);
      const of = (name: string) => letters.find((m) => m.text!.includes(name))!;
      expect(of('Old Tab').subject).toBe('Release Aigerim Test – ümit');
      expect(of('Old Tab').text).toContain('The corrected text, «Қазақ», again.');
      expect(of('Before Rename').text).toContain('The corrected text, «Қазақ», again.');
      expect(of('Recent Tab').text).toContain('The corrected text, «Қазақ».');
      for (const m of letters) expect(m.text).not.toContain('The text on the page.');
    }
  });

  it('refuses, keeping what was typed, a signature from a page that listed other targets or told them less, where letters go at once', async () => {
    const { judge, slug, opened } = await openedPage(false);
    const embassy = `${uniq('embassy')}@embassy.example`;
    await addTargets(ctx.db, slug, [{ name: 'Unseen Embassy', email: embassy, disclose: 'name_place' }]);
    const typed = { full_name: 'Zed Stale', email: `${uniq('zed')}@supporter.example`, city: 'Secret City', personal_note: 'Kept for me.' };
    const stale = await postForm(`${base}/c/${slug}/sign`, { ...typed, letter: opened });
    expect(stale.status).toBe(409);
    const page = await stale.text();
    expect(page).toContain('changed while this page was open. Nothing was sent');
    expect(page).toContain('Unseen Embassy');
    expect(page).toContain('Kept for me.');
    expect(await letterCount(slug)).toBe(0);
    expect((await ctx.db.query('SELECT 1 FROM signatures WHERE email = $1', [typed.email])).rows).toEqual([]);

    // Sent back for a mistake instead, the form says so too: the page it comes back on lists the
    // targets as they are, and the post after it is not refused.
    const typo = await postForm(`${base}/c/${slug}/sign`, { ...typed, email: 'typo@supporter', letter: opened });
    expect(typo.status).toBe(400);
    const typoPage = await typo.text();
    expect(typoPage).toContain('changed while this page was open');
    expect(typoPage).toContain('must be a valid email address');

    // Signed again from the page as it came back: the letters go, to the targets it listed.
    const again = await postForm(`${base}/c/${slug}/sign`, { ...typed, letter: seenLetter(page) });
    expect(again.status).toBe(303);
    await settled(ctx.db);
    expect(sentTo([judge, embassy])).toHaveLength(2);

    // A page from before sign pages carried their targets (its field has two parts) names none:
    // refused as one whose targets changed; a form with no such field is its sender's choice.
    const [revision, letterPart] = seenLetter(await (await fetch(`${base}/c/${slug}`)).text()).split('.');
    const twoPart = await postForm(`${base}/c/${slug}/sign`, { ...typed, email: `${uniq('old')}@supporter.example`, letter: `${revision}.${letterPart}` });
    expect(twoPart.status).toBe(409);
    expect(await twoPart.text()).toContain('changed while this page was open');
    expect((await postForm(`${base}/c/${slug}/sign`, { ...typed, email: `${uniq('own')}@supporter.example` })).status).toBe(303);

    // A disclosure widened while a page was open is refused as well; `full` tells what `name_place`
    // does where nobody confirms an address, so a change between them refuses nothing.
    const { slug: quiet } = await openedPage(false);
    const disclose = (to: string) => ctx.db.query(`UPDATE targets t SET disclose = $2 FROM campaigns c WHERE c.id = t.campaign_id AND c.slug = $1`, [quiet, to]);
    await disclose('name');
    const narrow = seenLetter(await (await fetch(`${base}/c/${quiet}`)).text());
    await disclose('name_place');
    expect((await postForm(`${base}/c/${quiet}/sign`, { ...typed, email: `${uniq('q')}@supporter.example`, letter: narrow })).status).toBe(409);
    const placed = seenLetter(await (await fetch(`${base}/c/${quiet}`)).text());
    await disclose('full');
    expect((await postForm(`${base}/c/${quiet}/sign`, { ...typed, email: `${uniq('q')}@supporter.example`, letter: placed })).status).toBe(303);
    // With confirmation on, the confirmation page lists the targets as they are: the signature is stored.
    const { slug: confirming, opened: before } = await openedPage(true);
    await addTargets(ctx.db, confirming, [{ name: 'Later Court', email: `${uniq('later')}@court.example` }]);
    expect((await postForm(`${base}/c/${confirming}/sign`, { ...typed, letter: before })).status).toBe(303);

    // A page that said "you will confirm by email first", sent after confirmation was turned off,
    // would send at once: refused the same, and from the page it comes back on, the letter goes.
    const { judge: judged, slug: switched, opened: promised } = await openedPage(true);
    await ctx.db.query('UPDATE campaigns SET require_confirmation = false, revision = revision + 1 WHERE slug = $1', [switched]);
    const unconfirmed = { ...typed, email: `${uniq('switch')}@supporter.example` };
    const refused = await postForm(`${base}/c/${switched}/sign`, { ...unconfirmed, letter: promised });
    expect(refused.status).toBe(409);
    const shown = await refused.text();
    expect(shown).toContain('or whether you confirm by email before it goes, changed while this page was open. Nothing was sent');
    expect((await ctx.db.query('SELECT 1 FROM signatures WHERE email = $1', [unconfirmed.email])).rows).toEqual([]);
    expect((await postForm(`${base}/c/${switched}/sign`, { ...unconfirmed, letter: seenLetter(shown) })).status).toBe(303);
    await settled(ctx.db);
    expect(sentTo([judged])).toHaveLength(1);
  });

  // Two connections at once: Postgres only (PGlite is one connection).
  it.runIf(kind === 'postgres')('binds a signature made while a letter save holds the campaign to the letter its page showed', async () => {
    const { judge, slug, opened } = await openedPage(false);
    const c = await getCampaign(ctx.db, slug);
    const next = UNREAD;
    let signing: Promise<Response> | undefined;
    // A save as updateCampaignDetails makes it, held open while the signature is sent.
    await ctx.db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE', [c.id]);
      await keepReplacedLetter(tx, c.id, next);
      await tx.query('UPDATE campaigns SET letter_subject = $2, letter_body = $3, revision = revision + 1 WHERE id = $1', [c.id, next.subject, next.body]);
      signing = postForm(`${base}/c/${slug}/sign`, { full_name: 'Racing Signer', email: `${uniq('race')}@supporter.example`, letter: opened });
      await new Promise((r) => setTimeout(r, 700));
    });
    expect((await signing!).status).toBe(303);
    await settled(ctx.db);
    const [letter] = sentTo([judge]);
    expect(letter!.text).toContain('The text on the page.');
  });

  it('refuses a confirmation whose page listed other officials than the letter would now go to, and shows the list', async () => {
    const { judge, slug } = await openedPage(true);
    const consul = `${uniq('consul')}@embassy.example`;
    await addTargets(ctx.db, slug, [{ name: 'Consul', email: consul }]);
    const c = await getCampaign(ctx.db, slug);
    const { rows: [target] } = await ctx.db.query<{ id: number }>('SELECT id FROM targets WHERE email = $1', [consul]);
    // A letter went to the consul once, so removing it retires it, and it can be written to again.
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient, status) VALUES ('letter', 0, $1, $2, $3, 'sent')`, [target!.id, c.id, consul]);
    const email = `${uniq('conf')}@supporter.example`;
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Careful Confirmer', email })).status).toBe(303);
    const [mail] = await mailTo(ctx.sink!, email);
    await removeTarget(ctx.db, slug, target!.id);
    const opened = await (await fetch(`${base}/confirm/${confirmToken(mail!)}`)).text();
    expect(opened).not.toContain('Consul');
    const seen = /name="t" value="([0-9a-f]+)"/.exec(opened)![1]!;
    await reinstateTarget(ctx.db, c, target!.id);

    const refused = await postForm(`${base}/confirm/${confirmToken(mail!)}`, { v: '0', t: seen });
    expect(refused.status).toBe(409);
    const page = await refused.text();
    expect(page).toContain('changed after this page was opened. Nothing was sent');
    expect(page).toContain('Consul');
    const letters = async () => (await ctx.db.query(`SELECT 1 FROM deliveries d JOIN signatures s ON s.id = d.source_id WHERE d.kind = 'letter' AND s.email = $1`, [email])).rowCount;
    expect(await letters()).toBe(0);
    const now = /name="t" value="([0-9a-f]+)"/.exec(page)![1]!;
    expect((await postForm(`${base}/confirm/${confirmToken(mail!)}`, { v: '0', t: now })).status).toBe(303);
    await settled(ctx.db);
    expect(sentTo([judge, consul]).filter((m) => m.text!.includes('Careful Confirmer'))).toHaveLength(2);

    // Words and officials both changed (someone signed again with the address, after a target was
    // added): the page says the words changed, which is what the person must read first.
    const other = `${uniq('other')}@supporter.example`;
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Own Words', email: other, personal_note: 'My own words.' })).status).toBe(303);
    const [otherMail] = await mailTo(ctx.sink!, other);
    const otherPage = await (await fetch(`${base}/confirm/${confirmToken(otherMail!)}`)).text();
    const otherSeen = /name="t" value="([0-9a-f]+)"/.exec(otherPage)![1]!;
    await addTargets(ctx.db, slug, [{ name: 'Later Envoy', email: `${uniq('envoy')}@embassy.example` }]);
    // What signing again does to a pending signature: new words, a new version, made now.
    await ctx.db.query(`UPDATE signatures SET personal_note = 'Words of a stranger.', edits = edits + 1, created_at = now() WHERE email = $1`, [other]);
    const both = await postForm(`${base}/confirm/${confirmToken(otherMail!)}`, { v: '0', t: otherSeen });
    expect(both.status).toBe(409);
    expect(await both.text()).toContain('Someone signed again with this address');
  });

  // A row reused for another official (an MP's successor) is another official to the signer: the page named the first.
  it('refuses a signature or a confirmation whose page named an official since renamed for another; a corrected address refuses nothing', async () => {
    const rename = (slug: string, name: string, title: string) =>
      ctx.db.query(`UPDATE targets t SET name = $2, title = $3 FROM campaigns c WHERE c.id = t.campaign_id AND c.slug = $1`, [slug, name, title]);
    const readdress = (slug: string) =>
      ctx.db.query(`UPDATE targets t SET email = 'corrected.' || t.email FROM campaigns c WHERE c.id = t.campaign_id AND c.slug = $1`, [slug]);
    const typed = { full_name: 'Stale Tab', email: `${uniq('stale')}@supporter.example`, city: 'Almaty' };

    // Letters at once: the sign form is refused, and the page lists the official as now named.
    const { slug: direct, opened } = await openedPage(false);
    await rename(direct, 'Consul Wang', 'Embassy');
    const stale = await postForm(`${base}/c/${direct}/sign`, { ...typed, letter: opened });
    expect(stale.status).toBe(409);
    expect(await stale.text()).toContain('Consul Wang');
    expect(await letterCount(direct)).toBe(0);
    const fresh = seenLetter(await (await fetch(`${base}/c/${direct}`)).text());
    await readdress(direct);
    expect((await postForm(`${base}/c/${direct}/sign`, { ...typed, letter: fresh })).status).toBe(303);

    // Confirmation on: the button of a page that named the first official is refused.
    const { slug } = await openedPage(true);
    const email = `${uniq('careful')}@supporter.example`;
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Careful Confirmer', email })).status).toBe(303);
    const [mail] = await mailTo(ctx.sink!, email);
    const seen = /name="t" value="([0-9a-f]+)"/.exec(await (await fetch(`${base}/confirm/${confirmToken(mail!)}`)).text())![1]!;
    await rename(slug, 'Consul Wang', 'Embassy');
    const refused = await postForm(`${base}/confirm/${confirmToken(mail!)}`, { v: '0', t: seen });
    expect(refused.status).toBe(409);
    const page = await refused.text();
    expect(page).toContain('Consul Wang');
    const now = /name="t" value="([0-9a-f]+)"/.exec(page)![1]!;
    await readdress(slug);
    expect((await postForm(`${base}/confirm/${confirmToken(mail!)}`, { v: '0', t: now })).status).toBe(303);
  });

  it('offers no button, and confirms nothing, when every official the letter was to go to was taken off since', async () => {
    const { judge, slug } = await openedPage(true);
    const c = await getCampaign(ctx.db, slug);
    const email = `${uniq('late')}@supporter.example`;
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Late Confirmer', email })).status).toBe(303);
    const [mail] = await mailTo(ctx.sink!, email);
    // The official replaced: the new one was added after this signature, so it is not written to for it.
    await addTargets(ctx.db, slug, [{ name: 'New Minister', email: `${uniq('minister')}@gov.example` }]);
    const { rows: [old] } = await ctx.db.query<{ id: number }>('SELECT id FROM targets WHERE campaign_id = $1 AND email = $2', [c.id, judge]);
    await removeTarget(ctx.db, slug, old!.id);
    const opened = await fetch(`${base}/confirm/${confirmToken(mail!)}`);
    expect(opened.status).toBe(409);
    const page = await opened.text();
    expect(page).toContain('No official to write to');
    expect(page).not.toContain('Confirm and send my letter');
    const pressed = await postForm(`${base}/confirm/${confirmToken(mail!)}`, {});
    expect(pressed.status).toBe(409);
    expect(await pressed.text()).toContain('None of the officials');
    const { rows } = await ctx.db.query<{ status: string; letters: number }>(
      `SELECT s.status, (SELECT count(*)::int FROM deliveries d WHERE d.kind = 'letter' AND d.source_id = s.id) AS letters FROM signatures s WHERE s.email = $1`,
      [email],
    );
    expect(rows).toEqual([{ status: 'pending', letters: 0 }]);
  });

  it.runIf(kind === 'postgres')('refuses a signature that waited on a change widening what a target learns, made as its page was sent', async () => {
    const { judge, slug } = await openedPage(false);
    await ctx.db.query(`UPDATE targets SET disclose = 'name' WHERE email = $1`, [judge]);
    const told = seenLetter(await (await fetch(`${base}/c/${slug}`)).text());
    const c = await getCampaign(ctx.db, slug);
    const email = `${uniq('placed')}@supporter.example`;
    // A widening as updateTarget makes it: the campaign held, no signature found, then the target
    // written, while a form sent from the page that said "name only" waits for the campaign.
    const signing = await whileHeld(
      ctx.db,
      (tx) => tx.query('SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE', [c.id]),
      () => postForm(`${base}/c/${slug}/sign`, { full_name: 'Placed Signer', email, city: 'Secret City', letter: told }),
      (tx) => tx.query(`UPDATE targets SET disclose = 'name_place' WHERE email = $1`, [judge]),
    );
    expect(signing.status === 'fulfilled' && signing.value.status).toBe(409);
    expect((await ctx.db.query('SELECT 1 FROM signatures WHERE email = $1', [email])).rows).toEqual([]);
    await settled(ctx.db);
    expect(sentTo([judge])).toEqual([]);
  });

  it.runIf(kind === 'postgres')('stores, as its page said, a signature that waited on a save turning confirmation on', async () => {
    const { judge, slug, opened } = await openedPage(false);
    const c = await getCampaign(ctx.db, slug);
    const email = `${uniq('switched')}@supporter.example`;
    const signing = await whileHeld(
      ctx.db,
      (tx) => tx.query('SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE', [c.id]),
      () => postForm(`${base}/c/${slug}/sign`, { full_name: 'Switched Signer', email, letter: opened }),
      (tx) => tx.query('UPDATE campaigns SET require_confirmation = true WHERE id = $1', [c.id]),
    );
    expect(signing.status === 'fulfilled' && signing.value.status).toBe(303);
    await settled(ctx.db);
    expect(sentTo([judge])).toHaveLength(1);
  });

  it.runIf(kind === 'postgres')('stores a signature that waited on the removal of a target, and writes to the targets left', async () => {
    const { judge, slug } = await openedPage(false);
    const gone = `${uniq('gone')}@court.example`;
    await addTargets(ctx.db, slug, [{ name: 'Leaving Court', email: gone }]);
    const c = await getCampaign(ctx.db, slug);
    let signing: Promise<Response> | undefined;
    // A removal as removeTarget makes it (the campaign locked, the unused target deleted), held
    // open while the signature is sent: its statement read the target before it was gone.
    await ctx.db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE', [c.id]);
      await tx.query('DELETE FROM targets WHERE email = $1', [gone]);
      signing = postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Waiting Signer', email: `${uniq('w')}@supporter.example` });
      await new Promise((r) => setTimeout(r, 700));
    });
    expect((await signing!).status).toBe(202);
    await settled(ctx.db);
    expect(sentTo([judge])).toHaveLength(1);
    expect(sentTo([gone])).toEqual([]);
  });

  it.runIf(kind === 'postgres')('sends no letter for a confirmation that waited on a close of its campaign', async () => {
    const { judge, slug } = await openedPage(true);
    const email = `${uniq('late')}@supporter.example`;
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Late Confirmer', email })).status).toBe(303);
    const [mail] = await mailTo(ctx.sink!, email);
    const c = await getCampaign(ctx.db, slug);
    let confirming: Promise<Response> | undefined;
    // A close as changeCampaignStatus makes it, held open while the confirmation is sent.
    await ctx.db.transaction(async (tx) => {
      await tx.query(`UPDATE campaigns SET status = 'closed', updated_at = now() WHERE id = $1`, [c.id]);
      confirming = postForm(`${base}/confirm/${confirmToken(mail!)}`, { v: '0' });
      await new Promise((r) => setTimeout(r, 700));
    });
    expect((await confirming!).status).toBe(410);
    await settled(ctx.db);
    expect((await ctx.db.query(`SELECT status FROM signatures WHERE lower(email) = lower($1)`, [email])).rows).toEqual([{ status: 'pending' }]);
    expect((await ctx.db.query(`SELECT 1 FROM deliveries d JOIN signatures s ON s.id = d.source_id WHERE d.kind = 'letter' AND lower(s.email) = lower($1)`, [email])).rows).toEqual([]);
    expect(sentTo([judge])).toEqual([]);
  });

  it('keeps a pending signer on the letter their page showed when they sign again from it after an edit', async () => {
    const { judge, slug, opened } = await openedPage(true);
    const email = `${uniq('again')}@supporter.example`;
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'First Try', email, letter: opened })).status).toBe(303);
    await mailTo(ctx.sink!, email);
    await settled(ctx.db);
    await pastResendGap(ctx.db, email);

    await saveLetter(slug, UNREAD);
    // The same page, its form sent again with a corrected name.
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Second Try', email, letter: opened })).status).toBe(303);
    const [, second] = await mailTo(ctx.sink!, email, 2);
    const v = /name="v" value="(\d+)"/.exec(await (await fetch(`${base}/confirm/${confirmToken(second!)}`)).text())![1]!;
    expect((await postForm(`${base}/confirm/${confirmToken(second!)}`, { v })).status).toBe(303);
    await settled(ctx.db);
    const [letter] = sentTo([judge]);
    expect(letter!.text).toContain('The text on the page.');
    expect(letter!.text).toContain('Second Try');
  });

  it('with confirmation off, sends the letters at once and no confirmation email', async () => {
    const targets = [`${uniq('a')}@gov.example`, `${uniq('b')}@gov.example`];
    const { slug } = await createLiveCampaign(ctx.db, {
      requireConfirmation: false,
      targets: targets.map((email, i) => ({ name: `Official ${i}`, email })),
    });
    // The page promises no confirmation step it will not take.
    const page = await (await fetch(`${base}/c/${slug}`)).text();
    expect(page).toContain('Your letter is sent as soon as you sign');
    expect(page).not.toContain('Your letter is sent only after you confirm');
    const email = `${uniq('quick')}@supporter.example`;
    const res = await postForm(`${base}/c/${slug}/sign`, { full_name: 'Quick Signer', email });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/c/${slug}/thanks`);
    await mailTo(ctx.sink!, targets[0]!);
    await mailTo(ctx.sink!, targets[1]!);
    await settled(ctx.db);
    expect(ctx.sink!.messages.filter((m) => addressOf(m.to).includes(email))).toEqual([]);
    expect(sentTo(targets)).toHaveLength(2);

    // Signing again looks the same, so the page tells nobody that this address signed before.
    const again = await postForm(`${base}/c/${slug}/sign`, { full_name: 'Quick Signer', email: email.toUpperCase() });
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe(`/c/${slug}/thanks`);
    await settled(ctx.db);
    expect(sentTo(targets)).toHaveLength(2);

    // Updates still need their opt-in email: the form says so, and the page after signing that it is coming.
    expect(page).toContain('Updates, if you tick the box, start once you confirm them by email.');
    const asking = await postForm(`${base}/c/${slug}/sign`, { full_name: 'Quick Follower', email: `${uniq('follower')}@supporter.example`, subscribe: 'on' });
    expect(asking.headers.get('location')).toBe(`/c/${slug}/thanks?alerts=1`);
    expect(await (await fetch(`${base}${asking.headers.get('location')}`)).text()).toContain('You asked for updates about');
    // A hidden `0` before the box (an embedding page's form) is a box left unticked: nothing is said to come.
    const unticked = await postForm(`${base}/c/${slug}/sign`, { full_name: 'Quick Reader', email: `${uniq('reader')}@supporter.example`, subscribe: '0' });
    expect(unticked.headers.get('location')).toBe(`/c/${slug}/thanks`);
  });

  it('keeps a right-to-left name in its place in a sentence of the other direction, in the text and the HTML part', async () => {
    const official = `${uniq('kz')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, {
      requireConfirmation: false,
      letter: { subject: 'Хат', body: '{{target.salutation}},\n\nМен, {{supporter.fullName}}, {{supporter.city}} қаласынан жазамын.\n{{supporter.city}} қаласынан сәлем.' },
      targets: [{ name: 'Сот', email: official, salutation: 'Құрметті судья', disclose: 'name_place' }],
    });
    const res = await postForm(`${base}/c/${slug}/sign`, { full_name: 'ئابدۇرېھىم ئەخمەتوۋ', email: `${uniq('uy')}@supporter.example`, city: 'ئۈرۈمچى' });
    expect(res.status).toBe(303);
    const [letter] = await mailTo(ctx.sink!, official);
    // Bare, the name and the city read as one right-to-left run: the city before the name.
    expect(letter!.text).toContain('Мен, \u2068ئابدۇرېھىم ئەخمەتوۋ\u2069, \u2068ئۈرۈمچى\u2069 қаласынан жазамын.');
    // In HTML as <bdi>: a line's dir="auto" looks inside the marks for its first letter, not inside a <bdi>.
    expect(letter!.html).toContain('<div dir="auto">Мен, <bdi>ئابدۇرېھىم ئەخمەتوۋ</bdi>, <bdi>ئۈرۈمچى</bdi> қаласынан жазамын.</div>');
    expect(letter!.html).toContain('<div dir="auto"><bdi>ئۈرۈمچى</bdi> қаласынан сәлем.</div>');
    expect(letter!.text).toContain('\n\u2068ئۈرۈمچى\u2069 қаласынан сәлем.\n');
    expect(letter!.text).toMatch(/^Құрметті судья,$/m);
    expect(letter!.from!.text).toBe('"ئابدۇرېھىم ئەخمەتوۋ via Appeal Test" <letters@appeal.test>');
  });

  it('with confirmation off, does not subscribe an address nobody confirmed, even when the box is ticked', async () => {
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false, targets: [{ name: 'Official', email: `${uniq('o')}@gov.example` }] });
    const email = `${uniq('sub')}@supporter.example`;
    await postForm(`${base}/c/${slug}/sign`, { full_name: 'Keen Signer', email, subscribe: 'on' });
    const { rows } = await ctx.db.query("SELECT 1 FROM subscribers WHERE lower(email) = lower($1) AND status = 'active'", [email]);
    expect(rows).toEqual([]);
  });

  it('gives a confirmed signer with an address-like name one Reply-To, their own, under a name that shows no address', async () => {
    const target = `${uniq('t')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Judge Official', email: target, disclose: 'full' }] });
    const email = `${uniq('eve')}@supporter.example`;
    await postForm(`${base}/c/${slug}/sign`, { full_name: 'Eve "Boss" <boss@evil.example>', email });
    const [confirmation] = await mailTo(ctx.sink!, email);
    const link = `${base}/confirm/${confirmToken(confirmation!)}`;
    const shown = /name="v" value="(\d+)"/.exec(await (await fetch(link)).text())![1]!;
    expect((await postForm(link, { v: shown })).status).toBe(303);
    const [letter] = await mailTo(ctx.sink!, target);
    expect(letter!.replyTo!.value).toEqual([{ name: 'Eve "Boss" boss evil.example', address: email }]);
    await settled(ctx.db);
  });

  it('passes on no address its owner did not confirm: with confirmation off a `full` target gets no Reply-To', async () => {
    const target = `${uniq('t')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false, targets: [{ name: 'Judge Official', email: target, disclose: 'full' }] });
    // Anyone can type anyone's address: the official's answer would go to someone who never signed.
    const page = await (await fetch(`${base}/c/${slug}`)).text();
    expect(page).toContain('<bdi>Judge Official</bdi>: your name, city, country and note.');
    expect(page).toContain('(never given to the officials)');
    expect(page).not.toContain('reply address');
    const email = `${uniq('victim')}@supporter.example`;
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Dana Victim', email, city: 'Berlin' })).status).toBe(303);
    const [letter] = await mailTo(ctx.sink!, target);
    expect(letter!.replyTo).toBeUndefined();
    expect(letter!.text).toContain('Dana Victim');
    expect(JSON.stringify([letter!.text, letter!.html, [...letter!.headers]])).not.toContain(email);
    await settled(ctx.db);
  });

  it('sends a burst of signatures by one address one more confirmation, held back a minute, with the last words', async () => {
    const target = `${uniq('t')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Judge Official', email: target }] });
    const email = `${uniq('burst')}@supporter.example`;
    const sign = (note: string) => postForm(`${base}/c/${slug}/sign`, { full_name: 'Burst Target', email, personal_note: note });
    expect((await sign('first')).status).toBe(303);
    await mailTo(ctx.sink!, email);
    await settled(ctx.db);
    // Someone posts the address again and again within seconds: each answer is the usual one.
    for (const n of [2, 3, 4, 5]) expect((await sign(`post ${n}`)).status).toBe(303);
    // A repeat's new words are stored after its answer (Queues.later): wait for that work.
    await ctx.queues.settled();
    const { rows } = await ctx.db.query<{ id: number; status: string; held: boolean }>(
      `SELECT id, status, next_attempt_at > now() AS held FROM deliveries WHERE kind = 'confirm' AND recipient = $1`,
      [email],
    );
    expect(rows).toEqual([{ id: expect.any(Number), status: 'queued', held: true }]);
    const id = rows[0]!.id;
    // The job is added once the answer has gone, and the last one's may still be finishing.
    let job = await heldJob(id);
    try {
      expect(job.opts.delay).toBeGreaterThan(0);
      expect(job.opts.delay).toBeLessThanOrEqual(RESEND_GAP_SECONDS * 1000);
      await new Promise((r) => setTimeout(r, 500));
      expect(sentTo([email])).toHaveLength(1);
      // Redis loses the job: the sweeper leaves the row until its minute is up, then adds it.
      await job.remove();
      expect(await sweepDeliveries(ctx.db, ctx.queues, 0)).toBe(0);
      await ctx.db.query(`UPDATE deliveries SET next_attempt_at = now() - interval '1 second' WHERE id = $1`, [id]);
      expect(await sweepDeliveries(ctx.db, ctx.queues, 0)).toBe(1);
    } finally {
      // Never left waiting a minute: every later settled() in this file would wait for it.
      job = (await ctx.queues.send.getJob(deliveryJobId(id))) ?? job;
      if ((await job.getState()) === 'delayed') await job.promote();
    }
    // One email goes, and its link confirms the last words.
    const [, second] = await mailTo(ctx.sink!, email, 2);
    const page = await (await fetch(`${base}/confirm/${confirmToken(second!)}`)).text();
    expect(page).toContain('post 5');
    await settled(ctx.db);
    expect(sentTo([email])).toHaveLength(2);
    // Pressed by a client of its own (no page, so no version of it): the newest link confirms the last words.
    expect((await postForm(`${base}/confirm/${confirmToken(second!)}`, {})).status).toBe(303);
    const [letter] = await mailTo(ctx.sink!, target);
    expect(letter!.text).toContain('post 5');
    await settled(ctx.db);
  });

  it('keeps the link in the inbox working after signing again until the next email is sent, then only the new one', async () => {
    const target = `${uniq('t')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Judge Official', email: target }] });
    const email = `${uniq('inbox')}@supporter.example`;
    const sign = (note: string) => postForm(`${base}/c/${slug}/sign`, { full_name: 'Inbox Reader', email, personal_note: note });
    expect((await sign('first words')).status).toBe(303);
    const [first] = await mailTo(ctx.sink!, email);
    await settled(ctx.db);
    // Signed again at once: the new email waits for the resend gap, a minute.
    expect((await sign('better words')).status).toBe(303);
    const { rows } = await until(async () => {
      const r = await ctx.db.query<{ id: number }>(
        `SELECT d.id FROM deliveries d JOIN signatures s ON s.id = d.source_id
          WHERE d.kind = 'confirm' AND d.recipient = $1 AND d.status = 'queued' AND s.personal_note = 'better words'`,
        [email],
      );
      return r.rows.length ? r : undefined;
    }, 'the new words and their email');
    const job = await heldJob(rows[0]!.id);
    try {
      // Meanwhile the link in hand opens the signature as it is now.
      const page = await fetch(`${base}/confirm/${confirmToken(first!)}`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('better words');
    } finally {
      await job.promote();
    }
    // Once the new email is sent, its link is the one that works.
    const [, second] = await mailTo(ctx.sink!, email, 2);
    expect(confirmToken(second!)).not.toBe(confirmToken(first!));
    expect((await fetch(`${base}/confirm/${confirmToken(first!)}`)).status).toBe(404);
    expect((await postForm(`${base}/confirm/${confirmToken(second!)}`, {})).status).toBe(303);
    const [letter] = await mailTo(ctx.sink!, target);
    expect(letter!.text).toContain('better words');
    await settled(ctx.db);
  });

  it('keeps the link on its way when the same form is sent twice (a double click, Back and Sign), and mails again only after the gap', async () => {
    const target = `${uniq('t')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Judge Official', email: target }] });
    const fields = { full_name: 'Double Click', city: 'Almaty', personal_note: 'Once is enough.' };
    const sign = (email: string) => postForm(`${base}/c/${slug}/sign`, { email, ...fields });
    const email = `${uniq('twice')}@supporter.example`;
    expect((await sign(email)).status).toBe(303);
    const [first] = await mailTo(ctx.sink!, email);
    await settled(ctx.db);
    expect((await sign(email)).status).toBe(303);
    // What follows a repeat runs after its answer; give it time to do anything it would.
    await new Promise((r) => setTimeout(r, 500));
    const { rows } = await ctx.db.query<{ edits: number; status: string }>(
      `SELECT s.edits, d.status FROM signatures s JOIN deliveries d ON d.kind = 'confirm' AND d.source_id = s.id WHERE s.email = $1`,
      [email],
    );
    expect(rows).toEqual([{ edits: 0, status: 'sent' }]);
    const page = await (await fetch(`${base}/confirm/${confirmToken(first!)}`)).text();
    const shown = /name="v" value="(\d+)"/.exec(page)![1]!;
    expect((await postForm(`${base}/confirm/${confirmToken(first!)}`, { v: shown })).status).toBe(303);
    await mailTo(ctx.sink!, target);
    await settled(ctx.db);
    expect(sentTo([email])).toHaveLength(1);

    // The same form a minute after its email went: that email may never have come, so a new one goes.
    const later = `${uniq('later')}@supporter.example`;
    expect((await sign(later)).status).toBe(303);
    const [mailed] = await mailTo(ctx.sink!, later);
    await settled(ctx.db);
    await pastResendGap(ctx.db, later);
    expect((await sign(later)).status).toBe(303);
    const [, again] = await mailTo(ctx.sink!, later, 2);
    expect(confirmToken(again!)).not.toBe(confirmToken(mailed!));
    await settled(ctx.db);
  });

  it('lets a second signature before confirming replace the first and email a new link, so whoever gave the address first decides nothing', async () => {
    const target = `${uniq('t')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, {
      letter: { subject: 'About {{case.personName}}', body: 'Dear {{target.name}},\n\n{{supporter.personalNote}}\n\n{{supporter.fullName}}, {{supporter.city}}' },
      targets: [{ name: 'Judge Official', email: target, disclose: 'full' }],
    });
    const email = `${uniq('Twice')}@Supporter.example`;
    const sign = (address: string, fields: Record<string, string>) => postForm(`${base}/c/${slug}/sign`, { email: address, ...fields });

    // A stranger signs first with the person's address and words of their own.
    expect((await sign(email, { full_name: 'Dana Victim', city: 'Urumqi', personal_note: 'A threat the person never wrote.' })).status).toBe(303);
    const [first] = await mailTo(ctx.sink!, email);
    await settled(ctx.db);
    await pastResendGap(ctx.db, email);
    // The person signs with their own; the answer is the same as a first signature's.
    const again = await sign(email.toLowerCase(), { full_name: 'Dana Real', city: 'Berlin', country: 'Germany', personal_note: 'Please let her stay.', subscribe: 'on' });
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe(`/c/${slug}/check-email`);
    const [, second] = await mailTo(ctx.sink!, email, 2);
    expect(second!.messageId).not.toBe(first!.messageId);
    expect(confirmToken(second!)).not.toBe(confirmToken(first!));

    // The older link no longer works; the newer one shows what will be sent, and to whom.
    expect((await fetch(`${base}/confirm/${confirmToken(first!)}`)).status).toBe(404);
    // Its official's address refused a letter for good: the page says the letter waits for a corrected one.
    await insertSuppression(ctx.db, target, 'bounce: 550 no such user', 'letter');
    const page = await (await fetch(`${base}/confirm/${confirmToken(second!)}`)).text();
    expect(page).toContain('Their address has been refusing mail: your letter to them is held until the address is corrected and it is sent again.');
    await ctx.db.query('DELETE FROM suppressions WHERE email = lower($1)', [target]);
    expect(await (await fetch(`${base}/confirm/${confirmToken(second!)}`)).text()).not.toContain('refusing mail');
    expect(page).toContain('Dana Real');
    // City and country each isolated: a right-to-left city does not swap places with its country.
    expect(page).toContain('<dt>From</dt><dd><bdi>Berlin</bdi>, <bdi>Germany</bdi></dd>');
    expect(page).toContain('Please let her stay.');
    expect(page).toContain('Judge Official');
    // Whoever typed the address may not have seen the sign form's words on what officials get.
    expect(page).toContain('gets your name, city, country, note and email address (to reply to you)');
    expect(page).not.toContain('threat');
    expect((await postForm(`${base}/confirm/${confirmToken(first!)}`, {})).status).toBe(404);
    const shown = /name="v" value="(\d+)"/.exec(page)![1]!;
    expect((await postForm(`${base}/confirm/${confirmToken(second!)}`, { v: shown })).status).toBe(303);
    const [letter] = await mailTo(ctx.sink!, target);
    expect(letter!.text).toContain('Please let her stay.');
    expect(letter!.text).toContain('Dana Real, Berlin');
    expect(letter!.text).not.toContain('threat');
    await settled(ctx.db);

    // Confirmed: signing again sends no second letter and changes nothing. Its row is written all
    // the same (a new row version, the same values), as a first signature's would be: an answer
    // that came without a write came sooner, and its time told that the address had signed.
    const afterConfirm = ctx.sink!.messages.length;
    const version = async () => (await ctx.db.query<{ xmin: string }>('SELECT xmin::text FROM signatures WHERE lower(email) = lower($1)', [email])).rows[0]!.xmin;
    const before = await version();
    expect((await sign(email.toUpperCase(), { full_name: 'Someone Else', personal_note: 'Too late.' })).status).toBe(303);
    expect(await version()).not.toBe(before);
    await settled(ctx.db);
    await new Promise((r) => setTimeout(r, 300));
    expect(ctx.sink!.messages.length).toBe(afterConfirm);
    expect(sentTo([target])).toHaveLength(1);
    const { rows } = await ctx.db.query<{ n: number; full_name: string }>('SELECT count(*)::int AS n, max(full_name) AS full_name FROM signatures WHERE lower(email) = lower($1)', [email]);
    expect(rows[0]).toEqual({ n: 1, full_name: 'Dana Real' });
  });

  it('confirms only the words the confirmation page showed: signing again while it is open makes its button send nothing', async () => {
    const target = `${uniq('t')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, {
      letter: { subject: 'About {{case.personName}}', body: 'Dear {{target.name}},\n\n{{supporter.personalNote}}\n\n{{supporter.fullName}}' },
      targets: [{ name: 'Judge Official', email: target }],
    });
    const email = `${uniq('open')}@supporter.example`;
    await postForm(`${base}/c/${slug}/sign`, { full_name: 'Page Reader', email, personal_note: 'My own words.' });
    const [confirmation] = await mailTo(ctx.sink!, email);
    await settled(ctx.db);
    const link = `${base}/confirm/${confirmToken(confirmation!)}`;
    const opened = await (await fetch(link)).text();
    const shown = /name="v" value="(\d+)"/.exec(opened)![1]!;
    expect(opened).toContain('My own words.');

    // While the page is open, a stranger signs with the address; its email is still on its way, so
    // the link stays good (held here as if a worker were sending it).
    await ctx.db.query(`UPDATE deliveries SET status = 'sending', lease_until = now() + interval '1 hour' WHERE kind = 'confirm' AND recipient = $1`, [email]);
    await postForm(`${base}/c/${slug}/sign`, { full_name: 'Page Reader', email, personal_note: 'Words of a stranger.' });
    // The new words are stored once the answer has gone.
    await until(async () => (await ctx.db.query(`SELECT 1 FROM signatures WHERE email = $1 AND personal_note = 'Words of a stranger.'`, [email])).rows[0], 'the new words');
    const refused = await postForm(link, { v: shown });
    expect(refused.status).toBe(409);
    const again = await refused.text();
    expect(again).toContain('Someone signed again with this address');
    // Refused, and its title says so first, as every refused form's does.
    expect(again).toContain('<title>Error: Confirm your signature');
    expect(again).toContain('Words of a stranger.');
    await new Promise((r) => setTimeout(r, 300));
    expect(sentTo([target])).toEqual([]);
    expect((await ctx.db.query(`SELECT status FROM signatures WHERE email = $1`, [email])).rows).toEqual([{ status: 'pending' }]);

    // Pressed on the page that shows them, the words go.
    const now = /name="v" value="(\d+)"/.exec(again)![1]!;
    expect((await postForm(link, { v: now })).status).toBe(303);
    const [letter] = await mailTo(ctx.sink!, target);
    expect(letter!.text).toContain('Words of a stranger.');
    await ctx.db.query(`UPDATE deliveries SET status = 'sent', lease_until = NULL WHERE kind = 'confirm' AND recipient = $1`, [email]);
  });

  it('sends a letter only to the targets a signer saw: one added before they confirm gets none', async () => {
    const first = `${uniq('first')}@gov.example`;
    const added = `${uniq('added')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'First Official', email: first }] });
    const email = `${uniq('early')}@supporter.example`;
    expect((await postForm(`${base}/c/${slug}/sign`, { full_name: 'Early Signer', email })).status).toBe(303);
    const [confirmation] = await mailTo(ctx.sink!, email);
    const { addTargets } = await import('../../src/campaigns/targets.ts');
    await addTargets(ctx.db, slug, [{ name: 'Added Later', email: added, disclose: 'full' }]);

    const page = await (await fetch(`${base}/confirm/${confirmToken(confirmation!)}`)).text();
    expect(page).toContain('First Official');
    expect(page).not.toContain('Added Later');
    expect((await postForm(`${base}/confirm/${confirmToken(confirmation!)}`, {})).status).toBe(303);
    await mailTo(ctx.sink!, first);
    await settled(ctx.db);
    expect(sentTo([added])).toEqual([]);

    // Who signs after it was added writes to both.
    const later = `${uniq('later')}@supporter.example`;
    await postForm(`${base}/c/${slug}/sign`, { full_name: 'Later Signer', email: later });
    const [laterConfirmation] = await mailTo(ctx.sink!, later);
    await postForm(`${base}/confirm/${confirmToken(laterConfirmation!)}`, {});
    await mailTo(ctx.sink!, added);
    await settled(ctx.db);
    expect(sentTo([first])).toHaveLength(2);
    expect(sentTo([added])).toHaveLength(1);
  });

  it('shows on the page what each official learns of a signer, and previews the letter of the one told the most, as it is sent', async () => {
    const { slug } = await createLiveCampaign(ctx.db, {
      letter: { subject: 'From {{supporter.fullName}}', body: '{{supporter.fullName}} of {{supporter.city}}, {{supporter.country}}' },
      targets: [
        { name: 'Judge Name', email: `${uniq('j')}@court.example`, disclose: 'name' },
        { name: 'Full Official', email: `${uniq('f')}@gov.example`, disclose: 'full' },
      ],
    });
    const page = await (await fetch(`${base}/c/${slug}`)).text();
    expect(page).toContain('What each official learns about you:');
    // Each name in <bdi>: one written right to left keeps its place in the sentence.
    expect(page).toContain('<bdi>Judge Name</bdi>: your name and note; <bdi>Full Official</bdi>: your name, city, country, note and email address (to reply to you).');
    expect(page).toContain('Your letter is sent only after you confirm');
    expect(page).toContain('(to confirm; never given to the officials except as a reply address to Full Official)');
    const preview = /id="letter-preview"[^>]*>([\s\S]*?)<\/div>\s*<\/div>/.exec(page)![1]!;
    // The name-only judge comes first; the letter shown is the full official's, with the place in it.
    expect(preview).toContain('data-field="full_name"');
    expect(preview).toContain('data-field="city"');
    // Where every official is told the name only, no place shows.
    const nameOnly = await createLiveCampaign(ctx.db, {
      letter: { subject: 'S', body: '{{supporter.fullName}} of {{supporter.city}}' },
      targets: [{ name: 'Judge Name', email: `${uniq('j')}@court.example`, disclose: 'name' }],
    });
    const other = /id="letter-preview"[^>]*>([\s\S]*?)<\/div>\s*<\/div>/.exec(await (await fetch(`${base}/c/${nameOnly.slug}`)).text())![1]!;
    expect(other).toContain('data-field="full_name"');
    expect(other).not.toContain('data-field="city"');

    // A digest names many signers in one letter: no Reply-To, the address is in its list and spreadsheet, and the page says so.
    const daily = await createLiveCampaign(ctx.db, {
      deliveryMode: 'digest',
      targets: [{ name: 'Full Official', email: `${uniq('f')}@gov.example`, disclose: 'full' }],
    });
    const digestPage = await (await fetch(`${base}/c/${daily.slug}`)).text();
    expect(digestPage).toContain('<bdi>Full Official</bdi>: your name, city, country, note and email address (listed with the other signers in the daily letter and its spreadsheet).');
    expect(digestPage).toContain("(to confirm; never given to the officials except to Full Official, in the daily letter's list of signers)");
    expect(digestPage).not.toContain('to reply to you');
  });

  it('shows no confirm button once the campaign closed, and sends nothing for a confirmation after it', async () => {
    const target = `${uniq('late')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { targets: [{ name: 'Official', email: target }] });
    const email = `${uniq('late')}@supporter.example`;
    await postForm(`${base}/c/${slug}/sign`, { full_name: 'Late Signer', email });
    const [confirmation] = await mailTo(ctx.sink!, email);
    await changeCampaignStatus(ctx.db, slug, 'close');
    const page = await fetch(`${base}/confirm/${confirmToken(confirmation!)}`);
    expect(page.status).toBe(410);
    const html = await page.text();
    expect(html).toContain('closed before your signature was confirmed');
    expect(html).not.toContain('Confirm and send my letter');
    // The button of a page opened while it was live, pressed after the close: the page says what that means.
    const pressed = await postForm(`${base}/confirm/${confirmToken(confirmation!)}`, {});
    expect(pressed.status).toBe(410);
    expect(await pressed.text()).toContain('closed before your signature was confirmed, so no letter will be sent in your name');
    // Where the sign form sent them: no promise of an email to come.
    const waiting = await fetch(`${base}/c/${slug}/check-email`);
    expect(waiting.status).toBe(410);
    const said = await waiting.text();
    // It cannot know whose signature it is: one confirmed before the close has had its letter.
    expect(said).toContain('If you had not confirmed your signature before it closed, no letter will be sent in your name');
    expect(said).toContain('If you had confirmed it, your letter was sent.');
    expect(said).not.toContain('We have sent you a link');
    await settled(ctx.db);
    expect(await letterCount(slug)).toBe(0);
  });

  // A template saved before a letter could write a field at most MAX_WRITES times: its letter of
  // megabytes took the worker past its heap, and again after every restart.
  it('fails for good a letter too large to send, from a template saved before the limit, and sends the rest', async () => {
    const judge = `${uniq('judge')}@court.example`;
    const { slug } = await createLiveCampaign(ctx.db, { requireConfirmation: false, targets: [{ name: 'Judge', email: judge }] });
    await ctx.db.query('UPDATE campaigns SET letter_body = $2 WHERE slug = $1', [slug, 'Dear {{target.name}},\n' + '{{supporter.personalNote}}\n'.repeat(60)]);
    const note = 'ж\n'.repeat(999) + 'ж';
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Big Note', email: `${uniq('big')}@supporter.example`, personalNote: note })).status).toBe(202);
    expect((await postJson(`${base}/api/v1/campaigns/${slug}/signatures`, { fullName: 'Small Note', email: `${uniq('small')}@supporter.example`, personalNote: 'Free her.' })).status).toBe(202);
    await settled(ctx.db);
    const { rows } = await ctx.db.query<{ status: string; attempts: number; last_error: string | null }>(
      `SELECT d.status, d.attempts, d.last_error FROM deliveries d JOIN signatures s ON s.id = d.source_id WHERE d.kind = 'letter' AND s.full_name = 'Big Note' AND d.recipient = $1`,
      [judge],
    );
    expect(rows).toEqual([{ status: 'failed', attempts: 1, last_error: expect.stringMatching(/^the letter is 120012 characters long, over the 100000 a letter may have/) }]);
    expect((await mailTo(ctx.sink!, judge, 1)).map((m) => m.text)).toEqual([expect.stringContaining('Free her.')]);
    // Not an address that bounced: the official's stays off the suppression list.
    expect((await ctx.db.query('SELECT 1 FROM suppressions WHERE email = $1', [judge])).rowCount).toBe(0);
  });

  it('in digest mode, confirming a signature sends no letters yet', async () => {
    const target = `${uniq('digest')}@gov.example`;
    const { slug } = await createLiveCampaign(ctx.db, { deliveryMode: 'digest', targets: [{ name: 'Official', email: target }] });
    const page = await (await fetch(`${base}/c/${slug}`)).text();
    expect(page).toContain('Once a day each official receives one copy listing everyone who signed');
    expect(page).toContain('Your name goes into the daily letter only after you confirm.');
    const quick = await createLiveCampaign(ctx.db, { deliveryMode: 'digest', requireConfirmation: false });
    const quickPage = await (await fetch(`${base}/c/${quick.slug}`)).text();
    expect(quickPage).toContain('Your name goes into the next daily letter as soon as you sign: there is no confirmation step.');
    expect(quickPage).not.toContain('Your letter is sent');
    const email = `${uniq('dig')}@supporter.example`;
    await postForm(`${base}/c/${slug}/sign`, { full_name: 'Digest Signer', email });
    const [confirmation] = await mailTo(ctx.sink!, email);
    const confirmed = await postForm(`${base}/confirm/${confirmToken(confirmation!)}`, {});
    expect(confirmed.status).toBe(303);
    await settled(ctx.db);
    await new Promise((r) => setTimeout(r, 300));
    expect(await letterCount(slug)).toBe(0);
    expect(sentTo([target])).toEqual([]);
    const { rows } = await ctx.db.query<{ status: string }>('SELECT status FROM signatures WHERE email = $1', [email]);
    expect(rows).toEqual([{ status: 'confirmed' }]);
  });
});
