import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { domainToASCII } from 'node:url';
import proxyaddr from 'proxy-addr';
import { z } from 'zod';
import { asciiAddress, domainOf, PRIVATE_NAME } from './mail/address.ts';
import { showsSomething } from './cases/types.ts';

/** Whether `s` decodes as a URL's user or password: `%` not followed by two hex digits does not. */
const decodes = (s: string) => {
  try {
    decodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
};

/**
 * A URL's user name and password when they hold a `#`, `/` or `?`, as passwords that relays and
 * hosting panels generate do (`Xy7#kP2/q`): the character ends the user part there, so the URL
 * seems to have no host, or a path, or takes the user name for its host.
 */
const cutCredentials = (input: unknown) => {
  const credentials = typeof input === 'string' ? /^[a-z]+:\/\/([^@]*)@/i.exec(input)?.[1] : undefined;
  return credentials && /[#/?]/.test(credentials) ? credentials : undefined;
};

/** What to add to a URL's error when cutCredentials finds its user part cut; empty for any other. */
const credentialsHint = (input: unknown) =>
  cutCredentials(input) ? '; if the # / or ? is in the user name or password, percent-encode it there (# as %23, / as %2F, ? as %3F; @ as %40, : as %3A)' : '';

/** Whether the user part was cut so that its user name became the host. */
function userNameAsHost(value: string): boolean {
  const credentials = cutCredentials(value);
  return !!credentials && new URL(value).hostname.toLowerCase() === credentials.split(':')[0]!.toLowerCase();
}

const url = (protocols: string[]) =>
  z
    .string()
    .refine(
      (value) => {
        try {
          const u = new URL(value);
          // A host is needed to connect anywhere, except that Postgres falls back to its local socket
          // (postgres:///db, or ?host=/path) as libpq does.
          return protocols.includes(u.protocol) && (u.hostname !== '' || (u.protocol.startsWith('postgres') && u.pathname.length > 1));
        } catch {
          return false;
        }
      },
      // abort: the checks after this one read the value as a URL.
      { error: (issue) => `must be a URL with a host, starting with ${protocols.map((p) => `${p}//`).join(' or ')}${credentialsHint(issue.input)}`, abort: true },
    )
    // `postgres://app:4815#kP2@db.example.org` reads as host `app`, port 4815: it passes as a
    // URL and then fails to connect to a host named by the user name.
    .refine((value) => !userNameAsHost(value), { error: (issue) => `reads the user name as the host${credentialsHint(issue.input)}`, abort: true })
    .refine((value) => {
      const { username, password } = new URL(value);
      return decodes(username) && decodes(password);
    }, {
      message: 'has a user name or password with a % not followed by two hex digits: write a % in them as %25',
      abort: true,
    })
    // Port 0 is no port to connect to, and the clients read it as "the default" unsaid.
    .refine((value) => new URL(value).port !== '0', { message: 'has port 0: name the port to connect to (1–65535), or leave it out for the default' });

/** A DNS name as DKIM's d= and s= carry it: dot-separated labels of letters, digits and hyphens. */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const dnsName = (what: string, example: string) =>
  z
    .string()
    .regex(new RegExp(`^${LABEL}(?:\\.${LABEL})*$`), `must be ${what} of letters, digits, hyphens and dots only, like ${example}`)
    .max(253, 'must be at most 253 characters');

/** Digits only: Number() would also take 0x10, 1e3 and " 8 ". */
const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,15}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

/**
 * What Express's `trust proxy` takes: a hop count, true/false, or names, IPs and subnets separated
 * by commas, checked by the library Express compiles it with (proxy-addr), so a value that passes
 * here cannot stop the web app at its start (`10.1/8`, `1.2.3.4/0`, a netmask with gaps).
 */
function isTrustProxy(value: string): boolean {
  if (/^\d+$/.test(value) || value === 'true' || value === 'false') return true;
  const parts = value.split(',').map((part) => part.trim());
  // proxy-addr reads a bare number in a list as an IPv4 address (`1` is 0.0.0.1): a hop count
  // stands alone, and a list of them trusts no proxy at all.
  if (parts.some((part) => /^\d+$/.test(part))) return false;
  try {
    proxyaddr.compile(parts);
    return true;
  } catch {
    return false;
  }
}

/** Longest path a unix socket can have (sun_path holds 108 bytes with the closing NUL). */
const SOCKET_PATH_MAX = 107;
/** The longest socket path under DATA_DIR: the Redis that `npm start` may run (src/redis-spawn.ts). */
const LONGEST_SOCKET = path.join('redis', 'redis.sock');

/** Every environment variable Appeal reads, with its default. */
const schema = z.object({
  /** HTTP port. @defaultValue 3000 */
  PORT: integer(1, 65535).default(3000),
  /** Base of every link in an email. @defaultValue http://localhost:PORT */
  PUBLIC_URL: url(['http:', 'https:'])
    // Links are this plus a path: a query or fragment would swallow the path, and a password in
    // every email is a leak. Pages link from the root of the host (/static/…, /c/…), so under a
    // path prefix every link in an email and on a page would lead nowhere.
    .refine((v) => {
      const u = new URL(v);
      return !u.search && !u.hash && !v.includes('?') && !v.includes('#') && !u.username && !u.password;
    }, 'must be the site address only (scheme, host, port), with no ?query, #fragment or user:password')
    .refine((v) => new URL(v).pathname.replace(/\/+$/, '') === '', 'must have no path: Appeal is served at the root of its host name (give it a host name of its own, such as https://appeal.example.org)')
    .optional(),
  /** Embedded database, dev outbox, spawned Redis. @defaultValue ./data */
  DATA_DIR: z
    .string()
    .default('./data')
    .refine((v) => v.trim() !== '' && v.trim() === v, 'must be a folder, with no spaces at either end'),
  /** postgres://… ; unset means PGlite under DATA_DIR. */
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  /** Unset: try the default and otherwise spawn redis-server under DATA_DIR. */
  REDIS_URL: url(['redis:', 'rediss:'])
    .refine((v) => /^\/?\d*$/.test(new URL(v).pathname), 'the database after the host must be a number, as in redis://host:6379/0')
    .optional(),
  /** smtp:// or smtps:// ; unset means the dev outbox. */
  SMTP_URL: url(['smtp:', 'smtps:'])
    // Only scheme, login, host and port are read: an option in the query (nodemailer's own URLs
    // take `?secure=true`, `?tls.rejectUnauthorized=false`) would be dropped without a word.
    .refine((v) => {
      const u = new URL(v);
      return !u.search && !u.hash && !v.includes('?') && !v.includes('#') && u.pathname.replace(/\/+$/, '') === '';
    }, {
      error: (issue) =>
        `must be smtp:// or smtps:// with user:password@host:port only: no path, ?options or #fragment (smtps:// for TLS from the start; smtp:// takes STARTTLS when offered, and requires it with a login)${credentialsHint(issue.input)}`,
    })
    .optional(),
  /** Sender of every message, as `Name <address>` or a bare address. @defaultValue Appeal <letters@localhost> */
  MAIL_FROM: z
    .string()
    .default('Appeal <letters@localhost>')
    .refine((v) => parseMailbox(v) !== null, 'must be an address like "Appeal <letters@example.org>"'),
  /** Shown in From and on pages. @defaultValue Appeal */
  ORG_NAME: z
    .string()
    .min(1)
    .max(100, 'must be at most 100 characters')
    .default('Appeal')
    .refine((v) => !/[\r\n]/.test(v), 'must be one line')
    .refine(showsSomething, 'must show a name, not only spaces or invisible characters'),
  /** DKIM signing domain; with DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE. */
  DKIM_DOMAIN: z
    .string()
    // In its own script (қорғау.kz) as MAIL_FROM takes it: d= carries the ASCII form (xn--…).
    .transform((v) => (/^[\x00-\x7f]*$/.test(v) ? v : domainToASCII(v) || v))
    .pipe(dnsName('a domain name', 'example.org'))
    .refine((v) => v.includes('.'), 'must be a full domain name, like example.org')
    .optional(),
  /** The selector alone: `appeal2026`, not `appeal2026._domainkey.example.org`. */
  DKIM_SELECTOR: z
    .string()
    .refine((v) => !/\._domainkey(\.|$)/i.test(v), { message: 'must be the selector alone (appeal2026), not the record name appeal2026._domainkey.example.org', abort: true })
    .pipe(dnsName('a selector', 'appeal2026'))
    .optional(),
  DKIM_PRIVATE_KEY_FILE: z.string().min(1).optional(),
  /** Cookie signing; generated into DATA_DIR on first start when unset. */
  SESSION_SECRET: z
    .string()
    .refine((v) => v.trim().length >= 16, 'must be at least 16 characters, not counting spaces at the ends')
    // A value copied from an example is public, and emailed links are derived from it.
    .refine((v) => !/replace[-_ ]?me|change[-_ ]?me|your[-_ ]?secret/i.test(v), 'is a placeholder: set a random value, e.g. openssl rand -base64 32')
    .optional(),
  /** BullMQ prefix, so several instances can share a Redis. @defaultValue appeal */
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'may hold letters, digits, _ . - only')
    .default('appeal'),
  /** Send jobs one worker process runs at once. @defaultValue 10 */
  WORKER_CONCURRENCY: integer(1, 1000).default(10),
  /** Anonymous public posts one IP may make per 10 minutes; 0 turns it off. @defaultValue 20 */
  RATE_LIMIT_PER_IP: integer(0, 1_000_000_000).default(20),
  /** Express `trust proxy` value (e.g. 1, loopback). */
  TRUST_PROXY: z
    .string()
    .trim()
    .refine(isTrustProxy, 'must be a hop count alone (1), true, or addresses and names like loopback, 10.0.0.0/8')
    .optional(),
  /** Days before unconfirmed signatures and subscribers are purged. @defaultValue 7 */
  RETENTION_UNCONFIRMED_DAYS: integer(1, 3650).default(7),
  /** Days a subscriber who left is kept (their manage link still answers), then deleted. @defaultValue 30 */
  RETENTION_UNSUBSCRIBED_DAYS: integer(1, 3650).default(30),
  /** pino level. @defaultValue info */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'must be one of fatal, error, warn, info, debug, trace, silent').default('info'),
});

