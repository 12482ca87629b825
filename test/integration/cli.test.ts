import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPglite, type Db } from '../../src/db/index.ts';
import { openEmbedded } from '../../src/db/embedded.ts';
import { createLog } from '../../src/log.ts';
import { findOrganizerByEmail } from '../../src/organizers/service.ts';
import { verifyPassword } from '../../src/organizers/passwords.ts';
import { Redis } from 'ioredis';
import { createTestContext, TEST_REDIS_URL, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign, uniq } from '../helpers/fixtures.ts';
import crypto from 'node:crypto';
import { checkSecret, keepSetting } from '../../src/boot.ts';
import { confirmToken, sign } from '../../src/signatures/service.ts';
import { manageToken, optinToken, requestSubscription } from '../../src/subscribers/service.ts';
import { hashToken } from '../../src/tokens.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import type { Delivery } from '../../src/deliveries/types.ts';
import type { Message } from '../../src/mail/transport.ts';
import { spawn } from 'node:child_process';
import { freePort, ROOT, runTsx, type Ran } from '../helpers/spawn.ts';

const cli = (env: Record<string, string>, args: string[], stdin?: string | { open: true }) => runTsx('src/cli.ts', args, { LOG_LEVEL: 'silent', ...env }, { stdin, timeoutMs: 120_000 });

