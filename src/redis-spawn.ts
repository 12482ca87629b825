// The redis-server `npm start` runs under DATA_DIR when no Redis answers: started, kept running
// (started again when it dies), shared with or taken over from an earlier start, and stopped last.
import { spawn, type ChildProcess } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { makeDataDir } from './config.ts';
import { answers, DEFAULT_URL, RedisUnavailableError } from './redis-probe.ts';

/** How long after the redis-server under DATA_DIR stopped it is started again, at first and at most. */
const RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 30_000;

/** Where the redis-server `npm start` runs under DATA_DIR listens. */
export const spawnedOptions = (dataDir: string): RedisOptions => ({ path: path.join(dataDir, 'redis', 'redis.sock'), maxRetriesPerRequest: null });

/**
 * What a redis-server under DATA_DIR said last of why it stopped or would not start (`Invalid AOF
 * manifest file format`): the last warning (`#`) line of its log since `since`, without its pid
 * and time; undefined when it wrote none.
 */
async function lastWords(logFile: string, since: number): Promise<string | undefined> {
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

export interface Spawned {
  options: RedisOptions;
  /** Stops the redis-server when this process is its owner. */
  stop?: () => Promise<void>;
}

/** Whether the process that started the redis-server under `dir` still runs (and is not us). */
async function ownerRuns(ownerFile: string): Promise<boolean> {
  const pid = Number(await fs.readFile(ownerFile, 'utf8').catch(() => ''));
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && running(pid);
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

/** Where the redis-server under DATA_DIR keeps its files and listens. */
interface ServerFiles {
  readonly dir: string;
  readonly socket: string;
  readonly logFile: string;
}

/** The redis-server this process started, and what its restarts and its stop go by. */
interface Supervised extends ServerFiles {
  /** The one running now: each start again replaces it. */
  child: ChildProcess;
  /** When `child` was started: what its log says since then is its own (lastWords). */
  startedAt: number;
  /** Set once it is being stopped: nothing starts it again then. */
  stopping: boolean;
  /** How long after it stopped it is started again (keepRunning). */
  delay: number;
}

function startRedisServer({ dir, socket, logFile }: ServerFiles): ChildProcess {
  return spawn(
    'redis-server',
    // The append-only file is written anew once it has grown by 4 MB (Redis's own default is 64):
    // it holds every command since its last rewrite, and a quiet install writes about 14 MB a day,
    // so a rate-limit counter long expired (a keyed hash of an address, and when) stayed on disk
    // for days.
    ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir, '--appendonly', 'yes',
      '--auto-aof-rewrite-min-size', '4mb', '--save', '', '--maxmemory-policy', 'noeviction', '--logfile', logFile],
    // A group of its own: a terminal's Ctrl-C goes to the app, which stops it last, after the
    // work in flight; reaching it too, it stopped first and was started again mid-shutdown.
    { stdio: 'ignore', detached: true },
  );
}

/** Whether `child` started at all: false when redis-server is not on PATH, say. */
function hasSpawned(child: ChildProcess): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('spawn', () => resolve(true));
  });
}

/**
 * Nothing else would start it again if it died (the OOM killer, a crash): every letter would
 * wait until the app was restarted. Started again a second later, it reads back its AOF; one
 * that will not start (its files unreadable, redis-server gone from PATH) is tried again at
 * doubling intervals, each try in the log, and from the first interval once one has run a minute.
 */
function keepRunning(server: Supervised, child: ChildProcess, log?: Pick<Logger, 'error'>): void {
  let gone = false;
  const startAgain = async (why: { code?: number | null; signal?: NodeJS.Signals | null; err?: Error }) => {
    if (gone || server.stopping) return;
    gone = true;
    // Exited of itself with an error: its log says why (a killed one's says nothing new).
    const said = why.code ? await lastWords(server.logFile, server.startedAt) : undefined;
    if (server.stopping) return;
    log?.error({ ...why, ...(said && { said }), retryInMs: server.delay }, 'the redis-server under DATA_DIR stopped: starting it again');
    setTimeout(() => {
      if (server.stopping) return;
      server.startedAt = Date.now();
      server.child = startRedisServer(server);
      keepRunning(server, server.child, log);
    }, server.delay).unref();
    server.delay = Math.min(server.delay * 2, MAX_RESTART_DELAY_MS);
  };
  child.once('exit', (code, signal) => void startAgain({ code, signal }));
  // Not started at all (spawn failed): there is no 'exit' to wait for.
  child.once('error', (err) => void startAgain({ err }));
  setTimeout(() => void (gone || (server.delay = RESTART_DELAY_MS)), 60_000).unref();
}

/**
 * In a group of its own it outlives an exit that did not stop it (a second Ctrl-C, a fatal
 * error): told to stop as the process exits, it writes its AOF and goes.
 * @returns what stops it before then, waiting until it is gone.
 */
