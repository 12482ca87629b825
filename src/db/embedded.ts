import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { makeDataDir } from '../config.ts';
import type { Db } from './index.ts';
import { openPgliteDir } from './template.ts';

/**
 * The running app's command socket in DATA_DIR. PGlite is one database session: letting the cli
 * speak SQL to it beside the app would interleave their transactions (a cli rollback could undo
 * the app's `sent` marks). So the cli sends its command here and the app runs it itself.
 */
export const COMMAND_SOCKET = 'cli.sock';

export class EmbeddedBusyError extends Error {
  override name = 'EmbeddedBusyError';
}

/** A cli command run on behalf of another process: its words, its stdin, what it printed. */
export interface CommandRequest {
  argv: string[];
  stdin: string;
}
export interface CommandReply {
  code: number;
  stdout: string;
  stderr: string;
}
export type CommandRunner = (db: Db, request: CommandRequest) => Promise<CommandReply>;

function lockFile(dataDir: string) {
  return path.join(dataDir, 'pglite.pid');
}

/** Beside the pid file: the boot the holder ran in (Linux's boot id), so a pid from before a reboot is not taken for a live holder. */
function bootFile(dataDir: string) {
  return path.join(dataDir, 'pglite.boot');
}

/** The pid the pid file names, if there is one. */
function pidIn(dataDir: string): number | undefined {
  try {
    return Number(fs.readFileSync(lockFile(dataDir), 'utf8')) || undefined;
  } catch {
    return undefined;
  }
}

/** This boot's id where the system has one (Linux), else ''. */
function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * The pid of another live process holding the embedded database, if any. A pid file written in an
 * earlier boot holds nothing: a killed run left it (a power cut, a crash), and after a reboot its
 * number may belong to any process.
 */
