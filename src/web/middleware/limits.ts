import type { RequestHandler } from 'express';
import ipaddr from 'ipaddr.js';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AppContext } from '../../context.ts';
import { RateLimitedError } from '../../errors.ts';
import { hashIdentifier } from '../../tokens.ts';

const WINDOW_SECONDS = 600;
/** Emails public posts may send to, or in the name of, one address in an hour, whatever the IP. */
export const PER_EMAIL_PER_HOUR = 10;

/**
 * Counters in Redis, keyed by keyed hashes: a Redis dump shows no IP or address.
 * `perIp` is middleware; it honours TRUST_PROXY through req.ip, and RATE_LIMIT_PER_IP=0 turns it off.
 * `perEmail` wraps the act itself: it counts what a post sends to an address, not the post, so
 * posts that send nothing (a second signature, a caught bot, a closed campaign, a form with
 * mistakes) cannot use up someone else's allowance and lock them out.
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
    ctx.config.rateLimitPerIp > 0
      ? async (req, _res, next) => {
          await take(ipLimiter, hashIdentifier(ctx.secret, clientNetwork(req.ip ?? 'unknown')), 'client');
          next();
        }
      : (_req, _res, next) => next();

  /**
   * Runs `act` on the hourly allowance of the address it emails. A point is taken before it runs,
   * so posts arriving together cannot overrun the allowance, and given back when `act` fails or
   * `sent` says it emailed nobody.
   * @throws RateLimitedError when the address has had its allowance.
   */
  async function perEmail<T>(email: unknown, act: () => Promise<T>, sent: (outcome: T) => boolean): Promise<T> {
    if (typeof email !== 'string' || !email.trim()) return act();
    const key = hashIdentifier(ctx.secret, email.trim());
    await take(emailLimiter, key, 'address');
    let outcome: T;
    try {
      outcome = await act();
    } catch (err) {
      await emailLimiter.reward(key, 1);
      throw err;
    }
    if (!sent(outcome)) await emailLimiter.reward(key, 1);
    return outcome;
  }
  return { perIp, perEmail };
}

async function take(l: RateLimiterRedis, key: string, by: 'client' | 'address'): Promise<void> {
  try {
    await l.consume(key);
  } catch (err) {
    if (err instanceof RateLimiterRes) throw new RateLimitedError(Math.ceil(err.msBeforeNext / 1000), by);
    throw err;
  }
}

/**
 * What one client holds: an IPv4 address, or an IPv6 /64. One home or phone line gets a whole /64,
 * so counting single IPv6 addresses would give one sender 2^64 allowances. An IPv4-mapped IPv6
 * address (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 clients) counts as its IPv4.
 */
export function clientNetwork(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') return address.toString();
  return `${address.toNormalizedString().split(':').slice(0, 4).join(':')}::/64`;
}
