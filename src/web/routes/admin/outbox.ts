import fs from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError } from '../../../errors.ts';

/** Newest first; an outbox is a dev tool, so a page of the latest is enough. */
const LIST_LIMIT = 200;
/** A bigger file is shown cut: the viewer is for reading messages, not attachments. */
const VIEW_BYTES = 512 * 1024;
const FILE_NAME = /^[A-Za-z0-9._-]+\.eml$/;

export interface OutboxEntry {
  file: string;
  size: number;
  at: Date;
}

/** RFC 2047 encoded words (`=?UTF-8?Q?…?=`) as text, for the list's subject and addresses. */
function decodeWords(value: string): string {
  return value.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=\s*/g, (_m, charset: string, enc: string, text: string) => {
    const bytes = enc.toUpperCase() === 'B'
      ? Buffer.from(text, 'base64')
      : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    try {
      return new TextDecoder(charset).decode(bytes);
    } catch {
      return bytes.toString('latin1');
    }
  });
}

/** Header fields of a message: unfolded, decoded, first occurrence. */
export function headersOf(raw: string): Record<string, string> {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const out: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).toLowerCase()] ??= decodeWords(line.slice(i + 1).trim());
  }
  return out;
}

export async function listOutbox(dir: string): Promise<(OutboxEntry & { subject: string; to: string })[]> {
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => FILE_NAME.test(f)).sort().reverse().slice(0, LIST_LIMIT);
  return Promise.all(names.map(async (file) => {
    const full = path.join(dir, file);
    const [stat, handle] = await Promise.all([fs.stat(full), fs.open(full)]);
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(8192), 0, 8192, 0);
      const h = headersOf(buffer.subarray(0, bytesRead).toString('utf8'));
      return { file, size: stat.size, at: stat.mtime, subject: h.subject ?? '', to: h.to ?? '' };
    } finally {
      await handle.close();
    }
  }));
}

/** One message's source. Only a plain file name inside the outbox is read. @throws NotFoundError */
export async function readOutbox(dir: string, file: string): Promise<{ raw: string; cut: boolean; headers: Record<string, string> }> {
  if (!FILE_NAME.test(file) || path.basename(file) !== file) throw new NotFoundError('message');
  const handle = await fs.open(path.join(dir, file)).catch(() => {
    throw new NotFoundError('message');
  });
  try {
    const { size } = await handle.stat();
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(Math.min(size, VIEW_BYTES)), 0, Math.min(size, VIEW_BYTES), 0);
    const raw = buffer.subarray(0, bytesRead).toString('utf8');
    return { raw, cut: size > VIEW_BYTES, headers: headersOf(raw) };
  } finally {
    await handle.close();
  }
}
