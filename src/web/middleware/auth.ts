import type { RequestHandler } from 'express';
import type { Db } from '../../db/index.ts';
import { UnauthorizedError } from '../../errors.ts';
import { authenticateApiToken, type ApiTokenUsed, type Organizer } from '../../organizers/service.ts';

declare module 'express-serve-static-core' {
  interface Locals {
    organizer?: Organizer;
    /** Set for a request made with an API token, not from the console. */
    apiToken?: ApiTokenUsed;
  }
}

/** `Authorization: Bearer <token>`; the token's hash is looked up. */
export function requireApiToken(db: Db): RequestHandler {
  return async (req, res, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    if (!match) throw new UnauthorizedError('Send an API token as "Authorization: Bearer <token>".');
    const found = await authenticateApiToken(db, match[1]!);
    if (!found) throw new UnauthorizedError('The API token is not valid.');
    res.locals.organizer = found.organizer;
    res.locals.apiToken = found.token;
    next();
  };
}
