import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { encodeWord } from 'nodemailer/lib/mime-funcs';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { isLoopback, makeDataDir, unbracket, type Config } from '../config.ts';
import { domainOf, PRIVATE_NAME } from './address.ts';

export type Message = Mail.Options;

export interface SentInfo {
  messageId: string;
  /** Where the dev outbox wrote the message; undefined for SMTP. */
  file?: string;
}

export interface Mailer {
  readonly kind: 'smtp' | 'outbox';
  readonly outboxDir?: string;
  send(message: Message): Promise<SentInfo>;
  /** Connects to the relay and logs in as a send would, sending nothing; rejects with what failed. The outbox has nothing to check. */
  verify(): Promise<void>;
  close(): void;
}

export interface MailerOptions {
  /**
   * Parallel SMTP connections in the pool. @defaultValue WORKER_CONCURRENCY, one per job slot:
   * with fewer, a slot whose message waits for a connection holds a job and does nothing, and
   * against a real relay, where a message takes tens of milliseconds of network, a worker's rate
   * is its connections divided by that time. (Against `npm run bench`'s sink on loopback the
   * difference is within the noise.)
   */
  maxConnections?: number;
}

/**
 * The name Appeal greets a relay with (EHLO): this machine's when it is a full, public domain
 * name, else MAIL_FROM's domain. nodemailer's own fallback, "[127.0.0.1]" (a container's or a
 * VM's host name has no dot), is a loopback address from a public one, and a name such as
 * `localhost.localdomain` (the default host name on many Linux installs) no better: spam filters
 * hold both against a sender.
 */
export function ehloName(mailFrom: string, hostname = os.hostname()): string {
  const name = hostname.replace(/\.$/, '');
  return name.includes('.') && !PRIVATE_NAME.test(name) && /^[\x21-\x7e]+$/.test(name) ? name : domainOf(mailFrom);
}

function smtpOptions(smtpUrl: string, maxConnections: number, name: string): SMTPPool.Options {
  const u = new URL(smtpUrl);
  const secure = u.protocol === 'smtps:';
  const auth = u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined;
  const loopback = isLoopback(u.hostname);
  return {
    pool: true,
    name,
    host: unbracket(u.hostname),
    port: Number(u.port || (secure ? 465 : 587)),
    secure,
    auth,
    // With a login, STARTTLS is required, not merely taken when offered: a relay that does not
    // offer it (or someone on the path who strips it) would otherwise get the password and every
    // supporter's letter in the clear. A relay on this machine is spared: nothing is on its path.
    requireTLS: !secure && !!auth && !loopback,
    // A relay on this machine is taken with whatever certificate it shows: Debian's Postfix offers
    // STARTTLS with a self-signed "snakeoil" one out of the box, and refusing it would hold every
    // letter for a check that protects nothing on loopback. A remote relay's is verified.
    ...(loopback ? { tls: { rejectUnauthorized: false } } : {}),
    maxConnections,
    maxMessages: Infinity,
    // A connection the relay closes mid-message (as it does after a 421 "too busy") fails the
    // message, which then waits its retry's backoff and counts an attempt. nodemailer's pool would
    // otherwise send it again at once on a new connection, up to five times within a second,
    // outside both.
    maxRequeues: 0,
    ...SMTP_TIMEOUTS,
  };
}

/**
 * nodemailer waits up to 10 minutes on a silent socket by default; a send must end well inside
 * the delivery lease so the claim stays meaningful (LEASE_SECONDS, src/deliveries/send.ts). A relay
 * that scans a message before it answers its end can take tens of seconds, and a reply given up on
 * sends the message again, a copy per attempt: a minute for a reply, not less.
 */
export const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 60_000 } as const;

