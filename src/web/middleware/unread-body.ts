import type { RequestHandler } from 'express';
import { UnsupportedMediaTypeError } from '../../errors.ts';

/**
 * Put after a router's body parsers: a POST whose body none of them took (a multipart form where
 * none is read, text, XML) is refused with 415 and `hint`, what to send instead. Read as no fields,
 * it would be answered as a form with every field missing, or as an expired form, and what was
 * typed would be gone. A POST with no body at all (a button posting nothing) has no type to refuse.
 */
export function refuseUnreadBody(hint: string): RequestHandler {
  return (req, _res, next) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
    if (req.method === 'POST' && req.body === undefined && hasBody) next(new UnsupportedMediaTypeError(hint));
    else next();
  };
}
