import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';
import { dkimVerify } from 'mailauth/lib/dkim/verify';
import { classifySendError, createMailer, ehloName, isRelayTrouble, relayFailureWords, relayHint } from '../../../src/mail/transport.ts';
import { loadConfig } from '../../../src/config.ts';
import { startSmtpSink, type SinkBehavior, type SmtpSink } from '../../helpers/smtp-sink.ts';

const MAIL_FROM = { name: 'Appeal', address: 'letters@appeal.test' };
const message = { from: 'Appeal <letters@appeal.test>', to: 'judge@court.example', subject: 'About Aigerim', text: 'Free her.\n' };

describe('classifying what a real SMTP server answers', () => {
  let sink: SmtpSink;
  let dataDir: string;
  beforeAll(async () => {
    sink = await startSmtpSink();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-transport-'));
  });
  afterAll(async () => {
    await sink?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** The error nodemailer raises when the sink behaves like this, or undefined when it sent. */
  async function sendWith(behavior: SinkBehavior, smtpUrl = sink.url): Promise<unknown> {
    sink.behavior = behavior;
    const mailer = createMailer({ smtpUrl, dataDir, dkim: undefined, workerConcurrency: 10, mailFrom: MAIL_FROM });
    try {
      await mailer.send(message);
      return undefined;
    } catch (err) {
      return err;
    } finally {
      mailer.close();
      sink.behavior = {};
    }
  }

  // A relay "on another machine" is this one reached by a non-loopback address; without one, skip.
  const address = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

  it('sends through SMTP_URL and reports the Message-ID', async () => {
    expect(await sendWith({})).toBeUndefined();
    expect(sink.messages.at(-1)!.subject).toBe('About Aigerim');
  });

  it('greets the relay with a domain name, never "[127.0.0.1]"', async () => {
    const greeted: string[] = [];
    expect(await sendWith({ onMailFrom: (_address, session) => void greeted.push(session.hostNameAppearsAs) })).toBeUndefined();
    expect(greeted).toEqual([ehloName(MAIL_FROM.address)]);
    // nodemailer's own fallback on a host name without a dot (this VM's, a container's).
    expect(greeted[0]).not.toMatch(/^\[/);
    expect(ehloName('letters@appeal.example', 'vm')).toBe('appeal.example');
    expect(ehloName('letters@appeal.example', 'mail.appeal.example')).toBe('mail.appeal.example');
    // Many Linux installs' default host name, and other names only a local network knows.
    for (const local of ['localhost.localdomain', 'localhost.', 'box.local', 'mail.lan', 'vm.internal', 'nas.home.arpa']) {
      expect(ehloName('letters@appeal.example', local), local).toBe('appeal.example');
    }
  });

  it('reaches a relay named by an IPv6 address, brackets and all', async () => {
    const received: string[] = [];
    const relay = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, onData(stream, _session, cb) {
      stream.on('data', (c: Buffer) => received.push(c.toString()));
      stream.on('end', () => cb());
    } });
    await new Promise<void>((resolve) => relay.listen(0, '::1', resolve));
    try {
      const { port } = (relay as unknown as { server: net.Server }).server.address() as net.AddressInfo;
      expect(await sendWith({}, `smtp://[::1]:${port}`)).toBeUndefined();
      expect(received.join('')).toContain('Subject: About Aigerim');
    } finally {
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });

  it('opens one pooled connection per job slot (WORKER_CONCURRENCY), no more', async () => {
    const sessions = new Set<string>();
    sink.behavior = { onMailFrom: (_address, session) => void sessions.add(session.id) };
    const mailer = createMailer({ smtpUrl: sink.url, dataDir, dkim: undefined, workerConcurrency: 4, mailFrom: MAIL_FROM });
    try {
      await Promise.all(Array.from({ length: 12 }, (_, i) => mailer.send({ ...message, subject: `Letter ${i}` })));
    } finally {
      mailer.close();
      sink.behavior = {};
    }
    expect(sessions.size).toBe(4);
  });

  it('retries a 4xx at any step', async () => {
    expect(classifySendError(await sendWith({ onMailFrom: () => ({ code: 451 }) }))).toBe('retry');
    expect(classifySendError(await sendWith({ onRcptTo: () => ({ code: 450 }) }))).toBe('retry');
    expect(classifySendError(await sendWith({ onData: () => ({ code: 421 }) }))).toBe('retry');
  });

  it('blames the recipient for a 5xx about the address, at RCPT TO or after the message, and nobody for a refused content', async () => {
    expect(classifySendError(await sendWith({ onRcptTo: () => ({ code: 550 }) }))).toBe('recipient-rejected');
    expect(classifySendError(await sendWith({ onRcptTo: () => ({ code: 550, message: '5.1.1 <x>: Recipient address rejected: User unknown' }) }))).toBe('recipient-rejected');
    expect(classifySendError(await sendWith({ onRcptTo: () => ({ code: 554, message: '5.2.1 Mailbox disabled' }) }))).toBe('recipient-rejected');
    expect(classifySendError(await sendWith({ onData: () => ({ code: 554 }) }))).toBe('permanent');
    // A relay that takes every address at RCPT TO and asks the mailbox after the message.
    expect(classifySendError(await sendWith({ onData: () => ({ code: 550, message: '5.1.1 <judge@court.example>: user unknown' }) }))).toBe('recipient-rejected');
    // After the message, a refusal of the content (or one with no enhanced code) blames nobody's address.
    expect(classifySendError(await sendWith({ onData: () => ({ code: 550, message: '5.7.1 Message rejected as spam' }) }))).toBe('permanent');
    expect(classifySendError(await sendWith({ onData: () => ({ code: 550, message: 'Message rejected' }) }))).toBe('permanent');
  });

  it('fails a policy refusal at RCPT TO without blaming the address: a relay that will not relay for us refuses every recipient', async () => {
    const relayDenied = await sendWith({ onRcptTo: () => ({ code: 554, message: '5.7.1 <judge@court.example>: Relay access denied' }) });
    expect(classifySendError(relayDenied)).toBe('permanent');
    expect(classifySendError(await sendWith({ onRcptTo: () => ({ code: 550, message: '5.7.1 Sender not allowed' }) }))).toBe('permanent');
    // Postfix refuses a bad sender at RCPT TO (smtpd_delay_reject): our MAIL_FROM, not the address.
    expect(classifySendError(await sendWith({ onRcptTo: () => ({ code: 550, message: '5.1.0 <letters@appeal.test>: Sender address rejected: User unknown' }) }))).toBe('permanent');
    expect(classifySendError(await sendWith({ onRcptTo: () => ({ code: 554, message: '5.1.8 <letters@appeal.test>: Sender address rejected: Domain not found' }) }))).toBe('permanent');
    // No enhanced code: only the codes that mean "no such mailbox" blame it.
    expect(classifySendError(await sendWith({ onRcptTo: () => ({ code: 554, message: 'Transaction failed' }) }))).toBe('permanent');
  });

  it('fails for good a 5xx to RCPT TO (but 552, below) or at the end of the data, and retries any 4xx there', async () => {
    for (const code of [500, 501, 521, 541, 549]) {
      expect(classifySendError(await sendWith({ onRcptTo: () => ({ code }) })), `${code} to RCPT TO`).toBe('permanent');
      expect(classifySendError(await sendWith({ onData: () => ({ code }) })), `${code} after DATA`).toBe('permanent');
    }
    for (const code of [421, 450, 451, 452]) {
      expect(classifySendError(await sendWith({ onRcptTo: () => ({ code }) })), `${code} to RCPT TO`).toBe('retry');
      expect(classifySendError(await sendWith({ onData: () => ({ code }) })), `${code} after DATA`).toBe('retry');
    }
  });

  it('retries a 552 to RCPT TO, which RFC 5321 says to take as 452', async () => {
    expect(classifySendError(await sendWith({ onRcptTo: () => ({ code: 552, message: '5.5.3 Too many recipients' }) }))).toBe('retry');
  });

  it('retries a relay that refuses the connection at its greeting', async () => {
    const refusing = net.createServer((socket) => socket.end('554 Service not available: client host rejected\r\n'));
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    try {
      const err = await sendWith({}, `smtp://127.0.0.1:${(refusing.address() as net.AddressInfo).port}`);
      expect(err).toMatchObject({ responseCode: 554, command: 'CONN' });
      expect(classifySendError(err)).toBe('retry');
    } finally {
      await new Promise((r) => refusing.close(r));
    }
  });

  it('retries a refused sender or login: that is the relay setup, which an operator fixes, not the letter', async () => {
    expect(classifySendError(await sendWith({ onMailFrom: () => ({ code: 550 }) }))).toBe('retry');
    const refusedLogin = Object.assign(new Error('Invalid login: 535 Authentication failed'), { code: 'EAUTH', responseCode: 535 });
    expect(classifySendError(refusedLogin)).toBe('retry');
  });

  it.skipIf(!address)('with a login, insists on STARTTLS from a relay on another machine: no password or letter goes in the clear', async () => {
    let loggedIn = false;
    const plain = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      authOptional: true,
      logger: false,
      onAuth: (_auth, _session, cb) => {
        loggedIn = true;
        cb(null, { user: 'x' });
      },
    });
    await new Promise<void>((r) => plain.listen(0, '0.0.0.0', r));
    const port = (plain.server.address() as net.AddressInfo).port;
    try {
      const err = await sendWith({}, `smtp://relayuser:s3cret@${address}:${port}`);
      expect(err).toBeInstanceOf(Error);
      // The code the delivery's last error explains as ours, not the relay's (describe in send-failure.ts).
      expect((err as { code?: string }).code).toBe('ETLS');
      expect(loggedIn).toBe(false);
      // The relay's setup, fixed by an operator: the letters wait, they are not failed.
      expect(classifySendError(err)).toBe('retry');
      // Without a login, or with one to a relay on this machine, it is used as before.
      expect(await sendWith({}, `smtp://${address}:${port}`)).toBeUndefined();
      expect(await sendWith({}, `smtp://relayuser:s3cret@127.0.0.1:${port}`)).toBeUndefined();
      expect(loggedIn).toBe(true);
    } finally {
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });

  /** An SMTP server with STARTTLS on smtp-server's own self-signed certificate (as Debian's Postfix "snakeoil" one is), on every interface. */
  async function selfSignedRelay() {
    const secured: boolean[] = [];
    const server = new SMTPServer({
      authOptional: true,
      logger: false,
      onData: (stream, session, cb) => {
        secured.push(session.secure);
        stream.resume().on('end', () => cb());
      },
    });
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    return { secured, port: (server.server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  it('takes a relay on this machine whatever certificate its STARTTLS shows', async () => {
    const relay = await selfSignedRelay();
    try {
      expect(await sendWith({}, `smtp://127.0.0.1:${relay.port}`)).toBeUndefined();
      expect(relay.secured).toEqual([true]);
    } finally {
      await relay.close();
    }
  });

  it.skipIf(!address)('checks the certificate of a relay on another machine', async () => {
    const relay = await selfSignedRelay();
    try {
      const err = await sendWith({}, `smtp://${address}:${relay.port}`);
      expect(String(err)).toMatch(/certificate/);
      // smtp-server's own certificate is self-signed and out of date: Node names the date first.
      expect(relayHint(relayFailureWords(err))).toMatch(/^the relay's TLS certificate has expired or is not yet valid/);
      expect(classifySendError(err)).toBe('retry');
      expect(isRelayTrouble(err)).toBe(true);
      expect(relay.secured).toEqual([]);
    } finally {
      await relay.close();
    }
  });

  it("words a relay failure on one line, without OpenSSL's source file and line", () => {
    const err = Object.assign(new Error('800CC806E37F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n'), { code: 'ESOCKET', command: 'CONN' });
    expect(relayFailureWords(err)).toBe('ESOCKET CONN 800CC806E37F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number');
    expect(relayHint(relayFailureWords(err))).toMatch(/^the relay does not speak TLS from the first byte/);
    expect(relayFailureWords({ code: 'EENVELOPE', command: 'RCPT TO', response: '550 5.1.1 <x@y>:\r\n no such user' })).toBe('EENVELOPE RCPT TO 550 5.1.1 <x@y>: no such user');
  });

  it('checks the relay and its login without sending, and says what to look at when it fails', async () => {
    const relay = new SMTPServer({
      authOptional: false,
      allowInsecureAuth: true,
      logger: false,
      onAuth: (auth, _session, cb) => (auth.password === 'right' ? cb(null, { user: auth.username }) : cb(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }))),
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const port = (relay.server.address() as net.AddressInfo).port;
    const verified = async (smtpUrl: string) => {
      const mailer = createMailer({ smtpUrl, dataDir, dkim: undefined, workerConcurrency: 1, mailFrom: MAIL_FROM });
      try {
        await mailer.verify();
        return 'ok';
      } catch (err) {
        return relayHint(relayFailureWords(err));
      } finally {
        mailer.close();
      }
    };
    try {
      expect(await verified(`smtp://ops:right@127.0.0.1:${port}`)).toBe('ok');
      expect(await verified(`smtp://ops:wrong@127.0.0.1:${port}`)).toMatch(/^the relay refused the login: check the user and password in SMTP_URL/);
      // No login at all passes the check (nodemailer logs in only when given a user); the first
      // message is refused at MAIL FROM, and the hint says what is missing.
      expect(await verified(`smtp://127.0.0.1:${port}`)).toBe('ok');
      const anonymous = createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, dataDir, dkim: undefined, workerConcurrency: 1, mailFrom: MAIL_FROM });
      const refused = await anonymous.send(message).then(() => undefined, (err: unknown) => err);
      anonymous.close();
      expect(isRelayTrouble(refused)).toBe(true);
      expect(relayHint(relayFailureWords(refused))).toMatch(/^the relay wants a login: put its user and password in SMTP_URL/);
      // smtps:// to a port that takes STARTTLS: reached, in the other TLS mode.
      expect(await verified(`smtps://ops:right@127.0.0.1:${port}`)).toMatch(/^the relay does not speak TLS from the first byte on this port: use smtp:\/\//);
      await new Promise<void>((r) => relay.close(() => r()));
      expect(await verified(`smtp://ops:right@127.0.0.1:${port}`)).toMatch(/^the relay could not be reached: check the host and port/);
    } finally {
      await new Promise<void>((r) => relay.close(() => r()));
    }
    const outbox = createMailer({ smtpUrl: undefined, dataDir, dkim: undefined, workerConcurrency: 1, mailFrom: MAIL_FROM });
    await expect(outbox.verify()).resolves.toBeUndefined();
  });

  it('tells the kinds of certificate trouble apart, and a relay without STARTTLS', () => {
    expect(relayHint('ESOCKET CONN certificate has expired')).toMatch(/^the relay's TLS certificate has expired/);
    expect(relayHint("ESOCKET CONN Hostname/IP does not match certificate's altnames: IP: 192.0.2.2 is not in the cert's list:")).toMatch(/for another name/);
    expect(relayHint('ESOCKET CONN unable to verify the first certificate')).toMatch(/NODE_EXTRA_CA_CERTS$/);
    expect(relayHint('ETLS STARTTLS 500 Error: command not recognized')).toMatch(/^the relay offers no working STARTTLS/);
    expect(relayHint('EDNS CONN getaddrinfo ENOTFOUND relay.example')).toMatch(/^the relay could not be reached/);
    expect(relayHint('EENVELOPE')).toBe('check SMTP_URL and the relay');
    // Reached, then turned away or cut off: not a host or port to check.
    expect(relayHint('ECONNECTION CONN 421 4.3.2 Service shutting down, mailbox [recipient] unavailable')).toMatch(/^the relay answered 421, a temporary refusal/);
    expect(relayHint('ECONNECTION CONN Connection closed unexpectedly')).toMatch(/^the connection was closed from the other end, before the relay's greeting or during the conversation: .*check that the host and port in SMTP_URL are the relay's/);
    expect(relayHint('ECONNECTION Reached maximum number of retries after connection was closed')).toMatch(/^the connection was closed from the other end/);
    expect(relayHint('ESOCKET CONN connect ECONNREFUSED 127.0.0.1:2525')).toMatch(/^the relay could not be reached/);
    expect(relayHint('ETIMEDOUT CONN Connection timeout')).toMatch(/^the relay could not be reached/);
    // smtp:// to a port that expects TLS at once: the relay waits for a TLS hello, we for its greeting.
    expect(relayHint('ETIMEDOUT CONN Greeting never received')).toMatch(/^the relay sent no greeting: if this port expects TLS from the first byte \(usually 465\), use smtps:\/\//);
  });

  it('retries when nothing answers', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await sendWith({}, `smtp://127.0.0.1:${port}`);
    expect(classifySendError(err)).toBe('retry');
    // Every letter waits on that, so the worker warns of it; a busy mailbox is one letter's matter.
    expect(isRelayTrouble(err)).toBe(true);
    expect(isRelayTrouble(await sendWith({ onRcptTo: () => ({ code: 450 }) }))).toBe(false);
    expect(isRelayTrouble(await sendWith({ onMailFrom: () => ({ code: 550 }) }))).toBe(true);
  });

  it('fails for good a message nodemailer cannot address', () => {
    const err = Object.assign(new Error('No recipients defined'), { code: 'EENVELOPE' });
    expect(classifySendError(err)).toBe('permanent');
  });
});

describe('DKIM', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-dkim-'));
  const keyFile = (name: string, pem: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, pem);
    return file;
  };
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  /** The key is read and checked with the rest of the config, before anything is opened. */
  const dkim = (privateKeyFile: string) => loadConfig({ DATA_DIR: dir, DKIM_DOMAIN: 'appeal.test', DKIM_SELECTOR: 's2026', DKIM_PRIVATE_KEY_FILE: privateKeyFile }).dkim;
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('signs every message with the RSA key, naming the domain and selector', async () => {
    const mailer = createMailer({ smtpUrl: undefined, dataDir: dir, dkim: dkim(keyFile('rsa.pem', rsa)), workerConcurrency: 1, mailFrom: MAIL_FROM });
    const info = await mailer.send(message);
    mailer.close();
    const eml = fs.readFileSync(info.file!, 'utf8');
    expect(eml).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=appeal\.test;[^]*?s=s2026;/m);
  });

  it('signs what goes out through SMTP_URL too, with a signature the public key verifies', async () => {
    const raw: Buffer[] = [];
    const relay = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        raw.push(Buffer.concat(chunks));
        cb();
      });
    } });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const port = (relay.server.address() as net.AddressInfo).port;
    const key = dkim(keyFile('rsa-smtp.pem', rsa))!;
    const mailer = createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, dataDir: dir, dkim: key, workerConcurrency: 1, mailFrom: MAIL_FROM });
    try {
      await mailer.send({ ...message, text: 'Free her.\n  Trailing space  \n\n\n' });
      // Mostly outside Latin script, the parts go as base64, encoded from their canonical form.
      await mailer.send({ ...message, text: 'Құрметті судья!\nАйгерімді босатыңыз.\r\nРақмет.\n', html: '<div>Құрметті судья!</div>\n<div>Айгерімді босатыңыз.</div>\n' });
    } finally {
      mailer.close();
      await new Promise<void>((r) => relay.close(() => r()));
    }
    expect(raw).toHaveLength(2);
    const received = await simpleParser(raw[0]!);
    const signature = received.headerLines.find((l) => l.key === 'dkim-signature')?.line ?? '';
    expect(signature).toMatch(/(^|;)\s*d=appeal\.test;/);
    expect(signature).toMatch(/(^|;)\s*s=s2026;/);
    // Checked as a receiving server does, with the key its DNS record would publish.
    const published = crypto.createPublicKey(key.privateKey).export({ type: 'spki', format: 'der' }).toString('base64');
    const verify = async (eml: string) => (await dkimVerify(Buffer.from(eml), {
      resolver: async (name: string, type: string) => {
        if (name !== 's2026._domainkey.appeal.test' || type !== 'TXT') throw Object.assign(new Error(`no ${type} ${name}`), { code: 'ENOTFOUND' });
        return [[`v=DKIM1; k=rsa; p=${published}`]];
      },
    })).results.map((r) => r.status.result);
    const eml = raw[0]!.toString('utf8');
    expect(await verify(eml)).toEqual(['pass']);
    // A body or a subject changed on the way fails it.
    expect(await verify(eml.replace('Free her.', 'Free him.'))).not.toEqual(['pass']);
    expect(await verify(eml.replace('Subject: About Aigerim', 'Subject: About Aigerym'))).not.toEqual(['pass']);

    // Line breaks are CRLF inside the base64 parts too (RFC 2046 4.1.1), and the signature holds.
    const kazakh = raw[1]!.toString('utf8');
    const parts = [...kazakh.matchAll(/Content-Type: text\/(plain|html)[^]*?Content-Transfer-Encoding: base64\r\n\r\n([A-Za-z0-9+/=\r\n]+)/g)];
    expect(parts.map((p) => p[1])).toEqual(['plain', 'html']);
    for (const [, , body] of parts) {
      const decoded = Buffer.from(body!.replace(/\r\n/g, ''), 'base64').toString('utf8');
      expect(decoded).toMatch(/судья!.*\r\n/);
      expect(decoded.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    }
    expect(await verify(kazakh)).toEqual(['pass']);
  });

  it('folds a subject of long values run together: no header line over 998 octets, signed and read back as written', async () => {
    // A template of ten names with no space between them, each 120 characters long.
    const subject = `${'N'.repeat(120)}-`.repeat(10);
    const mailer = createMailer({ smtpUrl: undefined, dataDir: dir, dkim: dkim(keyFile('rsa-long.pem', rsa)), workerConcurrency: 1, mailFrom: MAIL_FROM });
    const info = await mailer.send({ ...message, subject });
    const short = await mailer.send({ ...message, subject: 'About Aigerim, held in Almaty since 2025' });
    mailer.close();
    const eml = fs.readFileSync(info.file!, 'utf8');
    const head = eml.slice(0, eml.indexOf('\n\n'));
    expect(Math.max(...head.split('\n').map((l) => Buffer.byteLength(l)))).toBeLessThanOrEqual(998);
    expect((await simpleParser(eml)).subject).toBe(subject);
    expect(eml).toMatch(/^DKIM-Signature: [^]*?h=[^;]*Subject/im);
    // A subject that folds at its spaces goes as it is, unencoded.
    expect(fs.readFileSync(short.file!, 'utf8')).toContain('Subject: About Aigerim, held in Almaty since 2025');
  });

  it('stops the start on a key that is missing, cut short, not RSA or too short for receivers, naming DKIM_PRIVATE_KEY_FILE', () => {
    const cut = keyFile('cut.pem', rsa.slice(0, 200) + '\n-----END RSA PRIVATE KEY-----\n');
    const ec = keyFile('ec.pem', crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString());
    const short = keyFile('short.pem', crypto.generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
    for (const [file, said] of [
      [cut, /not a readable PEM private key/], [ec, /is a ec key; DKIM here signs with RSA/], [path.join(dir, 'none.pem'), /cannot read .* \(ENOENT\)/],
      [short, /is a 512-bit key; receivers ignore DKIM keys under 1024 bits/],
    ] as const) {
      expect(() => dkim(file)).toThrow(said);
      expect(() => dkim(file)).toThrow(/^DKIM_PRIVATE_KEY_FILE: /);
    }
  });
});

