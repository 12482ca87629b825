import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign } from '../helpers/fixtures.ts';
import { launchBrowser, screenshot } from '../helpers/browser.ts';
import { waitForMail } from '../helpers/subscribers.ts';

function link(text: string | undefined, path: string): string {
  const match = new RegExp(`https?://\\S+/${path}/[A-Za-z0-9_-]+`).exec(text ?? '');
  if (!match) throw new Error(`no /${path}/ link in the email`);
  return match[0];
}

/** True when the page is wider than the window, i.e. the reader would have to scroll sideways. */
const scrollsSideways = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);

describe('case alerts in a real browser', () => {
  let ctx: TestContext;
  let base: string;
  let browser: Browser;
  let caseSlug: string;
  let otherCaseSlug: string;
  const contexts: BrowserContext[] = [];

  async function newPage(options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> {
    const context = await browser.newContext(options);
    contexts.push(context);
    return context.newPage();
  }

  const statusOf = async (email: string) =>
    (await ctx.db.query<{ status: string }>('SELECT status FROM subscribers WHERE email = $1', [email])).rows[0]?.status;

  beforeAll(async () => {
    ctx = await createTestContext({ db: 'pglite' });
    base = await ctx.startWeb();
    await ctx.startWorkers();
    ({ caseSlug } = await createLiveCampaign(ctx.db));
    ({ caseSlug: otherCaseSlug } = await createLiveCampaign(ctx.db));
    browser = await launchBrowser();
  });
  afterAll(async () => {
    for (const c of contexts) await c.close();
    await browser?.close();
    await ctx?.close();
  });

  it('subscribes on a case page, confirms from the email, changes what it follows, and unsubscribes', async () => {
    const email = 'reader@browser.example';
    const page = await newPage();
    await page.goto(`${base}/cases/${caseSlug}`);
    expect(await page.locator('#subscribe-heading').textContent()).toBe('Get updates about Aigerim Test');
    await page.fill('#s-email', email);
    await screenshot(page, 'case-subscribe');
    await page.getByRole('button', { name: 'Subscribe' }).click();
    await page.waitForURL(`${base}/subscribe/check-email`);
    expect(await page.locator('h1').textContent()).toBe('Check your email');
    expect(await statusOf(email)).toBe('pending');

    const optin = await waitForMail(ctx, email);
    await page.goto(link(optin.text, 'subscribe/confirm'));
    await screenshot(page, 'subscribe-confirm');
    expect(await statusOf(email)).toBe('pending');
    await page.getByRole('button', { name: 'Confirm my subscription' }).click();
    expect(await page.locator('h1').textContent()).toBe('You are subscribed');
    expect(await statusOf(email)).toBe('active');
    // A reload shows the same page: the button's POST answered with a redirect.
    await page.reload();
    expect(await page.locator('h1').textContent()).toBe('You are subscribed');
    await screenshot(page, 'subscribe-confirmed');

    await page.getByRole('link', { name: 'Choose what you follow' }).click();
    await page.waitForURL(/\/preferences\//);
    expect(await page.locator(`#p-case-${caseSlug}`).isChecked()).toBe(true);
    expect(await page.locator(`#p-case-${otherCaseSlug}`).isChecked()).toBe(false);
    await page.locator(`#p-case-${caseSlug}`).uncheck();
    await page.locator(`#p-case-${otherCaseSlug}`).check();
    await page.getByLabel('Every case, including new ones').check();
    await page.getByRole('button', { name: 'Save my choices' }).click();
    await page.waitForURL(/\/preferences\/.+\?saved=1$/);
    expect(await page.getByRole('status').textContent()).toContain('Saved.');
    expect(await page.locator(`#p-case-${caseSlug}`).isChecked()).toBe(false);
    expect(await page.locator(`#p-case-${otherCaseSlug}`).isChecked()).toBe(true);
    expect(await page.locator('#p-all').isChecked()).toBe(true);
    await screenshot(page, 'preferences');

    await page.getByRole('button', { name: 'Unsubscribe from all alerts' }).click();
    expect(await page.locator('h1').textContent()).toBe('You are unsubscribed');
    expect(await statusOf(email)).toBe('unsubscribed');
    await screenshot(page, 'unsubscribed');
  });

  it('names the email field when it is wrong, and keeps what was typed', async () => {
    const page = await newPage();
    await page.goto(`${base}/cases/${caseSlug}`);
    await page.fill('#s-email', 'not an address');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/subscribe') && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Subscribe' }).click(),
    ]);
    expect(response.status()).toBe(400);
    await page.waitForLoadState();
    expect(await page.getByRole('alert', { name: 'Please check the form:', exact: true }).textContent()).toContain('Please check the form');
    expect(await page.locator('#s-email').getAttribute('aria-invalid')).toBe('true');
    expect(await page.inputValue('#s-email')).toBe('not an address');
    expect(await page.locator('#subscribe-heading').textContent()).toBe('Get updates about Aigerim Test');
  });

  it('fits a phone screen without sideways scrolling', async () => {
    const page = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    for (const [name, path] of [
      ['case', `/cases/${caseSlug}`],
      ['subscribe', '/subscribe'],
      ['subscribe-check-email', '/subscribe/check-email'],
    ] as const) {
      await page.goto(`${base}${path}`);
      expect({ name, sideways: await scrollsSideways(page) }).toEqual({ name, sideways: false });
      await screenshot(page, `phone-${name}`);
    }
  });
});
