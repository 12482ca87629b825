import type { RequestHandler } from 'express';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AppContext } from '../../context.ts';
import { RateLimitedError } from '../../errors.ts';
import { hashIdentifier } from '../../tokens.ts';

const WINDOW_SECONDS = 600;
/** Posts one address may make per hour across all public forms, whatever the IP. */
export const PER_EMAIL_PER_HOUR = 10;

function limiter(l: RateLimiterRedis, key: (req: Parameters<RequestHandler>[0]) => string | undefined): RequestHandler {
  return async (req, _res, next) => {
    const k = key(req);
    if (!k) return next();
    try {
      await l.consume(k);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw new RateLimitedError(Math.ceil(err.msBeforeNext / 1000));
      throw err;
    }
    next();
  };
}

/**
 * Counters in Redis, keyed by keyed hashes: a Redis dump shows no IP or address.
 * `perIp` honours TRUST_PROXY through req.ip; RATE_LIMIT_PER_IP=0 turns it off.
 */
export function createLimits(ctx: Pick<AppContext, 'config' | 'redis' | 'secret'>) {
  const prefix = `${ctx.config.queuePrefix}:rl`;
  const ipLimiter = new RateLimiterRedis({
    storeClient: ctx.redis.client,
    keyPrefix: `${prefix}:ip`,
    points: Math.max(1, ctx.config.rateLimitPerIp),
    duration: WINDOW_SECONDS,
  });
  const emailLimiter = new RateLimiterRedis({
    storeClient: ctx.redis.client,
    keyPrefix: `${prefix}:email`,
    points: PER_EMAIL_PER_HOUR,
    duration: 3600,
  });
  const perIp: RequestHandler =
    ctx.config.rateLimitPerIp > 0 ? limiter(ipLimiter, (req) => hashIdentifier(ctx.secret, req.ip ?? 'unknown')) : (_req, _res, next) => next();
  const perEmail = limiter(emailLimiter, (req) => {
    const email = (req.body as { email?: unknown } | undefined)?.email;
    return typeof email === 'string' && email.trim() ? hashIdentifier(ctx.secret, email.trim()) : undefined;
  });
  return { perIp, perEmail };
}
