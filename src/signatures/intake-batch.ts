// Signatures arriving together share their round trips: ids reserved in blocks (reservedIds), one
// statement storing a batch (intake), one addBulk for their send jobs, added after the answer.
import { isDatabaseTooSlow, isDatabaseUnavailable, type Queryable } from '../db/index.ts';
import { settlesWithin } from '../deadline.ts';
import { batchedRead, coalesce, perDb } from '../deliveries/coalesce.ts';
import { enqueueDeliveries, sendPriority, type Queues } from '../queues.ts';
import * as q from './queries.ts';
import type { SignDeps } from './service.ts';

/** Signature ids taken from the sequence at once: one round trip serves this many signatures. */
const ID_BLOCK = 100;
/**
 * Reserved ids older than this are dropped: lists show signatures in id order, and with several
 * web processes each holding a block, an old block would file a new signature among old ones.
 * Under load a block lasts milliseconds; when it is quiet a fresh one costs one round trip.
 */
const ID_BLOCK_MS = 1_000;

/**
 * Signatures arriving together share their statement and their enqueue: under load a web
 * process's round trips to Postgres and Redis, not its own work, set how many it takes per second
 * (`npm run bench`, intake). Each caller still answers only after its own rows have committed.
 */
export const intake = perDb((db: Queryable) => ({
  campaign: batchedRead((slugs: string[]) => q.getCampaignsForSigning(db, slugs), (err) => databaseFrozen(db, err)),
  nextId: reservedIds(() => q.reserveSignatureIds(db, ID_BLOCK), ID_BLOCK_MS),
  store: coalesce(async (sigs: q.NewSignature[]): Promise<(q.StoredSignature | Error)[]> => {
    try {
      return await insertSignatures(db, sigs);
    } catch (err) {
      // A database away or too slow (the web's statement limit) is no row's doing: every caller
      // hears of it now, not one statement limit later each. (A deadlock is tried again alone:
      // that is quick, and likely to go through.)
      if (sigs.length === 1 || notAboutOneRow(err)) throw err;
      // One row the database refuses must not fail the others that shared its statement: each
      // goes again alone, and only the refused one's caller hears of it.
      const alone = (s: q.NewSignature) =>
        insertSignatures(db, [s]).then((r) => r[0]!, (e: unknown) => (e instanceof Error ? e : new Error(String(e))));
      return Promise.all(sigs.map(alone));
    }
  }, 100, (err) => databaseFrozen(db, err)),
}));
const notAboutOneRow = (err: unknown) => isDatabaseUnavailable(err) || isDatabaseTooSlow(err);

/** How long a database that answered a batch with an error has to answer `SELECT 1` (or refuse it: then the next batch fails as fast). */
const PROBE_MS = 2_000;

/**
 * Whether the signatures queued behind a batch that failed with `err` would fail too, so they get
 * its error at once (coalesce). A statement Postgres cancelled at its limit (waiting for a lock)
 * would be cancelled again. A connection lost is the database away when it does not answer a
 * probe soon either (a frozen server); one connection lost (a backend killed, a firewall that
 * forgot it) is not: another pooled connection takes the next batch.
 */
async function databaseFrozen(db: Queryable, err: unknown): Promise<boolean> {
  if (isDatabaseTooSlow(err)) return true;
  if (!isDatabaseUnavailable(err)) return false;
  return !(await settlesWithin(db.query('SELECT 1'), PROBE_MS));
}

/**
 * Stores signatures (insertSignatures), once more when a target was deleted while the statement
 * waited for its campaign (removeTarget holds it): its letters' key check fails then, and a second
 * statement reads the targets as they are now.
 */
async function insertSignatures(db: Queryable, sigs: q.NewSignature[]): Promise<q.StoredSignature[]> {
  try {
    return await q.insertSignatures(db, sigs);
  } catch (err) {
    if ((err as { code?: unknown }).code !== FOREIGN_KEY_VIOLATION) throw err;
    return q.insertSignatures(db, sigs);
  }
}
const FOREIGN_KEY_VIOLATION = '23503';

/** Rows of one kind whose send jobs are to be added. */
interface JobsToAdd {
  ids: number[];
  kind: 'confirm' | 'letter';
}

const enqueueTogether = perDb((queues: Pick<Queues, 'send'>) =>
  coalesce(async (batches: JobsToAdd[]) => {
    for (const kind of ['confirm', 'letter'] as const) {
      const ids = batches.flatMap((b) => (b.kind === kind ? b.ids : []));
      if (ids.length) await enqueueDeliveries(queues, ids, 0, { priority: sendPriority(kind) });
    }
    return batches.map(() => undefined);
  }),
);

/**
 * Adds the send jobs of committed rows without holding up the answer: jobs of requests that
 * arrive together share one addBulk per kind (confirmations go before letters: sendPriority), and
 * a job not added (Redis away, the process gone) is added by the sweeper, as after any crash
 * between commit and enqueue.
 */
export function addJobsAfterAnswer(deps: Pick<SignDeps, 'queues' | 'log'>, ids: number[], kind: JobsToAdd['kind']): void {
  if (ids.length === 0) return;
  deps.queues.later(
    enqueueTogether(deps.queues)({ ids, kind }).catch((err: unknown) =>
      deps.log.warn({ err, deliveries: ids.length }, 'send jobs not added; the sweeper adds them once Redis takes jobs again (within two minutes of that)'),
    ),
  );
}

/**
 * Hands out ids from blocks taken with `take`, none from a block older than `maxAgeMs`; callers
 * that find none left share one refill.
 */
export function reservedIds(take: () => Promise<number[]>, maxAgeMs: number): () => Promise<number> {
  let ids: number[] = [];
  let takenAt = 0;
  let refill: Promise<void> | undefined;
  return async () => {
    if (performance.now() - takenAt > maxAgeMs) ids = [];
    while (ids.length === 0) {
      refill ??= take()
        .then((got) => {
          ids = got;
          takenAt = performance.now();
        })
        .finally(() => (refill = undefined));
      await refill;
    }
    return ids.shift()!;
  };
}
