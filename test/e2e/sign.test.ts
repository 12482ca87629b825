import type { ParsedMail } from 'mailparser';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getCampaign } from '../../src/campaigns/service.ts';
import { listTargets } from '../../src/campaigns/targets.ts';
import type { Target } from '../../src/campaigns/types.ts';
import { seedDemo } from '../../src/demo.ts';
import { launchBrowser, screenshot } from '../helpers/browser.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign } from '../helpers/fixtures.ts';

const addressesOf = (a: ParsedMail['to']) => (Array.isArray(a) ? a : a ? [a] : []).flatMap((x) => x.value.map((v) => v.address));

/** The first message the sink got for `address`, waiting for it to arrive. */
async function mailTo(ctx: TestContext, address: string, timeoutMs = 20_000): Promise<ParsedMail> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = ctx.sink!.messages.find((m) => addressesOf(m.to).includes(address));
    if (found) return found;
    if (Date.now() > until) throw new Error(`no message to ${address} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function confirmationLink(mail: ParsedMail): string {
  const match = /https?:\/\/\S+\/confirm\/[A-Za-z0-9_-]+/.exec(mail.text ?? '');
  if (!match) throw new Error('no confirmation link in the email');
  return match[0];
}

/** True when the page is wider than the window, i.e. the reader would have to scroll sideways. */
const scrollsSideways = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);

describe('signing in a real browser', () => {
  let ctx: TestContext;
  let base: string;
  let browser: Browser;
  let slug: string;
  let targets: Target[];
  const contexts: BrowserContext[] = [];

  async function newPage(options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> {
    const context = await browser.newContext(options);
    contexts.push(context);
    return context.newPage();
  }

  beforeAll(async () => {
    ctx = await createTestContext({ db: 'pglite' });
    base = await ctx.startWeb();
    await ctx.startWorkers();
    [slug] = (await seedDemo(ctx.db)) as [string];
    targets = await listTargets(ctx.db, (await getCampaign(ctx.db, slug)).id);
    browser = await launchBrowser();
    // PGlite's start and chromium's launch are CPU-bound; on a busy 2-core machine they take long.
  }, 120_000);
  afterAll(async () => {
    for (const c of contexts) await c.close();
    await browser?.close();
    await ctx?.close();
  });

  it('offers the provider an address one letter off a common one meant, and changes nothing unasked', async () => {
    const page = await newPage();
    await page.goto(`${base}/c/${slug}`);
    const email = page.locator('#f-email');
    const hint = page.locator('#f-email-hint');
    await email.fill('asel@gmial.con');
    await email.press('Tab');
    // Two letters off: too far to guess.
    expect(await hint.innerText()).toBe('');
    await email.fill('asel@gmial.com');
    await email.press('Tab');
    await expect.poll(() => hint.innerText()).toBe('Did you mean asel@gmail.com?');
    expect(await email.inputValue()).toBe('asel@gmial.com');
    expect((await email.getAttribute('aria-describedby'))!.split(' ')).toContain('f-email-hint');
    // Back in the field, then straight to the hint: the click that takes focus away takes it too.
    await email.click();
    await hint.getByRole('button', { name: 'asel@gmail.com' }).click();
    expect(await email.inputValue()).toBe('asel@gmail.com');
    expect(await hint.innerText()).toBe('');
    // A provider's own domain, or one nowhere near a common one, gets no hint.
    for (const address of ['asel@mail.ru', 'asel@mail.kz', 'asel@supporter.example']) {
      await email.fill(address);
      await email.press('Tab');
      expect(await hint.innerText(), address).toBe('');
    }
    await page.close();
  });

  it('keeps a subdivision flag at the end of a name in the live preview, as the letter keeps it', async () => {
    const page = await newPage();
    await page.goto(`${base}/c/${slug}`);
    const scotland = 'Ann \u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}';
    await page.fill('#f-full_name', `${scotland} \u200b`);
    await expect.poll(() => page.locator('#letter-preview [data-field=full_name]').first().textContent()).toBe(scotland);
    await page.close();
  });

  it('shows the typed name in the letter preview, signs, confirms from the email, and sends the letters', async () => {
    const page = await newPage();
    await page.goto(`${base}/c/${slug}`);
    const previewName = page.locator('#letter-preview [data-field=full_name]').first();
    expect(await previewName.textContent()).toBe('[your name]');
    const previewText = () => page.locator('#letter-preview').innerText();
    // Before anything is typed, the whole letter with its placeholders.
    expect(await previewText()).toContain('[your city]');

    await page.locator('#f-full_name').pressSequentially('Dana Signer');
    await expect.poll(() => previewName.textContent()).toBe('Dana Signer');
    // The letter's {{#if}} blocks decide as they will for what is typed: no city and no country,
    // no line placing the signer.
    await expect.poll(previewText).not.toContain('[your city]');
    expect(await previewText()).not.toContain('[your country]');
    expect(await previewText()).not.toContain('[your note]');
    await page.fill('#f-email', 'dana@supporter.example');
    await page.fill('#f-city', 'Lyon');
    await expect.poll(() => page.locator('#letter-preview [data-field=city]').first().textContent()).toBe('Lyon');
    await page.fill('#f-country', 'France');
    await page.fill('#f-personal_note', 'Please let her stay.');
    await screenshot(page, 'campaign-filled');

    await page.getByRole('button', { name: 'Sign the letter' }).click();
    await page.waitForURL(`${base}/c/${slug}/check-email`);
    expect(await page.locator('h1').textContent()).toBe('Check your email');
    expect(await page.title()).toMatch(/^Check your email to confirm your signature: /);
    await screenshot(page, 'check-email');

    const confirmation = await mailTo(ctx, 'dana@supporter.example');
    await page.goto(confirmationLink(confirmation));
    await screenshot(page, 'confirm');
    expect(ctx.sink!.messages).toHaveLength(1);

    await page.getByRole('button', { name: 'Confirm and send my letter' }).click();
    await page.waitForURL(`${base}/c/${slug}/thanks`);
    expect(await page.locator('h1').textContent()).toBe('Thank you');
    expect(await page.title()).toMatch(/^Thank you for signing: /);
    expect(await page.locator('.count').first().textContent()).toBe('1');
    await screenshot(page, 'thanks');

    const letters = (await ctx.sink!.waitFor(1 + targets.length)).slice(1);
    expect(letters.flatMap((m) => addressesOf(m.to)).sort()).toEqual(targets.map((t) => t.email).sort());
    for (const letter of letters) {
      expect(letter.from!.value[0]!.name).toBe('Dana Signer via Appeal Test');
      expect(letter.text).toContain('Please let her stay.');
    }
  });

  it('re-renders a form without a name with the error announced and the typed values kept', async () => {
    const page = await newPage();
    await page.goto(`${base}/c/${slug}`);
    await page.fill('#f-email', 'nameless@supporter.example');
    await page.fill('#f-city', 'Oslo');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith(`/c/${slug}/sign`)),
      page.getByRole('button', { name: 'Sign the letter' }).click(),
    ]);
    expect(response.status()).toBe(400);
    await page.waitForLoadState();

    // Named, so a screen reader landing on it says what it is before its list.
    const alert = page.getByRole('alert', { name: 'Please check the form:', exact: true });
    expect(await alert.textContent()).toContain('Please check the form');
    expect(await alert.getByRole('link').first().textContent()).toMatch(/^Full name: /);
    expect(await page.title()).toMatch(/^Error: /);
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('role'))).toBe('alert');
    expect(await page.locator('#f-full_name').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#e-full_name').isVisible()).toBe(true);
    expect(await page.inputValue('#f-email')).toBe('nameless@supporter.example');
    expect(await page.inputValue('#f-city')).toBe('Oslo');
    await screenshot(page, 'campaign-error');
  });

  it('signs and confirms with JavaScript turned off', async () => {
    const page = await newPage({ javaScriptEnabled: false });
    // Browsers without Fetch Metadata (Safari before 16.4) tell the site's own forms apart by
    // their Origin alone, which a no-referrer page would send as `null`, as another site's.
    const origins: string[] = [];
    page.on('request', (r) => void (r.method() === 'POST' && r.allHeaders().then((h) => origins.push(h.origin ?? '(none)'))));
    await page.goto(`${base}/c/${slug}`);
    // The server shows the letter with placeholders where the supporter's words go.
    expect(await page.locator('#letter-preview [data-field=full_name]').first().textContent()).toBe('[your name]');
    // The Preview button shows the letter with what was typed, and keeps it in the form.
    await page.fill('#f-full_name', 'Noscript Reader');
    await page.fill('#f-city', 'Taldykorgan');
    await page.getByRole('button', { name: 'Preview my letter' }).click();
    await page.waitForURL(`${base}/c/${slug}/preview#letter-heading`);
    expect(await page.locator('#letter-preview').textContent()).toContain('Noscript Reader');
    expect(await page.locator('#letter-preview').textContent()).toContain('Taldykorgan');
    expect(await page.inputValue('#f-full_name')).toBe('Noscript Reader');
    expect(await ctx.db.query(`SELECT 1 FROM signatures WHERE full_name = 'Noscript Reader'`)).toMatchObject({ rowCount: 0 });
    // A mistake: the page comes back opened on the list of mistakes, not at its top.
    await page.fill('#f-email', 'not-an-address');
    await page.getByRole('button', { name: 'Sign the letter' }).click();
    await page.waitForLoadState();
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('role'))).toBe('alert');
    await page.fill('#f-email', 'noscript@supporter.example');
    await page.getByRole('button', { name: 'Sign the letter' }).click();
    await page.waitForURL(`${base}/c/${slug}/check-email`);

    await page.goto(confirmationLink(await mailTo(ctx, 'noscript@supporter.example')));
    await page.getByRole('button', { name: 'Confirm and send my letter' }).click();
    await page.waitForURL(`${base}/c/${slug}/thanks`);
    expect(await page.locator('.count').first().textContent()).toBe('2');
    expect(origins).toEqual(Array(4).fill(new URL(base).origin));
    await screenshot(page, 'thanks-no-js');
  });

  it('fits a phone screen without sideways scrolling', async () => {
    const page = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const kase = await getCampaign(ctx.db, slug);
    const caseSlug = (await ctx.db.query<{ slug: string }>('SELECT slug FROM cases WHERE id = $1', [kase.case_id])).rows[0]!.slug;
    for (const [name, path] of [
      ['home', '/'],
      ['campaign', `/c/${slug}`],
      ['check-email', `/c/${slug}/check-email`],
      ['thanks', `/c/${slug}/thanks`],
      ['case', `/cases/${caseSlug}`],
    ] as const) {
      await page.goto(`${base}${path}`);
      expect({ name, sideways: await scrollsSideways(page) }).toEqual({ name, sideways: false });
      await screenshot(page, `phone-${name}`);
    }
    // A pasted link has no place to break; the live preview shows it in the letter as typed.
    await page.goto(`${base}/c/${slug}`);
    await page.fill('#f-personal_note', `https://docs.example/document/d/${'1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'.repeat(4)}/edit?usp=sharing`);
    expect(await scrollsSideways(page)).toBe(false);
    await screenshot(page, 'phone-long-link');
    // The confirmation page, where the signer reads what they are about to send: each value gets
    // the width of the page, not what a label beside it leaves.
    await page.fill('#f-full_name', 'Gulnara Tursunbayeva-Abdrakhmanova');
    await page.fill('#f-email', 'phone@supporter.example');
    await page.fill('#f-personal_note', 'Please let her stay with her family, who are here and have been waiting for news of her since spring.');
    await page.getByRole('button', { name: 'Sign the letter' }).click();
    await page.goto(confirmationLink(await mailTo(ctx, 'phone@supporter.example')));
    const widths = await page.evaluate(() => {
      const list = document.querySelector('.confirm-details')!.getBoundingClientRect().width;
      return Array.from(document.querySelectorAll('.confirm-details dd')).map((dd) => dd.getBoundingClientRect().width / list);
    });
    expect(widths.length).toBeGreaterThan(0);
    expect(Math.min(...widths)).toBeGreaterThan(0.9);
    expect(await scrollsSideways(page)).toBe(false);
    await screenshot(page, 'phone-confirm');
  });

  it("keeps a parliament's list of officials folded on a phone, and nothing scrolls sideways with the page zoomed to 200 %", async () => {
    const members = Array.from({ length: 40 }, (_, i) => ({ name: `Member of Parliament Number ${i + 1}`, title: 'Committee on Human Rights and Migration', email: `mp${i + 1}@parliament.example` }));
    const { slug: mps } = await createLiveCampaign(ctx.db, { targets: members });
    const phone = await newPage({ viewport: { width: 360, height: 640 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await phone.goto(`${base}/c/${mps}`);
    expect(await phone.locator('details.officials').getAttribute('open')).toBeNull();
    await phone.fill('#f-full_name', 'Phone Parliament');
    await phone.fill('#f-email', 'parliament@supporter.example');
    await phone.getByRole('button', { name: 'Sign the letter' }).click();
    await phone.goto(confirmationLink(await mailTo(ctx, 'parliament@supporter.example')));
    // The button that sends the letter is on the first screens, not under forty officials.
    const button = await phone.getByRole('button', { name: 'Confirm and send my letter' }).boundingBox();
    expect(button!.y).toBeLessThan(2 * 640);
    await screenshot(phone, 'phone-confirm-parliament');
    // 200 % zoom on a 360 px phone: a 180 px wide window to lay out in, its text as large as ever.
    const zoomed = await newPage({ viewport: { width: 180, height: 320 }, deviceScaleFactor: 4, isMobile: true, hasTouch: true });
    for (const path of ['/', `/c/${mps}`, '/subscribe']) {
      await zoomed.goto(`${base}${path}`);
      expect({ path, sideways: await scrollsSideways(zoomed) }).toEqual({ path, sideways: false });
    }
    // City and country one under the other: side by side, each would be a few letters wide.
    await zoomed.goto(`${base}/c/${mps}`);
    const [cityBox, countryBox] = await Promise.all(['#f-city', '#f-country'].map((id) => zoomed.locator(id).boundingBox()));
    expect(countryBox!.y).toBeGreaterThan(cityBox!.y);
    await screenshot(zoomed, 'phone-zoomed-campaign');
  });

  it('shows what was typed in the preview after Back, where the browser puts it back in the fields', async () => {
    const page = await newPage();
    await page.goto(`${base}/c/${slug}`);
    await page.fill('#f-full_name', 'Back Button');
    await page.fill('#f-personal_note', 'My note.');
    // Away, then Back: the fields come back filled, without an input event.
    await page.goto(`${base}/`);
    await page.goBack();
    expect(await page.inputValue('#f-full_name')).toBe('Back Button');
    await expect.poll(() => page.locator('#letter-preview [data-field=full_name]').first().textContent()).toBe('Back Button');
    expect(await page.locator('#letter-preview').innerText()).toContain('My note.');
    // A tab pasted into the name is a space, as the signature will hold it; a note of nothing visible is no note.
    await page.fill('#f-full_name', 'Back\tButton');
    await page.fill('#f-personal_note', '');
    await expect.poll(() => page.locator('#letter-preview [data-field=full_name]').first().textContent()).toBe('Back Button');
    const withoutNote = await page.locator('#letter-preview').innerHTML();
    await page.fill('#f-personal_note', '\u200b\u2800\ufe0f');
    expect(await page.locator('#letter-preview').innerHTML()).toBe(withoutNote);
  });

  it("previews a subject made of typed fields as the letter's subject, spaces and all", async () => {
    const campaign = await createLiveCampaign(ctx.db, {
      requireConfirmation: false,
      letter: { subject: 'From {{supporter.fullName}} in {{supporter.city}}: {{supporter.personalNote}}', body: 'Dear judge,\n\n{{supporter.fullName}}' },
      targets: [{ name: 'Judge Subject', email: 'subject-judge@court.example', disclose: 'name_place' }],
    });
    const page = await newPage();
    await page.goto(`${base}/c/${campaign.slug}`);
    // An ideographic space between names and a no-break space stay; the note's line breaks are one space.
    await page.fill('#f-full_name', '山田\u3000太郎');
    await page.fill('#f-email', 'yamada@supporter.example');
    await page.fill('#f-city', 'Oslo\u00a0Nord');
    await page.fill('#f-personal_note', 'One.\nTwo.\n\n\nThree =?utf-8?b?QQ==?=');
    const shown = await page.locator('#letter-preview [data-preview="subject"]').textContent();
    await page.getByRole('button', { name: 'Sign the letter' }).click();
    const letter = await mailTo(ctx, 'subject-judge@court.example');
    // Typed text never reads as an encoded word in a subject: `=?` is broken up.
    expect(letter.subject).toBe('From 山田\u3000太郎 in Oslo\u00a0Nord: One. Two. Three = ?utf-8?b?QQ== ?=');
    expect(shown).toBe(letter.subject);
  });
});