describe('the cli against Postgres (DATABASE_URL)', () => {
  let ctx: TestContext;
  const admin = `${uniq('admin')}@appeal.test`;
  const organizer = `${uniq('org')}@appeal.test`;
  const silent = `${uniq('silent')}@appeal.test`;
  let r: Record<'migrate' | 'seed' | 'addAdmin' | 'addGenerated' | 'shortPassword' | 'badConfig' | 'seedAgain' | 'token' | 'nameWithoutValue' | 'extraArgument' | 'noCommand' | 'help' | 'helpAfterCommand' | 'commonPassword' | 'noDatabase' | 'addSilentStdin' | 'typoNoDatabase' | 'noEmailEmbedded' | 'unreadableKey', Ran>;
  const freshDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-cli-typo-'));

  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres' });
    // Independent commands run side by side; each is a whole process start.
    const [migrate, seed, addAdmin, addGenerated, shortPassword, badConfig] = await Promise.all([
      cli(ctx.env, ['migrate']),
      cli(ctx.env, ['seed-demo']),
      cli(ctx.env, ['organizer:add', admin, '--admin', '--name', 'Ada Admin'], '  correct horse battery staple \n'),
      cli(ctx.env, ['organizer:add', organizer], ''),
      cli(ctx.env, ['organizer:add', `${uniq('short')}@appeal.test`], 'short\n'),
      cli({ ...ctx.env, PORT: 'abc' }, ['migrate']),
    ]);
    const { DATABASE_URL: _postgres, ...embedded } = ctx.env;
    const [seedAgain, token, nameWithoutValue, extraArgument, noCommand, help, helpAfterCommand, commonPassword, noDatabase, addSilentStdin, typoNoDatabase, noEmailEmbedded, unreadableKey] = await Promise.all([
      cli(ctx.env, ['seed-demo']),
      cli(ctx.env, ['token:create', admin, '--label', 'ci']),
      cli(ctx.env, ['organizer:add', `${uniq('novalue')}@appeal.test`, '--name', '--admin'], 'correct horse battery staple\n'),
      cli(ctx.env, ['token:create', admin, 'ci']),
      cli(ctx.env, []),
      // Help needs no working configuration.
      cli({ ...ctx.env, PORT: 'abc' }, ['--help']),
      cli(ctx.env, ['token:create', '--help']),
      cli(ctx.env, ['organizer:add', `${uniq('common')}@appeal.test`], 'password1234\n'),
      cli({ ...ctx.env, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing' }, ['migrate']),
      // A script's spawn() that leaves stdin open and writes nothing.
      cli(ctx.env, ['organizer:add', silent], { open: true }),
      // Mistakes in the command line, where no database can be reached or none exists yet.
      cli({ ...ctx.env, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing' }, ['frobnicate']),
      cli({ ...embedded, DATA_DIR: freshDataDir }, ['organizer:add'], { open: true }),
      // The service's environment, whose DKIM key only the service may read: the cli sends nothing.
      cli({ ...ctx.env, DKIM_DOMAIN: 'appeal.test', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY_FILE: path.join(freshDataDir, 'not-readable.pem') }, ['migrate']),
    ]);
    r = { migrate: migrate!, seed: seed!, addAdmin: addAdmin!, addGenerated: addGenerated!, shortPassword: shortPassword!, badConfig: badConfig!, seedAgain, token, nameWithoutValue, extraArgument, noCommand, help, helpAfterCommand, commonPassword, noDatabase, addSilentStdin, typoNoDatabase, noEmailEmbedded, unreadableKey };
  }, 300_000);
  afterAll(async () => {
    fs.rmSync(freshDataDir, { recursive: true, force: true });
    await ctx?.close();
  });

  it('runs without the DKIM key, which it has no use for', () => {
    expect(r.unreadableKey).toMatchObject({ code: 0, stdout: 'database is up to date\n' });
  });

  it('migrate says the database is up to date', () => {
    expect(r.migrate).toMatchObject({ code: 0, stdout: 'database is up to date\n' });
  });

  it('seed-demo adds the live demo campaigns once', async () => {
    expect(r.seed).toMatchObject({ code: 0, stdout: 'added demo campaigns: protect-aigerim, stop-deportation-yerlan-dias\n' });
    expect(r.seedAgain).toMatchObject({ code: 0, stdout: 'demo campaigns exist already\n' });
    const { rows } = await ctx.db.query<{ slug: string; status: string }>('SELECT slug, status FROM campaigns ORDER BY slug');
    expect(rows).toEqual([{ slug: 'protect-aigerim', status: 'live' }, { slug: 'stop-deportation-yerlan-dias', status: 'live' }]);
    const targets = await ctx.db.query<{ email: string }>('SELECT email FROM targets');
    for (const t of targets.rows) expect(t.email).toMatch(/@example\.org$/);
  });

  it('organizer:add takes the password from stdin as typed, spaces too, and prints none', async () => {
    expect(r.addAdmin).toMatchObject({ code: 0, stdout: `added admin ${admin}\n` });
    const row = (await findOrganizerByEmail(ctx.db, admin))!;
    expect(row).toMatchObject({ role: 'admin', name: 'Ada Admin' });
    expect(await verifyPassword('  correct horse battery staple ', row.password_hash)).toBe(true);
    // Recorded as the console records it, with nobody signed in: a new admin is what an intruder makes.
    const { rows } = await ctx.db.query<{ detail: object }>(`SELECT detail FROM audit_log WHERE action = 'organizer.add' AND object = $1`, [`organizer:${row.id}`]);
    expect(rows.map((a) => a.detail)).toEqual([{ email: admin, role: 'admin', by: 'cli' }]);
  });

  it('organizer:add generates a password and prints it once when stdin is empty', async () => {
    expect(r.addGenerated.code).toBe(0);
    const password = /^password: (\S+)$/m.exec(r.addGenerated.stdout)?.[1];
    expect(password).toBeDefined();
    expect(password!.length).toBeGreaterThanOrEqual(16);
    const row = (await findOrganizerByEmail(ctx.db, organizer))!;
    expect(row.role).toBe('organizer');
    expect(await verifyPassword(password!, row.password_hash)).toBe(true);
  });

  it('organizer:add does not wait for a stdin left open with nothing written: it generates the password', async () => {
    // Killed by the harness after 120 s, it would have no exit code.
    expect(r.addSilentStdin.code).toBe(0);
    expect(r.addSilentStdin.stderr).toContain('nothing came on stdin for 2 s: going on without it, so the password is generated');
    const password = /^password: (\S+)$/m.exec(r.addSilentStdin.stdout)?.[1];
    expect(await verifyPassword(password!, (await findOrganizerByEmail(ctx.db, silent))!.password_hash)).toBe(true);
  });

  it('token:create prints a token that works against the API', async () => {
    expect(r.token.code).toBe(0);
    const token = r.token.stdout.trim();
    expect(token).toMatch(/^apl_[A-Za-z0-9_-]{43}$/);
    const base = await ctx.startWeb();
    const res = await fetch(`${base}/api/v1/campaigns/protect-aigerim/stats`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ signatures: { pending: 0, confirmed: 0 } });
    const { rows } = await ctx.db.query<{ id: number; label: string; token_hash: string }>('SELECT id, label, token_hash FROM api_tokens');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.label).toBe('ci');
    expect(rows[0]!.token_hash).not.toContain(token.slice(4));
    const audit = await ctx.db.query<{ detail: object }>(`SELECT detail FROM audit_log WHERE action = 'token.create' AND object = $1`, [`organizer:${admin}`]);
    // By its number, as what is done with it is logged ("API token #n").
    expect(audit.rows.map((a) => a.detail)).toEqual([{ token: Number(rows[0]!.id), label: 'ci', by: 'cli' }]);
  });

  it('refuses an option without its value or an argument too many (exit code 2), and stores nothing', async () => {
    expect(r.nameWithoutValue.code).toBe(2);
    expect(r.nameWithoutValue.stderr).toMatch(/^appeal: organizer:add: Option '--name' argument is ambiguous/);
    expect(r.nameWithoutValue.stderr).toContain('usage: npm run cli -- organizer:add <email> [--admin] [--name "Name"]');
    expect(r.extraArgument.code).toBe(2);
    expect(r.extraArgument.stderr).toMatch(/^appeal: token:create: unexpected argument "ci"/);
    const { rows } = await ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM organizers WHERE email LIKE 'novalue%'`);
    expect(rows[0]!.n).toBe(0);
  });

  it('says a mistake in the command line (exit code 2) before it opens a database, or waits for stdin', () => {
    expect(r.typoNoDatabase).toMatchObject({ code: 2, stdout: '' });
    expect(r.typoNoDatabase.stderr).toMatch(/^appeal: unknown command "frobnicate"\n/);
    expect(r.noEmailEmbedded).toMatchObject({ code: 2, stdout: '', stderr: 'appeal: organizer:add needs an email\nusage: npm run cli -- organizer:add <email> [--admin] [--name "Name"]\n' });
    // No embedded database was made for it.
    expect(fs.readdirSync(freshDataDir)).toEqual([]);
  });

  it('prints its usage on --help, after a command too (exit 0), and with no command says so on stderr (exit 2)', () => {
    for (const help of [r.help, r.helpAfterCommand]) {
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('organizer:add <email>');
      expect(help.stderr).toBe('');
    }
    expect(r.noCommand.code).toBe(2);
    expect(r.noCommand.stdout).toBe('');
    expect(r.noCommand.stderr).toMatch(/^appeal: no command given\n/);
    expect(r.noCommand.stderr).toContain('organizer:add <email>');
  });

  it('organizer:password sets a new password for one who lost theirs, ends their sessions and lockout', async () => {
    const row = (await findOrganizerByEmail(ctx.db, organizer))!;
    await ctx.db.query(`INSERT INTO organizer_sessions (id_hash, organizer_id, expires_at) VALUES ('forgotten-session', $1, now() + interval '1 day')`, [row.id]);
    await ctx.db.query(`UPDATE organizers SET failed_logins = 10, locked_until = now() + interval '1 hour' WHERE id = $1`, [row.id]);
    const reset = await cli(ctx.env, ['organizer:password', organizer], 'a new long passphrase\n');
    expect(reset).toMatchObject({ code: 0, stdout: `new password set for ${organizer}; their sessions are ended\n` });
    expect(await verifyPassword('a new long passphrase', (await findOrganizerByEmail(ctx.db, organizer))!.password_hash)).toBe(true);
    expect((await ctx.db.query('SELECT 1 FROM organizer_sessions WHERE organizer_id = $1', [row.id])).rowCount).toBe(0);
    expect((await findOrganizerByEmail(ctx.db, organizer))!).toMatchObject({ failed_logins: 0, locked_until: null });
    const unknown = await cli(ctx.env, ['organizer:password', `${uniq('nobody')}@appeal.test`], 'a new long passphrase\n');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^appeal: .*organizer/);
  });

  it('forget erases a person: signatures, subscriber, emails to them and unsent letters; sent letters and one being sent stay counted, and other spellings are named', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const person = `${uniq('Forget.Me')}@supporter.example`;
    const { rows: [camp] } = await ctx.db.query<{ id: number; case_id: number }>('SELECT id, case_id FROM campaigns WHERE slug = $1', [slug]);
    const { rows: [sig] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO signatures (campaign_id, full_name, email, city, country, personal_note, status, confirmed_at) VALUES ($1, 'Forget Me', $2, 'Lyon', 'France', '', 'confirmed', now()) RETURNING id`,
      [camp!.id, person],
    );
    const { rows: [target] } = await ctx.db.query<{ id: number; email: string }>('SELECT id, email FROM targets WHERE campaign_id = $1 LIMIT 1', [camp!.id]);
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, recipient, campaign_id, status) VALUES ('confirm', $1, $2, $3, 'sent')`, [sig!.id, person, camp!.id]);
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, target_id, recipient, campaign_id, status) VALUES ('letter', $1, $2, 'sent@court.example', $3, 'sent')`, [sig!.id, target!.id, camp!.id]);
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, target_id, recipient, campaign_id, status) VALUES ('letter', $1, $2, $3, $4, 'queued')`, [sig!.id, target!.id, target!.email, camp!.id]);
    // One a worker is sending as the erasure runs: its message may be at the relay already.
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, target_id, recipient, campaign_id, status, lease_until) VALUES ('letter', $1, $2, 'sending@court.example', $3, 'sending', now() + interval '2 minutes')`, [sig!.id, target!.id, camp!.id]);
    // The same mailbox spelled with a tag: named, not erased (at some providers it is another person's).
    const tagged = person.replace('@', '+news@').toLowerCase();
    await ctx.db.query(`INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) VALUES ($1, 'Forget Me Too', $2, 'confirmed', now())`, [camp!.id, tagged]);
    const { subscribeConfirmedSigner } = await import('../../src/subscribers/service.ts');
    await subscribeConfirmedSigner(ctx.db, person.toUpperCase(), camp!.case_id, 'sign form');
    // A suppression lifted once from the console (which logs the address), and the address bouncing again.
    const { removeSuppression } = await import('../../src/deliveries/service.ts');
    const { recordAudit } = await import('../../src/organizers/service.ts');
    await ctx.db.query(`INSERT INTO suppressions (email, reason) VALUES (lower($1), 'bounce: test')`, [person]);
    const lifted = (await removeSuppression(ctx.db, person))!;
    await recordAudit(ctx.db, null, 'suppression.remove', `suppression:${lifted.email}`, { reason: `they wrote from ${person}`, was: lifted.reason });
    await ctx.db.query(`INSERT INTO suppressions (email, reason) VALUES (lower($1), 'bounce: test')`, [person]);
    expect(JSON.stringify((await ctx.db.query('SELECT * FROM audit_log')).rows).toLowerCase()).toContain(person.toLowerCase());
    // Two confirmation emails went to the address: the workers' counts of them, kept in Redis for a day.
    const { addressCounterKeys, withAddressAllowance } = await import('../../src/deliveries/allowance.ts');
    const { confirm } = withAddressAllowance(ctx, { confirm: async () => ({ to: person, subject: 's', text: 't' }) as Message });
    for (const typed of [person, person.toUpperCase()]) await confirm!(ctx.db, { recipient: typed, attempts: 1 } as Delivery);
    const counters = addressCounterKeys(ctx.config.queuePrefix, ctx.secret, person);
    expect(await ctx.redis.client.exists(...counters)).toBe(2);

    const forgot = await cli(ctx.env, ['forget', person.toLowerCase()]);
    expect(forgot).toMatchObject({
      code: 0,
      stdout: 'forgot 1 signature, 1 subscriber record and 1 email to that address\n' +
        '1 letter in their name not sent yet is dropped: no official gets it\n' +
        '1 letter in their name was being sent and may have gone: if so, counted, naming only the official; if not, dropped\n' +
        `also held, and not erased: ${tagged} (the same mailbox at most providers; run forget on it if it is theirs)\n` +
        'and 2 rate-limit counters that named it\n',
      stderr: '',
    });
    expect(await ctx.redis.client.exists(...counters)).toBe(0);
    // Without the service's secret the counters cannot be found: said, not passed over.
    const blind = await cli({ ...ctx.env, SESSION_SECRET: '', DATA_DIR: freshDataDir }, ['forget', `${uniq('other')}@supporter.example`]);
    expect(blind.code, blind.stderr).toBe(0);
    expect(blind.stderr).toMatch(/^appeal: the rate-limit counters that name the address were not looked for: SESSION_SECRET is not set here/);
    // With another secret than the service's, it would find none and say nothing of those left.
    await checkSecret(ctx.db, ctx.secret);
    await confirm!(ctx.db, { recipient: person, attempts: 1 } as Delivery);
    const astray = await cli({ ...ctx.env, SESSION_SECRET: 'not the secret of this database at all' }, ['forget', person]);
    expect(astray.code, astray.stderr).toBe(0);
    expect(astray.stderr).toMatch(/^appeal: the rate-limit counters that name the address were not looked for: SESSION_SECRET here is not the secret this database is tied to/);
    expect(await ctx.redis.client.exists(...counters)).toBe(2);
    expect((await cli(ctx.env, ['forget', person])).stdout).toContain('and 2 rate-limit counters that named it\n');
    // A typo naming no address is not "nothing held".
    expect(await cli(ctx.env, ['forget', 'not-an-address'])).toMatchObject({ code: 1, stdout: '', stderr: 'appeal: "not-an-address" is not an email address: nothing was looked for\n' });
    const left = await ctx.db.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM signatures WHERE lower(email) = lower($1))
            + (SELECT count(*) FROM subscribers WHERE lower(email) = lower($1))
            + (SELECT count(*) FROM suppressions WHERE email = lower($1))
            + (SELECT count(*) FROM deliveries WHERE lower(recipient) = lower($1))
            + (SELECT count(*) FROM deliveries WHERE source_id = $2 AND kind = 'letter' AND status NOT IN ('sent', 'sending')) AS n`,
      [person, sig!.id],
    );
    expect(Number(left.rows[0]!.n)).toBe(0);
    expect((await ctx.db.query(`SELECT 1 FROM deliveries WHERE source_id = $1 AND kind = 'letter' AND status = 'sending'`, [sig!.id])).rowCount).toBe(1);
    expect((await ctx.db.query('SELECT 1 FROM signatures WHERE email = $1', [tagged])).rowCount).toBe(1);
    expect((await ctx.db.query(`SELECT 1 FROM deliveries WHERE source_id = $1 AND kind = 'letter' AND status = 'sent'`, [sig!.id])).rowCount).toBe(1);
    // Nothing logged names them.
    expect(JSON.stringify((await ctx.db.query('SELECT * FROM audit_log')).rows).toLowerCase()).not.toContain(person.toLowerCase());
  });

  it('forget has a Redis that keeps an append-only file write it anew, so the counters it deleted are not still in the file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-aof-'));
    const port = await freePort();
    const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''], { stdio: 'ignore' });
    const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    redis.on('error', () => {});
    try {
      await expect.poll(() => redis.ping().catch(() => ''), { timeout: 10_000 }).toBe('PONG');
      const { addressCounterKeys } = await import('../../src/deliveries/allowance.ts');
      const person = `${uniq('aof')}@supporter.example`;
      const counters = addressCounterKeys(ctx.config.queuePrefix, ctx.secret, person);
      for (const key of counters) await redis.set(key, '1', 'EX', 3600);
      const aofDir = path.join(dir, 'appendonlydir');
      const onDisk = () => fs.readdirSync(aofDir).map((f) => fs.readFileSync(path.join(aofDir, f), 'latin1')).join('');
      const hash = counters[0]!.split(':').pop()!;
      await expect.poll(onDisk, { timeout: 5_000 }).toContain(hash);

      const forgot = await cli({ ...ctx.env, REDIS_URL: `redis://127.0.0.1:${port}` }, ['forget', person]);
      expect(forgot.code).toBe(0);
      expect(forgot.stdout).toContain('and 2 rate-limit counters that named it');
      expect(forgot.stderr).toBe('');
      expect(await redis.exists(...counters)).toBe(0);
      // The rewrite runs in the background: the files it leaves hold what Redis holds, no history.
      const rewritten = (h: string) => async () => /aof_rewrite_in_progress:0[\s\S]*aof_rewrite_scheduled:0/.test(await redis.info('persistence')) && /base/.test(fs.readdirSync(aofDir).join(' ')) && !onDisk().includes(h);
      await expect.poll(rewritten(hash), { timeout: 10_000 }).toBe(true);
      // Counters that expired on their own before forget ran are in the file as well: rewritten too.
      const other = `${uniq('aof-expired')}@supporter.example`;
      const expiring = addressCounterKeys(ctx.config.queuePrefix, ctx.secret, other);
      for (const key of expiring) await redis.set(key, '1', 'PX', 200);
      const otherHash = expiring[0]!.split(':').pop()!;
      await expect.poll(onDisk, { timeout: 5_000 }).toContain(otherHash);
      await expect.poll(() => redis.exists(...expiring), { timeout: 5_000 }).toBe(0);
      const again = await cli({ ...ctx.env, REDIS_URL: `redis://127.0.0.1:${port}` }, ['forget', other]);
      expect(again).toMatchObject({ code: 0, stderr: '' });
      await expect.poll(rewritten(otherHash), { timeout: 10_000 }).toBe(true);
    } finally {
      redis.disconnect();
      server.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('forget leaves what was written to an official at that address, and what organizers did with it, and logs that it ran', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    const { rows: [camp] } = await ctx.db.query<{ id: number }>('SELECT id FROM campaigns WHERE slug = $1', [slug]);
    const official = `${uniq('collector')}@ministry.example`;
    const { rows: [target] } = await ctx.db.query<{ id: number }>('UPDATE targets SET email = $2 WHERE id = (SELECT min(id) FROM targets WHERE campaign_id = $1) RETURNING id', [camp!.id, official]);
    const { rows: [sig] } = await ctx.db.query<{ id: number }>(
      `INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at) VALUES ($1, 'Some Signer', $2, 'confirmed', now()) RETURNING id`,
      [camp!.id, `${uniq('signer')}@supporter.example`],
    );
    await ctx.db.query(`INSERT INTO deliveries (kind, source_id, target_id, recipient, campaign_id, status) VALUES ('letter', $1, $2, $3, $4, 'sent')`, [sig!.id, target!.id, official, camp!.id]);
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES ($1, 'bounce: 550', 'letter')`, [official]);
    const { recordAudit } = await import('../../src/organizers/service.ts');
    await recordAudit(ctx.db, null, 'target.edit', `campaign:${slug}`, { target: target!.id, from: 'old@court.example', to: official });
    await recordAudit(ctx.db, null, 'target.send_again', `campaign:${slug}`, { target: target!.id, to: official, letters: 1 });
    // An address that ends another: forgetting it must not blank the longer one's entries.
    const longer = `${uniq('org')}@example.org`;
    await recordAudit(ctx.db, null, 'suppression.remove', `suppression:${longer}`, { reason: `asked by ${longer}`, was: 'bounce' });
    const apostrophe = `o'${uniq('neil')}@example.org`;
    await recordAudit(ctx.db, null, 'suppression.remove', `suppression:${apostrophe}`, { reason: `asked by ${apostrophe}`, was: 'bounce' });
    const auditBefore = (await ctx.db.query('SELECT id, object, detail FROM audit_log ORDER BY id')).rows;

    const { forgetPerson } = await import('../../src/retention/service.ts');
    for (const person of [official, longer.slice(1), apostrophe.slice(2)]) expect(await forgetPerson(ctx.db, person, 'cli')).toEqual({ signatures: 0, subscribers: 0, emails: 0, unsent: 0, sending: 0, alsoHeld: [] });
    const auditAfter = (await ctx.db.query<{ id: number; object: string; detail: unknown; action: string }>('SELECT id, action, object, detail FROM audit_log ORDER BY id')).rows;
    expect(auditAfter.slice(0, auditBefore.length).map(({ id, object, detail }) => ({ id, object, detail }))).toEqual(auditBefore);
    // Each erasure is on record, by counts, naming nobody.
    expect(auditAfter.slice(auditBefore.length)).toEqual([0, 1, 2].map(() => expect.objectContaining({ action: 'person.forget', object: 'person:(forgotten)', detail: { signatures: 0, subscribers: 0, emails: 0, unsent: 0, by: 'cli' } })));
    expect((await ctx.db.query('SELECT 1 FROM deliveries WHERE recipient = $1', [official])).rowCount).toBe(1);
    expect((await ctx.db.query('SELECT 1 FROM suppressions WHERE email = $1', [official])).rowCount).toBe(1);
  });

  it('fails with one line and exit code 1 on a short or common password, a bad variable or a database it cannot reach', () => {
    for (const [ran, pattern] of [
      [r.shortPassword, /^appeal: .*password: must be at least 10 characters/],
      [r.commonPassword, /^appeal: .*password: is too easy to guess/],
      [r.badConfig, /^appeal: PORT: /],
      // What the compose file's migrate service shows when Postgres is not there: the variable to check.
      [r.noDatabase, /^appeal: DATABASE_URL: cannot open the database: .*ECONNREFUSED/],
    ] as const) {
      expect(ran.code).toBe(1);
      expect(ran.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(ran.stderr).toMatch(pattern);
    }
  });
});

