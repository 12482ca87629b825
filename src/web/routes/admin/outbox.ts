import fs from 'node:fs/promises';
import path from 'node:path';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { NotFoundError } from '../../../errors.ts';
import { links } from '../../../views.ts';

/** Newest first; an outbox is a dev tool, so a page of the latest is enough. */
const LIST_LIMIT = 200;
/** A bigger file is shown cut: the viewer is for reading messages, not attachments. */
const VIEW_BYTES = 512 * 1024;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*\.eml$/;

export interface OutboxEntry {
  file: string;
  size: number;
  at: Date;
}

export interface OutboxHeaders {
  subject: string;
  from: string;
  to: string;
  replyTo: string;
  date: string;
}

const addresses = (a: AddressObject | AddressObject[] | undefined) => [a ?? []].flat().map((x) => x.text).join(', ');

const PARSE = { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true } as const;

/** What the console shows of a parsed message's header: encoded words decoded, addresses as mail clients show them. */
function headersOf(m: ParsedMail): OutboxHeaders {
  return { subject: m.subject ?? '', from: addresses(m.from), to: addresses(m.to), replyTo: addresses(m.replyTo), date: m.date?.toUTCString() ?? '' };
}

/** The newest messages, and how many the outbox holds: the page says when it lists only some. */
export async function listOutbox(dir: string): Promise<{ messages: (OutboxEntry & { subject: string; to: string })[]; total: number }> {
  const all = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => FILE_NAME.test(f));
  const names = all.sort().reverse().slice(0, LIST_LIMIT);
  const messages = await Promise.all(names.map(async (file) => {
    const full = path.join(dir, file);
    const [stat, handle] = await Promise.all([fs.stat(full), fs.open(full)]);
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(8192), 0, 8192, 0);
      // The header block alone: the list needs no body.
      const head = (buffer.subarray(0, bytesRead).toString('utf8').split(/\r?\n\r?\n/, 1)[0] ?? '') + '\r\n\r\n';
      const h = headersOf(await simpleParser(head, PARSE));
      return { file, size: stat.size, at: stat.mtime, subject: h.subject, to: h.to };
    } finally {
      await handle.close();
    }
  }));
  return { messages, total: all.length };
}

export interface OutboxMessage {
  headers: OutboxHeaders;
  /** The text part as a reader sees it: quoted-printable and base64 undone, lines whole. */
  text: string;
  /** Every link in the text part, so a confirmation can be followed from the console. */
  links: string[];
  attachments: string[];
  /** The source, the first 512 KB of it. */
  raw: string;
  cut: boolean;
}

/** One message, decoded. Only a plain file name inside the outbox is read. @throws NotFoundError */
export async function readOutbox(dir: string, file: string): Promise<OutboxMessage> {
  const full = outboxPath(dir, file);
  const handle = await fs.open(full).catch(() => {
    throw new NotFoundError('message');
  });
  try {
    const { size } = await handle.stat();
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(Math.min(size, VIEW_BYTES)), 0, Math.min(size, VIEW_BYTES), 0);
    const raw = buffer.subarray(0, bytesRead).toString('utf8');
    const m = await simpleParser(buffer.subarray(0, bytesRead), PARSE);
    const text = m.text ?? '';
    return {
      headers: headersOf(m),
      text,
      // What the public pages make clickable, the same way (src/views.ts).
      links: [...new Set(links(text).map((l) => l.url))],
      attachments: m.attachments.map((a) => a.filename ?? a.contentType),
      raw,
      cut: size > VIEW_BYTES,
    };
  } finally {
    await handle.close();
  }
}

/** Where a message's file is, for a download of the whole of it. @throws NotFoundError for a name that is not a plain .eml file name */
export function outboxPath(dir: string, file: string): string {
  if (!FILE_NAME.test(file) || path.basename(file) !== file) throw new NotFoundError('message');
  return path.join(dir, file);
}
