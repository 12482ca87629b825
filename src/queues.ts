import { ErrorCode, Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { Logger } from 'pino';
import { throttledErrorLog } from './log.ts';
import { NETWORK } from './db/index.ts';
import { Redis, type RedisOptions } from 'ioredis';

/** Queue names. A processor for each lives in workers/. */
export const QUEUES = {
  /** One job per delivery row; job id = delivery id. */
  send: 'send',
  /** Upkeep: sweeper, retention purge, digests (each periodic), and a subscriber's opt-in sent again after the resend gap. */
  maintenance: 'maintenance',
  /** One job per case update: pages through subscribers and creates alert deliveries. */
  fanout: 'fanout',
} as const;

/** BullMQ's codes for a job, or its lock, that Redis no longer holds when a worker finishes it. */
const JOB_GONE: ReadonlySet<unknown> = new Set([ErrorCode.JobNotExist, ErrorCode.JobLockNotExist]);

/**
 * A BullMQ worker's 'error' listener. A job gone from Redis when the worker finishes it (Redis
 * restarted empty, or flushed) is no error of the letter's: what became of it is in its row, and
 * the sweeper adds again what still waits. Logged as an error, it read like a letter lost.
 */
export function workerErrorLog(log: Pick<Logger, 'error' | 'warn'>, worker: string): (err: Error) => void {
  const other = throttledErrorLog(log, `${worker} worker error`);
  const gone = throttledErrorLog(log, `Redis no longer holds a job the ${worker} worker finished (restarted empty?): the database says what became of it, and the sweeper adds again what still waits`, 30_000, 'warn');
  // Redis away: the connection's own warning says so (see boot); the worker takes jobs once it is back.
  const away = throttledErrorLog(log, `the ${worker} worker waits for Redis, out of reach`, 30_000, 'warn');
  return (err) => {
    const code = (err as { code?: unknown }).code;
    (JOB_GONE.has(code) ? gone : NETWORK.has(code) || err.message === 'Connection is closed.' ? away : other)(err);
  };
}

export interface SendJob {
  deliveryId: number;
}
export type MaintenanceJob = { task: 'sweep' } | { task: 'purge' } | { task: 'digest' } | { task: 'optin-again'; subscriberId: number };
export interface FanoutJob {
  caseUpdateId: number;
}

/**
 * Send attempts before a delivery counts as failed; the row's attempts column is the truth.
 * With the doubling backoff (retryDelay in src/deliveries/send-failure.ts), 12 attempts span 35–70 minutes: past greylisting (postgrey
 * refuses retries for 5 minutes) and a short relay outage. 8 gave up after 2–4 minutes.
 */
export const MAX_SEND_ATTEMPTS = 12;

/** The send worker's own backoff strategy (BullMQ's `settings.backoffStrategy`). */
export const SEND_BACKOFF = 'delivery-attempts';

export const SEND_JOB_OPTIONS: JobsOptions = {
  // BullMQ's own count is a backstop: the worker fails the row after MAX_SEND_ATTEMPTS claims.
  attempts: MAX_SEND_ATTEMPTS + 2,
  // The delay follows the row's attempts (sendBackoff in src/deliveries/send-failure.ts), not the job's: a
  // job added again after Redis lost its data carries on where the letter was, not at 2 s.
  backoff: { type: SEND_BACKOFF },
  // A completed job is dead weight: the row says `sent`, or will once the worker's next statement
  // commits. Re-adding a removed id is safe because the claim skips rows that are not queued or
  // retry, and waits out a live lease.
  removeOnComplete: true,
  removeOnFail: { age: 7 * 24 * 3600 },
};

export interface Queues {
  send: Queue<SendJob>;
  maintenance: Queue<MaintenanceJob>;
  fanout: Queue<FanoutJob>;
  /**
   * Runs an enqueue nobody waits for: adding the jobs of rows already committed, after the request
   * that made them has been answered. It must handle its own failure (the sweeper adds the jobs of
   * rows left without one); closing the queues waits for it first.
   */
  later(enqueue: Promise<void>): void;
  /** Resolves once every enqueue handed to `later` so far has ended. */
  settled(): Promise<void>;
  /** A plain connection for looking at job keys without BullMQ's per-job Lua scripts (the sweeper). */
  redis: Redis;
  close(): Promise<void>;
}

export function createQueues(connection: RedisOptions, prefix: string): Queues {
  // ioredis's and BullMQ's option types differ only in optional callback signatures.
  const opts = { connection: connection as ConnectionOptions, prefix };
  const send = new Queue<SendJob>(QUEUES.send, opts);
  const maintenance = new Queue<MaintenanceJob>(QUEUES.maintenance, opts);
  const fanout = new Queue<FanoutJob>(QUEUES.fanout, opts);
  const all = [send, maintenance, fanout];
  // Without a listener a lost connection would be an unhandled 'error' event.
  for (const q of all) q.on('error', () => {});
  const redis = new Redis({ ...connection, lazyConnect: true });
  redis.on('error', () => {});
  const pending = new Set<Promise<void>>();
  return {
    send,
    maintenance,
    fanout,
    redis,
    later(enqueue) {
      pending.add(enqueue);
      // The caller logs its own failure; a rejection left here would end the process.
      const done = () => void pending.delete(enqueue);
      void enqueue.then(done, done);
    },
    async settled() {
      await Promise.allSettled(pending);
    },
    async close() {
      await this.settled();
      await Promise.all(all.map((q) => q.close()));
      redis.disconnect();
    },
  };
}

/**
 * The job id of a delivery's send job. BullMQ refuses integer-like custom ids (they would
 * collide with its own counter), so the delivery id carries a prefix; it is still one id per row.
 */
export const deliveryJobId = (deliveryId: number) => `d-${deliveryId}`;

/**
 * The BullMQ priority of letters to officials. BullMQ takes a job without a priority before any
 * with one, and a lower number before a higher: a confirmation or opt-in someone is waiting for
 * has none, so it goes first. In first-come order, every confirmed signature of a campaign aimed
 * at a parliament queued sixty letters ahead of the next signer's confirmation, and in a surge
 * behind a relay taking 5 messages a second signers waited minutes for it, hours at a provider's
 * hourly quota.
 */
export const LETTER_PRIORITY = 1;

/**
 * The BullMQ priority of a digest's letters. A worker process sends one digest at a time (each is
 * built whole in memory), so a digest job waits in its job slot for its turn: behind the
 * confirmations and letters, a day's digests hold them no longer than one digest takes to send
 * (in first-come order, every digest of the run went before them); before alerts, a large
 * update's fan-out does not hold officials' daily letters back for hours.
 */
export const DIGEST_PRIORITY = 2;

/**
 * The BullMQ priority of an update's alerts, after everything else: a confirmation or opt-in
 * someone is waiting for, and the letters to officials, go before the hundreds of thousands of
 * alerts a case update queues, not hours after them.
 */
export const BULK_PRIORITY = 3;

/** The priority a delivery's send job gets, by its kind; undefined for none (first). */
export function sendPriority(kind: string | null): number | undefined {
  return kind === 'alert' ? BULK_PRIORITY : kind === 'digest' ? DIGEST_PRIORITY : kind === 'letter' ? LETTER_PRIORITY : undefined;
}

/** How send jobs are added: `priority` as sendPriority gives it for their deliveries' kind. */
export interface EnqueueOptions {
  priority?: number | undefined;
}

/**
 * Adds one send job per delivery id, with `priority` (sendPriority of their kind). Adding an id
 * that has a job already is a no-op.
 */
export async function enqueueDeliveries(queues: Pick<Queues, 'send'>, ids: readonly number[], delayMs = 0, { priority }: EnqueueOptions = {}): Promise<void> {
  for (let i = 0; i < ids.length; i += 1000) {
    await queues.send.addBulk(
      ids.slice(i, i + 1000).map((id) => ({
        name: 'send',
        data: { deliveryId: id },
        opts: { ...SEND_JOB_OPTIONS, jobId: deliveryJobId(id), ...(delayMs > 0 && { delay: delayMs }), ...(priority && { priority }) },
      })),
    );
  }
}