describe('the cli rotating the secret (rotate-secret)', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres' });
  }, 120_000);
  afterAll(async () => {
    await ctx?.close();
  });

  // A running process would go on mailing links of the old secret, or numbering rows from before the restore.
  it('refuses rotate-secret and after-restore while web or worker processes of the database run, under any QUEUE_PREFIX', async () => {
    const redis = new Redis(TEST_REDIS_URL);
    const installation = await keepSetting(ctx.db, 'installation', crypto.randomUUID());
    // Processes of this database started with another QUEUE_PREFIX than the cli's shell has.
    const prefix = uniq('elsewhere');
    await redis.set(`${prefix}:installation`, installation, 'PX', 60_000);
    await redis.zadd(`${prefix}:installation:processes`, Date.now() + 60_000, 'a-running-worker');
    await redis.zadd(`${prefix}:installation:processes`, Date.now() - 1_000, 'one-that-crashed');
    try {
      const [rotate, restore] = await Promise.all(['rotate-secret', 'after-restore'].map((command) => cli({ ...ctx.env, SESSION_SECRET: 'another-secret-value-0123456789' }, [command])));
      expect(rotate).toMatchObject({ code: 1, stdout: '' });
      expect(rotate!.stderr).toBe(
        `appeal: stop every web and worker process first: 1 is running on this database or a copy of it (QUEUE_PREFIX "${prefix}"), and each derives links from the secret it started with; one that stopped without saying so is counted for 90 s\n`,
      );
      expect(restore).toMatchObject({ code: 1, stdout: '' });
      expect(restore!.stderr).toContain('and each has row numbers set aside from before;');
      expect((await ctx.db.query(`SELECT 1 FROM audit_log WHERE action = 'database.after_restore'`)).rowCount).toBe(0);
    } finally {
      await redis.del(`${prefix}:installation`, `${prefix}:installation:processes`);
      redis.disconnect();
    }
  });

  it('ties the database to the new secret and derives the kept links again: those mailed before stop working, those mailed next work', async () => {
    const old = ctx.secret;
    await checkSecret(ctx.db, old);
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    const signer = `${uniq('rotating')}@supporter.example`;
    await sign(ctx.db, ctx, slug, { fullName: 'Rotating Signer', email: signer });
    const subscriber = `${uniq('rotating')}@subscriber.example`;
    await requestSubscription(ctx.db, ctx, { email: subscriber, caseSlug }, 'api');
    const signature = (await ctx.db.query<{ id: number; confirm_token_hash: string }>('SELECT id, confirm_token_hash FROM signatures WHERE email = $1', [signer])).rows[0]!;
    const sub = (await ctx.db.query<{ id: number; optin_round: number }>('SELECT id, optin_round FROM subscribers WHERE email = $1', [subscriber])).rows[0]!;
    // Its alerts' link, as the first alert's fan-out keeps it.
    await ctx.db.query('UPDATE subscribers SET manage_token_hash = $2 WHERE id = $1', [sub.id, hashToken(manageToken(old, sub.id))]);
    const links = async () => (await ctx.db.query<{ confirm: string; optin: string; manage: string }>(
      `SELECT s.confirm_token_hash AS confirm, b.confirm_token_hash AS optin, b.manage_token_hash AS manage
         FROM signatures s, subscribers b WHERE s.id = $1 AND b.id = $2`,
      [signature.id, sub.id],
    )).rows[0]!;
    expect(await links()).toEqual({ confirm: hashToken(confirmToken(old, signature.id)), optin: hashToken(optinToken(old, sub)), manage: hashToken(manageToken(old, sub.id)) });

    // A count of emails to the signer, keyed with the old secret; and another installation's, whose prefix begins alike.
    const { addressCounterKeys } = await import('../../src/deliveries/allowance.ts');
    const [counter] = addressCounterKeys(ctx.config.queuePrefix, old, signer);
    const [othersCounter] = addressCounterKeys(`${ctx.config.queuePrefix}x`, old, signer);
    await ctx.redis.client.set(counter!, '1', 'EX', 3600);
    await ctx.redis.client.set(othersCounter!, '1', 'EX', 3600);

    const fresh = 'a new secret, long enough to count';
    const rotated = await cli({ ...ctx.env, SESSION_SECRET: fresh }, ['rotate-secret']);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toMatch(/^the database now uses the new secret; the links of \d+ signatures? and \d+ subscribers? were derived again/);
    // Whoever has the old secret (it may have leaked) cannot tell from them whom Appeal emailed.
    expect(rotated.stdout).toMatch(new RegExp(`\\n\\d+ rate-limit counts? kept with the old secret \\(QUEUE_PREFIX "${ctx.config.queuePrefix}"\\) deleted\\n$`));
    expect(await ctx.redis.client.exists(counter!)).toBe(0);
    expect(await ctx.redis.client.exists(othersCounter!)).toBe(1);
    await ctx.redis.client.del(othersCounter!);
    expect(await links()).toEqual({ confirm: hashToken(confirmToken(fresh, signature.id)), optin: hashToken(optinToken(fresh, sub)), manage: hashToken(manageToken(fresh, sub.id)) });
    await expect(checkSecret(ctx.db, fresh)).resolves.toBeUndefined();
    await expect(checkSecret(ctx.db, old)).rejects.toThrow(/SESSION_SECRET: this database is tied to another secret/);

    const again = await cli({ ...ctx.env, SESSION_SECRET: fresh }, ['rotate-secret']);
    expect([again.code, again.stdout]).toEqual([0, 'the database uses this secret already: nothing changed\n']);

    // Given another installation's QUEUE_PREFIX (a shell left with the default, say), it leaves that one's counts alone.
    const theirs = `${ctx.config.queuePrefix}-theirs`;
    const [theirCounter] = addressCounterKeys(theirs, 'their own secret', signer);
    await ctx.redis.client.set(`${theirs}:installation`, 'another-installation', 'EX', 60);
    await ctx.redis.client.set(theirCounter!, '1', 'EX', 60);
    try {
      const astray = await cli({ ...ctx.env, QUEUE_PREFIX: theirs, SESSION_SECRET: 'yet another secret, long enough' }, ['rotate-secret']);
      expect(astray.code, astray.stderr).toBe(0);
      expect(astray.stderr).toBe(`appeal: the rate-limit counts under QUEUE_PREFIX "${theirs}" were left alone: another installation runs under it (give rotate-secret the service's QUEUE_PREFIX to delete this one's); they lapse on their own within a day\n`);
      expect(await ctx.redis.client.exists(theirCounter!)).toBe(1);
    } finally {
      await ctx.redis.client.del(`${theirs}:installation`, theirCounter!);
    }
  }, 120_000);
});

