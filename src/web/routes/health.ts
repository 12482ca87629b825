import { Router } from 'express';
import type { AppContext } from '../../context.ts';
import { resolvesWithin } from '../../deadline.ts';
import { answerOtherMethods } from '../middleware/method-not-allowed.ts';

export function healthRoutes(ctx: AppContext): Router {
  const router = Router();
  // Each answer is of this moment: a cache that kept one would report a process long gone as up.
  router.use(['/healthz', '/readyz'], (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  /** Ready when the database takes writes and Redis answers. */
  router.get('/readyz', async (_req, res) => {
    // A standby, or a primary a failover demoted, answers reads and refuses every signature.
    const writable = ctx.db.query<{ ro: string }>(`SELECT current_setting('transaction_read_only') AS ro`)
      .then((r) => (r.rows[0]?.ro === 'on' ? 'read-only' : 'ok'));
    const [database, redis] = await Promise.all([
      resolvesWithin(writable, 2000).then(async (answered) => (answered ? writable : 'down')),
      resolvesWithin(ctx.redis.client.ping(), 2000).then((answered) => (answered ? 'ok' : 'down')),
    ]);
    const ok = database === 'ok' && redis === 'ok';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'unavailable', database, redis });
  });
  answerOtherMethods(router);
  return router;
}
