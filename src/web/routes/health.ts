import { Router } from 'express';
import type { AppContext } from '../../context.ts';
import { answerOtherMethods } from '../middleware/method-not-allowed.ts';

export function healthRoutes(ctx: AppContext): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  /** Ready when the database takes writes and Redis answers. */
  router.get('/readyz', async (_req, res) => {
    const timeout = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000))]);
    // A standby, or a primary a failover demoted, answers reads and refuses every signature.
    const writable = () => ctx.db.query<{ ro: string }>(`SELECT current_setting('transaction_read_only') AS ro`);
    const [database, redis] = await Promise.all([
      timeout(writable()).then((r) => (r.rows[0]?.ro === 'on' ? 'read-only' : 'ok'), () => 'down'),
      timeout(ctx.redis.client.ping()).then(() => 'ok', () => 'down'),
    ]);
    const ok = database === 'ok' && redis === 'ok';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'unavailable', database, redis });
  });
  answerOtherMethods(router);
  return router;
}