function stopWithProcess(server: Supervised, ownerFile: string): () => Promise<void> {
  const stopOnExit = () => {
    server.stopping = true;
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGTERM');
    fsSync.rmSync(ownerFile, { force: true });
  };
  process.once('exit', stopOnExit);
  return async () => {
    process.removeListener('exit', stopOnExit);
    server.stopping = true;
    // Gone already: by its own exit, or by a signal (the OOM killer, kill -9, a crash), which
    // leaves exitCode null; its 'exit' has been and will not come again.
    const { child } = server;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await fs.rm(ownerFile, { force: true });
  };
}

/** How often a server taken over from a start that died is looked for (watchAdopted). */
const ADOPTED_CHECK_MS = 1000;

/**
 * A server taken over from a start that died is not this process's child: no 'exit' says when it
 * dies, and nothing would start it again (every letter would wait until the app was restarted).
 * Its pid is looked for every second instead; once it is gone, one of ours is started in its
 * place on the same files, kept running as any (keepRunning).
 * @returns what stops it, or the one started in its place.
 */
async function watchAdopted(options: RedisOptions, files: ServerFiles, ownerFile: string, log?: Pick<Logger, 'error'>): Promise<() => Promise<void>> {
  const pid = await serverPid(options);
  let stopping = false;
  let replaced: (() => Promise<void>) | undefined;
  const timer = setInterval(() => {
    if (stopping || pid === undefined || running(pid)) return;
    clearInterval(timer);
    log?.error({ pid }, 'the redis-server under DATA_DIR (taken over from a start that died) stopped: starting one in its place');
    const server: Supervised = { ...files, startedAt: Date.now(), child: startRedisServer(files), stopping: false, delay: RESTART_DELAY_MS };
    keepRunning(server, server.child, log);
    replaced = stopWithProcess(server, ownerFile);
  }, ADOPTED_CHECK_MS).unref();
  return async () => {
    stopping = true;
    clearInterval(timer);
    await (replaced ? replaced() : stopAdoptedRedis(options, ownerFile));
  };
}

/** The pid a Redis reports (INFO server); undefined when it cannot be asked. */
async function serverPid(options: RedisOptions): Promise<number | undefined> {
  const conn = new Redis({ ...options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  conn.on('error', () => {});
  try {
    await conn.connect();
    const pid = Number(/^process_id:(\d+)/m.exec(await conn.info('server'))?.[1]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  } finally {
    conn.disconnect();
  }
}

/**
 * Whether a process with this pid runs (one of another user's counts). A dead one its parent has
 * not reaped (a zombie) keeps its pid until then, and one taken over from a killed start is not
 * our child: its new parent (a container's `sleep infinity` as PID 1, say) may never reap it.
 * On Linux its state says so; elsewhere the pid alone is asked.
 */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // "pid (name) state …": the name may hold spaces and parentheses, so the state follows the last ")".
    const stat = fsSync.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/**
 * Starts redis-server on a unix socket under DATA_DIR, with AOF and noeviction like production.
 * One that answers there already is used: shared while the process that started it runs, taken
 * over (kept running, and stopped at exit) when that process died without stopping it, so a killed
 * start never leaves a second server on the same files.
 */
export async function spawnRedis(dataDir: string, log?: Pick<Logger, 'error'>): Promise<Spawned> {
  const dir = path.join(dataDir, 'redis');
  makeDataDir(dir);
  const socket = path.join(dir, 'redis.sock');
  const ownerFile = path.join(dir, 'owner.pid');
  const options = spawnedOptions(dataDir);
  const files: ServerFiles = { dir, socket, logFile: path.join(dir, 'redis.log') };
  if (await answers(options)) {
    if (await ownerRuns(ownerFile)) return { options };
    await fs.writeFile(ownerFile, String(process.pid));
    return { options, stop: await watchAdopted(options, files, ownerFile, log) };
  }
  const { logFile } = files;
  const firstStarted = Date.now();
  const server: Supervised = { ...files, startedAt: firstStarted, child: startRedisServer(files), stopping: false, delay: RESTART_DELAY_MS };
  if (!(await hasSpawned(server.child))) {
    throw new RedisUnavailableError(
      `REDIS_URL: nothing answers on ${DEFAULT_URL} and redis-server is not on PATH. ` +
        'Install Redis (e.g. apt-get install redis-server) or set REDIS_URL=redis://host:port.',
    );
  }
  await fs.writeFile(ownerFile, String(process.pid));
  keepRunning(server, server.child, log);
  const stop = stopWithProcess(server, ownerFile);
  for (let i = 0; i < 50; i++) {
    if (await answers(options)) return { options, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  // Read first: stopping one that runs still adds its own goodbye. Anything it wrote since it was
  // first started counts: one that failed at once wrote before the wait began, and in a busy
  // minute its next try may not have written yet.
  const said = await lastWords(logFile, firstStarted);
  await stop();
  throw new RedisUnavailableError(
    `REDIS_URL: unset, so a redis-server was started under ${dir}, and it did not answer within 5 s` +
      (said ? `; it said: ${said} (its log: ${logFile})` : `; see its log, ${logFile}`) +
      '. Or set REDIS_URL to a Redis of your own',
  );
}
