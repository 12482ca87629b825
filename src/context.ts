import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { Db } from './db/index.ts';
import type { Mailer } from './mail/transport.ts';
import type { Queues } from './queues.ts';
import type { RedisHandle } from './redis.ts';
import type { Views } from './views.ts';

/** What an entry point builds once and passes down. Nothing here is created on import. */
export interface AppContext {
  config: Readonly<Config>;
  db: Db;
  redis: RedisHandle;
  queues: Queues;
  mailer: Mailer;
  views: Views;
  /** Server secret: signs cookies, derives emailed tokens, keys IP hashes. */
  secret: string;
  log: Logger;
}
