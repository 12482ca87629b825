import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import { createMailer } from '../../src/mail/transport.ts';
import { createQueues } from '../../src/queues.ts';
import { connectRedis } from '../../src/redis.ts';
import { loadViews } from '../../src/views.ts';
import { createWebApp, createWebServer } from '../../src/web/app.ts';
import { startWorkers, type Workers } from '../../workers/index.ts';
import { createTestDb, type DbKind, type TestDb } from './db.ts';
import { startSmtpSink, type SmtpSink } from './smtp-sink.ts';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestContext extends AppContext {
  testDb: TestDb;
  /** The SMTP sink every message goes to (unless `mail: 'outbox'`). */
  sink?: SmtpSink;
  dataDir: string;
  /** The env a separate process needs to share this context's database, Redis prefix and sink. */
  env: Record<string, string>;
  /** Starts the web app on a free port. @returns its base URL */
  startWeb(): Promise<string>;
  startWorkers(opts?: { concurrency?: number; schedule?: boolean }): Promise<Workers>;
  close(): Promise<void>;
}

export interface TestContextOptions {
  db: DbKind;
  /** Where mail goes: an in-process SMTP sink (default) or the dev outbox. */
  mail?: 'sink' | 'outbox';
  /** Extra environment for loadConfig (e.g. RATE_LIMIT_PER_IP). */
  env?: Record<string, string>;
  /** The app's log (default: silent), for a test of what it says. */
  log?: AppContext['log'];
}

/**
 * Everything a process builds at start, isolated for one test file: own database or schema,
 * own queue prefix on the real Redis, own SMTP sink, own DATA_DIR. Close it in afterAll/afterEach.
 */
export async function createTestContext(opts: TestContextOptions): Promise<TestContext> {
  const testDb = await createTestDb(opts.db);
  const sink = opts.mail === 'outbox' ? undefined : await startSmtpSink();
  // Under a dot-directory, as ~/.appeal would be: what serves files from DATA_DIR must not trip on it.
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), '.appeal-test-'));
  const prefix = `test-${crypto.randomBytes(5).toString('hex')}`;
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: prefix,
    SESSION_SECRET: crypto.randomBytes(24).toString('base64url'),
    MAIL_FROM: 'Appeal Test <letters@appeal.test>',
    ORG_NAME: 'Appeal Test',
    LOG_LEVEL: 'silent',
    ...(sink ? { SMTP_URL: sink.url } : {}),
    ...(testDb.url ? { DATABASE_URL: testDb.url } : {}),
    ...opts.env,
  };
  const config = loadConfig({ ...env, DATABASE_URL: undefined });
  const redis = await connectRedis(config);
  const queues = createQueues(redis.options, prefix);
  const mailer = createMailer(config);
  const servers: import('node:http').Server[] = [];
  const workerSets: Workers[] = [];
  const ctx: TestContext = {
    config,
    db: testDb.db,
    redis,
    queues,
    mailer,
    views: loadViews(),
    secret: config.sessionSecret!,
    log: opts.log ?? pino({ level: 'silent' }),
    testDb,
    sink,
    dataDir,
    env,
    async startWeb() {
      const app = createWebApp(ctx);
      const server = await new Promise<import('node:http').Server>((resolve) => {
        const s = createWebServer(app).listen(0, '127.0.0.1', () => resolve(s));
      });
      servers.push(server);
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      // Links in emails must point at this server.
      (ctx as { config: typeof config }).config = Object.freeze({ ...ctx.config, publicUrl: url });
      return url;
    },
    async startWorkers(o) {
      const w = await startWorkers(ctx, o);
      workerSets.push(w);
      return w;
    },
    async close() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
      for (const w of workerSets) await w.close();
      // Jobs still to be added after an answer (Queues.later) first: added after the keys are
      // deleted, they stayed in Redis for good under this file's prefix.
      await queues.settled();
      await Promise.all([queues.send, queues.maintenance, queues.fanout].map((q) => q.obliterate({ force: true }).catch(() => {})));
      await deleteKeys(redis.client, `${prefix}:*`);
      await queues.close();
      mailer.close();
      await redis.close();
      await sink?.close();
      await testDb.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return ctx;
}

/** Deletes what an app a test started as a process of its own kept in Redis under `prefix`: its queues, schedules and counts. */
export async function deletePrefix(prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis(TEST_REDIS_URL);
  try {
    await deleteKeys(client, `${prefix}:*`);
  } finally {
    client.disconnect();
  }
}

async function deleteKeys(client: import('ioredis').Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await client.del(...keys);
  } while (cursor !== '0');
}