export interface Mailbox {
  name: string;
  address: string;
}

/**
 * Parses `Name <a@b>`, `"Name, \"quoted\"" <a@b>` or `a@b`; null when it is not one mailbox on
 * one line.
 */
export function parseMailbox(value: string): Mailbox | null {
  if (/[\r\n]/.test(value)) return null;
  const quoted = /^\s*"((?:[^"\\]|\\.)*)"\s*<([^<>\s]+@[^<>\s]+)>\s*$/.exec(value);
  if (quoted) quoted[1] = quoted[1]!.replace(/\\(.)/g, '$1');
  const match = quoted ?? /^\s*(?:"?([^"<]*?)"?\s*)?<([^<>\s]+@[^<>\s]+)>\s*$/.exec(value) ?? /^\s*()([^<>\s"]+@[^<>\s"]+)\s*$/.exec(value);
  if (!match) return null;
  // A domain in its own script (қорғау.kz) goes out in its ASCII form, as nodemailer puts it in
  // From and the envelope: the greeting, Message-ID, List-ID and the unsubscribe mailto are
  // header and SMTP text, where only ASCII may stand. A local part cannot be turned into ASCII.
  // An ASCII domain (or an address literal, [192.0.2.1]) stays as typed.
  const address = asciiAddress(match[2]!);
  return MAILBOX_ADDRESS.test(address) ? { name: (match[1] ?? '').trim(), address } : null;
}

