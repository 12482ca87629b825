import { Worker, type ConnectionOptions } from 'bullmq';
import type { AppContext } from '../src/context.ts';
import { fanOutCaseUpdate, resumeFanouts } from '../src/alerts/service.ts';
import { QUEUES, workerErrorLog, type FanoutJob } from '../src/queues.ts';

// A fan-out is a loop of short pages: one at a time per process is plenty, and it keeps the
// send workers' share of the database.
const CONCURRENCY = 1;
// A killed worker's fan-out comes back once its lock lapses, and every send waits on it, so the
// lock is short. A false stall only runs the fan-out twice, which ON CONFLICT makes harmless.
const LOCK_MS = 10_000;
const STALLED_CHECK_MS = 5_000;
// A stall is a crash, not a poison message: let it come back a few times before failing.
const MAX_STALLED = 5;

/** Turns each case update into alert deliveries; job data is the update id only. */
export function createFanoutWorker(ctx: AppContext) {
  const worker = new Worker<FanoutJob>(
    QUEUES.fanout,
    async (job) => {
      const started = Date.now();
      const result = await fanOutCaseUpdate(ctx.db, ctx, job.data.caseUpdateId);
      const memory = process.memoryUsage();
      ctx.log.info(
        { caseUpdateId: job.data.caseUpdateId, ...result, ms: Date.now() - started, rssMb: Math.round(memory.rss / 2 ** 20), heapMb: Math.round(memory.heapUsed / 2 ** 20) },
        'case update fanned out',
      );
      return result;
    },
    {
      connection: ctx.redis.options as ConnectionOptions,
      prefix: ctx.config.queuePrefix,
      concurrency: CONCURRENCY,
      lockDuration: LOCK_MS,
      stalledInterval: STALLED_CHECK_MS,
      maxStalledCount: MAX_STALLED,
    },
  );
  worker.on('error', workerErrorLog(ctx.log, 'fanout'));
  worker.on('failed', (job, err) => ctx.log.error({ caseUpdateId: job?.data.caseUpdateId, err: err.message }, 'fan-out failed'));
  return worker;
}

/** At start, fan-outs whose job was lost get one again; the sweep task repeats this. */
export async function resumeFanoutsAtStart(ctx: AppContext): Promise<void> {
  const resumed = await resumeFanouts(ctx.db, ctx.queues);
  if (resumed) ctx.log.info({ resumed }, 'unfinished fan-outs re-enqueued');
}
