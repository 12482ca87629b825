import { Worker, type ConnectionOptions } from 'bullmq';
import type { AppContext } from '../src/context.ts';
import { sendDelivery, type Composers } from '../src/deliveries/service.ts';
import { QUEUES, type SendJob } from '../src/queues.ts';

// A dead worker's jobs come back after the lock lapses; short enough that a crash costs
// seconds, long enough that a busy event loop renews it in time.
const LOCK_MS = 15_000;
// A stalled job is a crash, not a poison message: let it come back a few times before failing.
const MAX_STALLED = 5;

/** Sends one delivery per job; job data is the delivery id only, the row is the truth. */
export function createSendWorker(ctx: AppContext, composers: Composers, concurrency = ctx.config.workerConcurrency) {
  const worker = new Worker<SendJob>(
    QUEUES.send,
    (job, token) => sendDelivery(ctx.db, ctx.mailer, composers, job, token),
    {
      connection: ctx.redis.options as ConnectionOptions,
      prefix: ctx.config.queuePrefix,
      concurrency,
      lockDuration: LOCK_MS,
      stalledInterval: LOCK_MS,
      maxStalledCount: MAX_STALLED,
    },
  );
  worker.on('error', (err) => ctx.log.error({ err }, 'send worker error'));
  worker.on('failed', (job, err) => {
    if (job) ctx.log.warn({ deliveryId: job.data.deliveryId, err: err.message }, 'delivery not sent');
  });
  return worker;
}