/**
 * A header line may not pass 998 octets (RFC 5322 2.1.1), and nodemailer folds a header only at
 * its spaces and encodes only one holding non-ASCII text or a quote. A subject whose template
 * runs long values together with no space between them would go out as one line a strict relay
 * refuses (and one that rewraps it breaks the DKIM signature). Such a subject goes as encoded
 * words, which nodemailer keeps and folds between.
 */
export function foldableSubject(message: Message): Message {
  const { subject } = message;
  if (typeof subject !== 'string' || !/\S{78}/.test(subject)) return message;
  return { ...message, subject: encodeWord(subject, 'Q', 52) };
}

/**
 * A text part's line breaks are CRLF in its canonical form (RFC 2046 4.1.1), which nodemailer
 * writes for a quoted-printable part but not for base64, which it picks for text mostly outside
 * Latin script (a letter in Kazakh or Uyghur): it encodes the LF breaks as given, and a strict
 * gateway or archiver joins the lines.
 */
function crlfBreaks(message: Message): Message {
  const crlf = (part: Message['text']) => (typeof part === 'string' ? part.replace(/\r?\n/g, '\r\n') : part);
  return { ...message, text: crlf(message.text), html: crlf(message.html) };
}

/** A message as it goes to the relay or the outbox. */
const asSent = (message: Message) => crlfBreaks(foldableSubject(message));

/**
 * The one transport for the process, chosen from config: pooled SMTP when SMTP_URL is set,
 * otherwise `.eml` files under DATA_DIR/outbox. Every message is DKIM-signed when DKIM is set.
 */
export function createMailer(
  config: Pick<Config, 'smtpUrl' | 'dataDir' | 'dkim' | 'workerConcurrency' | 'mailFrom'>,
  opts: MailerOptions = {},
): Mailer {
  const dkim = config.dkim && {
    domainName: config.dkim.domainName,
    keySelector: config.dkim.keySelector,
    privateKey: config.dkim.privateKey,
  };
  if (config.smtpUrl) {
    const transport = nodemailer.createTransport({ ...smtpOptions(config.smtpUrl, opts.maxConnections ?? config.workerConcurrency, ehloName(config.mailFrom.address)), dkim });
    return {
      kind: 'smtp',
      async send(message) {
        const info = await transport.sendMail(asSent(message));
        return { messageId: info.messageId };
      },
      async verify() {
        await transport.verify();
      },
      close: () => transport.close(),
    };
  }
  const outboxDir = path.join(config.dataDir, 'outbox');
  makeDataDir(outboxDir);
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix', dkim });
  return {
    kind: 'outbox',
    outboxDir,
    async send(message) {
      const info = await transport.sendMail(asSent(message));
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const id = info.messageId.replace(/[^A-Za-z0-9]/g, '').slice(0, 24);
      const file = path.join(outboxDir, `${stamp}-${id}.eml`);
      // Written aside and renamed into place: a process killed mid-write leaves no empty message,
      // and a write that fails (the disk full) leaves no part behind for each attempt.
      try {
        await fsp.writeFile(`${file}.part`, info.message as Buffer, { mode: 0o600 });
        await fsp.rename(`${file}.part`, file);
      } catch (err) {
        await fsp.rm(`${file}.part`, { force: true });
        throw err;
      }
      return { messageId: info.messageId, file };
    },
    verify: async () => {},
    close: () => transport.close(),
  };
}

export type SendFailure = 'retry' | 'permanent' | 'recipient-rejected';

/** Codes nodemailer gives a relay it could not reach, speak TLS with, or log in to. */
const RELAY_DOWN = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS', 'ETLS', 'EAUTH']);

/** The relay's own setup: login, sender, greeting, EHLO, TLS. Never the letter's or its recipient's fault. */
const RELAY_STEPS = new Set(['CONN', 'EHLO', 'HELO', 'STARTTLS', 'MAIL FROM']);

/**
 * Enhanced codes (RFC 3463, 3886, 7505) that refuse the recipient's address itself: bad mailbox,
 * bad system, bad syntax, moved, no mail accepted (null MX), mailbox disabled. Not 5.1.0, 5.1.7
 * or 5.1.8, which Postfix gives at RCPT TO for a refused *sender* (`smtpd_delay_reject`).
 */
