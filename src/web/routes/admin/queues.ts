import { Router, type RequestHandler } from 'express';
import type { AppContext } from '../../../context.ts';
import { resolvesWithin } from '../../../deadline.ts';
import { ForbiddenError } from '../../../errors.ts';
import { fromThisSite } from '../../middleware/csrf.ts';

/**
 * bull-board's own actions (retry, clean, pause) are JSON calls without our CSRF token. The
 * session cookie is SameSite=Lax, so another site's requests arrive without it; this check also
 * turns away any write whose Origin is not this host.
 */
const sameOriginWrites: RequestHandler = (req, _res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD' || fromThisSite(req)) return next();
  throw new ForbiddenError('Queue actions must come from this console.');
};

/**
 * bull-board's UI styles itself with style attributes, which the site-wide CSP forbids; here
 * alone inline styles are allowed. Scripts stay 'self' only (its config is a JSON block).
 */
const boardCsp: RequestHandler = (_req, res, next) => {
  res.set(
    'Content-Security-Policy',
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
      "font-src 'self' data:; form-action 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
  );
  next();
};

/** bull-board's page links its fonts from Google (`<link … fonts.googleapis.com …>`). */
const THIRD_PARTY_FONTS = /<link\b[^>]*\bhref="https:\/\/fonts\.googleapis\.com\/[^>]*>\s*/g;

/**
 * Takes that link out of the page: the CSP would block the request anyway, but the browser would
 * still log the refusal on every visit. The board falls back to the system's sans-serif.
 */
const ownFontsOnly: RequestHandler = (_req, res, next) => {
  const send = res.send.bind(res);
  res.send = (body?: unknown) => send(typeof body === 'string' ? body.replace(THIRD_PARTY_FONTS, '') : body);
  next();
};

/**
 * bull-board decodes its `activeQueue` parameter again after Express has, so a `%` in it (a queue
 * name has none) threw "URI malformed" and answered 500: it is refused here as the mistake it is.
 */
const readableQueueName: RequestHandler = (req, res, next) => {
  const name = req.query.activeQueue;
  if (name === undefined) return next();
  try {
    if (typeof name === 'string') decodeURIComponent(name);
    else throw new URIError('not one value');
  } catch {
    res.status(400).json({ error: { code: 'bad_request', message: 'activeQueue must be the name of one queue.' } });
    return;
  }
  next();
};

/** How long the board's data calls wait for Redis to answer a ping before saying it is away. */
const REDIS_WAIT_MS = 2000;

/**
 * The board's data calls (`/api/…`) with Redis away would wait for it to come back, and the page
 * would spin without a word: they are answered 503, saying so, once a ping has waited REDIS_WAIT_MS.
 */
function whileRedisAnswers(ctx: AppContext): RequestHandler {
  return (req, res, next) => {
    if (!req.path.startsWith('/api/')) return next();
    void resolvesWithin(ctx.redis.client.ping(), REDIS_WAIT_MS).then((answers) => {
      if (answers) return next();
      res.status(503).set('Retry-After', '30').json({
        error: { code: 'unavailable', message: 'Redis is not answering, so the queues cannot be shown. Signatures and letters are kept in the database and go out once it is back.' },
      });
    });
  };
}

const SEND_RETRIES = 'Failed emails are retried from the console (Failed, or a campaign\'s Letters page), not here: a retry here would find its email marked failed and send nothing.';

/**
 * The queues in bull-board at /admin/queues; the caller mounts it behind the admin check.
 * bull-board is loaded at the first visit, not at start: few open it, and every process start
 * would pay for its modules.
 */
export function queuesBoard(ctx: AppContext): Router {
  let board: Promise<RequestHandler> | undefined;
  const load = async (): Promise<RequestHandler> => {
    const [{ createBullBoard }, { BullMQAdapter }, { ExpressAdapter }] = await Promise.all([
      import('@bull-board/api'),
      import('@bull-board/api/bullMQAdapter'),
      import('@bull-board/express'),
    ]);
    const adapter = new ExpressAdapter();
    adapter.setBasePath('/admin/queues');
    createBullBoard({
      // A send job's retry here finds its row failed and sends nothing: failed emails are retried
      // from the console's Failed page, which moves the row back first.
      queues: [
        new BullMQAdapter(ctx.queues.send, { allowRetries: false, description: SEND_RETRIES }),
        ...[ctx.queues.maintenance, ctx.queues.fanout].map((q) => new BullMQAdapter(q)),
      ],
      serverAdapter: adapter,
      // The board's own pages link only within it: one back to the console.
      options: { uiConfig: { boardTitle: `${ctx.config.orgName} queues`, miscLinks: [{ text: 'Back to the console', url: '/admin' }] } },
    });
    return adapter.getRouter() as RequestHandler;
  };
  const router = Router();
  // The board hides its retry buttons for the send queue; its API would still answer 200 and do nothing.
  router.put(['/api/queues/send/retry/:status', '/api/queues/send/:jobId/retry'], (_req, res) => {
    res.status(409).json({ error: SEND_RETRIES });
  });
  router.use(sameOriginWrites, boardCsp, ownFontsOnly, readableQueueName, whileRedisAnswers(ctx), (req, res, next) => {
    board ??= load().catch((err: unknown) => {
      board = undefined; // the next visit tries again
      throw err;
    });
    board.then((handle) => handle(req, res, next), next);
  });
  return router;
}