describe('the dev outbox', () => {
  it('writes each message as an .eml file under DATA_DIR/outbox', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-outbox-'));
    try {
      const mailer = createMailer({ smtpUrl: undefined, dataDir, dkim: undefined, workerConcurrency: 10, mailFrom: MAIL_FROM });
      expect(mailer.kind).toBe('outbox');
      const info = await mailer.send(message);
      mailer.close();
      expect(info.file).toBe(path.join(dataDir, 'outbox', path.basename(info.file!)));
      expect(info.file).toMatch(/\.eml$/);
      const eml = fs.readFileSync(info.file!, 'utf8');
      expect(eml).toContain('Subject: About Aigerim');
      expect(eml).toContain(`Message-ID: ${info.messageId}`);
      expect(fs.statSync(info.file!).mode & 0o077).toBe(0);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('leaves no part of a message behind when writing it fails, as on a full disk', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-outbox-'));
    const full = vi.spyOn(fs.promises, 'rename').mockRejectedValue(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
    try {
      const mailer = createMailer({ smtpUrl: undefined, dataDir, dkim: undefined, workerConcurrency: 10, mailFrom: MAIL_FROM });
      await expect(mailer.send(message)).rejects.toMatchObject({ code: 'ENOSPC' });
      mailer.close();
      expect(full).toHaveBeenCalled();
      expect(fs.readdirSync(path.join(dataDir, 'outbox'))).toEqual([]);
    } finally {
      full.mockRestore();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
