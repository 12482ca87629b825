import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { InvalidEncodingError, MalformedEscapeError, UnsupportedCharsetError } from '../../errors.ts';

// A body that is not UTF-8 is refused (400, nothing stored). The parsers would carry on
// regardless: JSON's decoder puts U+FFFD in place of each bad byte, and a form field whose escapes
// are not UTF-8 (a Latin-1 page's `%E9`) is kept as the escape itself, so a signer's name would
// reach officials as `Ay�gerim` or `Dana%E9Ex`.

type Verify = (req: IncomingMessage, res: ServerResponse, buf: Buffer, encoding: string) => void;

/**
 * For express.json's `verify`: the raw body must be UTF-8, and read as such. `encoding` is the
 * charset the parser will decode with, as it read the Content-Type: a header that hides another
 * charset from a simpler reading (`x=";charset=utf-8"; charset=utf-32be`) is refused here, since
 * UTF-16 and UTF-32 decode a code point that is not one as U+FFFD.
 */
export const utf8Json: Verify = (_req, _res, buf, encoding) => {
  if (encoding !== 'utf-8') throw new UnsupportedCharsetError(encoding);
  if (!isUtf8(buf)) throw new InvalidEncodingError();
};

/**
 * For express.urlencoded's `verify`: the bytes the form's escapes stand for must be UTF-8 (a form
 * posted as ISO-8859-1, which says so in its Content-Type, is decoded as such by the parser).
 */
export const utf8Form: Verify = (_req, _res, buf, encoding) => {
  if (encoding !== 'utf-8') return;
  if (!isUtf8(buf)) throw new InvalidEncodingError();
  // Escapes of bytes under 0x80 (`%40`, every one a Latin form sends) are ASCII: only a body with
  // an escape of a higher byte needs decoding to be checked.
  const text = buf.toString('latin1');
  // A `%` that escapes nothing would be kept as typed (`%ZZ` in a name); a browser sends `%` as `%25`.
  if (/%(?![0-9a-f]{2})/i.test(text)) throw new MalformedEscapeError();
  if (!/%[89a-f][0-9a-f]/i.test(text)) return;
  const bytes = Buffer.from(text.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  if (!isUtf8(bytes)) throw new InvalidEncodingError();
};

/** The charset a Content-Type names, if it names one. */
export const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?/i;

/**
 * UTF-8's common alias (`utf8`) and its ASCII subset (`us-ascii`, `ascii`) named as `utf-8`, the
 * one name the body parsers take for it: a body said to be in them is read, and checked, as UTF-8.
 */
export const utf8CharsetAliases: RequestHandler = (req, _res, next) => {
  const type = req.headers['content-type'];
  const charset = type ? CHARSET.exec(type)?.[1]?.toLowerCase() : undefined;
  if (charset === 'utf8' || charset === 'us-ascii' || charset === 'ascii') req.headers['content-type'] = type!.replace(CHARSET, '; charset=utf-8');
  next();
};
