// Counts of attempts (posts, logins, emails) against an allowance: in Redis, shared by every
// process, for counts keyed by an address or an account; in memory for counts keyed by an IP.
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts } from 'rate-limiter-flexible';
import type { AppContext } from './context.ts';
import { hashIdentifier } from './tokens.ts';

/** How long a count may wait for Redis before this process counts on its own (see budget). */
const REDIS_WAIT_MS = 500;

/**
 * Attempts counted in Redis under `QUEUE_PREFIX:rl:<name>`, keyed by keyed hashes of who made them,
 * shared by every process: for counts keyed by an address or an account, never by an IP (see
 * localBudget). An attempt is taken from the budget before the act, so a burst of parallel
 * requests cannot all slip past the count, and may be given back when the act turns out not to count.
 *
 * While Redis is away (not connected, or not answering within REDIS_WAIT_MS) each process counts
 * in its own memory instead: the shared client queues commands until Redis is back, and a sign-in
 * would otherwise hang without an answer for as long as the outage lasts. The limits still hold,
 * per process.
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
 * given back to nothing is deleted at once, in the same script: a point taken and given back (an
 * email the day's allowance refused gives back the hour's) leaves no keyed hash of whom it counted
 * in Redis, where it would say for its whole window that somebody was counted. Atomic, so a point
 * taken meanwhile is kept.
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
    /**
     * A count given back to nothing goes (in Redis, by COUNT_OR_FORGET): in memory, kept for its
     * window, every refused post naming a new address would hold about a kilobyte for a day.
     */
    async giveBack(id: string): Promise<void> {
      const left = await limiter.reward(key(id), 1);
      if (left.consumedPoints <= 0 && limiter instanceof RateLimiterMemory) await limiter.delete(key(id));
    },
  };
}

type Budget = ReturnType<typeof counting>;

/**
 * An hour's and a day's budget counted as one: a point is taken from both, or from neither (one
 * refused, the other's point is given back), in one round trip where they are in Redis.
 */
export function hourAndDay(hour: Budget, day: Budget) {
  return {
    /** @returns undefined when both had room, else the one refused (the day, if both were) and how many seconds until both have room. */
    async take(id: string): Promise<{ window: 'hour' | 'day'; wait: number } | undefined> {
      const [hourWait, dayWait] = await Promise.all([hour.take(id), day.take(id)]);
      if (hourWait === undefined && dayWait === undefined) return undefined;
      await Promise.all([hourWait === undefined && hour.giveBack(id), dayWait === undefined && day.giveBack(id)]);
      return { window: dayWait !== undefined ? 'day' : 'hour', wait: Math.max(hourWait ?? 0, dayWait ?? 0) };
    },
    giveBack: (id: string) => Promise.all([hour.giveBack(id), day.giveBack(id)]).then(() => undefined),
  };
}

/** Where the counts of budget `name` are kept: rate-limiter-flexible's key is this, `:`, and the id. */
export const counterPrefix = (queuePrefix: string, name: string) => `${queuePrefix}:rl:${name}`;