export function embeddedHolder(dataDir: string): number | undefined {
  try {
    const pid = pidIn(dataDir);
    if (!pid || pid === process.pid) return undefined;
    const boot = fs.existsSync(bootFile(dataDir)) ? fs.readFileSync(bootFile(dataDir), 'utf8').trim() : '';
    if (boot && bootId() && boot !== bootId()) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * Makes this process the embedded database's holder: the pid file is created only if there is
 * none (O_EXCL), so of two processes starting at once exactly one holds it. A file a dead process
 * left (or one of an earlier boot) is taken over, unless another process took it over first.
 * @throws EmbeddedBusyError when another live process holds it.
 */
function takeHold(dataDir: string): void {
  for (let tries = 0; ; tries++) {
    try {
      fs.writeFileSync(lockFile(dataDir), String(process.pid), { flag: 'wx' });
      fs.writeFileSync(bootFile(dataDir), bootId());
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = embeddedHolder(dataDir);
    if (holder || tries >= 3) {
      throw new EmbeddedBusyError(
        `DATA_DIR: the embedded database in ${dataDir} is in use by process ${holder ?? pidIn(dataDir)}. ` +
          'Stop it first, or set DATABASE_URL to share a Postgres server between processes.',
      );
    }
    // Left by a process that is gone. Its boot file goes first: read without one, a pid file is
    // judged by whether its process lives, so ours is never taken for stale before ours is written.
    const stale = pidIn(dataDir);
    fs.rmSync(bootFile(dataDir), { force: true });
    if (pidIn(dataDir) === stale) fs.rmSync(lockFile(dataDir), { force: true });
  }
}

/** How long the app waits for a cli command that holds the embedded database to be done with it. */
const CLI_HOLD_WAIT_MS = 30_000;

/**
 * takeHold, waiting for a cli command that holds the database (one run a moment before `npm
 * start`: it opens no command socket, and is done within seconds) instead of refusing to start.
 * Held by an app (its socket is there), it refuses at once.
 */
async function takeHoldAfterCli(dataDir: string): Promise<void> {
  const until = Date.now() + CLI_HOLD_WAIT_MS;
  for (;;) {
    try {
      return takeHold(dataDir);
    } catch (err) {
      const app = fs.existsSync(path.join(dataDir, COMMAND_SOCKET));
      if (!(err instanceof EmbeddedBusyError) || app || Date.now() > until) throw err;
      await sleep(100);
    }
  }
}

/**
 * Opens PGlite under DATA_DIR for this process alone. With `commands` (the app), also listens on
 * the command socket so `npm run cli` works while this process holds the database, and waits a
 * moment for a cli command holding it (takeHoldAfterCli).
 * @throws EmbeddedBusyError when another live process holds it.
 */
export async function openEmbedded(
  dataDir: string,
  log: Logger,
  commands?: CommandRunner,
): Promise<{ db: Db; created: boolean; close(): Promise<void> }> {
  makeDataDir(dataDir);
  if (commands) await takeHoldAfterCli(dataDir);
  else takeHold(dataDir);
  const socketPath = path.join(dataDir, COMMAND_SOCKET);
  // Only what is still this process's: the files of another holder, however it came to be one, stay.
  const letGo = () => {
    if (pidIn(dataDir) !== process.pid) return;
    fs.rmSync(lockFile(dataDir), { force: true });
    fs.rmSync(bootFile(dataDir), { force: true });
    fs.rmSync(socketPath, { force: true });
  };
  let opened: Awaited<ReturnType<typeof openPgliteDir>>;
  try {
    opened = await openPgliteDir(path.join(dataDir, 'pglite'), log);
  } catch (err) {
    // A start that could not open it (a full disk, a folder of another user's) holds nothing: a pid
    // file left behind would refuse the next start for whatever process gets that pid.
    letGo();
    throw err;
  }
  const { db, source } = opened;
  if (source !== 'existing') log.info({ source }, 'embedded database created');
  let server: net.Server | undefined;
  if (commands) {
    fs.rmSync(socketPath, { force: true });
    server = net.createServer((socket) => serveCommand(socket, db, commands, log));
    // Only this user may ask the app to add organizers or tokens: the socket is made 0600 (the
    // umask while it is created), not changed to it after, when a loose umask gave others a moment.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => server!.listen(socketPath, resolve).once('error', reject));
    } finally {
      process.umask(umask);
    }
  }
  return {
    db,
    /** Whether DATA_DIR held no database, and this one was made now. */
    created: source !== 'existing',
    async close() {
      if (server) await new Promise((r) => server!.close(r));
      await db.close();
      letGo();
    },
  };
}

/** The longest request the command socket reads. */
const MAX_COMMAND_LENGTH = 64 * 1024;

function serveCommand(socket: net.Socket, db: Db, commands: CommandRunner, log: Logger): void {
  let input = '';
  socket.setEncoding('utf8');
  socket.on('error', () => {});
  socket.on('data', async (chunk: string) => {
    input += chunk;
    const end = input.indexOf('\n');
    if (end === -1 && input.length <= MAX_COMMAND_LENGTH) return;
    socket.removeAllListeners('data');
    // No command is this long (a password is at most 200 characters): said, rather than waited on.
    if (end === -1 || end > MAX_COMMAND_LENGTH) {
      socket.end(JSON.stringify({ code: 1, stdout: '', stderr: 'appeal: the command is too long\n' } satisfies CommandReply) + '\n');
      return;
    }
    socket.pause();
    let reply: CommandReply;
    try {
      reply = await commands(db, JSON.parse(input.slice(0, end)) as CommandRequest);
    } catch (err) {
      log.warn({ err }, 'cli command over the socket failed');
      reply = { code: 1, stdout: '', stderr: `appeal: ${(err as Error).message}\n` };
    }
    socket.end(JSON.stringify(reply) + '\n');
  });
}

/**
 * How long a command waits for the app holding the embedded database to open its command socket:
 * it holds the database (its pid file) a few seconds before it listens, while it starts.
 */
const STARTING_WAIT_MS = 20_000;

/**
 * Sends a cli command to the app holding the embedded database, waiting while that app starts
 * (no socket yet, or one a killed run left behind that nothing answers).
 * @throws EmbeddedBusyError when the holder takes no commands within STARTING_WAIT_MS (another
 * cli, which never listens, or an app still starting); HolderGoneError when it lets go meanwhile.
 */
export async function sendCommand(dataDir: string, request: CommandRequest): Promise<CommandReply> {
  const socketPath = path.join(dataDir, COMMAND_SOCKET);
  const giveUpAt = Date.now() + STARTING_WAIT_MS;
  for (;;) {
    try {
      return await ask(socketPath, request);
    } catch (err) {
      if (!(err instanceof NotListening)) throw err;
      const holder = embeddedHolder(dataDir);
      // Let go of meanwhile (another cli that finished, an app that stopped): the caller opens it.
      if (!holder) throw new HolderGoneError();
      if (Date.now() > giveUpAt) {
        throw new EmbeddedBusyError(
          `DATA_DIR: the embedded database in ${dataDir} is held by process ${holder}, which has taken no commands for ${STARTING_WAIT_MS / 1000} s ` +
            '(an app still starting, or another `npm run cli` at work). Run the command again once it is done.',
        );
      }
      await sleep(250);
    }
  }
}

/** The command socket is not there yet, or nothing answers on it. */
class NotListening extends Error {}

/** The process that held the embedded database let go of it while a command waited for it. */
export class HolderGoneError extends Error {
  override name = 'HolderGoneError';
}

function ask(socketPath: string, request: CommandRequest): Promise<CommandReply> {
  return new Promise((resolve, reject) => {
    let output = '';
    let connected = false;
    const socket = net.createConnection(socketPath, () => {
      connected = true;
      socket.write(JSON.stringify(request) + '\n');
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (output += chunk));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      reject(!connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') ? new NotListening(err.message) : err),
    );
    socket.on('end', () => {
      try {
        resolve(JSON.parse(output) as CommandReply);
      } catch {
        reject(new Error('the running app gave no answer to the command'));
      }
    });
  });
}
