import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganizer, listOrganizers, LOGIN_MAX_FAILURES, recordAudit, setOrganizerRole } from '../../src/organizers/service.ts';
import { createWebApp } from '../../src/web/app.ts';
import { ConsoleClient, createOrganizer, PASSWORD, signedIn } from '../helpers/admin-client.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign, uniq } from '../helpers/fixtures.ts';
import { whileHeld } from '../helpers/locks.ts';

const failureText = (html: string) => /<div class="errors" role="alert"[^>]*><p>([^<]+)<\/p>/.exec(html)?.[1];
const cookieLine = (lines: string[], name: string) => lines.find((l) => l.startsWith(`${name}=`));

/** A web app of the block's own: its own schema, queue prefix and so its own rate-limit counters. */
function ownConsole(set: (ctx: TestContext, base: string) => void) {
  let ctx: TestContext | undefined;
  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres', mail: 'outbox' });
    set(ctx, await ctx.startWeb());
  });
  afterAll(async () => {
    await ctx?.close();
  });
}

/** A stranger's browser that has guessed until the organizer's account locked. */
async function lockOut(base: string, email: string): Promise<ConsoleClient> {
  const stranger = new ConsoleClient(base);
  await stranger.open('/admin/login');
  for (let i = 0; i < LOGIN_MAX_FAILURES; i++) await stranger.post('/admin/login', { email, password: `guess ${i} guess` });
  return stranger;
}

