import type { Db, Queryable } from '../../src/db/index.ts';
import { until } from './signing.ts';

/**
 * Runs `hold` in a transaction, then starts `racing` on another connection and commits once
 * `racing` waits for the transaction's locks (or has ended without waiting); `then` runs in the
 * transaction just before it commits. For the races of two requests, played in one order.
 * @returns how `racing` ended.
 */
export async function whileHeld<T>(
  db: Db,
  hold: (tx: Queryable) => Promise<unknown>,
  racing: () => Promise<T>,
  then?: (tx: Queryable) => Promise<unknown>,
): Promise<PromiseSettledResult<T>> {
  let outcome: Promise<PromiseSettledResult<T>> | undefined;
  await db.transaction(async (tx) => {
    await hold(tx);
    const holder = { pid: await backendOf(tx) };
    let ended = false;
    outcome = racing()
      .then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason }))
      .finally(() => void (ended = true));
    await until(async () => ended || (await blockedBy(db, holder!.pid)).length > 0, 'the racing request to wait for the held locks, or to end');
    await then?.(tx);
  });
  return outcome!;
}

/**
 * The backends waiting for a lock that backend `holder` holds: this test's own, never those of
 * another test file sharing the database (each in its schema).
 */
export async function blockedBy(db: Queryable, holder: number): Promise<number[]> {
  const { rows } = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))', [holder]);
  return rows.map((r) => r.pid);
}

/** The backend of the connection `tx` runs on. */
export async function backendOf(tx: Queryable): Promise<number> {
  return (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}
