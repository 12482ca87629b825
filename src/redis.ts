import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { makeDataDir, unbracket, type Config } from './config.ts';

const DEFAULT_URL = 'redis://127.0.0.1:6379';

const READY_WAIT_MS = 10_000;
/** How long after the redis-server under DATA_DIR stopped it is started again, at first and at most. */
const RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 30_000;

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

export interface RedisHandle {
  /** Options for every connection (BullMQ needs maxRetriesPerRequest: null). */
  options: RedisOptions;
  /** A shared connection for rate limits and health checks. */
  client: Redis;
  /** Stops the redis-server this process spawned, if any. */
  close(): Promise<void>;
}

/**
 * Whether a Redis answers at `options`; `refused`: one does, but refuses the login the options
 * carry (NOAUTH, WRONGPASS), which is not a Redis that is missing.
 */
async function probe(options: RedisOptions): Promise<{ answers: boolean; refused?: string; certificate?: string; handshook?: boolean }> {
  const conn = new Redis({ ...options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  // A refused login is told here; connect() then fails with "Connection is closed."
  const replies: string[] = [];
  const certificates: string[] = [];
  // Over TLS, `connect` comes once the handshake is done.
  let handshook = false;
  conn.on('connect', () => void (handshook = true));
  conn.on('error', (err: Error & { code?: string }) => {
    replies.push(err.message);
    // A TLS server whose certificate this process does not trust (a private CA, a name it is not
    // for); not the server's alert that it wants one of the client (ERR_SSL_…_CERTIFICATE_REQUIRED).
    if (!err.code?.startsWith('ERR_SSL_') && /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_(GET|VERIFY)/.test(err.code ?? '')) certificates.push(err.message.split('\n')[0]!);
  });
  try {
    await conn.connect();
    await conn.ping();
    return { answers: true };
  } catch (err) {
    const refused = [...replies, (err as Error).message].find((reply) => /^(NOAUTH|WRONGPASS)\b/.test(reply ?? ''));
    return { answers: false, refused: refused?.split('\n')[0], certificate: certificates[0], handshook: Boolean(options.tls) && handshook };
  } finally {
    conn.disconnect();
  }
}

const answers = async (options: RedisOptions) => (await probe(options)).answers;

/** Whether a TCP connection to the host and port of `options` opens within a second. */
function takesConnections(options: RedisOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: options.host, port: options.port ?? 6379, timeout: 1000 });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
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

/** Where the redis-server `npm start` runs under DATA_DIR listens. */
const spawnedOptions = (dataDir: string): RedisOptions => ({ path: path.join(dataDir, 'redis', 'redis.sock'), maxRetriesPerRequest: null });

/**
 * What a redis-server under DATA_DIR said last of why it stopped or would not start (`Invalid AOF
 * manifest file format`): the last warning (`#`) line of its log since `since`, without its pid
 * and time; undefined when it wrote none.
 */
export async function lastWords(logFile: string, since: number): Promise<string | undefined> {
  try {
    const file = await fs.open(logFile);
    try {
      const { size, mtimeMs } = await file.stat();
      if (mtimeMs < since) return undefined;
      const length = Math.min(size, 8192);
      const { buffer } = await file.read(Buffer.alloc(length), 0, length, size - length);
      const warnings = buffer.toString('utf8').split('\n').map((line) => /^\d+:[A-Z] [^#]*? # (.+)$/.exec(line)?.[1]).filter(Boolean);
      return warnings.at(-1);
    } finally {
      await file.close();
    }
  } catch {
    return undefined;
  }
}

interface Spawned {
  options: RedisOptions;
  /** Stops the redis-server when this process is its owner. */
  stop?: () => Promise<void>;
}

/** Whether the process that started the redis-server under `dir` still runs (and is not us). */
async function ownerRuns(ownerFile: string): Promise<boolean> {
  const pid = Number(await fs.readFile(ownerFile, 'utf8').catch(() => ''));
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Stops a redis-server taken over from a killed start, unless another process uses it still (it
 * then keeps running, and the next start to find it without a live owner takes it over).
 */
async function stopAdoptedRedis(options: RedisOptions, ownerFile: string): Promise<void> {
  const conn = new Redis({ ...options, maxRetriesPerRequest: 0, retryStrategy: () => null });
  conn.on('error', () => {});
  try {
    // Our own connections were closed just before; give the server a moment to see them go.
    let clients = 0;
    for (let i = 0; i < 10; i++) {
      clients = String(await conn.call('CLIENT', 'LIST')).trim().split('\n').length;
      if (clients === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (clients > 1) {
      await fs.rm(ownerFile, { force: true });
      return;
    }
    // The server closes the connection as it shuts down, so the command never gets an answer.
    await conn.call('SHUTDOWN').catch(() => undefined);
    await fs.rm(ownerFile, { force: true });
  } catch {
    // Gone already: nothing to stop.
  } finally {
    conn.disconnect();
  }
}

/**
 * Starts redis-server on a unix socket under DATA_DIR, with AOF and noeviction like production.
 * One that answers there already is used: shared while the process that started it runs, taken
 * over (and stopped at exit) when that process died without stopping it, so a killed start never
 * leaves a second server on the same files.
 */
export async function spawnRedis(dataDir: string, log?: Pick<Logger, 'error'>): Promise<Spawned> {
  const dir = path.join(dataDir, 'redis');
  makeDataDir(dir);
  const socket = path.join(dir, 'redis.sock');
  const ownerFile = path.join(dir, 'owner.pid');
  const options = spawnedOptions(dataDir);
  if (await answers(options)) {
    if (await ownerRuns(ownerFile)) return { options };
    await fs.writeFile(ownerFile, String(process.pid));
    return { options, stop: () => stopAdoptedRedis(options, ownerFile) };
  }
  const logFile = path.join(dir, 'redis.log');
  let startedAt = Date.now();
  const start = () => {
    startedAt = Date.now();
    return spawn(
      'redis-server',
      ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir, '--appendonly', 'yes',
        '--save', '', '--maxmemory-policy', 'noeviction', '--logfile', logFile],
      // A group of its own: a terminal's Ctrl-C goes to the app, which stops it last, after the
      // work in flight; reaching it too, it stopped first and was started again mid-shutdown.
      { stdio: 'ignore', detached: true },
    );
  };
  let child = start();
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('spawn', () => resolve(true));
  });
  if (!spawned) {
    throw new RedisUnavailableError(
      `REDIS_URL: nothing answers on ${DEFAULT_URL} and redis-server is not on PATH. ` +
        'Install Redis (e.g. apt-get install redis-server) or set REDIS_URL=redis://host:port.',
    );
  }
  await fs.writeFile(ownerFile, String(process.pid));
  let stopping = false;
  // Nothing else would start it again if it died (the OOM killer, a crash): every letter would
  // wait until the app was restarted. Started again a second later, it reads back its AOF; one
  // that will not start (its files unreadable, redis-server gone from PATH) is tried again at
  // doubling intervals, each try in the log, and from the first interval once one has run a minute.
  let delay = RESTART_DELAY_MS;
  const keepRunning = (server: ChildProcess) => {
    let gone = false;
    const startAgain = async (why: { code?: number | null; signal?: NodeJS.Signals | null; err?: Error }) => {
      if (gone || stopping) return;
      gone = true;
      // Exited of itself with an error: its log says why (a killed one's says nothing new).
      const said = why.code ? await lastWords(logFile, startedAt) : undefined;
      if (stopping) return;
      log?.error({ ...why, ...(said && { said }), retryInMs: delay }, 'the redis-server under DATA_DIR stopped: starting it again');
      setTimeout(() => {
        if (stopping) return;
        child = start();
        keepRunning(child);
      }, delay).unref();
      delay = Math.min(delay * 2, MAX_RESTART_DELAY_MS);
    };
    server.once('exit', (code, signal) => void startAgain({ code, signal }));
    // Not started at all (spawn failed): there is no 'exit' to wait for.
    server.once('error', (err) => void startAgain({ err }));
    setTimeout(() => void (gone || (delay = RESTART_DELAY_MS)), 60_000).unref();
  };
  keepRunning(child);
  // In a group of its own it outlives an exit that did not stop it (a second Ctrl-C, a fatal
  // error): told to stop as the process exits, it writes its AOF and goes.
  const stopOnExit = () => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    fsSync.rmSync(ownerFile, { force: true });
  };
  process.once('exit', stopOnExit);
  const stop = async () => {
    process.removeListener('exit', stopOnExit);
    stopping = true;
    // Gone already: by its own exit, or by a signal (the OOM killer, kill -9, a crash), which
    // leaves exitCode null; its 'exit' has been and will not come again.
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await fs.rm(ownerFile, { force: true });
  };
  const began = Date.now();
  for (let i = 0; i < 50; i++) {
    if (await answers(options)) return { options, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  // Read first: stopping one that runs still adds its own goodbye.
  const said = await lastWords(logFile, began);
  await stop();
  throw new RedisUnavailableError(
    `REDIS_URL: unset, so a redis-server was started under ${dir}, and it did not answer within 5 s` +
      (said ? `; it said: ${said} (its log: ${logFile})` : `; see its log, ${logFile}`) +
      '. Or set REDIS_URL to a Redis of your own',
  );
}

/**
 * Connects to REDIS_URL; when it is unset, to the default address, or else, with `spawn` (the
 * all-in-one `npm start`), starts redis-server under DATA_DIR. Web and worker processes on their
 * own do not: each would get a Redis of its own and they would not share their queues.
 * @throws RedisUnavailableError with a message that says how to get one.
 */
export async function connectRedis(
  config: Pick<Config, 'redisUrl' | 'dataDir'>,
  opts: {
    spawn?: boolean;
    /** Without spawn: use the redis-server `npm start` runs under DATA_DIR when it answers (the cli's `forget`), never start one. */
    useSpawned?: boolean;
    /** Where an unset REDIS_URL looks first (tests point it at nothing). */ defaultUrl?: string;
    log?: Pick<Logger, 'error'>;
  } = {},
): Promise<RedisHandle> {
  const defaultUrl = opts.defaultUrl ?? DEFAULT_URL;
  let options: RedisOptions;
  let stop: (() => Promise<void>) | undefined;
  let found: Awaited<ReturnType<typeof probe>>;
  if (config.redisUrl) {
    options = optionsFromUrl(config.redisUrl);
    const host = new URL(config.redisUrl).host;
    found = await probe(options);
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
  } else if ((found = await probe(optionsFromUrl(defaultUrl))).answers) {
    options = optionsFromUrl(defaultUrl);
  } else if (opts.spawn) {
    // Also when one on the default address wants a password: it is someone else's.
    ({ options, stop } = await spawnRedis(config.dataDir, opts.log));
  } else if (opts.useSpawned && (await answers(spawnedOptions(config.dataDir)))) {
    options = spawnedOptions(config.dataDir);
  } else if (found.refused) {
    throw refusedLogin(new URL(defaultUrl).host, found.refused);
  } else {
    throw new RedisUnavailableError(
      `REDIS_URL: nothing answers at ${new URL(defaultUrl).host}. Web and worker processes run apart need one Redis ` +
        'they share: set REDIS_URL=redis://…, or use `npm start` to run both in one process (it starts redis-server itself).',
    );
  }
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
 * and the letter waits for good. Nothing when Redis keeps every key, or does not say (CONFIG is
 * turned off on some hosted Redis).
 */
export async function evictionWarning(client: Redis): Promise<string | undefined> {
  let policy: string | undefined;
  try {
    policy = ((await client.config('GET', 'maxmemory-policy')) as string[])[1];
  } catch {
    // CONFIG turned off (a hosted Redis): it does not say, and the process runs all the same.
    return undefined;
  }
  if (!policy || policy === 'noeviction') return undefined;
  return `Redis may evict keys when its memory is full (maxmemory-policy ${policy}): a queued letter or alert whose job it evicts in part waits for good. Set maxmemory-policy noeviction (on a hosted Redis, in its settings), or give Appeal a Redis of its own`;
}