const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
/**
 * One address a relay takes in MAIL FROM: a dot-atom, one @, and a host name or an address
 * literal. `a@b, c@d`, `a@b@c` or `a@example..org` would start the app and have the relay refuse
 * every message it sends.
 */
const MAILBOX_ADDRESS = new RegExp(`^${ATOM}(?:\\.${ATOM})*@(?:${LABEL}(?:\\.${LABEL})*|\\[[\\x21-\\x5a\\x5e-\\x7e]+\\])$`);

export interface Config {
  port: number;
  publicUrl: string;
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  smtpUrl: string | undefined;
  mailFrom: Mailbox;
  orgName: string;
  /** With the key read and checked at start: a bad key stops the start before anything opens. */
  dkim: { domainName: string; keySelector: string; privateKeyFile: string; privateKey: string } | undefined;
  sessionSecret: string | undefined;
  queuePrefix: string;
  workerConcurrency: number;
  rateLimitPerIp: number;
  trustProxy: string | undefined;
  retentionUnconfirmedDays: number;
  retentionUnsubscribedDays: number;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Makes `dir` (DATA_DIR or a folder in it) when missing. Only what uses DATA_DIR calls it, so a
 * deployment on Postgres, Redis and SMTP needs none.
 * @throws ConfigError naming DATA_DIR when it cannot be made or written to (a file, no permission).
 */
export function makeDataDir(dir: string): void {
  try {
    // Its own user's alone: it holds the secret, and the outbox holds supporters' emails.
    mkdirEach(dir, 0o700);
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError(`DATA_DIR: cannot use ${dir} (${code}): it must be a folder this process can write to`);
  }
}

/**
 * mkdir -p, a folder at a time: Node 20's recursive mkdirSync never returns under a folder that
 * refuses new ones without saying ENOENT as expected (DATA_DIR=/proc/x spun at full CPU).
 */
function mkdirEach(dir: string, mode: number): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d) && path.dirname(d) !== d; d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      fs.mkdirSync(d, { mode });
    } catch (err) {
      // Made meanwhile by another process starting at the same time.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(d).isDirectory()) throw err;
    }
  }
  // There already, but a file: what mkdir -p says of it.
  if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error(`${dir} is not a folder`), { code: 'EEXIST' });
}

