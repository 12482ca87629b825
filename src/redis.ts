import { once } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { unbracket, type Config } from './config.ts';
import { answers, DEFAULT_URL, probe, RedisUnavailableError, takesConnections } from './redis-probe.ts';
import { spawnedOptions, spawnRedis, type Spawned } from './redis-spawn.ts';

export { RedisUnavailableError } from './redis-probe.ts';
export { spawnRedis } from './redis-spawn.ts';

const READY_WAIT_MS = 10_000;

export interface RedisHandle {
  /** Options for every connection (BullMQ needs maxRetriesPerRequest: null). */
  options: RedisOptions;
  /** A shared connection for rate limits and health checks. */
  client: Redis;
  /** Stops the redis-server this process spawned, if any. */
  close(): Promise<void>;
}

const refusedLogin = (host: string, reply: string) =>
  new RedisUnavailableError(`REDIS_URL: the Redis at ${host} refused the login (${reply}): put its user and password in REDIS_URL (redis://user:password@host:port)`);

function optionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: unbracket(u.hostname),
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}

/** REDIS_URL's options, once a Redis answers there. @throws RedisUnavailableError saying why none does. */
async function reachRedisUrl(url: string): Promise<RedisOptions> {
  const options = optionsFromUrl(url);
  const host = new URL(url).host;
  const found = await probe(options);
  if (!found.answers) {
    if (found.refused) throw refusedLogin(host, found.refused);
    if (found.certificate) {
      throw new RedisUnavailableError(`REDIS_URL: the TLS certificate of ${host} is not trusted (${found.certificate}): if a CA of your own signed it, give its certificate in NODE_EXTRA_CA_CERTS (a PEM file)`);
    }
    if (found.handshook) {
      throw new RedisUnavailableError(
        `REDIS_URL: ${host} took the TLS handshake, then closed the connection: a Redis that asks for client certificates (tls-auth-clients, on unless set to no) ` +
          'refuses Appeal, which presents none; set tls-auth-clients no on it, with a password in REDIS_URL',
      );
    }
    // A Redis without TLS takes the connection and waits for a command: the handshake times out.
    if (options.tls && (await takesConnections(options))) {
      throw new RedisUnavailableError(`REDIS_URL: ${host} takes connections but completed no TLS handshake: rediss:// needs a Redis with TLS on (redis:// is one without)`);
    }
    throw new RedisUnavailableError(`REDIS_URL: nothing answers at ${host}`);
  }
  return options;
}

interface ConnectOptions {
  spawn?: boolean;
  /** Without spawn: use the redis-server `npm start` runs under DATA_DIR when it answers (the cli's `forget`), never start one. */
  useSpawned?: boolean;
  /** Where an unset REDIS_URL looks first (tests point it at nothing). */ defaultUrl?: string;
  log?: Pick<Logger, 'error'>;
}

/** Which Redis to use (see connectRedis), and what stops it when this process started it. */
async function findRedis(config: Pick<Config, 'redisUrl' | 'dataDir'>, opts: ConnectOptions): Promise<Spawned> {
  const defaultUrl = opts.defaultUrl ?? DEFAULT_URL;
  if (config.redisUrl) return { options: await reachRedisUrl(config.redisUrl) };
  const found = await probe(optionsFromUrl(defaultUrl));
  if (found.answers) return { options: optionsFromUrl(defaultUrl) };
  // Also when one on the default address wants a password: it is someone else's.
  if (opts.spawn) return spawnRedis(config.dataDir, opts.log);
  if (opts.useSpawned && (await answers(spawnedOptions(config.dataDir)))) return { options: spawnedOptions(config.dataDir) };
  if (found.refused) throw refusedLogin(new URL(defaultUrl).host, found.refused);
  throw new RedisUnavailableError(
    `REDIS_URL: nothing answers at ${new URL(defaultUrl).host}. Web and worker processes run apart need one Redis ` +
      'they share: set REDIS_URL=redis://…, or use `npm start` to run both in one process (it starts redis-server itself).',
  );
}

/**
 * Connects to REDIS_URL; when it is unset, to the default address, or else, with `spawn` (the
 * all-in-one `npm start`), starts redis-server under DATA_DIR. Web and worker processes on their
 * own do not: each would get a Redis of its own and they would not share their queues.
 * @throws RedisUnavailableError with a message that says how to get one.
 */
export async function connectRedis(config: Pick<Config, 'redisUrl' | 'dataDir'>, opts: ConnectOptions = {}): Promise<RedisHandle> {
  const { options, stop } = await findRedis(config, opts);
  // Commands issued in the same tick (the rate limits of concurrent requests) leave as one write:
  // on a busy web process the socket writes, not Redis, were the cost (`npm run bench`, intake).
  const client = new Redis({ ...options, enableAutoPipelining: true });
  client.on('error', () => {});
  // Ready before anything counts on it: the rate limits count in memory while it is not (see
  // src/web/middleware/limits.ts), and the first requests' counts would be lost from Redis's.
  try {
    if (client.status !== 'ready') await once(client, 'ready', { signal: AbortSignal.timeout(READY_WAIT_MS) });
  } catch (err) {
    client.disconnect();
    await stop?.();
    const where = `${options.host ?? 'redis'}:${options.port ?? 6379}`;
    // An error while connecting (`once` rejects on one) is Redis's answer, such as a database
    // number it does not have: say it, not that it took too long.
    const why = (err as Error).name === 'AbortError' || (err as Error).name === 'TimeoutError' ? `was not ready within ${READY_WAIT_MS / 1000} s` : `refused the connection: ${(err as Error).message}`;
    throw new RedisUnavailableError(`REDIS_URL: ${where} answered but ${why}`);
  }
  // BullMQ reads the server's version with INFO as each queue and worker connects: a user that may
  // not run it (ACL -@dangerous, a common hardening recipe) crashed the worker with a stack trace
  // while the web process said it was ready.
  const denied = await client.info('server').then(
    () => undefined,
    (err: Error) => (/^NOPERM\b/.test(err.message) ? err.message.split('\n')[0] : undefined),
  );
  if (denied) {
    client.disconnect();
    await stop?.();
    throw new RedisUnavailableError(`REDIS_URL: the Redis user may not run INFO, which BullMQ needs (${denied}): allow it, e.g. ACL SETUSER <user> +info`);
  }
  return {
    options,
    client,
    async close() {
      client.disconnect();
      await stop?.();
    },
  };
}

/**
 * What to tell an operator whose Redis may evict keys under memory pressure (a `maxmemory-policy`
 * other than `noeviction`, the default of many hosted Redis). BullMQ keeps a job in a hash and its
 * place in lists; with the lists evicted and the hash kept, the sweeper takes the job for live
 * and the letter waits for good. Nothing when Redis keeps every key, or does not say. The policy
 * is read from INFO, which BullMQ needs anyway: CONFIG is turned off on many hosted Redis and for
 * users without `@dangerous`, where this warning matters most.
 */
export async function evictionWarning(client: Redis): Promise<string | undefined> {
  let policy: string | undefined;
  try {
    policy = /^maxmemory_policy:(\S+)/m.exec(await client.info('memory'))?.[1];
  } catch {
    // INFO refused too: BullMQ's own check at start says so, and the process stops there.
    return undefined;
  }
  if (!policy || policy === 'noeviction') return undefined;
  return `Redis may evict keys when its memory is full (maxmemory-policy ${policy}): a queued letter or alert whose job it evicts in part waits for good. Set maxmemory-policy noeviction (on a hosted Redis, in its settings), or give Appeal a Redis of its own`;
}