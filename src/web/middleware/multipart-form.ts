import { isUtf8 } from 'node:buffer';
import type { Request, RequestHandler } from 'express';
import multer from 'multer';
import { InvalidEncodingError, TooLargeError, UnreadableFormError } from '../../errors.ts';

/**
 * For multer's limits: a form field's name with brackets is refused. Multer reads `cases[1000000000]`
 * as an index into an array of a billion slots, which a route then walks: one post held the
 * process for seconds. No form of Appeal's names its fields so (an urlencoded form's parser takes
 * such a name as it is).
 */
export const FIELD_NAMES_AS_TYPED = { fieldNestingDepth: 0 } as const;

/** Multer's options with `streamHandler`, which multer 2 takes and its types do not have yet. */
export type StreamedMulterOptions = multer.Options & { streamHandler: (req: Request, busboy: NodeJS.WritableStream) => void };

/**
 * The error a multer read ended with, to pass on: multer's own refusals say what was wrong (a
 * file, a field too large); the parser's (a body cut off, no boundary) are plain errors, which
 * would read as the server's fault.
 */
export const formReadError = (err: unknown) => (err && !(err instanceof multer.MulterError) ? new UnreadableFormError(String((err as Error).message)) : err);

/**
 * A public form sent as multipart/form-data (a script's `fetch(url, { body: new FormData(form) })`,
 * a page whose form says `enctype="multipart/form-data"`), read into the same fields an urlencoded
 * one gives. Text fields only: a file part is refused (400). A body over `limitBytes`, or a field
 * over it, is refused with 413, as an urlencoded one is; so is a body that is not UTF-8 (400), which
 * multer would read with U+FFFD in place of each bad byte and a signer's name would reach officials
 * so. Any other request, or one whose body a parser before read, passes untouched.
 */
export function multipartFields(limitBytes: number, fields: number): RequestHandler {
  const bodies = new WeakMap<Request, { bytes: Buffer[]; size: number }>();
  const options: StreamedMulterOptions = {
    storage: multer.memoryStorage(),
    limits: { fieldSize: limitBytes, fieldNameSize: 100, fields, parts: fields, files: 0, ...FIELD_NAMES_AS_TYPED },
    streamHandler: (req, busboy) => {
      const body = { bytes: [] as Buffer[], size: 0 };
      bodies.set(req, body);
      req.on('data', (chunk: Buffer) => {
        body.size += chunk.length;
        if (body.size <= limitBytes) body.bytes.push(chunk);
      });
      req.pipe(busboy);
    },
  };
  const parse = multer(options).none();
  return (req, res, next) => {
    if (req.method !== 'POST' || req.body !== undefined || !req.is('multipart/form-data')) return next();
    if (Number(req.headers['content-length']) > limitBytes) return next(new TooLargeError());
    parse(req, res, (err?: unknown) => {
      if (err) return next(formReadError(err));
      const body = bodies.get(req);
      if (body && body.size > limitBytes) return next(new TooLargeError());
      if (body && !isUtf8(Buffer.concat(body.bytes))) return next(new InvalidEncodingError());
      next();
    });
  };
}
