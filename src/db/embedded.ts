import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { openPglite, openPostgres, type Db } from './index.ts';

/** pg looks for `<dir>/.s.PGSQL.<port>`; the running app listens there so the cli can join in. */
export const SOCKET_NAME = '.s.PGSQL.5432';

export class EmbeddedBusyError extends Error {
  override name = 'EmbeddedBusyError';
}

function lockFile(dataDir: string) {
  return path.join(dataDir, 'pglite.pid');
}

function holder(dataDir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(lockFile(dataDir), 'utf8'));
    if (!pid || pid === process.pid) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * Opens PGlite under DATA_DIR for this process alone and serves it on a unix socket in
 * DATA_DIR, so `npm run cli` can use the database while `npm start` holds it.
 * @throws EmbeddedBusyError when another live process holds it.
 */
export async function openEmbedded(dataDir: string, log: Logger): Promise<{ db: Db; close(): Promise<void> }> {
  fs.mkdirSync(dataDir, { recursive: true });
  const pid = holder(dataDir);
  if (pid) {
    throw new EmbeddedBusyError(
      `DATA_DIR: the embedded database in ${dataDir} is in use by process ${pid}. ` +
        'Stop it first, or set DATABASE_URL to share a Postgres server between processes.',
    );
  }
  fs.writeFileSync(lockFile(dataDir), String(process.pid));
  const { db, lite } = await openPglite(path.join(dataDir, 'pglite'));
  const socketPath = path.join(dataDir, SOCKET_NAME);
  let server: PGLiteSocketServer | undefined;
  if (socketPath.length < 100) {
    fs.rmSync(socketPath, { force: true });
    server = new PGLiteSocketServer({ db: lite, path: socketPath, maxConnections: 4 });
    server.addEventListener('error', (event) => log.warn({ event }, 'embedded database socket error'));
    await server.start();
  } else {
    log.warn('DATA_DIR path is too long for a unix socket; `npm run cli` cannot reach the running app');
  }
  return {
    db,
    async close() {
      await server?.stop();
      await db.close();
      fs.rmSync(lockFile(dataDir), { force: true });
      fs.rmSync(socketPath, { force: true });
    },
  };
}

/**
 * The embedded database for a short-lived command: through the running app's socket when it
 * holds the database, else opened directly.
 */
export async function openEmbeddedForCli(dataDir: string, log: Logger): Promise<{ db: Db; close(): Promise<void> }> {
  if (holder(dataDir)) {
    if (!fs.existsSync(path.join(dataDir, SOCKET_NAME))) {
      throw new EmbeddedBusyError(`DATA_DIR: the embedded database in ${dataDir} is held by a running app without a socket.`);
    }
    const db = openPostgres(`postgresql://postgres@${encodeURIComponent(dataDir)}:5432/postgres`, { max: 1 });
    return { db, close: () => db.close() };
  }
  return openEmbedded(dataDir, log);
}
