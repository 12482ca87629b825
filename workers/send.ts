import { UnrecoverableError, Worker, type ConnectionOptions } from 'bullmq';
import type { AppContext } from '../src/context.ts';
import { unavailableCause } from '../src/db/index.ts';
import { DATABASE_AWAY_RETRY_MS, sendBackoff, sendDelivery, settleSentMarks, TemporaryFailure } from '../src/deliveries/send.ts';
import type { Composers } from '../src/deliveries/types.ts';
import { QUEUES, workerErrorLog, type SendJob } from '../src/queues.ts';
import { throttledErrorLog } from '../src/log.ts';
import { relayHint } from '../src/mail/transport.ts';

// A dead worker's jobs come back after the lock lapses; short enough that a crash costs
// seconds, long enough that a busy event loop renews it in time.
const LOCK_MS = 15_000;
// A stalled job is a crash, not a poison message: let it come back a few times before failing.
const MAX_STALLED = 5;
/** Deferrals in a row, with nothing accepted between, that say the relay defers everything. */
const DEFERRED_RUN = 10;

/** A job ends before its sent mark commits; closing waits for those marks too. */
class SendWorker extends Worker<SendJob> {
  constructor(
    private readonly db: AppContext['db'],
    ...args: ConstructorParameters<typeof Worker<SendJob>>
  ) {
    super(...args);
  }

  override async close(force?: boolean): Promise<void> {
    await super.close(force);
    await settleSentMarks(this.db);
  }
}

/** Sends one delivery per job; job data is the delivery id only, the row is the truth. */
export function createSendWorker(ctx: AppContext, composers: Composers, concurrency = ctx.config.workerConcurrency) {
  const unrecorded = (err: unknown, deliveryId: number) =>
    ctx.log.error({ err, deliveryId }, 'sent mark not recorded: the message goes again when its lease ends');
  // Every job slot meets it at once in an outage: one line every 30 s says why sends stopped.
  const databaseAway = throttledErrorLog(
    ctx.log,
    (err) => `database unavailable (${unavailableCause(err)}): sends wait, each tried again every ${DATABASE_AWAY_RETRY_MS / 1000} s, using no attempt`,
    30_000,
    'warn',
  );
  const worker = new SendWorker(
    ctx.db,
    QUEUES.send,
    (job, token) => sendDelivery(ctx.db, ctx.mailer, composers, job, token, unrecorded, (err) => databaseAway(err as Error)),
    {
      connection: ctx.redis.options as ConnectionOptions,
      prefix: ctx.config.queuePrefix,
      concurrency,
      lockDuration: LOCK_MS,
      stalledInterval: LOCK_MS,
      maxStalledCount: MAX_STALLED,
      settings: { backoffStrategy: sendBackoff },
    },
  );
  worker.on('error', workerErrorLog(ctx.log, 'send'));
  // A relay that cannot be reached or refuses the login holds every letter; one retry at info
  // level a letter would not say so.
  const relayTrouble = throttledErrorLog<TemporaryFailure>(ctx.log, (err) => `the mail relay failed: letters wait and are retried; ${relayHint(err.relayReply)}`, 30_000, 'warn');
  // One recipient deferred (4xx) is routine, greylisting say, and logged at info; a run of them
  // with nothing accepted between is the relay deferring everything, which an outage of its own
  // upstream, a quota or a block looks like: said at once, not when attempts run out an hour on.
  let deferredInARow = 0;
  const relayDeferring = throttledErrorLog<TemporaryFailure>(
    ctx.log,
    (err) => `the mail relay deferred the last ${deferredInARow} emails in a row and accepted none (last reply: ${err.relayReply.slice(0, 200)}): they wait and are retried; check the relay's queue, quota and logs`,
    30_000,
    'warn',
  );
  // Not a failure of the job, but a letter that went nowhere: the log should square with the count.
  worker.on('completed', (job, outcome) => {
    if (outcome === 'suppressed') ctx.log.info({ deliveryId: job.data.deliveryId }, 'delivery failed: its address is on the suppression list');
    else if (outcome === 'limited') ctx.log.info({ deliveryId: job.data.deliveryId }, 'delivery held: its address had as many confirmation and opt-in emails as it may have for now');
    // Rare, and a sign of trouble when many: a copy of the database (a restored backup) started
    // on this Redis with this QUEUE_PREFIX takes the other's jobs and finds no rows for them.
    else if (outcome === 'missing') ctx.log.info({ deliveryId: job.data.deliveryId }, 'no such delivery in this database: deleted since (its target removed or its update withdrawn with what was not sent yet, retention, forget), or the job is another database\'s on the same QUEUE_PREFIX');
    // Every send, at LOG_LEVEL=debug: by id, so a relay's log can be matched through the row.
    else ctx.log.debug({ deliveryId: job.data.deliveryId, outcome }, 'delivery done');
    if (outcome === 'sent') deferredInARow = 0;
  });
  worker.on('failed', (job, err) => {
    if (!job) return;
    // A job BullMQ will run again is a retry; one it will not is a letter that failed for good.
    const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (final) ctx.log.warn({ deliveryId: job.data.deliveryId, err: err.message }, 'delivery failed');
    else {
      // The row's count: a job added again after Redis lost its data starts its own from 1.
      const attempt = err instanceof TemporaryFailure ? err.attempt : job.attemptsMade;
      ctx.log.info({ deliveryId: job.data.deliveryId, attempt, err: err.message }, 'delivery will be retried');
      if (err instanceof TemporaryFailure && err.relay) relayTrouble(err);
      else if (err instanceof TemporaryFailure && ++deferredInARow >= DEFERRED_RUN) relayDeferring(err);
    }
  });
  return worker;
}