describe('signing in to the console (Postgres)', () => {
  let ctx: TestContext;
  let base: string;
  ownConsole((c, b) => {
    ctx = c;
    base = b;
  });

  it('sends a signed-out visitor to the sign-in page and back after signing in', async () => {
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    const first = await client.get('/admin/campaigns');
    expect(first.status).toBe(303);
    expect(first.location).toBe('/admin/login?next=%2Fadmin%2Fcampaigns');
    await client.open(first.location!);
    const res = await client.post('/admin/login', { email: organizer.email, password: PASSWORD, next: '/admin/campaigns' });
    expect(res.status).toBe(303);
    expect(res.location).toBe('/admin/campaigns');
    expect((await client.get('/admin/campaigns')).status).toBe(200);
  });

  it('signs in an organizer whose address is on a domain in another script, however the domain is typed', async () => {
    const local = uniq('idn');
    const { organizer } = await addOrganizer(ctx.db, { email: `${local}@bücher.example`, role: 'organizer', password: PASSWORD, name: 'Idn Organizer' });
    expect(organizer.email).toBe(`${local}@xn--bcher-kva.example`);
    for (const typed of [`${local}@BÜCHER.example`, `${local}@xn--bcher-kva.example`]) {
      const client = new ConsoleClient(base);
      await client.open('/admin/login');
      expect((await client.post('/admin/login', { email: typed, password: PASSWORD })).location).toBe('/admin');
    }
  });

  it('never redirects off the console after sign-in', async () => {
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    await client.open('/admin/login');
    const res = await client.post('/admin/login', { email: organizer.email, password: PASSWORD, next: '//evil.example/admin' });
    expect(res.location).toBe('/admin');
  });

  it('sets an HttpOnly, SameSite=Lax session cookie scoped to /admin, not Secure on http, and stores only its hash', async () => {
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    await client.open('/admin/login');
    await client.post('/admin/login', { email: organizer.email, password: PASSWORD });
    const line = cookieLine(client.lastSetCookies, 'appeal_session')!;
    expect(line).toMatch(/; HttpOnly/i);
    expect(line).toMatch(/; SameSite=Lax/i);
    expect(line).toMatch(/; Path=\/admin/i);
    expect(line).not.toMatch(/; Secure/i);
    expect(line).not.toMatch(/Max-Age|Expires/i);
    // cookie-parser signs as s:<value>.<hmac>
    const raw = decodeURIComponent(client.cookies.get('appeal_session')!).replace(/^s:/, '').replace(/\.[^.]+$/, '');
    const { rows } = await ctx.db.query<{ id_hash: string }>('SELECT id_hash FROM organizer_sessions WHERE organizer_id = $1', [organizer.id]);
    expect(rows.map((r) => r.id_hash)).toEqual([crypto.createHash('sha256').update(raw).digest('hex')]);
  });

  it('forgets the keys of console forms that no live session could send again, at a sign-in', async () => {
    await ctx.db.query(`INSERT INTO console_requests (key, done_at) VALUES ('old-form', now() - interval '8 days'), ('recent-form', now() - interval '6 days')`);
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    await client.open('/admin/login');
    expect((await client.post('/admin/login', { email: organizer.email, password: PASSWORD })).status).toBe(303);
    const { rows } = await ctx.db.query<{ key: string }>(`SELECT key FROM console_requests WHERE key IN ('old-form', 'recent-form')`);
    // Older than the longest session (7 days): its CSRF token's session is gone, so is its key.
    expect(rows.map((r) => r.key)).toEqual(['recent-form']);
  });

  it('keeps a session alive for pages asked for, not for a campaign page\'s background poll of its counts', async () => {
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    await client.open('/admin/login');
    await client.post('/admin/login', { email: organizer.email, password: PASSWORD });
    const { slug } = await createLiveCampaign(ctx.db);
    const expires = async () => (await ctx.db.query<{ left: number }>(
      `SELECT extract(epoch FROM expires_at - now())::float8 AS left FROM organizer_sessions WHERE organizer_id = $1`, [organizer.id],
    )).rows[0]!.left;
    // As if the organizer had left the page open for most of the idle period.
    await ctx.db.query(`UPDATE organizer_sessions SET expires_at = now() + interval '60 seconds' WHERE organizer_id = $1`, [organizer.id]);
    const poll = await client.get(`/admin/campaigns/${slug}/stats.json`);
    expect(poll.status).toBe(200);
    expect(await expires()).toBeLessThanOrEqual(60);
    expect((await client.get(`/admin/campaigns/${slug}`)).status).toBe(200);
    expect(await expires()).toBeGreaterThan(3600);
  });

  it('keeps no admin signed in for the queues board\'s background poll of its API', async () => {
    const { client, organizer } = await signedIn(base, ctx.db, 'admin');
    const expires = async () => (await ctx.db.query<{ left: number }>(
      `SELECT extract(epoch FROM expires_at - now())::float8 AS left FROM organizer_sessions WHERE organizer_id = $1`, [organizer.id],
    )).rows[0]!.left;
    await ctx.db.query(`UPDATE organizer_sessions SET expires_at = now() + interval '60 seconds' WHERE organizer_id = $1`, [organizer.id]);
    expect((await client.get('/admin/queues/api/queues?activeQueue=&page=1&jobsPerPage=10')).status).toBe(200);
    expect(await expires()).toBeLessThanOrEqual(60);
    expect((await client.get('/admin/queues/')).status).toBe(200);
    expect(await expires()).toBeGreaterThan(3600);
  });

  it('refuses a queue name the board cannot read with a 400, not its 500', async () => {
    const { client } = await signedIn(base, ctx.db, 'admin');
    for (const name of ['%25ZZ', 'send%25', '%25']) {
      const res = await client.get(`/admin/queues/api/queues?activeQueue=${name}&page=1&jobsPerPage=10`);
      expect(res.status, name).toBe(400);
      expect(JSON.parse(res.text).error.message).toBe('activeQueue must be the name of one queue.');
    }
    const twice = await client.get('/admin/queues/api/queues?activeQueue=send&activeQueue=fanout');
    expect(twice.status).toBe(400);
    expect((await client.get('/admin/queues/api/queues?activeQueue=send&page=1&jobsPerPage=10')).status).toBe(200);
  });

  it('marks the cookies Secure when PUBLIC_URL is https', async () => {
    const app = createWebApp({ ...ctx, config: Object.freeze({ ...ctx.config, publicUrl: 'https://appeal.example' }) });
    const server = await new Promise<import('node:http').Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const organizer = await createOrganizer(ctx.db);
      const client = new ConsoleClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      await client.open('/admin/login');
      expect(cookieLine(client.lastSetCookies, 'appeal_login')).toMatch(/; Secure/i);
      await client.post('/admin/login', { email: organizer.email, password: PASSWORD });
      expect(cookieLine(client.lastSetCookies, 'appeal_session')).toMatch(/; Secure/i);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses a tampered session cookie', async () => {
    const { client } = await signedIn(base, ctx.db);
    const value = decodeURIComponent(client.cookies.get('appeal_session')!);
    // Change the first character to a different one (replacing it with a fixed letter is a no-op 1 time in 64).
    client.cookies.set('appeal_session', encodeURIComponent(value.replace(/^s:(.)/, (_, c: string) => `s:${c === 'A' ? 'B' : 'A'}`)));
    expect((await client.get('/admin')).status).toBe(303);
  });

  it('answers a wrong password and an unknown email with the same message', async () => {
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    await client.open('/admin/login');
    const wrong = await client.post('/admin/login', { email: organizer.email, password: 'not the password at all' });
    const unknown = await client.post('/admin/login', { email: `${uniq('nobody')}@appeal.test`, password: 'not the password at all' });
    // Nor its timing: test/unit/organizers/login-floor.test.ts.
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(failureText(wrong.text)).toBeTruthy();
    expect(failureText(unknown.text)).toBe(failureText(wrong.text));
    // As every console form sent back: its title says so, and the page opens on the message without scripts too.
    expect(wrong.text).toContain('<title>Error: Sign in');
    expect(wrong.text).toMatch(/<div class="errors" role="alert" tabindex="-1" autofocus>/);
    expect(unknown.text.replace(/name="_csrf" value="[^"]+"/, '').replace(/value="[^"]*@appeal.test"/, ''))
      .toBe(wrong.text.replace(/name="_csrf" value="[^"]+"/, '').replace(/value="[^"]*@appeal.test"/, ''));
  });

  it('says which field is empty, and counts an empty form as no attempt', async () => {
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    await client.open('/admin/login');
    for (let i = 0; i < LOGIN_MAX_FAILURES + 1; i++) {
      const empty = await client.post('/admin/login', { email: organizer.email, password: '' });
      expect(empty.status).toBe(400);
      expect(failureText(empty.text)).toBe('Enter your password.');
    }
    expect(failureText((await client.post('/admin/login', { email: '', password: '' })).text)).toBe('Enter your email and password.');
    expect((await client.post('/admin/login', { email: organizer.email, password: PASSWORD })).status).toBe(303);
  });

  it(`locks an account after ${LOGIN_MAX_FAILURES} wrong passwords, refuses even the right one with the same message, and unlocks after the window`, async () => {
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    await client.open('/admin/login');
    let last = '';
    for (let i = 0; i < LOGIN_MAX_FAILURES; i++) {
      const res = await client.post('/admin/login', { email: organizer.email, password: `wrong ${i} wrong wrong` });
      expect(res.status).toBe(401);
      last = failureText(res.text)!;
    }
    const { rows } = await ctx.db.query<{ locked_until: Date }>('SELECT locked_until FROM organizers WHERE id = $1', [organizer.id]);
    expect(rows[0]!.locked_until.getTime()).toBeGreaterThan(Date.now());

    const locked = await client.post('/admin/login', { email: organizer.email, password: PASSWORD });
    expect(locked.status).toBe(401);
    expect(failureText(locked.text)).toBe(last);
    expect(client.cookies.has('appeal_session')).toBe(false);

    // Failures during the lockout do not extend it.
    await client.post('/admin/login', { email: organizer.email, password: 'still wrong wrong' });
    const after = await ctx.db.query<{ locked_until: Date }>('SELECT locked_until FROM organizers WHERE id = $1', [organizer.id]);
    expect(after.rows[0]!.locked_until.getTime()).toBe(rows[0]!.locked_until.getTime());

    // The window passes.
    await ctx.db.query(`UPDATE organizers SET locked_until = now() - interval '1 second' WHERE id = $1`, [organizer.id]);
    const ok = await client.post('/admin/login', { email: organizer.email, password: PASSWORD });
    expect(ok.status).toBe(303);
    const audit = await ctx.db.query<{ action: string }>('SELECT action FROM audit_log WHERE organizer_id = $1 ORDER BY id', [organizer.id]);
    expect(audit.rows.map((r) => r.action)).toEqual([
      ...Array(LOGIN_MAX_FAILURES - 1).fill('login.failed'), 'login.locked', 'login.refused', 'login.refused', 'login',
    ]);
  });

  it('signs out: the session row is gone and the old cookie opens nothing', async () => {
    const { client, organizer } = await signedIn(base, ctx.db);
    const stolen = client.cookies.get('appeal_session')!;
    const out = await client.post('/admin/logout', {});
    expect(out.status).toBe(303);
    const { rows } = await ctx.db.query('SELECT 1 FROM organizer_sessions WHERE organizer_id = $1', [organizer.id]);
    expect(rows).toHaveLength(0);
    const audit = await ctx.db.query<{ action: string }>('SELECT action FROM audit_log WHERE organizer_id = $1 ORDER BY id DESC LIMIT 1', [organizer.id]);
    expect(audit.rows).toEqual([{ action: 'logout' }]);
    // Signed out is not never seen: the organizers list still says when.
    const listed = (await listOrganizers(ctx.db)).find((o) => o.id === organizer.id)!;
    expect(Date.now() - listed.last_seen_at!.getTime()).toBeLessThan(60_000);
    const replay = new ConsoleClient(base);
    replay.cookies.set('appeal_session', stolen);
    expect((await replay.get('/admin')).status).toBe(303);
  });

  it('changes the password only with the current one, and signs out every other browser', async () => {
    const { client, organizer } = await signedIn(base, ctx.db);
    const other = new ConsoleClient(base);
    await other.login(organizer.email);
    expect((await other.get('/admin')).status).toBe(200);

    await client.open('/admin/password');
    const bad = await client.post('/admin/password', { current_password: 'not it at all', new_password: 'short', confirm_password: 'different' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('is not your current password');
    expect(bad.text).toContain('must be at least 10 characters');
    expect(bad.text).toContain('does not match the new password');
    // The summary reads in the form's order, the page opens on it without scripts too, and its title says it came back.
    const summary = bad.text.slice(bad.text.indexOf('error-summary-title'));
    expect(summary.indexOf('Current password')).toBeLessThan(summary.indexOf('New password'));
    expect(bad.text).toMatch(/<div class="errors" role="alert" tabindex="-1" aria-labelledby="error-summary-title" autofocus>/);
    expect(bad.text).toContain('<title>Error: Change your password');
    const common = await client.post('/admin/password', { current_password: PASSWORD, new_password: 'password1234', confirm_password: 'password1234' });
    expect(common.status).toBe(400);
    expect(common.text).toContain('is too easy to guess');

    const ok = await client.post('/admin/password', { current_password: PASSWORD, new_password: 'a brand new passphrase', confirm_password: 'a brand new passphrase' });
    expect(ok.status).toBe(303);
    expect((await client.get('/admin')).status).toBe(200);
    expect((await other.get('/admin')).status).toBe(303);
    const again = new ConsoleClient(base);
    expect((await again.login(organizer.email, 'a brand new passphrase')).status).toBe(303);
  });
});

describe('a password change that cannot end the other sessions (Postgres)', () => {
  let ctx: TestContext;
  let base: string;
  ownConsole((c, b) => {
    ctx = c;
    base = b;
  });

  it('keeps the old password, so no stolen session outlives a new one', async () => {
    const { client, organizer } = await signedIn(base, ctx.db);
    // This block's own schema: ending sessions fails, as a dropped connection would mid-change.
    await ctx.db.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
      CREATE TRIGGER refuse BEFORE DELETE ON organizer_sessions FOR EACH ROW EXECUTE FUNCTION refuse()`);
    await client.open('/admin/password');
    const res = await client.post('/admin/password', { current_password: PASSWORD, new_password: 'a brand new passphrase', confirm_password: 'a brand new passphrase' });
    expect(res.status).toBe(500);
    await ctx.db.query('DROP TRIGGER refuse ON organizer_sessions');
    expect((await new ConsoleClient(base).login(organizer.email, 'a brand new passphrase')).status).not.toBe(303);
    expect((await new ConsoleClient(base).login(organizer.email)).status).toBe(303);
  });
});

const checksOf = async (db: TestContext['db'], organizerId: number) =>
  (await db.query<{ action: string }>('SELECT action FROM audit_log WHERE organizer_id = $1 ORDER BY id', [organizerId])).rows.map((r) => r.action);

describe('when sign-in is attacked with a burst of parallel guesses (Postgres)', () => {
  let ctx: TestContext;
  let base: string;
  ownConsole((c, b) => {
    ctx = c;
    base = b;
  });

  it(`checks no more than ${LOGIN_MAX_FAILURES} passwords and holds the rest of one address's attempts at its limit`, async () => {
    const organizer = await createOrganizer(ctx.db);
    const clients = await Promise.all(Array.from({ length: 30 }, async () => {
      const c = new ConsoleClient(base);
      await c.open('/admin/login');
      return c;
    }));
    const statuses = await Promise.all(clients.map((c, i) => c.post('/admin/login', { email: organizer.email, password: `guess number ${i}` }).then((r) => r.status)));
    const actions = await checksOf(ctx.db, organizer.id);
    const checked = actions.filter((a) => a === 'login.failed' || a === 'login.locked');
    expect(checked).toHaveLength(LOGIN_MAX_FAILURES);
    expect(actions.filter((a) => a === 'login.locked')).toHaveLength(1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);

    // This address has used up its failures: even the right password waits for the window.
    const late = new ConsoleClient(base);
    await late.open('/admin/login');
    expect((await late.post('/admin/login', { email: organizer.email, password: PASSWORD })).status).toBe(429);
    // Counted in the web process: no IP's count is written to Redis, whose append-only file would
    // keep it in order beside the sign-in it came with.
    expect(await ctx.redis.client.keys(`${ctx.config.queuePrefix}:rl:*`)).toEqual([]);
  });
});

describe('when a known organizer is under attack (Postgres)', () => {
  let ctx: TestContext;
  let base: string;
  ownConsole((c, b) => {
    ctx = c;
    base = b;
  });

  it('the organizer still signs in from a browser they used before, while a stranger is locked out', async () => {
    const organizer = await createOrganizer(ctx.db);
    const own = new ConsoleClient(base);
    expect((await own.login(organizer.email)).status).toBe(303);
    expect(own.cookies.has('appeal_device')).toBe(true);
    await own.post('/admin/logout', {});

    const stranger = new ConsoleClient(base);
    await stranger.open('/admin/login');
    for (let i = 0; i < LOGIN_MAX_FAILURES; i++) {
      expect((await stranger.post('/admin/login', { email: organizer.email, password: `guess ${i} guess` })).status).toBe(401);
    }
    expect((await stranger.post('/admin/login', { email: organizer.email, password: PASSWORD })).status).toBe(401);

    expect((await own.login(organizer.email)).status).toBe(303);
    expect((await own.get('/admin')).status).toBe(200);
    // Signing in from the trusted device does not lift the stranger's lockout.
    const { rows } = await ctx.db.query<{ locked: boolean }>('SELECT locked_until > now() AS locked FROM organizers WHERE id = $1', [organizer.id]);
    expect(rows[0]!.locked).toBe(true);
  });

  it('forgets failures older than an hour', async () => {
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    await client.open('/admin/login');
    for (let i = 0; i < LOGIN_MAX_FAILURES - 1; i++) await client.post('/admin/login', { email: organizer.email, password: `typo ${i} typo` });
    await ctx.db.query(`UPDATE organizers SET last_failed_login_at = now() - interval '2 hours' WHERE id = $1`, [organizer.id]);
    await client.post('/admin/login', { email: organizer.email, password: 'one more typo' });
    const { rows } = await ctx.db.query<{ failed_logins: number; locked_until: Date | null }>('SELECT failed_logins, locked_until FROM organizers WHERE id = $1', [organizer.id]);
    expect(rows[0]).toEqual({ failed_logins: 1, locked_until: null });
  });

  it('answers 429 to a session that keeps guessing its current password', async () => {
    const { client } = await signedIn(base, ctx.db);
    await client.open('/admin/password');
    for (let i = 0; i < 5; i++) {
      const res = await client.post('/admin/password', { current_password: `guess ${i} guess`, new_password: 'a brand new passphrase', confirm_password: 'a brand new passphrase' });
      expect(res.status).toBe(400);
    }
    const res = await client.post('/admin/password', { current_password: PASSWORD, new_password: 'a brand new passphrase', confirm_password: 'a brand new passphrase' });
    expect(res.status).toBe(429);
  });
});

// Their own web process: each locks an account from 127.0.0.1, whose allowance of failed sign-ins
// (LOGIN_FAILURES_PER_IP) the tests of one process share.
describe('when an organizer changes their password (Postgres)', () => {
  let ctx: TestContext;
  let base: string;
  ownConsole((c, b) => {
    ctx = c;
    base = b;
  });

  it('a device trusted before a password change is trusted no more, but the browser that changed it is', async () => {
    const organizer = await createOrganizer(ctx.db);
    // Signed in with the old password, and not since: the laptop left at the office.
    const other = new ConsoleClient(base);
    expect((await other.login(organizer.email)).status).toBe(303);
    await other.post('/admin/logout', {});
    const own = new ConsoleClient(base);
    expect((await own.login(organizer.email)).status).toBe(303);
    await own.open('/admin/password');
    expect((await own.post('/admin/password', { current_password: PASSWORD, new_password: 'the second passphrase', confirm_password: 'the second passphrase' })).status).toBe(303);
    await own.post('/admin/logout', {});

    await lockOut(base, organizer.email);
    // Its cookie was earned with the old password: the lockout holds for it.
    expect((await other.login(organizer.email, 'the second passphrase')).status).toBe(401);
    // This one showed the new password when it set it, as a sign-in would have: it still gets in.
    expect((await own.login(organizer.email, 'the second passphrase')).status).toBe(303);
    expect((await own.get('/admin')).status).toBe(200);
  });

  it('keeps the browser of a new organizer, made to choose a password at the first sign-in, trusted through a lockout', async () => {
    const organizer = await createOrganizer(ctx.db);
    await ctx.db.query('UPDATE organizers SET password_must_change = true WHERE id = $1', [organizer.id]);
    const own = new ConsoleClient(base);
    expect((await own.login(organizer.email)).status).toBe(303);
    await own.open('/admin/password');
    expect((await own.post('/admin/password', { current_password: PASSWORD, new_password: 'one of my own choosing', confirm_password: 'one of my own choosing' })).status).toBe(303);
    await own.post('/admin/logout', {});

    const stranger = await lockOut(base, organizer.email);
    expect((await stranger.post('/admin/login', { email: organizer.email, password: 'one of my own choosing' })).status).toBe(401);
    expect((await own.login(organizer.email, 'one of my own choosing')).status).toBe(303);
  });
});

describe('when one organizer\'s trusted device is used against another (Postgres)', () => {
  let ctx: TestContext;
  let base: string;
  ownConsole((c, b) => {
    ctx = c;
    base = b;
  });

  it('its cookie lifts neither the victim\'s lockout nor the per-address limit', async () => {
    const mallory = await createOrganizer(ctx.db);
    const victim = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    expect((await client.login(mallory.email)).status).toBe(303);
    await client.post('/admin/logout', {});
    await client.open('/admin/login');
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) statuses.push((await client.post('/admin/login', { email: victim.email, password: `guess ${i} guess` })).status);
    const checked = (await checksOf(ctx.db, victim.id)).filter((a) => a === 'login.failed' || a === 'login.locked');
    expect(checked).toHaveLength(LOGIN_MAX_FAILURES);
    expect(statuses.filter((s) => s === 401)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
  });
});

describe('CSRF and roles in the console (Postgres)', () => {
  let ctx: TestContext;
  let base: string;
  ownConsole((c, b) => {
    ctx = c;
    base = b;
  });

  const caseForm = (slug: string) => ({ slug, person_name: 'Erlan Test', summary: 'Detained at the border.', status: 'detained', location: 'Almaty' });
  const caseExists = async (slug: string) => (await ctx.db.query('SELECT 1 FROM cases WHERE slug = $1', [slug])).rows.length > 0;

  it('refuses a sign-in form without its token', async () => {
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    await client.open('/admin/login');
    const res = await client.post('/admin/login', { email: organizer.email, password: PASSWORD }, { csrf: false });
    expect(res.status).toBe(403);
    expect(client.cookies.has('appeal_session')).toBe(false);
  });

  it('gives back what was typed when the session ended before the form was sent, and saves nothing', async () => {
    const { client, organizer } = await signedIn(base, ctx.db);
    // The page lets the browser name it to its own site (and to no other), or nothing below would know it.
    expect((await client.open('/admin/cases/new')).res.headers.get('referrer-policy')).toBe('same-origin');
    // Eight hours without a click, or signed out in another tab.
    await ctx.db.query('DELETE FROM organizer_sessions WHERE organizer_id = $1', [organizer.id]);
    const slug = uniq('case');
    const res = await client.post('/admin/cases', { ...caseForm(slug), summary: 'Detained at the border <b>on Monday</b>.' }, { headers: { 'sec-fetch-site': 'same-origin', referer: `${base}/admin/cases/new` } });
    expect(res.status).toBe(401);
    expect(res.text).toContain('You were signed out');
    expect(res.text).toContain('Detained at the border &lt;b&gt;on Monday&lt;/b&gt;.');
    expect(res.text).toContain('href="/admin/login?next=%2Fadmin%2Fcases%2Fnew"');
    // The form's fields as labelled, not its token.
    expect(res.text).toMatch(/<label for="typed-\d+">Person&#x27;s name<\/label>/);
    expect(res.text).not.toMatch(/<label[^>]*>_?csrf/i);
    // Nor the letter editor's buttons and choices: what was typed is the subject and the body.
    const letter = await client.post('/admin/campaigns/x/letter', { letter_subject: 'Free her', letter_body: 'Dear judge', target: '6', action: 'save' }, { headers: { 'sec-fetch-site': 'same-origin' } });
    expect(letter.text).toContain('Dear judge');
    expect(letter.text).toMatch(/<label for="typed-\d+">Subject<\/label>/);
    expect(letter.text).not.toMatch(/<label[^>]*>(target|action)<\/label>/);
    expect(await caseExists(slug)).toBe(false);
    // Sent from another site: the plain refusal, nothing shown back.
    const cross = await client.post('/admin/cases', caseForm(slug), { headers: { 'sec-fetch-site': 'cross-site' } });
    expect(cross.status).toBe(403);
    expect(cross.text).not.toContain('Detained at the border');
    // A form with a CSV gives back its text too (the chosen file is not read), and makes nothing.
    const campaignSlug = uniq('camp');
    const same = { 'sec-fetch-site': 'same-origin' };
    const campaign = await client.postFiles('/admin/campaigns/new', { title: 'Free Erlan', slug: campaignSlug, letter_body: 'Dear judge, an hour of writing.', targets_csv: 'name,email\nJudge,judge@court.example' }, { targets_file: { name: 'targets.csv', content: 'name,email\nFile,file@court.example' } }, { headers: same });
    expect(campaign.status).toBe(401);
    expect(campaign.text).toContain('You were signed out');
    expect(campaign.text).toContain('Dear judge, an hour of writing.');
    expect(campaign.text).toContain('judge@court.example');
    expect(campaign.text).not.toContain('file@court.example');
    expect((await ctx.db.query('SELECT 1 FROM campaigns WHERE slug = $1', [campaignSlug])).rowCount).toBe(0);
    // Larger than a console form, or without the page's token, nothing typed is shown back.
    const large = await client.postFiles('/admin/campaigns/new', { title: 'Free Erlan', summary: 'x'.repeat(1024 * 1024) }, {}, { headers: same });
    expect(large.status).toBe(401);
    expect(large.text).not.toContain('Free Erlan');
    const token = client.csrf;
    client.csrf = undefined;
    const tokenless = await client.postFiles('/admin/campaigns/new', { title: 'Free Erlan' }, {}, { headers: same });
    client.csrf = token;
    expect(tokenless.status).toBe(403);
    expect(tokenless.text).not.toContain('Free Erlan');
  });

  it('gives back what was typed when the browser signed in again before the form was sent, and saves nothing', async () => {
    const { client, organizer } = await signedIn(base, ctx.db);
    await client.open('/admin/cases/new');
    const opened = client.csrf!;
    // Signed out (8 hours idle), then in again in another tab: this browser has a new session.
    await ctx.db.query('DELETE FROM organizer_sessions WHERE organizer_id = $1', [organizer.id]);
    expect((await client.login(organizer.email)).status).toBe(303);
    const slug = uniq('case');
    const res = await client.post('/admin/cases', { ...caseForm(slug), summary: 'Typed in the first tab.' }, { csrf: opened, headers: { 'sec-fetch-site': 'same-origin', referer: `${base}/admin/cases/new` } });
    expect(res.status).toBe(409);
    expect(res.text).toContain('Your session changed');
    expect(res.text).toContain('Typed in the first tab.');
    expect(res.text).toContain('href="/admin/cases/new"');
    expect(await caseExists(slug)).toBe(false);
    // Sent from another site with that token: the plain refusal, nothing shown back.
    const cross = await client.post('/admin/cases', caseForm(slug), { csrf: opened, headers: { 'sec-fetch-site': 'cross-site' } });
    expect(cross.status).toBe(403);
    expect(cross.text).not.toContain('Erlan Test');
  });

  it('takes a sign-in form sent after another tab signed in where it was going', async () => {
    const organizer = await createOrganizer(ctx.db);
    const client = new ConsoleClient(base);
    await client.open('/admin/login');
    const firstTab = client.csrf!;
    expect((await client.post('/admin/login', { email: organizer.email, password: PASSWORD, next: '/admin' })).status).toBe(303);
    const second = await client.post('/admin/login', { email: organizer.email, password: PASSWORD, next: '/admin/cases' }, { csrf: firstTab, headers: { 'sec-fetch-site': 'same-origin' } });
    expect(second.status).toBe(303);
    expect(second.location).toBe('/admin/cases');
    // Typed for another organizer: this browser is the first one's, and says so rather than act as them.
    const other = await createOrganizer(ctx.db);
    const someoneElse = await client.post('/admin/login', { email: other.email, password: PASSWORD, next: '/admin' }, { csrf: firstTab, headers: { 'sec-fetch-site': 'same-origin' } });
    expect(someoneElse.status).toBe(403);
    expect(someoneElse.text).toContain(`signed in as ${organizer.email} already`);
    // Another site's sign-in form still gets the refusal.
    expect((await client.post('/admin/login', { email: organizer.email, password: PASSWORD }, { csrf: firstTab, headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
  });

  it('signs out a tab whose session ended already without asking it to sign in first', async () => {
    const { client } = await signedIn(base, ctx.db);
    const stale = client.csrf!;
    expect((await client.post('/admin/logout', {})).status).toBe(303);
    const again = await client.post('/admin/logout', {}, { csrf: stale, headers: { 'sec-fetch-site': 'same-origin' } });
    expect(again.status).toBe(303);
    expect(again.location).toBe('/admin/login');
  });

  it('answers a form without a token with 403 and changes nothing', async () => {
    const { client } = await signedIn(base, ctx.db);
    const slug = uniq('case');
    const res = await client.post('/admin/cases', caseForm(slug), { csrf: false });
    expect(res.status).toBe(403);
    expect(await caseExists(slug)).toBe(false);
  });

  it('answers a token of another session with 403 and changes nothing', async () => {
    const { client: mallory } = await signedIn(base, ctx.db);
    const { client } = await signedIn(base, ctx.db);
    const slug = uniq('case');
    const res = await client.post('/admin/cases', caseForm(slug), { csrf: mallory.csrf! });
    expect(res.status).toBe(403);
    expect(await caseExists(slug)).toBe(false);
    const ok = await client.post('/admin/cases', caseForm(slug));
    expect(ok.status).toBe(303);
    expect(await caseExists(slug)).toBe(true);
  });

  it('masks the form token anew in every form, so no two pages carry its bytes, and takes each of them', async () => {
    const { client } = await signedIn(base, ctx.db);
    const tokensOf = (html: string) => [...html.matchAll(/name="_csrf" value="([^"]+)"/g)].map((m) => m[1]!);
    const first = tokensOf((await client.get('/admin/cases/new')).text);
    const second = tokensOf((await client.get('/admin/cases/new')).text);
    const all = [...first, ...second];
    expect(first.length).toBeGreaterThan(1);
    expect(new Set(all).size).toBe(all.length);
    // Each one is a random pad and the token XOR the pad: unmasked, they are one token, which no page shows.
    const unmask = (t: string) => {
      const b = Buffer.from(t, 'base64url');
      return Buffer.from(b.subarray(32).map((x, i) => x ^ b[i]!)).toString('base64url');
    };
    expect(new Set(all.map(unmask)).size).toBe(1);
    expect((await client.get('/admin/cases/new')).text).not.toContain(unmask(first[0]!));
    for (const token of [first[0]!, second[1]!]) {
      const slug = uniq('case');
      expect((await client.post('/admin/cases', caseForm(slug), { csrf: token })).status).toBe(303);
      expect(await caseExists(slug)).toBe(true);
    }
    // A page served before tokens were masked sent the token as it is: still the session's.
    const slug = uniq('case');
    expect((await client.post('/admin/cases', caseForm(slug), { csrf: unmask(first[0]!) })).status).toBe(303);
    // A pad that does not undo to the token is refused, as any wrong token.
    const flipped = Buffer.from(first[0]!, 'base64url');
    flipped[40] = flipped[40]! ^ 1;
    const refused = uniq('case');
    expect((await client.post('/admin/cases', caseForm(refused), { csrf: flipped.toString('base64url') })).status).toBe(403);
    expect(await caseExists(refused)).toBe(false);
  });

  it('refuses a sign-out without a token, so another site cannot sign an organizer out', async () => {
    const { client } = await signedIn(base, ctx.db);
    expect((await client.post('/admin/logout', {}, { csrf: false })).status).toBe(403);
    expect((await client.get('/admin')).status).toBe(200);
  });

  it('gives an organizer 403 on admin pages, and nothing changes', async () => {
    const { client, organizer } = await signedIn(base, ctx.db, 'organizer');
    for (const path of ['/admin/organizers', '/admin/tokens', '/admin/subscribers', '/admin/subscribers.csv', '/admin/queues/', '/admin/queues/api/queues']) {
      expect((await client.get(path)).status, path).toBe(403);
    }
    const before = (await ctx.db.query('SELECT id FROM api_tokens')).rows.length;
    expect((await client.post('/admin/tokens', { label: 'sneaky', organizer: organizer.email })).status).toBe(403);
    expect((await client.post('/admin/organizers', { email: `${uniq('x')}@appeal.test`, role: 'admin' })).status).toBe(403);
    expect((await ctx.db.query('SELECT id FROM api_tokens')).rows.length).toBe(before);
    expect((await ctx.db.query(`SELECT role FROM organizers WHERE id = $1`, [organizer.id])).rows).toEqual([{ role: 'organizer' }]);
  });

  it('lets an admin open the organizer, token and queue pages', async () => {
    const { client } = await signedIn(base, ctx.db, 'admin');
    for (const path of ['/admin/organizers', '/admin/tokens', '/admin/queues/']) {
      expect((await client.get(path)).status, path).toBe(200);
    }
    const queues = await client.get('/admin/queues/api/queues');
    expect(queues.status).toBe(200);
    expect(JSON.parse(queues.text).queues.map((q: { name: string }) => q.name).sort()).toEqual(['fanout', 'maintenance', 'send']);
    // A send job's retry there would find its email marked failed and send nothing: no button, and its API says where.
    const send = JSON.parse(queues.text).queues.find((q: { name: string }) => q.name === 'send');
    expect(send).toMatchObject({ allowRetries: false, description: expect.stringContaining('Failed emails are retried from the console') });
    const cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    for (const path of ['/admin/queues/api/queues/send/retry/failed', '/admin/queues/api/queues/send/d-1/retry']) {
      const retried = await fetch(`${base}${path}`, { method: 'PUT', headers: { cookie, 'sec-fetch-site': 'same-origin', origin: base } });
      expect(retried.status, path).toBe(409);
      expect(await retried.json()).toEqual({ error: expect.stringContaining('not here: a retry here would find its email marked failed') });
    }
  });

  it('refuses a queue action from another origin, or from a sibling site by Fetch Metadata', async () => {
    const { client } = await signedIn(base, ctx.db, 'admin');
    const cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    // A sibling subdomain's page is `same-site`: the SameSite=Lax cookie goes with its requests.
    const senders: Record<string, string>[] = [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'same-site' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'none' }];
    for (const from of senders) {
      const res = await fetch(`${base}/admin/queues/api/queues/send/pause`, { method: 'PUT', headers: { cookie, ...from } });
      expect(res.status, JSON.stringify(from)).toBe(403);
    }
    expect(await ctx.queues.send.isPaused()).toBe(false);
  });

  it('lists the dev outbox to an admin and opens a message, but no file outside it', async () => {
    const { client } = await signedIn(base, ctx.db, 'admin');
    const sent = await ctx.mailer.send({ from: 'letters@appeal.test', to: 'judge@court.example', subject: 'Über den Fall', text: 'Hello court.' });
    const file = sent.file!.split('/').pop()!;
    const list = await client.get('/admin/outbox');
    expect(list.text).toContain('Über den Fall');
    expect(list.text).toContain(`/admin/outbox/${file}`);
    const one = await client.get(`/admin/outbox/${file}`);
    expect(one.status).toBe(200);
    expect(one.text).toContain('Hello court.');
    // Every email's links are in it: another site's page that opens one is asked to open it from the console.
    for (const path of [`/admin/outbox/${file}`, `/admin/outbox/${file}?download=1`]) {
      const refused = await client.get(path, { headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' } });
      expect(refused.status, path).toBe(403);
      expect(refused.text).not.toContain('Hello court.');
    }
    expect((await client.get('/admin/outbox/..%2Fsecret')).status).toBe(404);
    expect((await client.get('/admin/outbox/nothing-here.eml')).status).toBe(404);
    expect((await client.get('/admin/outbox/nothing-here.eml?download=1')).status).toBe(404);
  });

  it('says when the outbox holds more than the newest it lists', async () => {
    const { client } = await signedIn(base, ctx.db, 'admin');
    const dir = path.dirname((await ctx.mailer.send({ from: 'letters@appeal.test', to: 'a@court.example', subject: 'First', text: 'x' })).file!);
    const before = fs.readdirSync(dir).filter((f) => f.endsWith('.eml')).length;
    for (let i = before; i <= 200; i++) fs.writeFileSync(path.join(dir, `0000-old-${String(i).padStart(3, '0')}.eml`), `Subject: old ${i}\r\n\r\nx\r\n`);
    const total = fs.readdirSync(dir).filter((f) => f.endsWith('.eml')).length;
    const list = await client.get('/admin/outbox');
    expect(list.text).toContain(`these are the newest 200 of ${total}, and the older ones are still in that folder`);
    expect(list.text.match(/href="\/admin\/outbox\/[^"]+\.eml"/g)).toHaveLength(200);
  });

  it('shows an outbox message decoded: Cyrillic text as written, a long link whole and clickable, the full file to download', async () => {
    const { client } = await signedIn(base, ctx.db, 'admin');
    const link = `http://localhost:3000/confirm/${'A'.repeat(60)}`;
    // The sentence's full stop after the link is not part of it.
    const text = `Здравствуйте, Айгерим!\n\nПодтвердите подпись: ${link}.\n`;
    const sent = await ctx.mailer.send({
      from: 'letters@appeal.test', to: { name: 'Министр Иванов', address: 'ministry@gov.example' }, subject: 'Подтвердите подпись', text, html: `<p>${'x'.repeat(600_000)}</p>`,
    });
    const file = sent.file!.split('/').pop()!;
    const page = await client.get(`/admin/outbox/${file}`);
    expect(page.text).toContain('Здравствуйте, Айгерим!');
    expect(page.text).toContain(`<a href="${link}" rel="noreferrer">${link}</a>`);
    expect(page.text).toContain('Министр Иванов&quot; &lt;ministry@gov.example&gt;');
    expect(page.text).toContain('only its first 512 KB are shown');
    const download = await client.get(`/admin/outbox/${file}?download=1`);
    expect(download.status).toBe(200);
    expect(download.text.length).toBeGreaterThan(600_000);
  });

  it('keeps an admin when two admins take each other\'s rights at once', async () => {
    // Only these two are admins; one has begun taking the other's rights (not yet committed).
    await ctx.db.query(`UPDATE organizers SET role = 'organizer' WHERE role = 'admin'`);
    const [a, b] = [await createOrganizer(ctx.db, 'admin'), await createOrganizer(ctx.db, 'admin')];
    const asked = await whileHeld(
      ctx.db,
      (tx) => tx.query(`UPDATE organizers SET role = 'organizer' WHERE id = $1`, [b.id]),
      () => setOrganizerRole(ctx.db, b.id, a.id, 'organizer'),
    );
    // b is no longer an admin once the other change commits: theirs is refused, and a stays.
    expect(asked).toMatchObject({ status: 'rejected', reason: { name: 'ForbiddenError' } });
    expect((await ctx.db.query(`SELECT id FROM organizers WHERE role = 'admin'`)).rows).toEqual([{ id: a.id }]);
  });

  it('lets an admin reset another\'s password while a third changes a role, without a deadlock', async () => {
    const [a, b, c] = [await createOrganizer(ctx.db, 'admin'), await createOrganizer(ctx.db, 'admin'), await createOrganizer(ctx.db)];
    // a resets b's password (b's row first, then a's audit entry, whose key check reads a's row)
    // while someone promotes c (every admin's row, a's among them, before c's).
    const promoting = await whileHeld(
      ctx.db,
      (tx) => tx.query('UPDATE organizers SET password_must_change = true WHERE id = $1', [b.id]),
      () => setOrganizerRole(ctx.db, a.id, c.id, 'admin'),
      (tx) => recordAudit(tx, a.id, 'organizer.password_reset', `organizer:${b.id}`),
    );
    expect(promoting).toEqual({ status: 'fulfilled', value: [] });
    expect((await ctx.db.query<{ role: string }>('SELECT role FROM organizers WHERE id = $1', [c.id])).rows[0]!.role).toBe('admin');
  });

  it('sends an admin with a password someone else was shown to choose their own before the queues board, and refuses an organizer an admin\'s form before asking', async () => {
    const { generatedPassword } = await addOrganizer(ctx.db, { email: `${uniq('handed')}@appeal.test`, role: 'admin' }, { handedOver: true });
    const [admin] = (await ctx.db.query<{ email: string }>('SELECT email FROM organizers WHERE password_must_change ORDER BY id DESC LIMIT 1')).rows;
    const fresh = new ConsoleClient(base);
    expect((await fresh.login(admin!.email, generatedPassword)).status).toBe(303);
    expect((await fresh.get('/admin/queues')).location).toBe('/admin/password?next=%2Fadmin%2Fqueues');
    expect((await fresh.get('/admin/queues/api/queues')).status).toBe(303);

    const { client } = await signedIn(base, ctx.db);
    await client.open('/admin');
    expect((await client.post('/admin/organizers/1/password', {})).status).toBe(403);
  });
});
