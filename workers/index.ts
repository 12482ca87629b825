import type { Worker } from 'bullmq';
import type { AppContext } from '../src/context.ts';
import { settlesWithin } from '../src/deadline.ts';
import { withAddressAllowance } from '../src/deliveries/allowance.ts';
import { settleSentMarks } from '../src/deliveries/send.ts';
import type { Composer, Composers } from '../src/deliveries/types.ts';
import { stableMessageId } from '../src/mail/address.ts';
import { createConfirmComposer, createLetterComposer } from '../src/signatures/emails.ts';
import { createAlertComposer } from '../src/alerts/emails.ts';
import { createDigestComposer } from '../src/digests/emails.ts';
import { createOptinComposer } from '../src/subscribers/emails.ts';
import { createFanoutWorker, resumeFanoutsAtStart } from './fanout.ts';
import { createMaintenanceWorker, scheduleMaintenance } from './maintenance.ts';
import { createSendWorker } from './send.ts';

/** One composer per delivery kind; every message a delivery's attempts send has one Message-ID. */
export function createComposers(ctx: AppContext): Composers {
  const deps = { config: ctx.config, views: ctx.views, secret: ctx.secret };
  const composers: Composers = {
    confirm: createConfirmComposer(deps),
    letter: createLetterComposer(deps),
    optin: createOptinComposer(deps),
    alert: createAlertComposer(deps),
    digest: createDigestComposer(deps),
  };
  // Keyed by the delivery unless the composer keys it itself (an opt-in row is sent again, with a
  // new link, for each new request).
  const sameId = (compose: Composer): Composer => async (db, delivery) => {
    const message = await compose(db, delivery);
    return message && { messageId: stableMessageId(ctx.secret, 'delivery', delivery, ctx.config.mailFrom.address), ...message };
  };
  // Confirmations and opt-ins count against their address's allowance (see withAddressAllowance).
  return withAddressAllowance(ctx, Object.fromEntries(Object.entries(composers).map(([kind, compose]) => [kind, sameId(compose!)])));
}

const RESCHEDULE_EVERY_MS = 60_000;
/** How long stopping waits for the workers: a send in flight ends within the SMTP timeout (60 s). */
const CLOSE_WORKERS_MS = 65_000;
/** Past that, how long the sent marks still owed may take (RECORD_SENT_FOR_MS and a margin). */
const SENT_MARKS_CLOSE_MS = 75_000;

export interface Workers {
  workers: Worker[];
  /** Stops taking jobs, lets in-flight sends finish, closes connections. */
  close(): Promise<void>;
}

/**
 * Starts the send, maintenance and fan-out workers. `schedule: false` leaves the maintenance
 * schedules (sweep, purge, digest) alone, for a test that runs those tasks itself.
 */
export async function startWorkers(ctx: AppContext, opts: { concurrency?: number; schedule?: boolean } = {}): Promise<Workers> {
  const composers = createComposers(ctx);
  const workers = [createSendWorker(ctx, composers, opts.concurrency), createMaintenanceWorker(ctx), createFanoutWorker(ctx)];
  const schedule = opts.schedule ?? true;
  if (schedule) await scheduleMaintenance(ctx.queues);
  await resumeFanoutsAtStart(ctx);
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  // Schedules live in Redis: if Redis restarts empty, the sweeper that recovers from exactly that
  // must come back without waiting for a worker to restart. Only the missing ones: see scheduleMaintenance.
  const reschedule = schedule
    ? setInterval(() => {
        scheduleMaintenance(ctx.queues).catch((err) => ctx.log.warn({ err }, 'could not renew maintenance schedules'));
      }, RESCHEDULE_EVERY_MS)
    : undefined;
  reschedule?.unref();
  return {
    workers,
    async close() {
      clearInterval(reschedule);
      // Worker.close() waits for the jobs in progress to finish before it resolves, and for Redis:
      // while Redis is away it never does, and a process told to stop must not hang on as a worker
      // that takes nothing. A send in flight ends within the SMTP timeout; what matters past it
      // is the sent marks, which go to Postgres and are waited for here whatever Redis does.
      const closed = Promise.all(workers.map((w) => w.close()));
      if (await settlesWithin(closed, CLOSE_WORKERS_MS)) return;
      ctx.log.warn(`the workers did not stop within ${CLOSE_WORKERS_MS / 1000} s (are Redis and Postgres answering?): stopping without them; the jobs they hold come back once their locks lapse`);
      // Sent marks are tried again for a while when Postgres is away (send.ts); one that never
      // answers must not hold the process for ever. A mark not written sends its message again.
      if (!(await settlesWithin(settleSentMarks(ctx.db), SENT_MARKS_CLOSE_MS))) ctx.log.warn('sent marks not recorded: Postgres did not answer; those messages go again once their leases end');
    },
  };
}