function readDkimKey(file: string): string {
  let key: string;
  try {
    key = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`DKIM_PRIVATE_KEY_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`);
  }
  // Parsed now, not at the first send: nodemailer signs nothing with a key it cannot read, and
  // labels an EC signature rsa-sha256, which every receiver rejects. Both must stop the start.
  let parsed: crypto.KeyObject;
  try {
    parsed = crypto.createPrivateKey(key);
  } catch {
    throw new ConfigError(`DKIM_PRIVATE_KEY_FILE: ${file} is not a readable PEM private key`);
  }
  if (parsed.asymmetricKeyType !== 'rsa') {
    throw new ConfigError(`DKIM_PRIVATE_KEY_FILE: ${file} is a ${parsed.asymmetricKeyType ?? 'non-RSA'} key; DKIM here signs with RSA (openssl genrsa)`);
  }
  // RFC 8301: receivers must not take a signature by a key under 1,024 bits, so every message
  // would go out as if unsigned, and DMARC would see no aligned signature.
  const bits = parsed.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 1024) {
    throw new ConfigError(`DKIM_PRIVATE_KEY_FILE: ${file} is a ${bits}-bit key; receivers ignore DKIM keys under 1024 bits (make one with openssl genrsa 2048)`);
  }
  return key;
}

/**
 * Reads config from an env object. Empty strings count as unset.
 * @throws ConfigError naming the first bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv): Readonly<Config> {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`${String(issue.path[0])}: ${issue.message}`);
  }
  const e = parsed.data;
  const dkimParts = [e.DKIM_DOMAIN, e.DKIM_SELECTOR, e.DKIM_PRIVATE_KEY_FILE];
  if (dkimParts.some(Boolean) && !dkimParts.every(Boolean)) {
    const missing = ['DKIM_DOMAIN', 'DKIM_SELECTOR', 'DKIM_PRIVATE_KEY_FILE'].find((_, i) => !dkimParts[i]);
    throw new ConfigError(`${missing}: DKIM needs DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE together`);
  }
  const dataDir = path.resolve(e.DATA_DIR);
  // Its sockets (the embedded database's command socket, a Redis started for it) live in DATA_DIR:
  // a path too long for one would stop the start after the database was made.
  if ((!e.DATABASE_URL || !e.REDIS_URL) && Buffer.byteLength(path.join(dataDir, LONGEST_SOCKET)) > SOCKET_PATH_MAX) {
    throw new ConfigError(`DATA_DIR: ${dataDir} is too long: the sockets Appeal opens in it need a path of at most ${SOCKET_PATH_MAX - LONGEST_SOCKET.length - 1} bytes`);
  }
  return Object.freeze({
    port: e.PORT,
    // The origin alone: scheme, host and port, however the address was written (a trailing `/.`).
    publicUrl: e.PUBLIC_URL ? new URL(e.PUBLIC_URL).origin : `http://localhost:${e.PORT}`,
    dataDir,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    smtpUrl: e.SMTP_URL,
    mailFrom: parseMailbox(e.MAIL_FROM)!,
    orgName: e.ORG_NAME,
    dkim: e.DKIM_DOMAIN
      ? { domainName: e.DKIM_DOMAIN, keySelector: e.DKIM_SELECTOR!, privateKeyFile: e.DKIM_PRIVATE_KEY_FILE!, privateKey: readDkimKey(e.DKIM_PRIVATE_KEY_FILE!) }
      : undefined,
    sessionSecret: e.SESSION_SECRET,
    queuePrefix: e.QUEUE_PREFIX,
    workerConcurrency: e.WORKER_CONCURRENCY,
    rateLimitPerIp: e.RATE_LIMIT_PER_IP,
    trustProxy: e.TRUST_PROXY,
    retentionUnconfirmedDays: e.RETENTION_UNCONFIRMED_DAYS,
    retentionUnsubscribedDays: e.RETENTION_UNSUBSCRIBED_DAYS,
    logLevel: e.LOG_LEVEL,
  });
}

/** A host name or address that only this machine reaches. */
export function isLoopback(host: string): boolean {
  const h = unbracket(host);
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

/**
 * A URL's host as a socket connects to it: `new URL('redis://[::1]').hostname` keeps the IPv6
 * brackets, which ioredis and nodemailer would look up as a name (ENOTFOUND).
 */
export const unbracket = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1');

/** TRUST_PROXY as Express's `trust proxy` setting takes it. */
export function trustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined) return false;
  if (/^\d+$/.test(value)) return Number(value);
  if (value === 'true' || value === 'false') return value === 'true';
  return value;
}

