import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import express from 'express';
import { ConfigError, configWarnings, loadConfig, makeDataDir, parseMailbox, trustProxy } from '../../src/config.ts';

/** A real RSA key: the DKIM key is read and checked with the config. */
const KEY_FILE = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-config-')), 'dkim.pem');
fs.writeFileSync(KEY_FILE, crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }));
afterAll(() => fs.rmSync(path.dirname(KEY_FILE), { recursive: true, force: true }));

function errorOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`${JSON.stringify(env)} was accepted`);
}

describe('loading config from the environment', () => {
  it('fills in every default', () => {
    expect(loadConfig({})).toEqual({
      port: 3000,
      publicUrl: 'http://localhost:3000',
      dataDir: path.resolve('./data'),
      databaseUrl: undefined,
      redisUrl: undefined,
      smtpUrl: undefined,
      mailFrom: { name: 'Appeal', address: 'letters@localhost' },
      orgName: 'Appeal',
      dkim: undefined,
      sessionSecret: undefined,
      queuePrefix: 'appeal',
      workerConcurrency: 10,
      rateLimitPerIp: 20,
      trustProxy: undefined,
      retentionUnconfirmedDays: 7,
      retentionUnsubscribedDays: 30,
      logLevel: 'info',
    });
  });

  it('reads every variable it is given', () => {
    const config = loadConfig({
      PORT: '8080', PUBLIC_URL: 'https://appeal.example/', DATA_DIR: '/tmp/appeal', DATABASE_URL: 'postgres://u@db/appeal',
      REDIS_URL: 'redis://cache:6380', SMTP_URL: 'smtps://u:p@mail.example', MAIL_FROM: '"Letters, Appeal" <letters@appeal.example>',
      ORG_NAME: 'Free Them', DKIM_DOMAIN: 'appeal.example', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY_FILE: KEY_FILE,
      SESSION_SECRET: 'a-long-enough-secret', QUEUE_PREFIX: 'appeal-2', WORKER_CONCURRENCY: '4', RATE_LIMIT_PER_IP: '0',
      TRUST_PROXY: 'loopback, 10.0.0.0/8', RETENTION_UNCONFIRMED_DAYS: '3', LOG_LEVEL: 'warn',
    });
    expect(config).toMatchObject({
      port: 8080,
      publicUrl: 'https://appeal.example',
      dataDir: '/tmp/appeal',
      mailFrom: { name: 'Letters, Appeal', address: 'letters@appeal.example' },
      dkim: { domainName: 'appeal.example', keySelector: 's1', privateKeyFile: KEY_FILE, privateKey: expect.stringContaining('PRIVATE KEY') },
      workerConcurrency: 4,
      rateLimitPerIp: 0,
      trustProxy: 'loopback, 10.0.0.0/8',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('counts an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', SMTP_URL: '' })).toMatchObject({ port: 3000, smtpUrl: undefined });
  });

  const bad: [string, string][] = [
    ['PORT', 'abc'], ['PORT', '70000'], ['PORT', '0'], ['PORT', '80.5'],
    ['PUBLIC_URL', 'appeal.example'], ['PUBLIC_URL', 'ftp://appeal.example'],
    ['DATABASE_URL', 'mysql://db/appeal'], ['REDIS_URL', 'http://cache'], ['SMTP_URL', 'nonsense'], ['SMTP_URL', 'http://mail.example'],
    ['MAIL_FROM', 'not an address'], ['MAIL_FROM', 'Appeal <letters@appeal.example>\r\nBcc: victim@evil.example'],
    ['ORG_NAME', 'Appeal\r\nBcc: victim@evil.example'], ['ORG_NAME', 'x'.repeat(101)],
    ['SESSION_SECRET', 'short'], ['SESSION_SECRET', 'REPLACE-ME-with-openssl-rand-base64-32'], ['QUEUE_PREFIX', 'has space'], ['QUEUE_PREFIX', 'a:b'],
    ['WORKER_CONCURRENCY', '0'], ['RATE_LIMIT_PER_IP', '-1'], ['RETENTION_UNCONFIRMED_DAYS', '0'],
    ['TRUST_PROXY', 'yes'], ['TRUST_PROXY', 'loopback, 300.1.1.1'], ['LOG_LEVEL', 'loud'],
    ['PORT', '0x10'], ['PORT', '1e3'], ['PORT', ' 80'], ['SMTP_URL', 'smtp://'], ['SMTP_URL', 'smtp:nonsense'],
    ['DATABASE_URL', 'postgres:'], ['REDIS_URL', 'redis:'], ['SESSION_SECRET', ' '.repeat(20)],
    // Each of these once passed the check and then stopped the start with a stack trace, or a
    // message that named nothing, after the database was opened.
    ['REDIS_URL', 'bogus'], ['REDIS_URL', '127.0.0.1:6379'], ['TRUST_PROXY', '10.0.0.0/99'], ['TRUST_PROXY', '1.2.3.4/255.0.255.0'],
    ['TRUST_PROXY', 'fe80::/ffff::'], ['TRUST_PROXY', '1.2.3.4/0'], ['TRUST_PROXY', '::/0'], ['TRUST_PROXY', '10.0.0.1/0.0.0.0'],
    ['TRUST_PROXY', '10.1/8'], ['TRUST_PROXY', '1.2.3/24'], ['TRUST_PROXY', '1,2'], ['TRUST_PROXY', 'loopback, 1'], ['SMTP_URL', 'smtp://user:p%ZZ@127.0.0.1:2625'], ['REDIS_URL', 'redis://:p%@cache:6379'],
    ['DATA_DIR', `/tmp/${'x'.repeat(100)}`],
    // These started, and then every message was refused at MAIL FROM, or went from "… via    ",
    // or the database was made anew in a folder named by spaces.
    ['MAIL_FROM', 'Appeal <letters@appeal.example,boss@mail.example>'], ['MAIL_FROM', 'a@b@appeal.example'], ['MAIL_FROM', 'letters@appeal..example'],
    ['MAIL_FROM', 'letters@.example'], ['MAIL_FROM', 'Appeal <let(ters)@appeal.example>'], ['MAIL_FROM', 'Appeal <.letters@appeal.example>'],
    ['ORG_NAME', '   '], ['ORG_NAME', '\u200b\u2800\u3164'], ['ORG_NAME', '\u200b'], ['DATA_DIR', '   '], ['DATA_DIR', ' ./data'],
    // These started and then broke every link or every DKIM signature without a word.
    ['PUBLIC_URL', 'https://appeal.example/?a=b#frag'], ['PUBLIC_URL', 'https://appeal.example/x?'], ['PUBLIC_URL', 'https://user:pw@appeal.example'],
    ['DKIM_DOMAIN', 'exa mple.org'], ['DKIM_DOMAIN', 'https://appeal.example'], ['DKIM_DOMAIN', 'localhost'],
    ['DKIM_SELECTOR', 's;x=y'], ['DKIM_SELECTOR', 's1._domainkey.appeal.example'],
    ['SMTP_URL', 'smtp://u:p@mail.example:587/path'], ['SMTP_URL', 'smtp://mail.example?secure=true'], ['SMTP_URL', 'smtp://mail.example:587#x'],
    ['SMTP_URL', 'smtp://mail.example:587?'],
  ];
  it.each(bad)('refuses %s=%j with one line naming the variable', (name, value) => {
    const message = errorOf({ [name]: value });
    expect(message.startsWith(`${name}: `)).toBe(true);
    expect(message).not.toMatch(/[\r\n]/);
  });

  it('says what is wrong in words, not in the terms of the schema', () => {
    expect(errorOf({ ORG_NAME: 'x'.repeat(101) })).toBe('ORG_NAME: must be at most 100 characters');
    expect(errorOf({ LOG_LEVEL: 'loud' })).toBe('LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent');
    expect(errorOf({ DKIM_SELECTOR: 's1._domainkey.appeal.example' })).toMatch(/^DKIM_SELECTOR: must be the selector alone/);
  });

  it('says to percent-encode a # / or ? in a password, which ends it and leaves the URL seeming to have no host', () => {
    const encode = /; if the # \/ or \? is in the user name or password, percent-encode it there \(# as %23, \/ as %2F, \? as %3F/;
    expect(errorOf({ SMTP_URL: 'smtp://apikey:Xy7#kP2/q@smtp.example.org:587' })).toMatch(/^SMTP_URL: must be a URL with a host/);
    for (const env of <Record<string, string>[]>[
      { SMTP_URL: 'smtp://apikey:Xy7#kP2/q@smtp.example.org:587' }, { SMTP_URL: 'smtp://apikey:a?b@smtp.example.org' },
      { SMTP_URL: 'smtp://apikey:4815#@smtp.example.org:587' }, { DATABASE_URL: 'postgres://app:pa#ss@db.example.org/appeal' },
    ]) expect(errorOf(env)).toMatch(encode);
    expect(loadConfig({ SMTP_URL: 'smtp://apikey:Xy7%23kP2%2Fq@smtp.example.org:587' }).smtpUrl).toBeDefined();
    // Cut where the rest still reads as host:port, the user name became the host: refused, not left to fail to connect.
    for (const env of <Record<string, string>[]>[
      { DATABASE_URL: 'postgres://app:4815#kP2@db.example.org/appeal' }, { DATABASE_URL: 'postgres://postgres:4815/x@127.0.0.1/appeal' },
      { REDIS_URL: 'redis://default:6379#kP2@redis.example.org:6379' }, { REDIS_URL: 'redis://default:6379/kP2@redis.example.org:6379' },
    ]) expect(errorOf(env)).toMatch(new RegExp(`^${Object.keys(env)[0]}: reads the user name as the host; ${encode.source.slice(2)}`));
    // An @ in the query is no password.
    expect(loadConfig({ DATABASE_URL: 'postgres://db/appeal?options=a@b' }).databaseUrl).toBeDefined();
    // Not said where no user part holds one.
    expect(errorOf({ SMTP_URL: 'smtp://u:p@mail.example:587/path' })).not.toMatch(encode);
    expect(errorOf({ SMTP_URL: 'nonsense' })).toBe('SMTP_URL: must be a URL with a host, starting with smtp:// or smtps://');
  });

  it('refuses port 0 in a URL, which the clients would read as their default port', () => {
    for (const env of [{ SMTP_URL: 'smtp://127.0.0.1:0' }, { REDIS_URL: 'redis://127.0.0.1:0' }, { DATABASE_URL: 'postgres://db:0/appeal' }] as Record<string, string>[]) {
      expect(errorOf(env)).toBe(`${Object.keys(env)[0]}: has port 0: name the port to connect to (1–65535), or leave it out for the default`);
    }
    expect(loadConfig({ SMTP_URL: 'smtp://127.0.0.1:2525' }).smtpUrl).toBe('smtp://127.0.0.1:2525');
  });

  it('refuses a PUBLIC_URL with a path, since pages and emails link from the root of the host', () => {
    expect(errorOf({ PUBLIC_URL: 'https://campaigns.example/appeal/' })).toMatch(/^PUBLIC_URL: must have no path/);
    for (const written of ['https://campaigns.example/', 'https://campaigns.example//', 'https://campaigns.example/.', 'https://Campaigns.Example:443']) {
      expect(loadConfig({ PUBLIC_URL: written }).publicUrl).toBe('https://campaigns.example');
    }
  });

  it('takes a Redis database number after the host, and refuses anything else there', () => {
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379/2' }).redisUrl).toBe('redis://127.0.0.1:6379/2');
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redisUrl).toBe('redis://127.0.0.1:6379');
    expect(errorOf({ REDIS_URL: 'redis://127.0.0.1:6379/abc' })).toMatch(/^REDIS_URL: the database after the host must be a number/);
  });

  it('asks for all three DKIM variables together, naming the missing one', () => {
    expect(errorOf({ DKIM_DOMAIN: 'appeal.example' })).toMatch(/^DKIM_SELECTOR: /);
    expect(errorOf({ DKIM_DOMAIN: 'appeal.example', DKIM_SELECTOR: 's1' })).toMatch(/^DKIM_PRIVATE_KEY_FILE: /);
  });

  it('takes a Postgres URL that names only a database, for the local socket', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres:///appeal' }).databaseUrl).toBe('postgres:///appeal');
    expect(loadConfig({ DATABASE_URL: 'postgresql:///appeal?host=/var/run/postgresql' }).databaseUrl).toBe('postgresql:///appeal?host=/var/run/postgresql');
  });

  it('takes TRUST_PROXY in every form Express understands', () => {
    for (const value of ['1', 'true', 'false', 'loopback', 'loopback,linklocal,uniquelocal', '10.0.0.1', '10.0.0.0/8', '10.0.0.0/255.0.0.0', 'fe80::/10']) {
      expect(loadConfig({ TRUST_PROXY: value }).trustProxy).toBe(value);
      // As Express reads it when the web app starts (it compiles the value at once).
      expect(() => express().set('trust proxy', trustProxy(value))).not.toThrow();
    }
    // A hop count typed with a space is still a hop count, not the address 0.0.0.1.
    expect(trustProxy(loadConfig({ TRUST_PROXY: ' 1 ' }).trustProxy)).toBe(1);
  });
});