describe('the cli moving the embedded database to PostgreSQL (import-embedded)', () => {
  let dataDir: string;
  let secondDir: string;
  let target: TestDb;
  const secret = 'the secret of this embedded install';

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-import-'));
    secondDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-import-'));
    target = await createTestDb('postgres');
  }, 120_000);
  afterAll(async () => {
    for (const dir of [dataDir, secondDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    await target?.close();
  });

  /** Every row of every table, as JSON text in one order, with times in one zone. */
  const everyRow = async (db: Db) => {
    await db.query(`SET TIME ZONE 'UTC'`);
    const { rows: tables } = await db.query<{ name: string }>(`SELECT relname AS name FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND relname <> 'schema_migrations' ORDER BY 1`);
    const all: Record<string, string[]> = {};
    for (const { name } of tables) all[name] = (await db.query<{ row: string }>(`SELECT to_json(t)::text AS row FROM ${name} t ORDER BY to_json(t)::text COLLATE "C"`)).rows.map((r) => r.row);
    return all;
  };

  it('copies every row with its id into an empty database, keeps the sequences where they were, and puts the embedded database aside', async () => {
    const organizer = `${uniq('moving')}@appeal.test`;
    expect((await cli({ DATA_DIR: dataDir }, ['organizer:add', organizer, '--admin'], 'correct horse battery staple\n')).code).toBe(0);
    expect((await cli({ DATA_DIR: dataDir }, ['seed-demo'])).code).toBe(0);
    const embedded = await openEmbedded(dataDir, createLog('silent'));
    try {
      await checkSecret(embedded.db, secret);
      const { slug } = await createLiveCampaign(embedded.db);
      const { rows: [campaign] } = await embedded.db.query<{ id: number }>('SELECT id FROM campaigns WHERE slug = $1', [slug]);
      // Ids taken ahead, as the sign form takes them a hundred at a time: the copy goes on after them.
      await embedded.db.query(`SELECT nextval(pg_get_serial_sequence('signatures', 'id')) FROM generate_series(1, 5)`);
      await embedded.db.query(
        `INSERT INTO signatures (campaign_id, full_name, email, city, personal_note, status, confirm_token_hash, confirmed_at)
         VALUES ($1, 'Aısha "Moved" Ñandú', 'moved@supporter.example', 'Алматы', E'line one\nline two 🌱', 'confirmed', 'hash-1', now())`,
        [campaign!.id],
      );
    } finally {
      await embedded.close();
    }
    const source = (await openPglite(path.join(dataDir, 'pglite'))).db;
    const before = { all: await everyRow(source), next: (await source.query<{ id: string }>(`SELECT last_value::text AS id FROM pg_sequences WHERE sequencename = 'signatures_id_seq'`)).rows[0]!.id };
    await source.close();

    // What an earlier import put aside (the app then started afresh without DATABASE_URL): kept too.
    fs.mkdirSync(path.join(dataDir, 'pglite.imported'));
    fs.writeFileSync(path.join(dataDir, 'pglite.imported', 'PG_VERSION'), 'earlier');
    // A database of another application's (a DATABASE_URL naming the wrong one) gets nothing of Appeal's mixed in.
    await target.db.exec('CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)');
    const wrong = await cli({ DATA_DIR: dataDir, DATABASE_URL: target.url! }, ['import-embedded']);
    expect([wrong.code, wrong.stderr]).toEqual([1, "appeal: the database to copy into holds tables that are not Appeal's (invoices): copy into a new, empty database\n"]);
    expect(fs.existsSync(path.join(dataDir, 'pglite', 'PG_VERSION'))).toBe(true);
    await target.db.exec('DROP TABLE invoices');
    // Nor one whose tables share their names with Appeal's (`organizers`) but that Appeal never migrated.
    await target.db.exec('ALTER TABLE schema_migrations RENAME TO theirs_aside');
    const clash = await cli({ DATA_DIR: dataDir, DATABASE_URL: target.url! }, ['import-embedded']);
    await target.db.exec('ALTER TABLE theirs_aside RENAME TO schema_migrations');
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/^appeal: the database to copy into holds tables that are not Appeal's \(\w+, \w+, \w+, \w+, \w+, …\): copy into a new, empty database\n$/);
    const moved = await cli({ DATA_DIR: dataDir, DATABASE_URL: target.url! }, ['import-embedded']);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(/^copied \d+ rows into the database at DATABASE_URL: .*organizers 1.*signatures 1/);
    expect(moved.stdout).toContain(`${path.join(dataDir, 'pglite')} is now ${path.join(dataDir, 'pglite')}.imported-2: kept`);
    expect(moved.stdout).toContain(`which retention and forget no longer reach: once the app runs on PostgreSQL and the data is checked there, delete it (rm -r ${path.join(dataDir, 'pglite')}.imported-2)`);
    expect(fs.existsSync(path.join(dataDir, 'pglite'))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'pglite.imported-2', 'PG_VERSION'))).toBe(true);
    expect(fs.readFileSync(path.join(dataDir, 'pglite.imported', 'PG_VERSION'), 'utf8')).toBe('earlier');

    expect(await everyRow(target.db)).toEqual(before.all);
    const { rows: [next] } = await target.db.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence('signatures', 'id'))::text AS id`);
    expect(BigInt(next!.id)).toBe(BigInt(before.next) + 1n);
    // The same installation: its secret and its organizer's password work there.
    await expect(checkSecret(target.db, secret, { keep: false })).resolves.toBeUndefined();
    expect(await verifyPassword('correct horse battery staple', (await findOrganizerByEmail(target.db, organizer))!.password_hash)).toBe(true);

    // Nothing left to import; and a second embedded database is not poured into the first's.
    const again = await cli({ DATA_DIR: dataDir, DATABASE_URL: target.url! }, ['import-embedded']);
    expect([again.code, again.stderr]).toEqual([1, `appeal: there is no embedded database in ${path.join(dataDir, 'pglite')} to import\n`]);
    expect((await cli({ DATA_DIR: secondDir }, ['seed-demo'])).code).toBe(0);
    const refused = await cli({ DATA_DIR: secondDir, DATABASE_URL: target.url! }, ['import-embedded']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^appeal: the database to copy into is not empty \(table \w+ has rows\): copy into a new, empty database\n$/);
    expect(fs.existsSync(path.join(secondDir, 'pglite', 'PG_VERSION'))).toBe(true);
    expect(await everyRow(target.db)).toEqual(before.all);
  }, 300_000);
});

describe('the cli on the embedded database (DATA_DIR)', () => {
  let dataDir: string;
  const email = `${uniq('embedded')}@appeal.test`;

  beforeAll(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-cli-'));
  });
  afterAll(() => {
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('warns when import-embedded moved the data to PostgreSQL and DATABASE_URL is not set', async () => {
    const moved = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-cli-imported-'));
    try {
      fs.mkdirSync(path.join(moved, 'pglite.imported'));
      fs.writeFileSync(path.join(moved, 'pglite.imported', 'PG_VERSION'), '17\n');
      const warning = `appeal: warning: DATABASE_URL is not set, and import-embedded moved the embedded database to PostgreSQL (${path.join(moved, 'pglite.imported')} is what it left): the embedded database used here is another, without that data.`;
      const ran = await cli({ DATA_DIR: moved }, ['migrate']);
      expect(ran.code, ran.stderr).toBe(0);
      expect(ran.stderr).toContain(warning);
      // The app started without DATABASE_URL holds the new one: the command it runs warns too.
      const app = await openEmbedded(moved, createLog('silent'), async () => ({ code: 0, stdout: 'done\n', stderr: '' }));
      try {
        const handed = await cli({ DATA_DIR: moved }, ['migrate']);
        expect([handed.code, handed.stdout]).toEqual([0, 'done\n']);
        expect(handed.stderr).toContain(warning);
      } finally {
        await app.close();
      }
    } finally {
      fs.rmSync(moved, { recursive: true, force: true });
    }
  });

  it('migrates and adds an organizer in the PGlite under DATA_DIR, then lets go of it', async () => {
    const added = await cli({ DATA_DIR: dataDir }, ['organizer:add', email, '--admin'], 'correct horse battery staple\n');
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toBe(`added admin ${email}\n`);
    // A DATA_DIR that held no database (a typo, a volume not mounted) says it made one.
    expect(added.stderr).toBe(`appeal: DATABASE_URL is not set, and DATA_DIR (${path.resolve(dataDir)}) held no database: a new, empty one was made there. If you meant the app's, set DATA_DIR to the directory it runs with\n`);
    const again = await cli({ DATA_DIR: dataDir }, ['migrate']);
    expect([again.code, again.stderr]).toEqual([0, `appeal: DATABASE_URL is not set: using the embedded database in ${path.resolve(dataDir)}\n`]);

    expect(fs.existsSync(path.join(dataDir, 'pglite.pid'))).toBe(false);
    const { db } = await openPglite(path.join(dataDir, 'pglite'));
    try {
      const organizer = (await findOrganizerByEmail(db, email))!;
      expect(organizer.role).toBe('admin');
      expect(await verifyPassword('correct horse battery staple', organizer.password_hash)).toBe(true);
      const { rows } = await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
      expect(rows[0]).toEqual({ name: '001_initial.sql' });
    } finally {
      await db.close();
    }
  }, 300_000);

  it('runs two commands started together one after the other: the second waits for the first to let go, then opens it', async () => {
    const [a, b] = [`${uniq('one')}@appeal.test`, `${uniq('two')}@appeal.test`];
    const ran = await Promise.all([a, b].map((who) => cli({ DATA_DIR: dataDir }, ['organizer:add', who], 'correct horse battery staple\n')));
    for (const r of ran) expect(r.code, r.stderr).toBe(0);
    const { db } = await openPglite(path.join(dataDir, 'pglite'));
    try {
      for (const who of [a, b]) expect(await findOrganizerByEmail(db, who)).toBeDefined();
    } finally {
      await db.close();
    }
    expect(fs.existsSync(path.join(dataDir, 'pglite.pid'))).toBe(false);
  }, 300_000);

  it('rotate-secret refuses while the app holds the database, and without SESSION_SECRET puts a new secret in DATA_DIR/secret', async () => {
    const secretFile = path.join(dataDir, 'secret');
    fs.writeFileSync(secretFile, 'the secret this DATA_DIR began with\n', { mode: 0o600 });
    const app = await openEmbedded(dataDir, createLog('silent'), async () => ({ code: 0, stdout: '', stderr: '' }));
    try {
      await checkSecret(app.db, 'the secret this DATA_DIR began with');
      const refused = await cli({ DATA_DIR: dataDir }, ['rotate-secret']);
      expect([refused.code, refused.stderr]).toEqual([1, `appeal: stop Appeal first: it holds the database in ${path.resolve(dataDir)} and derives links from the secret it started with\n`]);
    } finally {
      await app.close();
    }
    expect(fs.readFileSync(secretFile, 'utf8')).toBe('the secret this DATA_DIR began with\n');

    const rotated = await cli({ DATA_DIR: dataDir }, ['rotate-secret']);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain(`the new secret is in ${secretFile}`);
    const secret = fs.readFileSync(secretFile, 'utf8').trim();
    expect(secret).not.toBe('the secret this DATA_DIR began with');
    expect(secret.length).toBeGreaterThanOrEqual(32);
    expect(fs.statSync(secretFile).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(`${secretFile}.new`)).toBe(false);
    const { db } = await openPglite(path.join(dataDir, 'pglite'));
    try {
      await expect(checkSecret(db, secret, { keep: false })).resolves.toBeUndefined();
    } finally {
      await db.close();
    }
  }, 300_000);

  it('rotate-secret names DATA_DIR when it cannot keep the secret there', async () => {
    const file = path.join(os.tmpdir(), uniq('not-a-folder'));
    fs.writeFileSync(file, '');
    try {
      const refused = await cli({ DATA_DIR: file }, ['rotate-secret']);
      expect([refused.code, refused.stderr]).toEqual([1, `appeal: DATA_DIR: cannot use ${file} (EEXIST): it must be a folder this process can write to\n`]);
    } finally {
      fs.rmSync(file);
    }
  });

  it('lets the app started while a command holds the database wait for it, not refuse to start', async () => {
    const who = `${uniq('before-start')}@appeal.test`;
    // A password typed slowly: the command holds the database while it waits for stdin.
    const command = cli({ DATA_DIR: dataDir }, ['organizer:add', who], { open: true });
    const pidFile = path.join(dataDir, 'pglite.pid');
    for (let i = 0; i < 600 && !fs.existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    expect(fs.existsSync(pidFile)).toBe(true);
    const app = await openEmbedded(dataDir, createLog('silent'), async () => ({ code: 0, stdout: '', stderr: '' }));
    try {
      expect((await command).code).toBe(0);
      expect(await findOrganizerByEmail(app.db, who)).toBeDefined();
    } finally {
      await app.close();
    }
  }, 300_000);
});

