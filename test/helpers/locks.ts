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
    const { rows: [holder] } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    let ended = false;
    outcome = racing()
      .then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason }))
      .finally(() => void (ended = true));
    const waits = async () => (await db.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))', [holder!.pid])).rows.length > 0;
    await until(async () => ended || (await waits()), 'the racing request to wait for the held locks, or to end');
    await then?.(tx);
  });
  return outcome!;
}