describe('making DATA_DIR', () => {
  it("makes it for this process's user alone: it holds the secret and the outbox's emails", () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-datadir-'));
    try {
      const dir = path.join(base, 'nested', 'data');
      makeDataDir(dir);
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
      expect(fs.statSync(path.dirname(dir)).mode & 0o777).toBe(0o700);
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('parsing a mailbox', () => {
  it('reads a name and address, a quoted name, or a bare address', () => {
    expect(parseMailbox('Appeal <letters@localhost>')).toEqual({ name: 'Appeal', address: 'letters@localhost' });
    expect(parseMailbox('"Appeal, Letters" <letters@appeal.example>')).toEqual({ name: 'Appeal, Letters', address: 'letters@appeal.example' });
    expect(parseMailbox('  <letters@appeal.example> ')).toEqual({ name: '', address: 'letters@appeal.example' });
    expect(parseMailbox('letters@appeal.example')).toEqual({ name: '', address: 'letters@appeal.example' });
    expect(parseMailbox("Appeal <o'brien+letters@mail.appeal.example>")).toEqual({ name: 'Appeal', address: "o'brien+letters@mail.appeal.example" });
    expect(parseMailbox('letters@[192.0.2.1]')).toEqual({ name: '', address: 'letters@[192.0.2.1]' });
    expect(parseMailbox('Қорғау <letters@қорғау.kz>')).toEqual({ name: 'Қорғау', address: 'letters@xn--80a1agn21bob.kz' });
    // A quoted name may hold quotes and backslashes, escaped.
    expect(parseMailbox('"Қорғау \\"Бірлік\\" \\\\ 1" <letters@appeal.example>')).toEqual({ name: 'Қорғау "Бірлік" \\ 1', address: 'letters@appeal.example' });
  });

  it('refuses anything but one mailbox on one line', () => {
    for (const value of ['', 'Appeal', 'Appeal <>', 'Appeal <letters>', 'a@b.example, c@d.example', 'A <a@b.example> <c@d.example>',
      'Appeal <letters@appeal.example>\nBcc: x@evil.example', 'letters@appeal.example\r\n', 'two words@appeal.example']) {
      expect(parseMailbox(value), JSON.stringify(value)).toBeNull();
    }
  });
});

describe('warnings at start', () => {
  const warned = (env: Record<string, string>) => configWarnings(loadConfig(env));
  const dkim = { DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY_FILE: KEY_FILE };

  it('says nothing of a local http PUBLIC_URL or an aligned DKIM domain', () => {
    expect(warned({})).toEqual([]);
    expect(warned({ PUBLIC_URL: 'http://127.0.0.1:3000' })).toEqual([]);
    expect(warned({ PUBLIC_URL: 'https://appeal.example', TRUST_PROXY: '1', MAIL_FROM: 'Appeal <letters@appeal.example>', DKIM_DOMAIN: 'appeal.example', ...dkim })).toEqual([]);
    expect(warned({ MAIL_FROM: 'letters@mail.appeal.example', DKIM_DOMAIN: 'appeal.example', ...dkim })).toEqual([]);
    // A domain in its own script is sent in its ASCII form, which d= carries too, however DKIM_DOMAIN writes it.
    expect(warned({ MAIL_FROM: 'Қорғау <letters@қорғау.kz>', DKIM_DOMAIN: 'xn--80a1agn21bob.kz', ...dkim })).toEqual([]);
    expect(warned({ MAIL_FROM: 'Қорғау <letters@xn--80a1agn21bob.kz>', DKIM_DOMAIN: 'қорғау.kz', ...dkim })).toEqual([]);
    expect(loadConfig({ DKIM_DOMAIN: 'қорғау.kz', ...dkim }).dkim?.domainName).toBe('xn--80a1agn21bob.kz');
  });

  it('keeps MAIL_FROM\'s domain in its ASCII form, for the greeting, Message-ID, List-ID and the unsubscribe mailto', () => {
    expect(loadConfig({ MAIL_FROM: 'Қорғау <letters@Қорғау.kz>' }).mailFrom).toEqual({ name: 'Қорғау', address: 'letters@xn--80a1agn21bob.kz' });
    expect(() => loadConfig({ MAIL_FROM: 'Қорғау <хат@example.kz>' })).toThrow(/MAIL_FROM/);
    // An ASCII domain, or an address literal, stays as typed.
    expect(loadConfig({ MAIL_FROM: 'letters@[127.0.0.1]' }).mailFrom.address).toBe('letters@[127.0.0.1]');
    expect(loadConfig({ MAIL_FROM: 'a@1.2' }).mailFrom.address).toBe('a@1.2');
  });

  it('names TRUST_PROXY=true, which lets any client choose the address its limits count', () => {
    expect(warned({ TRUST_PROXY: 'true' })).toEqual([expect.stringMatching(/^TRUST_PROXY=true believes every X-Forwarded-For entry/)]);
    expect(warned({ TRUST_PROXY: '1' })).toEqual([]);
    expect(warned({ TRUST_PROXY: 'loopback' })).toEqual([]);
  });

  it('names TRUST_PROXY when a public https PUBLIC_URL says a proxy is in front and nothing trusts it', () => {
    expect(warned({ PUBLIC_URL: 'https://appeal.example' })).toEqual([expect.stringMatching(/^PUBLIC_URL is https, so a proxy is in front, but TRUST_PROXY trusts no proxy/)]);
    // 0 and false are Express's words for no trust, as unset is.
    for (const value of ['0', 'false']) expect(warned({ PUBLIC_URL: 'https://appeal.example', TRUST_PROXY: value })).toHaveLength(1);
    expect(warned({ PUBLIC_URL: 'https://appeal.example', TRUST_PROXY: 'loopback' })).toEqual([]);
    expect(warned({ PUBLIC_URL: 'https://localhost:3443' })).toEqual([]);
    // A worker serves no pages and counts no visitors.
    expect(configWarnings(loadConfig({ PUBLIC_URL: 'https://appeal.example' }), { web: false })).toEqual([]);
  });

  it('names MAIL_FROM when a relay elsewhere would send from a local name (the default, letters@localhost)', () => {
    const relay = { SMTP_URL: 'smtp://u:p@smtp.example.org:587', PUBLIC_URL: 'http://127.0.0.1:3000' };
    for (const from of [undefined, 'Appeal <letters@appeal.local>', 'letters@mailhost', 'letters@[192.0.2.1]']) {
      expect(warned({ ...relay, ...(from ? { MAIL_FROM: from } : {}) }), from).toEqual([expect.stringMatching(/^MAIL_FROM is \S+, an address no one outside this network can write back to/)]);
    }
    expect(warned({ ...relay, MAIL_FROM: 'Appeal <letters@appeal.example.org>' })).toEqual([]);
    // A relay on this machine (a local Postfix) may rewrite it, as one in a container beside it
    // (compose's Mailpit) catches it; the dev outbox sends nothing.
    expect(warned({ ...relay, SMTP_URL: 'smtp://127.0.0.1:25' })).toEqual([]);
    expect(warned({ ...relay, SMTP_URL: 'smtp://mailpit:1025', MAIL_FROM: 'Appeal <letters@appeal.localhost>' })).toEqual([]);
    expect(warned({})).toEqual([]);
  });

  it('names PUBLIC_URL when a public one is not https', () => {
    expect(warned({ PUBLIC_URL: 'http://appeal.example' })).toEqual([expect.stringMatching(/^PUBLIC_URL is not https: .*one-click unsubscribe/)]);
  });

  it('names DKIM_DOMAIN when it is not the domain of MAIL_FROM', () => {
    expect(warned({ MAIL_FROM: 'letters@appeal.example', DKIM_DOMAIN: 'other.example', ...dkim })).toEqual([
      'DKIM_DOMAIN other.example is not the domain of MAIL_FROM (appeal.example): DMARC sees no aligned signature, and strict receivers reject or junk the letters',
    ]);
    // A suffix that is not a parent domain is no alignment.
    expect(warned({ MAIL_FROM: 'letters@notappeal.example', DKIM_DOMAIN: 'appeal.example', ...dkim })).toHaveLength(1);
  });
});