describe('the cli while npm start holds the embedded database', () => {
  const prefix = uniq('held');
  let dataDir: string;
  let app: import('node:child_process').ChildProcess | undefined;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-held-'));
    const port = await freePort();
    // What `npm start` runs, without npm: the pid that holds the database is the one we signal.
    app = spawn(process.execPath, ['scripts/start.mjs'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dataDir, PORT: String(port), QUEUE_PREFIX: prefix, REDIS_URL: TEST_REDIS_URL, LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    // Only until it holds the database: it opens its command socket seconds later, once PGlite is
    // open, and a command sent meanwhile waits for it instead of being told "no commands".
    for (let i = 0; i < 600 && !fs.existsSync(path.join(dataDir, 'pglite.pid')); i++) await new Promise((r) => setTimeout(r, 50));
    if (!fs.existsSync(path.join(dataDir, 'pglite.pid'))) throw new Error(`npm start did not take ${dataDir} in 30 s (exit code ${app.exitCode})`);
  }, 120_000);
  afterAll(async () => {
    if (app && app.exitCode === null) {
      const exited = new Promise((r) => app!.once('exit', r));
      app.kill('SIGTERM');
      await exited;
    }
    // The app's queues and schedules live under its own prefix; leave nothing behind.
    const redis = new Redis(TEST_REDIS_URL);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs its commands inside the running app, so the app sees what they added at once', async () => {
    const email = `${uniq('held')}@appeal.test`;
    const added = await cli({ DATA_DIR: dataDir }, ['organizer:add', email], 'correct horse battery staple\n');
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toBe(`added organizer ${email}\n`);
    expect(added.stderr).toBe('');
    const token = await cli({ DATA_DIR: dataDir }, ['token:create', email]);
    expect(token.code, token.stderr).toBe(0);
    expect(token.stdout).toMatch(/^apl_[\w-]+\n$/);
    const unknown = await cli({ DATA_DIR: dataDir }, ['token:create', 'nobody@appeal.test']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('appeal: organizer not found\n');
    // Only its owner may connect to the command socket.
    expect(fs.statSync(path.join(dataDir, 'cli.sock')).mode & 0o777).toBe(0o600);
    // The app holds the database the whole time: the cli never opened it.
    expect(app!.exitCode).toBeNull();
    expect(Number(fs.readFileSync(path.join(dataDir, 'pglite.pid'), 'utf8'))).toBe(app!.pid);
    // With the boot it holds it in, so a pid file a reboot left behind is not taken for a live holder.
    expect(fs.readFileSync(path.join(dataDir, 'pglite.boot'), 'utf8')).toBe(fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  }, 120_000);

  it('stops on one Ctrl-C (SIGINT), leaving no pid file or command socket, so the cli then opens the database itself', async () => {
    const exited = new Promise<number | null>((resolve) => app!.once('exit', (code) => resolve(code)));
    app!.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(fs.readdirSync(dataDir).filter((f) => /pid|sock|boot/.test(f))).toEqual([]);
    const email = `${uniq('after')}@appeal.test`;
    // Nothing holds the directory now: the cli opens the database itself.
    const added = await cli({ DATA_DIR: dataDir }, ['organizer:add', email], 'correct horse battery staple\n');
    expect(added.code, added.stderr).toBe(0);
  }, 120_000);
});
