import { isDeepStrictEqual } from 'node:util';
import { DelayedError, Worker, type ConnectionOptions } from 'bullmq';
import type { AppContext } from '../src/context.ts';
import { sweepDeliveries } from '../src/deliveries/service.ts';
import { purgeExpired, tidyEmbedded } from '../src/retention/service.ts';
import { resumeFanouts } from '../src/alerts/service.ts';
import { runDueDigests } from '../src/digests/service.ts';
import { resumeOwedOptins, sendOptinAgain } from '../src/subscribers/service.ts';
import { QUEUES, workerErrorLog, type MaintenanceJob, type Queues } from '../src/queues.ts';

export const SWEEP_EVERY_MS = 30_000;
/** How soon an opt-in-again job looks again while the email before it is still being sent. */
const OPTIN_AGAIN_RECHECK_MS = 15_000;
export const PURGE_EVERY_MS = 24 * 3600_000;
/**
 * Each campaign's digest goes out in the first check after its digest_hour: checks run on the
 * quarter hours of the clock (UTC), so a digest set for 21:00 is made at 21:00, not up to a
 * quarter later depending on when a worker started.
 */
export const DIGEST_CHECKS = { pattern: '0,15,30,45 * * * *', tz: 'UTC' };

/** The periodic jobs, by scheduler id. */
const SCHEDULES = {
  sweep: { every: SWEEP_EVERY_MS },
  purge: { every: PURGE_EVERY_MS },
  digest: DIGEST_CHECKS,
} as const;

// A sweep every 30 s is 2,880 jobs a day: keep the last few for the queues board, not all forever.
const SCHEDULED_JOB_OPTS = { removeOnComplete: { count: 50 }, removeOnFail: { count: 200 } };

/**
 * Registers the periodic jobs Redis does not hold as written here: missing ones (a first start,
 * Redis restarted empty) and ones a release changed. Every worker process calls this at start and
 * every minute. One held as written is left alone: upserting it replaces its next job with the next
 * one due from now, so a digest check held back past its quarter hour behind a long job (another
 * worker's, or one still due while this worker was stopped) would be dropped, its digests a
 * quarter hour late.
 */
export async function scheduleMaintenance(queues: Pick<Queues, 'maintenance'>): Promise<void> {
  for (const id of Object.keys(SCHEDULES) as (keyof typeof SCHEDULES)[]) {
    const held = await queues.maintenance.getJobScheduler(id);
    const wanted: { every?: number; pattern?: string; tz?: string } = SCHEDULES[id];
    const template = templateOf(id);
    const same = held && held.every === wanted.every && held.pattern === wanted.pattern && held.tz === wanted.tz && held.name === template.name
      && isDeepStrictEqual(held.template?.data, template.data) && isDeepStrictEqual(held.template?.opts, template.opts);
    if (!same) await queues.maintenance.upsertJobScheduler(id, SCHEDULES[id], template);
  }
}

/** The job a schedule adds each time. */
const templateOf = (id: keyof typeof SCHEDULES) => ({ name: id, data: { task: id }, opts: SCHEDULED_JOB_OPTS });

/** How far behind the scheduler's clock a worker's may be and still check for the quarter hour meant. */
const CLOCK_SKEW_MS = 60_000;

/**
 * The quarter hour of the clock a digest check at `at` is for: the last one begun, or one due
 * within CLOCK_SKEW_MS (a worker whose clock is a little behind). Not the nearest: a check held
 * up 8 minutes behind a long job would count as the next quarter hour's and send its digests
 * early, and signers confirming meanwhile would wait a day.
 */
export function checkedQuarterHour(at: Date): Date {
  const quarter = 15 * 60_000;
  return new Date(Math.floor((at.getTime() + CLOCK_SKEW_MS) / quarter) * quarter);
}

export function createMaintenanceWorker(ctx: AppContext) {
  const worker = new Worker<MaintenanceJob>(
    QUEUES.maintenance,
    async (job, token) => {
      switch (job.data.task) {
        case 'sweep': {
          const requeued = await sweepDeliveries(ctx.db, ctx.queues);
          if (requeued) ctx.log.info({ requeued }, 'sweeper re-enqueued deliveries');
          const fanouts = await resumeFanouts(ctx.db, ctx.queues);
          if (fanouts) ctx.log.info({ fanouts }, 'sweeper re-enqueued unfinished fan-outs');
          const optins = await resumeOwedOptins(ctx.db, ctx.queues);
          if (optins) ctx.log.info({ optins }, 'sweeper re-enqueued opt-in emails asked for again');
          return { requeued, fanouts, optins };
        }
        case 'purge': {
          const purged = await purgeExpired(ctx.db, ctx.config);
          // Counts only: what was deleted is gone, and the log must not keep it.
          if (purged.signatures || purged.subscribers || purged.unsubscribed || purged.alerts) ctx.log.info(purged, 'retention purge deleted unconfirmed and departed records, and folded old alerts into counts');
          return { ...purged, vacuumed: await tidyEmbedded(ctx.db) };
        }
        case 'digest': {
          // As of the quarter hour this check is for: a worker whose clock is a little behind the
          // scheduler's must not find 21:00's digests not yet due until 21:15.
          const runs = await runDueDigests(ctx.db, ctx.queues, checkedQuarterHour(new Date()));
          if (runs.length) ctx.log.info({ digests: runs.map((r) => ({ campaignId: r.campaignId, signatures: r.signatures })) }, 'digests created');
          return { digests: runs.length };
        }
        case 'optin-again': {
          const outcome = await sendOptinAgain(ctx.db, ctx, job.data.subscriberId);
          // The email before it is still with a slow relay, composed before this request: once
          // that send ends (its lease bounds it) the email goes again, or its retry says it all.
          if (outcome === 'sending' && token) {
            await job.moveToDelayed(Date.now() + OPTIN_AGAIN_RECHECK_MS, token);
            throw new DelayedError();
          }
          return { again: outcome === 'again' };
        }
        default:
          // A task this version does not know (a newer version's job, during an upgrade): said, not passed over.
          ctx.log.warn({ task: (job.data as { task?: unknown }).task }, 'maintenance job of a task this version does not know: done without running');
          return null;
      }
    },
    { connection: ctx.redis.options as ConnectionOptions, prefix: ctx.config.queuePrefix, concurrency: 1 },
  );
  worker.on('error', workerErrorLog(ctx.log, 'maintenance'));
  worker.on('failed', (job, err) => ctx.log.error({ task: job?.data.task, err: err.message }, 'maintenance job failed'));
  return worker;
}
