import type { RequestHandler } from 'express';
import ipaddr from 'ipaddr.js';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts } from 'rate-limiter-flexible';
import type { AppContext } from '../../context.ts';
import { RateLimitedError } from '../../errors.ts';
import { hashIdentifier } from '../../tokens.ts';
import { mailboxKey } from '../../mail/address.ts';

const WINDOW_SECONDS = 600;
/** How long a count may wait for Redis before this process counts on its own (see budget). */
const REDIS_WAIT_MS = 500;
/** Public posts (sign, subscribe) that may name one address in an hour, whatever the IP. */
export const PER_EMAIL_PER_HOUR = 10;
/**
 * And in a day. Each post may send the address a confirmation or opt-in email: with the hourly
 * limit alone, a stranger could have it sent one every six minutes, day after day.
 */
export const PER_EMAIL_PER_DAY = 20;

/**
 * `perIp` is middleware, counted in this process's memory (see localBudget: no IP address reaches
 * Redis); it honours TRUST_PROXY through req.ip, and RATE_LIMIT_PER_IP=0 turns it off.
 * `perEmail` wraps the act itself, so that a post refused for what it is (a form with mistakes,
 * an unknown, paused or closed campaign or case) does not count against the address it names:
 * ten such posts could otherwise lock someone out for an hour. Everything else counts, whether
 * or not it sent an email: a second signature or subscription sends nothing, and counting it
 * differently would let anyone learn, from when the 429 comes, whether an address signed.
 */
export function createLimits(ctx: Pick<AppContext, 'config' | 'redis' | 'secret'>) {
  const ipBudget = localBudget(ctx, 'ip', Math.max(1, ctx.config.rateLimitPerIp), WINDOW_SECONDS);
  const emailBudget = budget(ctx, 'email', PER_EMAIL_PER_HOUR, 3600);
  const emailDayBudget = budget(ctx, 'email-day', PER_EMAIL_PER_DAY, 86_400);
  const perIp: RequestHandler =
    ctx.config.rateLimitPerIp > 0
      ? async (req, _res, next) => {
          const wait = await ipBudget.take(clientNetwork(req.ip ?? 'unknown'));
          if (wait !== undefined) throw new RateLimitedError(wait, 'client');
          next();
        }
      : (_req, _res, next) => next();

  /**
   * Runs `act` on the hourly and daily allowances of the address it names. A point is taken from
   * each before it runs, so posts arriving together cannot overrun them, and given back only when
   * `act` throws: its outcome then depends on the post, never on what is stored about the address.
   * @throws RateLimitedError when the address has had either allowance.
   */
  async function perEmail<T>(email: unknown, act: () => Promise<T>): Promise<T> {
    if (typeof email !== 'string' || !email.trim()) return act();
    // Counted per inbox, so `ann+1@…`, `ann+2@…` share one allowance.
    const address = mailboxKey(email);
    // Both at once: one round trip to Redis (auto-pipelined), as with the hourly limit alone.
    const [hourWait, dayWait] = await Promise.all([emailBudget.take(address), emailDayBudget.take(address)]);
    if (hourWait !== undefined || dayWait !== undefined) {
      // Refused by one allowance: the other's point was not used either.
      await Promise.all([hourWait === undefined && emailBudget.giveBack(address), dayWait === undefined && emailDayBudget.giveBack(address)]);
      throw new RateLimitedError(Math.max(hourWait ?? 0, dayWait ?? 0), 'address');
    }
    try {
      return await act();
    } catch (err) {
      await Promise.all([emailBudget.giveBack(address), emailDayBudget.giveBack(address)]);
      throw err;
    }
  }
  return { perIp, perEmail };
}

/**
 * Attempts counted in Redis under `QUEUE_PREFIX:rl:<name>`, keyed by keyed hashes of who made them,
 * shared by every process: for counts keyed by an address or an account, never by an IP (see
 * localBudget). An attempt is taken from the budget before the act, so a burst of parallel
 * requests cannot all slip past the count, and may be given back when the act turns out not to count.
 *
 * While Redis is away (not connected, or not answering within REDIS_WAIT_MS) each web process
 * counts in its own memory instead: the shared client queues commands until Redis is back, and a
 * sign form would otherwise hang without an answer for as long as the outage lasts. The limits
 * still hold, per process; what is signed meanwhile is stored, and its jobs follow (the sweeper).
 */
