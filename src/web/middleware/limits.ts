import type { Request, RequestHandler } from 'express';
import ipaddr from 'ipaddr.js';
import type { AppContext } from '../../context.ts';
import { hourAndDay, localBudget } from '../../budgets.ts';
import { RateLimitedError } from '../../errors.ts';
import { mailboxKey } from '../../mail/address.ts';

const WINDOW_SECONDS = 600;
/** Public posts (sign, subscribe) one client may make naming one address in an hour. */
export const PER_EMAIL_PER_HOUR = 10;
/** And in a day. */
const PER_EMAIL_PER_DAY = 20;

/**
 * `perIp` is middleware, counted in this process's memory (see localBudget: no IP address reaches
 * Redis); it honours TRUST_PROXY through req.ip, and RATE_LIMIT_PER_IP=0 turns it off.
 * `perEmail` wraps the act itself, so that a post refused for what it is (a form with mistakes,
 * an unknown, paused or closed campaign or case) does not count against the address it names:
 * ten such posts could otherwise lock someone out for an hour. Everything else counts, whether
 * or not it sent an email: a second signature or subscription sends nothing, and counting it
 * differently would let anyone learn, from when the 429 comes, whether an address signed.
 *
 * What perEmail counts is one client's posts naming one address, in that client's memory too: a
 * count shared by every client would tell a stranger, from a 429 sooner than their own posts
 * explain, that someone had posted the address within the hour or the day. What protects the
 * address's mailbox from strangers is counted where the emails are sent (withAddressAllowance),
 * out of sight of any form.
 */
export function createLimits(ctx: Pick<AppContext, 'config' | 'secret'>) {
  const ipBudget = localBudget(ctx, 'ip', Math.max(1, ctx.config.rateLimitPerIp), WINDOW_SECONDS);
  const emailBudget = hourAndDay(localBudget(ctx, 'client-email', PER_EMAIL_PER_HOUR, 3600), localBudget(ctx, 'client-email-day', PER_EMAIL_PER_DAY, 86_400));
  const perIp: RequestHandler =
    ctx.config.rateLimitPerIp > 0
      ? async (req, _res, next) => {
          const wait = await ipBudget.take(clientNetwork(req.ip ?? 'unknown'));
          if (wait !== undefined) throw new RateLimitedError(wait, 'client');
          next();
        }
      : (_req, _res, next) => next();

  /**
   * Runs `act` on the hourly and daily allowances of the client `req` came from for the address
   * it names. A point is taken from each before it runs, so posts arriving together cannot
   * overrun them, and given back only when `act` throws: its outcome then depends on the post,
   * never on what is stored about the address.
   * @throws RateLimitedError when this client has had either allowance for this address.
   */
  async function perEmail<T>(req: Request, email: unknown, act: () => Promise<T>): Promise<T> {
    if (typeof email !== 'string' || !email.trim()) return act();
    // Counted per inbox, so `ann+1@…`, `ann+2@…` share one allowance.
    const key = `${clientNetwork(req.ip ?? 'unknown')} ${mailboxKey(email)}`;
    const refused = await emailBudget.take(key);
    if (refused) throw new RateLimitedError(refused.wait, 'address');
    try {
      return await act();
    } catch (err) {
      await emailBudget.giveBack(key);
      throw err;
    }
  }
  return { perIp, perEmail };
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
