import type { RequestHandler } from 'express';

/** Public embed endpoints: any origin may POST JSON; no cookies are read, so no credentials. */
export const publicCors: RequestHandler = (req, res, next) => {
  // The preflight is answered here, before the API's routes set this on every other answer.
  res.set('Cache-Control', 'no-store');
  res.set('Access-Control-Allow-Origin', '*');
  res.set('Vary', 'Origin');
  // A page embedding the form should be able to say when to try again after a 429.
  res.set('Access-Control-Expose-Headers', 'Retry-After');
  if (req.method === 'OPTIONS') {
    res.set('Access-Control-Allow-Methods', 'POST, OPTIONS');
    // Whatever headers the embedding page's script adds (X-Requested-With, a tracing header):
    // nothing here reads them, and no credentials are ever allowed, so naming them risks nothing.
    res.set('Access-Control-Allow-Headers', req.get('Access-Control-Request-Headers') || 'Content-Type');
    res.append('Vary', 'Access-Control-Request-Headers');
    res.set('Access-Control-Max-Age', '600');
    res.status(204).end();
    return;
  }
  next();
};
