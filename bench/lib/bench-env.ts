import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { openPostgres, type Db } from '../../src/db/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createQueues, type Queues } from '../../src/queues.ts';
import { connectRedis, type RedisHandle } from '../../src/redis.ts';

export const BENCH_DATABASE_URL =
  process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** One measurement's own world: a Postgres schema, a queue prefix, a DATA_DIR. */
export interface BenchEnv {
  db: Db;
  redis: RedisHandle;
  queues: Queues;
  prefix: string;
  /** The environment a child process needs to boot Appeal on the same schema and prefix. */
  env: Record<string, string>;
  /** Empties the send queue between rounds. */
  resetQueues(): Promise<void>;
  /** Drops the schema, the queues and every key under the prefix. */
  close(): Promise<void>;
}

export async function deleteKeys(client: RedisHandle['client'], pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await client.unlink(...keys);
  } while (cursor !== '0');
}

export async function createBenchEnv(): Promise<BenchEnv> {
  const id = crypto.randomBytes(5).toString('hex');
  const schema = `bench_${id}`;
  const prefix = `bench-${id}`;
  const admin = openPostgres(BENCH_DATABASE_URL, { max: 1 });
  await admin.exec(`CREATE SCHEMA ${schema}`);
  const db = openPostgres(BENCH_DATABASE_URL, { searchPath: schema, max: 4 });
  await migrate(db);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-bench-'));
  const url = new URL(BENCH_DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const env: Record<string, string> = {
    DATABASE_URL: url.toString(),
    REDIS_URL: BENCH_REDIS_URL,
    QUEUE_PREFIX: prefix,
    DATA_DIR: dataDir,
    SESSION_SECRET: crypto.randomBytes(24).toString('base64url'),
    MAIL_FROM: 'Appeal Bench <letters@bench.example>',
    ORG_NAME: 'Appeal Bench',
    PUBLIC_URL: 'http://127.0.0.1:3000',
    LOG_LEVEL: 'warn',
  };
  const redis = await connectRedis(loadConfig(env));
  const queues = createQueues(redis.options, prefix);
  const obliterate = () =>
    Promise.all([queues.send, queues.maintenance, queues.fanout].map((q) => q.obliterate({ force: true, count: 5000 })));
  return {
    db,
    redis,
    queues,
    prefix,
    env,
    async resetQueues() {
      await obliterate();
    },
    async close() {
      await obliterate().catch(() => {});
      await deleteKeys(redis.client, `${prefix}:*`);
      await queues.close();
      await redis.close();
      await db.close();
      await admin.exec(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