/** Unset, `false` and `0` alike: every request's address is the socket's, a proxy's if one is in front. */
export const trustsNoProxy = (value: string | undefined) => {
  const trust = trustProxy(value);
  return trust === false || trust === 0;
};

/**
 * Settings that start but work against the people they serve, said at start so an operator sees
 * them before the first email does: the process runs either way. `web`: the process serves pages
 * (what it is told of the proxy in front is for those).
 */
export function configWarnings(config: Pick<Config, 'publicUrl' | 'mailFrom' | 'dkim' | 'trustProxy' | 'smtpUrl'>, { web = true } = {}): string[] {
  const warnings: string[] = [];
  if (config.trustProxy === 'true') {
    warnings.push('TRUST_PROXY=true believes every X-Forwarded-For entry, which the client writes itself: anyone escapes the per-IP limits. Set the number of proxies in front (1) or their addresses (loopback)');
  }
  const url = new URL(config.publicUrl);
  // Appeal serves no TLS itself, so a public https address is a proxy's (or a tunnel's), and
  // without trust every visitor is that proxy's one address: the 21st signer in ten minutes,
  // anyone's, is turned away, and anyone can block the console's sign-in for all.
  if (web && trustsNoProxy(config.trustProxy) && url.protocol === 'https:' && !isLoopback(url.hostname)) {
    warnings.push('PUBLIC_URL is https, so a proxy is in front, but TRUST_PROXY trusts no proxy: every visitor counts as the proxy\'s address and all share one per-IP limit. Set TRUST_PROXY to the number of proxies in front (1) or their addresses (loopback)');
  }
  if (url.protocol !== 'https:' && !isLoopback(url.hostname)) {
    warnings.push('PUBLIC_URL is not https: links in emails go out in the clear, mail clients offer no one-click unsubscribe (RFC 8058 needs https), and sign-in cookies are not Secure');
  }
  // The default (letters@localhost) is for the dev outbox and a relay nearby (on this machine, or
  // a container named without dots, as compose's Mailpit): a relay elsewhere passes mail on to
  // the world, which refuses or junks a sender it cannot answer.
  const fromDomain = domainOf(config.mailFrom.address);
  const relay = config.smtpUrl ? new URL(config.smtpUrl).hostname : undefined;
  const nearby = relay !== undefined && (isLoopback(relay) || /^[a-z0-9-]+$/i.test(relay));
  if (relay !== undefined && !nearby && (!fromDomain.includes('.') || PRIVATE_NAME.test(fromDomain) || fromDomain.startsWith('['))) {
    warnings.push(`MAIL_FROM is ${config.mailFrom.address}, an address no one outside this network can write back to, and SMTP_URL sends through a relay elsewhere: relays refuse such a sender, or receivers junk it. Set MAIL_FROM to an address of your organization's domain`);
  }
  if (config.dkim) {
    const from = config.mailFrom.address.split('@').pop()!.toLowerCase();
    const signer = config.dkim.domainName.toLowerCase();
    const aligned = from === signer || from.endsWith(`.${signer}`) || signer.endsWith(`.${from}`);
    if (!aligned) warnings.push(`DKIM_DOMAIN ${signer} is not the domain of MAIL_FROM (${from}): DMARC sees no aligned signature, and strict receivers reject or junk the letters`);
  }
  return warnings;
}
