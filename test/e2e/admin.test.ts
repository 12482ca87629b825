import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ParsedMail } from 'mailparser';
import type { Browser, BrowserContext, ConsoleMessage, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganizer } from '../../src/organizers/service.ts';
import { launchBrowser, screenshot } from '../helpers/browser.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign, uniq } from '../helpers/fixtures.ts';

const addressesOf = (a: ParsedMail['to']) => (Array.isArray(a) ? a : a ? [a] : []).flatMap((x) => x.value.map((v) => v.address));

async function mailTo(ctx: TestContext, address: string, timeoutMs = 20_000): Promise<ParsedMail> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = ctx.sink!.messages.find((m) => addressesOf(m.to).includes(address));
    if (found) return found;
    if (Date.now() > until) throw new Error(`no message to ${address} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Reloads until `read` returns what `want` accepts: the console shows counts as they are now. */
async function reloadUntil(page: Page, read: () => Promise<string>, want: (v: string) => boolean, timeoutMs = 30_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (want(value)) return value;
    if (Date.now() > until) throw new Error(`still "${value}" after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 400));
    await page.reload();
  }
}

const TARGETS_CSV = `name,title,email,salutation
Judge Serik Example,District judge,judge@court.example,Your Honour
Ministry Desk,Foreign ministry,desk@mfa.example,Dear Minister
Consul General,Embassy,consul@embassy.example,Dear Consul General
`;