export function budget(ctx: Pick<AppContext, 'config' | 'redis' | 'secret'>, name: string, points: number, seconds: number) {
  const keyPrefix = counterPrefix(ctx.config.queuePrefix, name);
  return counting(ctx.secret, new RLWrapperTimeouts({
    limiter: new RateLimiterRedis({ storeClient: ctx.redis.client, keyPrefix, points, duration: seconds, rejectIfRedisNotReady: true, customIncrTtlLuaScript: COUNT_OR_FORGET }),
    timeoutMs: REDIS_WAIT_MS,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix, points, duration: seconds }),
  }));
}

/**
 * rate-limiter-flexible's count (take a point, or give one back with a negative one), but a count
 * given back to nothing is deleted at once, in the same script: a post refused for what it is
 * (perEmail) leaves no keyed hash of the address it named in Redis, where it said for a day that
 * somebody typed that address. Atomic, so a point taken by a post that arrived meanwhile is kept.
 */
const COUNT_OR_FORGET = `redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX')
local consumed = redis.call('incrby', KEYS[1], ARGV[1])
if consumed <= 0 then
  redis.call('del', KEYS[1])
  return {consumed, 0}
end
local ttl = redis.call('pttl', KEYS[1])
if ttl == -1 then
  redis.call('expire', KEYS[1], ARGV[2])
  ttl = 1000 * ARGV[2]
end
return {consumed, ttl}`;

/**
 * Attempts counted in this process's memory alone, for counts keyed by an IP address. In Redis
 * they would be written to its append-only file, in order, next to the counts of the address or
 * account the same request named: with SESSION_SECRET from the same disk, the IP's keyed hash is
 * undone by trying every IPv4 address (a few core-hours), and whoever seized the disk could tell
 * which IP posted which address for as long as the file keeps its history. Kept here, an IP goes
 * nowhere; the cost is that each web process counts its own, so with several of them one client
 * gets the allowance once per process it reaches.
 */
export function localBudget(ctx: Pick<AppContext, 'config' | 'secret'>, name: string, points: number, seconds: number) {
  return counting(ctx.secret, new RateLimiterMemory({ keyPrefix: counterPrefix(ctx.config.queuePrefix, name), points, duration: seconds }));
}

function counting(secret: string, limiter: RLWrapperTimeouts | RateLimiterMemory) {
  const key = (id: string) => hashIdentifier(secret, id);
  return {
    /** @returns undefined when there is budget left, else the seconds until there is. */
    async take(id: string): Promise<number | undefined> {
      try {
        await limiter.consume(key(id));
        return undefined;
      } catch (err) {
        if (err instanceof RateLimiterRes) return Math.max(1, Math.ceil(err.msBeforeNext / 1000));
        throw err;
      }
    },
    giveBack: (id: string) => limiter.reward(key(id), 1),
  };
}

/** Where the counts of budget `name` are kept: rate-limiter-flexible's key is this, `:`, and the id. */
const counterPrefix = (queuePrefix: string, name: string) => `${queuePrefix}:rl:${name}`;

/**
 * The Redis keys of the counts of public posts that named `email` (perEmail's): a keyed hash and a
 * count each, which say for up to a day that the address was used. `forget` deletes them.
 */
export function addressCounterKeys(queuePrefix: string, secret: string, email: string): string[] {
  const id = hashIdentifier(secret, mailboxKey(email));
  return [`${counterPrefix(queuePrefix, 'email')}:${id}`, `${counterPrefix(queuePrefix, 'email-day')}:${id}`];
}

/** An address as some proxies forward it, with the client's port: `192.0.2.1:5123`, `[2001:db8::1]:5123`. */
const WITH_PORT = /^(?:\[([^\]]+)\]|(\d{1,3}(?:\.\d{1,3}){3}))(?::\d{1,5})?$/;

/**
 * What one client holds: an IPv4 address, or an IPv6 /64. One home or phone line gets a whole /64,
 * so counting single IPv6 addresses would give one sender 2^64 allowances. An IPv4-mapped IPv6
 * address (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 clients) counts as its IPv4.
 * A port is dropped (Express keeps what X-Forwarded-For says, and some proxies, Azure's among
 * them, write `address:port`): a new connection must not be a new client. Anything else that is
 * not an address counts as one client together, never one apiece.
 */
export function clientNetwork(ip: string): string {
  const bare = WITH_PORT.exec(ip);
  const candidate = bare ? (bare[1] ?? bare[2]!) : ip;
  if (!ipaddr.isValid(candidate)) return 'unparsed';
  const address = ipaddr.process(candidate);
  if (address.kind() === 'ipv4') return address.toString();
  return `${address.toNormalizedString().split(':').slice(0, 4).join(':')}::/64`;
}
