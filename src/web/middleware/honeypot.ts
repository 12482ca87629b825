import type { RequestHandler } from 'express';

/**
 * Bots fill every field; people never see `website`. A filled honeypot gets the answer a real
 * submission would get, so the bot learns nothing, and nothing is stored or sent.
 */
export function honeypot(respond: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const value = (req.body as { website?: unknown } | undefined)?.website;
    if (typeof value === 'string' ? value.trim() !== '' : value !== undefined && value !== null && value !== false) {
      return respond(req, res, next);
    }
    next();
  };
}
