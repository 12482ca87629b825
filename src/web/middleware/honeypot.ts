import type { RequestHandler } from 'express';

/** Bots fill every field; people never see `website`. */
export function honeypotFilled(body: unknown): boolean {
  const value = (body as { website?: unknown } | undefined)?.website;
  return typeof value === 'string' ? value.trim() !== '' : value !== undefined && value !== null && value !== false;
}

/**
 * A filled honeypot gets the answer a real submission would get, so the bot learns nothing, and
 * nothing is stored or sent.
 */
export function honeypot(respond: RequestHandler): RequestHandler {
  return (req, res, next) => (honeypotFilled(req.body) ? respond(req, res, next) : next());
}
