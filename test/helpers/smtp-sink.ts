import type { Socket } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server';

export interface SinkReply {
  code: number;
  message?: string;
}

/**
 * What the sink answers at each step; return undefined to accept. Lets a test play a relay that
 * is busy (421), greylisting (450), or refusing an address (550); `onData` may take its time, as a
 * relay that scans a message before it answers.
 */
export interface SinkBehavior {
  onMailFrom?(address: SMTPServerAddress, session: SMTPServerSession): SinkReply | undefined;
  onRcptTo?(address: SMTPServerAddress, session: SMTPServerSession): SinkReply | undefined;
  onData?(session: SMTPServerSession): SinkReply | undefined | Promise<SinkReply | undefined>;
}

export interface SmtpSink {
  port: number;
  /** smtp://127.0.0.1:port — set as SMTP_URL. */
  url: string;
  /** Every message accepted, parsed, in arrival order. */
  messages: ParsedMail[];
  behavior: SinkBehavior;
  /** Resolves when at least `n` messages have arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<ParsedMail[]>;
  /** Destroys every open connection, as a relay that drops the line. */
  dropConnections(): void;
  /** Destroys the one connection a session runs on, e.g. from a hook, as a line lost mid-message. */
  dropConnection(session: SMTPServerSession): void;
  close(): Promise<void>;
}

function reply(r: SinkReply | undefined): Error | null {
  if (!r) return null;
  const err = new Error(r.message ?? `test sink says ${r.code}`) as Error & { responseCode: number };
  err.responseCode = r.code;
  return err;
}

/** An in-process SMTP server on a free port that parses what it accepts with mailparser. */
export async function startSmtpSink(behavior: SinkBehavior = {}): Promise<SmtpSink> {
  const messages: ParsedMail[] = [];
  const waiters: { n: number; resolve: (m: ParsedMail[]) => void }[] = [];
  const sockets = new Set<Socket>();
  const sink: Partial<SmtpSink> = { messages, behavior };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    size: 10 * 1024 * 1024,
    onMailFrom(address, session, cb) {
      cb(reply(sink.behavior!.onMailFrom?.(address, session)));
    },
    onRcptTo(address, session, cb) {
      cb(reply(sink.behavior!.onRcptTo?.(address, session)));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', async () => {
        const refused = reply(await sink.behavior!.onData?.(session));
        if (refused) return cb(refused);
        messages.push(await simpleParser(Buffer.concat(chunks)));
        for (const w of waiters.filter((w) => messages.length >= w.n)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(messages);
        }
        cb();
      });
    },
  });
  server.on('error', () => {});
  const net = (server as unknown as { server: import('node:net').Server }).server;
  net.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (net.address() as import('node:net').AddressInfo).port;
  return Object.assign(sink, {
    port,
    url: `smtp://127.0.0.1:${port}`,
    waitFor(n: number, timeoutMs = 30_000) {
      if (messages.length >= n) return Promise.resolve(messages);
      return new Promise<ParsedMail[]>((resolve, reject) => {
        const w = { n, resolve };
        waiters.push(w);
        setTimeout(() => reject(new Error(`sink got ${messages.length} of ${n} messages in ${timeoutMs} ms`)), timeoutMs).unref();
      });
    },
    dropConnections() {
      for (const s of sockets) s.destroy();
    },
    dropConnection(session: SMTPServerSession) {
      for (const s of sockets) if (s.remotePort === session.remotePort) s.destroy();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  }) as SmtpSink;
}