const ADDRESS_REFUSED = new Set(['1.1', '1.2', '1.3', '1.6', '1.10', '2.1']);

/** An enhanced status code (RFC 3463) at the head of a reply: `550 5.1.1 …` gives [5, 1, 1]. */
function enhancedStatus(response: unknown): [number, number, number] | undefined {
  const m = typeof response === 'string' ? /^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(response) : null;
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/**
 * Whether a failure is the relay's rather than one message's: it could not be reached, refused us
 * at a step before any recipient, or refused the login. Every letter waits on such a failure
 * until an operator fixes SMTP_URL or the relay, so it is worth a warning, not only a retry.
 */
export function isRelayTrouble(err: unknown): boolean {
  const e = err as { code?: string; command?: string };
  return (e.code !== undefined && RELAY_DOWN.has(e.code)) || (e.command !== undefined && RELAY_STEPS.has(e.command));
}

/**
 * A relay failure in words, as nodemailer gives it: code, command, then the relay's reply (or the
 * error's message), on one line. An OpenSSL error ends in the source file and line that raised it
 * (`:../deps/openssl/…/ssl3_record.c:350:` and a line break), which tell an operator nothing.
 */
export function relayFailureWords(err: unknown): string {
  const e = (err ?? {}) as { code?: string; command?: string; response?: string; message?: string };
  const words = [e.code, e.command, e.response ?? e.message].filter(Boolean).join(' ');
  return words.replace(/:[^\s:]+\.c:\d+:/g, '').replace(/\s+/g, ' ').trim();
}

/**
 * What an operator should look at, given a relay failure as the delivery's last error words it
 * (nodemailer's code first: see describe in src/deliveries/send-failure.ts).
 */
export function relayHint(reply: string): string {
  if (/altnames|does not match certificate/i.test(reply)) {
    return "the relay's TLS certificate is for another name: put a name it lists in SMTP_URL (the relay's own name, not an address or an alias)";
  }
  if (/expired|not yet valid/i.test(reply)) return "the relay's TLS certificate has expired or is not yet valid: renew it on the relay, or check this machine's clock";
  if (/certificate|CERT_|unable to (verify|get)/i.test(reply)) {
    return "the relay's TLS certificate is not trusted: a relay on another machine must show one a known authority signed; for your own CA's or a self-signed one, give its PEM file to Node with NODE_EXTRA_CA_CERTS";
  }
  // The relay answered, in the other TLS mode: the scheme is wrong, not the host or port.
  if (/wrong version number|WRONG_VERSION_NUMBER|packet length too long/i.test(reply)) {
    return 'the relay does not speak TLS from the first byte on this port: use smtp:// (STARTTLS, usually port 587), or smtps:// with the port of its TLS service (usually 465)';
  }
  if (/Greeting never received/i.test(reply)) {
    return 'the relay sent no greeting: if this port expects TLS from the first byte (usually 465), use smtps://; otherwise check the host and port in SMTP_URL, and look in the relay\'s log';
  }
  if (/^ETLS\b/.test(reply)) return 'the relay offers no working STARTTLS, and Appeal sends a password to a relay on another machine only over TLS: use smtps:// (port 465), or a relay that offers STARTTLS';
  if (/^EAUTH\b/.test(reply)) return 'the relay refused the login: check the user and password in SMTP_URL (percent-encoded where they hold @ : / or #)';
  // The start check cannot see this one: a relay that wants a login says so only to MAIL FROM.
  if (/\b530\b.*\bauthenticat/i.test(reply)) return 'the relay wants a login: put its user and password in SMTP_URL (smtp://user:password@host:587, percent-encoded where they hold @ : / or #)';
  // Reached, then turned away or cut off: its host and port are right, and checking them misleads.
  const refused = /^E[A-Z]+ [A-Z ]+ (4\d\d)\b/.exec(reply);
  if (refused) return `the relay answered ${refused[1]}, a temporary refusal (busy, shutting down, or limiting this sender): letters are retried; if it lasts, ask whoever runs the relay`;
  // nodemailer says the same of a port that closes before any greeting (no mail server behind it,
  // a tunnel whose far end is down) and of a relay that hangs up mid-conversation.
  if (/closed unexpectedly|connection was closed|ECONNRESET|EPIPE|socket hang up/i.test(reply)) return 'the connection was closed from the other end, before the relay\'s greeting or during the conversation: letters are retried; check that the host and port in SMTP_URL are the relay\'s (a port with no mail server behind it does this), and if they are, look in its log for why (a limit on connections or messages, a crash)';
  if (/^(ECONNECTION|ESOCKET|EDNS|ETIMEDOUT)\b/.test(reply)) return 'the relay could not be reached: check the host and port in SMTP_URL, and that this machine may connect to it';
  return 'check SMTP_URL and the relay';
}

/** A message Appeal itself will not send (a letter too large): it fails for good, blaming no address. */
export class UnsendableMessage extends Error {
  override name = 'UnsendableMessage';
}

/**
 * Classifies a send error by nodemailer's `responseCode`, `code` and `command`, and the reply's
 * enhanced status code, never by its free text: 4xx and lost connections are worth another try;
 * 5xx is final. A refused login, greeting or sender is the relay's setup, not this message:
 * failing every letter for good on a wrong password or a relay that does not know us yet would
 * lose them all, so those are retried (with backoff, up to the attempt limit) while an operator
 * fixes SMTP_URL or MAIL_FROM.
 *
 * Only a 5xx that is about the address puts it on the suppression list (ADDRESS_REFUSED: no such
 * mailbox or domain, mailbox disabled, …): to RCPT TO, or after the message with such a code; to
 * RCPT TO from a server that gives no enhanced code, 550, 551 or 553. A policy refusal (`5.7.x`: "relay access denied", "sender not
 * allowed") says nothing against the address and fails only this delivery; suppressing on it
 * would, behind a misconfigured relay, strike every official and subscriber for good. A 552 to
 * RCPT TO is the old "too many recipients", which RFC 5321 (4.5.3.1.10) says to treat as 452.
 */
export function classifySendError(err: unknown): SendFailure {
  if (err instanceof UnsendableMessage) return 'permanent';
  const e = err as { responseCode?: number; code?: string; command?: string; response?: string };
  if (e.code === 'EAUTH' || (e.command && RELAY_STEPS.has(e.command))) return 'retry';
  if (typeof e.responseCode === 'number') {
    if (e.responseCode < 500) return 'retry';
    const enhanced = enhancedStatus(e.response);
    // After the message, the reply is to its one recipient (Appeal sends one per message): a relay
    // that takes every address at RCPT TO and asks the mailbox later refuses it here. Only an
    // enhanced code says it is the address: a bare 5xx after DATA may be the content's refusal.
    if (e.command === 'DATA' && enhanced) return ADDRESS_REFUSED.has(`${enhanced[1]}.${enhanced[2]}`) ? 'recipient-rejected' : 'permanent';
    if (e.code !== 'EENVELOPE' || e.command !== 'RCPT TO') return 'permanent';
    if (e.responseCode === 552) return 'retry';
    if (enhanced) return ADDRESS_REFUSED.has(`${enhanced[1]}.${enhanced[2]}`) ? 'recipient-rejected' : 'permanent';
    return [550, 551, 553].includes(e.responseCode) ? 'recipient-rejected' : 'permanent';
  }
  // An address nodemailer refuses to put on the envelope will never go out.
  if (e.code === 'EENVELOPE' || e.code === 'EMESSAGE') return 'permanent';
  return 'retry';
}