describe('running a campaign from the console in a real browser', () => {
  let ctx: TestContext;
  let base: string;
  let browser: Browser;
  let admin: Page;
  const contexts: BrowserContext[] = [];
  const email = `${uniq('admin')}@appeal.test`;
  const password = 'a long console passphrase';
  const caseSlug = uniq('erlan');
  const slug = uniq('free-erlan');

  async function newPage(options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> {
    const context = await browser.newContext(options);
    contexts.push(context);
    return context.newPage();
  }

  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres' });
    base = await ctx.startWeb();
    // No schedules: a quarter-hour digest check after the fixtures' 9:00 UTC would make a digest
    // in the middle of a test that watches signatures wait for one.
    await ctx.startWorkers({ schedule: false });
    await addOrganizer(ctx.db, { email, password, role: 'admin', name: 'Aruzhan Admin' });
    browser = await launchBrowser();
    admin = await newPage({ viewport: { width: 1280, height: 900 } });
  });
  afterAll(async () => {
    for (const c of contexts) await c.close();
    await browser?.close();
    await ctx?.close();
  });

  it('signs in, with no script errors on the way', async () => {
    const problems: string[] = [];
    admin.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    admin.on('pageerror', (e) => problems.push(e.message));
    await admin.goto(`${base}/admin`);
    expect(new URL(admin.url()).pathname).toBe('/admin/login');
    await screenshot(admin, 'admin-login');
    await admin.getByLabel('Email').fill(email);
    await admin.getByLabel('Password').fill(password);
    await admin.getByRole('button', { name: 'Sign in' }).click();
    await admin.getByRole('heading', { name: 'Dashboard' }).waitFor();
    expect(problems).toEqual([]);
  });

  it('creates a case', async () => {
    await admin.goto(`${base}/admin/cases/new`);
    await admin.getByLabel("Person's name").fill('Erlan Example');
    await admin.getByLabel('Address (slug)').fill(caseSlug);
    await admin.getByLabel('Status').selectOption('at_risk');
    await admin.getByLabel('Location').fill('Almaty, Kazakhstan');
    await admin.getByLabel('Summary').fill('Erlan crossed the border to escape the camps and now faces deportation to China.');
    await admin.getByRole('button', { name: 'Create case' }).click();
    await admin.getByRole('heading', { name: 'Erlan Example' }).waitFor();
  });

  it('shows the CSV rows that need fixing and keeps what was typed', async () => {
    await admin.goto(`${base}/admin/campaigns/new?case=${caseSlug}`);
    await admin.getByLabel('Title').first().fill('Do not deport Erlan');
    await admin.getByLabel('Address (slug)').fill(slug);
    await admin.getByLabel('Subject').fill('About {{case.personName}}');
    await admin.getByLabel('Targets as CSV').fill('name,title,email,salutation\nJudge,Court,not-an-address,Your Honour\n');
    await admin.getByRole('button', { name: 'Create draft campaign' }).click();
    await admin.locator('.errors[role=alert]').waitFor();
    expect(await admin.locator('.csv-rows .row-bad').innerText()).toContain('email must be a valid email address');
    expect(await admin.getByLabel('Title').first().inputValue()).toBe('Do not deport Erlan');
    await screenshot(admin, 'admin-campaign-new-errors');
  });

  it('leaves a CSV file not saved as UTF-8 to the server, which says so and keeps the form', async () => {
    // Excel's "CSV" on Russian or Kazakh Windows is Windows-1251: read as UTF-8 each letter is U+FFFD.
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'targets-')), 'cp1251.csv');
    fs.writeFileSync(file, Buffer.from([0xc5, 0xf0, 0xeb, 0xe0, 0xed, 0x2c, 0x2c, ...Buffer.from('judge@court.example,\n')]));
    await admin.getByLabel('Targets as CSV').fill('');
    await admin.locator('#f-targets_file').setInputFiles(file);
    await admin.getByRole('button', { name: 'Create draft campaign' }).click();
    await admin.locator('.errors[role=alert]').waitFor();
    expect(await admin.locator('.errors[role=alert]').innerText()).toContain('not saved as UTF-8');
    expect(await admin.getByLabel('Title').first().inputValue()).toBe('Do not deport Erlan');
  });

  it('creates a campaign with a CSV file of targets', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'targets-')), 'targets.csv');
    fs.writeFileSync(file, TARGETS_CSV);
    // The file input is read into the textarea by admin.js, then posted like a paste.
    await admin.locator('#f-targets_file').setInputFiles(file);
    await expect.poll(() => admin.getByLabel('Targets as CSV').inputValue()).toContain('consul@embassy.example');
    // The emptied file field says "no file chosen": a status line says where the text went.
    expect(await admin.getByRole('status').filter({ hasText: 'targets.csv is loaded into the CSV box' }).count()).toBe(1);
    await admin.getByLabel('Goal').fill('1');
    await admin.getByRole('button', { name: 'Create draft campaign' }).click();
    await admin.getByRole('heading', { name: /Do not deport Erlan/ }).waitFor();
    expect(await admin.locator('.flash').innerText()).toContain('3 targets');
  });

  it('edits the letter and sees the server-rendered preview change as it types', async () => {
    await admin.goto(`${base}/admin/campaigns/${slug}/letter`);
    const body = admin.locator('#f-letter_body');
    await body.fill('{{target.salutation}},\n\nRelease {{case.personName}} now.\n\n{{supporter.fullName}}');
    await expect.poll(() => admin.locator('#letter-preview').innerText()).toContain('Release Erlan Example now.');
    expect(await admin.locator('#letter-preview').innerText()).toContain('Your Honour,');

    await body.fill('{{target.salutation}},\n\nRelease {{case.personName}} now.\n{{supporter.password}}\n{{supporter.fullName}}');
    await expect.poll(() => admin.locator('#letter-preview').innerText()).toContain('Line 4');
    // The preview is no live region (it would read the whole letter out at every pause); a status
    // says when the letter stops compiling, and when it compiles again.
    expect(await admin.locator('#letter-preview').getAttribute('aria-live')).toBeNull();
    expect(await admin.locator('#letter-preview [role=alert]').count()).toBe(0);
    expect(await admin.getByRole('status').filter({ hasText: 'does not compile' }).count()).toBe(1);
    await screenshot(admin, 'admin-letter-error');

    await body.fill('{{target.salutation}},\n\nRelease {{case.personName}} from detention in {{case.location}} now.\n\n{{supporter.personalNote}}\n\n{{supporter.fullName}}\n{{supporter.city}}');
    await expect.poll(() => admin.locator('#letter-preview').innerText()).toContain('from detention in Almaty, Kazakhstan now.');
    expect(await admin.locator('#letter-preview-status').innerText()).toContain('compiles again');
    await admin.getByRole('button', { name: 'Save letter' }).click();
    await admin.locator('.flash').waitFor();
    expect(await admin.locator('.flash').innerText()).toBe('Letter saved.');
    await screenshot(admin, 'admin-letter');
  });

  it('launches the campaign after a confirmation', async () => {
    await admin.goto(`${base}/admin/campaigns/${slug}`);
    await admin.getByRole('link', { name: 'Launch…' }).click();
    await admin.getByRole('heading', { name: /Launch/ }).waitFor();
    expect(await admin.locator('main').innerText()).toContain('Letters go to 3 targets');
    await admin.getByRole('button', { name: 'Launch the campaign' }).click();
    await admin.locator('.flash').waitFor();
    expect(await admin.locator('h1 .status').innerText()).toMatch(/live/i);
  });

  it('watches a signature from the public page turn into letters sent', async () => {
    const supporter = await newPage({ viewport: { width: 390, height: 844 } });
    await supporter.goto(`${base}/c/${slug}`);
    await supporter.getByLabel('Full name').fill('Dana Signer');
    await supporter.locator('#f-email').fill('dana@supporter.example');
    await supporter.locator('#f-city').fill('Lyon');
    await supporter.locator('#f-country').fill('France');
    await supporter.getByLabel(/Email me updates/).check();
    await supporter.getByRole('button', { name: 'Sign the letter' }).click();
    await supporter.waitForURL(/check-email/);

    await admin.goto(`${base}/admin/campaigns/${slug}`);
    await reloadUntil(admin, () => admin.locator('[data-stat=pending]').innerText(), (v) => v === '1');

    const link = /https?:\/\/\S+\/confirm\/[A-Za-z0-9_-]+/.exec((await mailTo(ctx, 'dana@supporter.example')).text ?? '')![0];
    await supporter.goto(link);
    await supporter.getByRole('button', { name: 'Confirm and send my letter' }).click();
    await supporter.waitForURL(/thanks/);

    // No reload: admin.js keeps the counts current while the page is open.
    await expect.poll(() => admin.locator('[data-stat=confirmed]').innerText(), { timeout: 30_000 }).toBe('1');
    await expect.poll(() => admin.locator('#delivery-counts [data-status=sent]').innerText(), { timeout: 30_000 }).toBe('3');
    await admin.reload();
    expect(await admin.locator('#delivery-counts [data-status=failed]').innerText()).toBe('0');
    expect(await admin.locator('table').last().innerText()).toContain('Dana Signer');
    expect(await admin.locator('.chart svg title').first().textContent()).toContain('Signatures per day');
    // The chart's figures are readable without a mouse, and the goal meter has a name.
    expect(await admin.locator('.chart-days tbody tr').count()).toBeGreaterThan(0);
    expect(await admin.getByRole('meter', { name: 'Confirmed signatures toward the goal' }).count()).toBe(1);
    // Each scrolling table is a region named for what it holds, so a list of regions tells them apart.
    const regions = await admin.locator('[role=region]').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
    expect(regions).toContain('Letters by status (table)');
    expect(new Set(regions).size).toBe(regions.length);
    await screenshot(admin, 'admin-campaign');

    await admin.goto(`${base}/admin`);
    expect(await admin.locator('.attention').innerText()).toMatch(/near its goal|reached/);
    await screenshot(admin, 'admin-dashboard');
  });

  it('keeps a digest campaign\'s "waits for the next digest" line current without a reload', async () => {
    const digest = await createLiveCampaign(ctx.db, { deliveryMode: 'digest' });
    await admin.goto(`${base}/admin/campaigns/${digest.slug}`);
    expect(await admin.locator('#digest-waiting').innerText()).toBe('No confirmed signature waits for the next digest.');
    await ctx.db.query(
      `INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) SELECT id, 'Wai Ting', 'wait@supporter.example', 'confirmed', now() FROM campaigns WHERE slug = $1`,
      [digest.slug],
    );
    await expect.poll(() => admin.locator('[data-stat=confirmed]').innerText(), { timeout: 30_000 }).toBe('1');
    await expect.poll(() => admin.locator('#digest-waiting').innerText(), { timeout: 10_000 }).toMatch(/^1 confirmed signature waits for the next digest/);
  });

  it('posts a case update after seeing how many subscribers get it, and sees the alert counts', async () => {
    await admin.goto(`${base}/admin/cases/${caseSlug}`);
    await admin.getByLabel('Title').fill('Court hearing moved to Monday');
    await admin.getByLabel('What happened').fill('The hearing is on Monday at 10:00. Please write before then.');
    await admin.getByRole('button', { name: 'Preview the alert' }).click();
    await admin.locator('#recipients').waitFor();
    expect(await admin.locator('#recipients').innerText()).toBe('1 subscriber will get this email.');
    expect(await admin.locator('.email-preview').innerText()).toContain('Court hearing moved to Monday');
    // As a follower of this case reads it, not one of all cases.
    expect(await admin.locator('.email-preview').innerText()).toMatch(/You get this because you follow (?!all cases)/);
    await screenshot(admin, 'admin-case-update-preview');
    await admin.getByRole('button', { name: 'Post update and send to 1 subscriber' }).click();
    await admin.locator('.flash').waitFor();
    // What happened is in view, not scrolled past to the list of updates.
    const flashInView = () => admin.locator('.flash').evaluate((el) => el.getBoundingClientRect().top >= 0 && el.getBoundingClientRect().bottom <= window.innerHeight);
    expect(await flashInView()).toBe(true);
    const sentCell = () => admin.locator('table.updates tbody tr').first().locator('td').nth(3).innerText();
    await reloadUntil(admin, sentCell, (v) => v === '1');
    expect(await admin.locator('table.updates tbody tr').first().locator('td').nth(2).innerText()).toBe('1');
    await mailTo(ctx, 'dana@supporter.example');
    await screenshot(admin, 'admin-case');

    // Withdrawing asks first; the script's dialog stands in for the page that asks without it.
    let asked = '';
    admin.once('dialog', (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await admin.locator('table.updates tbody tr').first().getByRole('button', { name: 'Withdraw' }).click();
    await admin.locator('.flash').waitFor();
    expect(asked).toContain('Withdraw “Court hearing moved to Monday”?');
    expect(await admin.locator('.flash').innerText()).toContain('is withdrawn');
    expect(await flashInView()).toBe(true);
  });

  it('previews a CSV import with row-level errors before importing anything', async () => {
    await admin.goto(`${base}/admin/campaigns/${slug}/targets/import`);
    await admin.getByLabel('CSV', { exact: true }).fill('name,title,email,salutation\nMP Example,Member of parliament,mp@parliament.example,Dear Member\nNo Email,,,\n');
    await admin.getByRole('button', { name: 'Preview' }).click();
    expect(await admin.locator('.csv-rows .row-bad').innerText()).toContain('email');
    await screenshot(admin, 'admin-targets-import');
    await admin.getByLabel('CSV', { exact: true }).fill('MP Example,Member of parliament,mp@parliament.example,Dear Member\n');
    await admin.getByRole('button', { name: 'Preview' }).click();
    await admin.getByRole('button', { name: 'Import 1 target' }).click();
    await admin.locator('.flash').waitFor();
    expect(await admin.locator('main table').innerText()).toContain('mp@parliament.example');
  });

  /**
   * Presses the button named `text` twice, the second press while the first is on its way over a
   * slow line (answers to `url` take 800 ms), then waits for `answered`.
   * @returns how many POSTs left the browser.
   */
  async function pressedTwiceOnSlowLine(url: string, text: string, answered: () => Promise<unknown>): Promise<number> {
    let posts = 0;
    await admin.route(url, async (route) => {
      if (route.request().method() === 'POST') posts++;
      await new Promise((r) => setTimeout(r, 800));
      await route.continue();
    });
    try {
      await admin.evaluate((name) => {
        const button = Array.from(document.querySelectorAll('button')).find((b) => b.textContent === name)!;
        button.click();
        setTimeout(() => button.click(), 250);
      }, text);
      await answered();
    } finally {
      await admin.unroute(url);
    }
    return posts;
  }

  it('sends a form that shows a token once only once, so a double click on a slow line still shows the token', async () => {
    await admin.goto(`${base}/admin/tokens`);
    const label = `slow line ${uniq('t')}`;
    await admin.getByLabel('What is it for?').fill(label);
    const posts = await pressedTwiceOnSlowLine('**/admin/tokens', 'Create token', () => admin.getByRole('status').filter({ hasText: label }).waitFor());
    expect(posts).toBe(1);
    expect(await admin.locator('input[aria-label="New API token"]').inputValue()).toMatch(/^apl_/);
    expect((await ctx.db.query('SELECT 1 FROM api_tokens WHERE label = $1', [label])).rowCount).toBe(1);
  });

  /** Opens the new-case form and fills it in. @returns the case's slug */
  async function fillNewCase(prefix: string, name: string): Promise<string> {
    await admin.goto(`${base}/admin/cases/new`);
    const slug = uniq(prefix);
    await admin.getByLabel("Person's name").fill(name);
    await admin.getByLabel('Address (slug)').fill(slug);
    await admin.getByLabel('Summary').fill('Detained at the border.');
    return slug;
  }

  it('sends any console form once, so a double click on a slow line shows the case created, not "this slug exists already"', async () => {
    const slug = await fillNewCase('twice', 'Twice Clicked');
    const posts = await pressedTwiceOnSlowLine('**/admin/cases', 'Create case', () => admin.waitForURL(`${base}/admin/cases/${slug}`));
    expect(posts).toBe(1);
    expect(await admin.locator('main').innerText()).not.toContain('exists already');
  });

  it('lets a form whose send was stopped (Esc, the Stop button) be sent again after a few seconds, without a reload that loses what was typed', async () => {
    const slug = await fillNewCase('stopped', 'Stopped Send');
    let posts = 0;
    let hang = true;
    await admin.route('**/admin/cases', async (route) => {
      if (route.request().method() === 'POST') posts++;
      if (hang) return; // no answer: the line is stuck
      await route.continue();
    });
    const cdp = await admin.context().newCDPSession(admin);
    try {
      await admin.getByRole('button', { name: 'Create case' }).click({ noWaitAfter: true });
      await expect.poll(() => posts).toBe(1);
      await cdp.send('Page.stopLoading');
      hang = false;
      // At once, a second press still sends nothing (a double click on a slow line).
      await admin.getByRole('button', { name: 'Create case' }).click({ noWaitAfter: true });
      await new Promise((r) => setTimeout(r, 1000));
      expect(posts).toBe(1);
      // The few seconds the guard holds.
      await new Promise((r) => setTimeout(r, 4500));
      await admin.getByRole('button', { name: 'Create case' }).click();
      await admin.waitForURL(`${base}/admin/cases/${slug}`);
      expect(posts).toBe(2);
    } finally {
      await cdp.detach();
      await admin.unroute('**/admin/cases');
    }
  });

  it('shows the queues to an admin in bull-board and the audit log of what was done', async () => {
    // bull-board's own page links fonts from Google: the console takes that link out.
    const problems: string[] = [];
    const elsewhere: string[] = [];
    const onConsole = (m: ConsoleMessage) => m.type() === 'error' && problems.push(m.text());
    const onRequest = (r: Request) => new URL(r.url()).origin !== base && !r.url().startsWith('data:') && elsewhere.push(r.url());
    admin.on('console', onConsole);
    admin.on('request', onRequest);
    await admin.goto(`${base}/admin/queues/`);
    await admin.getByText('send', { exact: true }).first().waitFor({ timeout: 20_000 });
    admin.off('console', onConsole);
    admin.off('request', onRequest);
    expect(problems).toEqual([]);
    expect(elsewhere).toEqual([]);
    // Its pages link only within it, but for one way back to the console: in its menu of links.
    await admin.locator('ul[class^="actions-"] > li').last().locator('button').click();
    await admin.getByText('Back to the console').click();
    await admin.waitForURL(`${base}/admin`);
    await screenshot(admin, 'admin-queues');
    await admin.goto(`${base}/admin/audit`);
    const log = await admin.locator('table.audit').innerText();
    for (const action of ['login', 'case.create', 'campaign.create', 'campaign.letter', 'campaign.launch', 'case.update_post', 'target.import']) {
      expect(log).toContain(action);
    }
    await screenshot(admin, 'admin-audit');
  });

  it('reads well on a phone', async () => {
    const phone = await newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto(`${base}/admin/login`);
    await phone.getByLabel('Email').fill(email);
    await phone.getByLabel('Password').fill(password);
    await phone.getByRole('button', { name: 'Sign in' }).click();
    await phone.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await screenshot(phone, 'admin-dashboard-phone');
    const sideways = () => phone.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
    expect(await sideways()).toBe(false);
    // A table scrolls in its own box; no cell is squeezed into one letter a line.
    const squeezed = () =>
      phone.evaluate(() =>
        Array.from(document.querySelectorAll('.table-wrap td, .table-wrap th'))
          .filter((cell) => /^\S{4,}$/.test(cell.textContent!.trim()) && !cell.querySelector('.sr-only'))
          .filter((cell) => {
            const text = document.createRange();
            text.selectNodeContents(cell);
            return text.getBoundingClientRect().height > 3 * parseFloat(getComputedStyle(cell).lineHeight);
          })
          .map((cell) => cell.textContent!.trim()),
      );
    const pages = [
      [`/admin/campaigns/${slug}`, 'admin-campaign-phone'],
      [`/admin/campaigns/${slug}/letter`, 'admin-letter-phone'],
      [`/admin/campaigns/${slug}/targets`, 'admin-targets-phone'],
      [`/admin/campaigns/${slug}/signatures`, 'admin-signatures-phone'],
      ['/admin/audit', 'admin-audit-phone'],
      ['/admin/deliveries/failed', 'admin-failed-phone'],
      ['/admin/suppressions', 'admin-suppressions-phone'],
    ] as const;
    for (const [page, name] of pages) {
      await phone.goto(`${base}${page}`);
      await screenshot(phone, name);
      expect(await sideways(), page).toBe(false);
      expect(await squeezed(), page).toEqual([]);
    }
  });
});
