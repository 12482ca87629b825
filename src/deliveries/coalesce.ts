interface Waiting<I, O> {
  item: I;
  resolve(out: O): void;
  reject(err: unknown): void;
}

/**
 * Turns a batch operation into a per-item call. Items that arrive while a batch is in flight go
 * out together as the next batch, so under load a statement serves many jobs, and alone each item
 * goes at once: nothing waits on a timer for company. Every caller gets its own result only after
 * the batch's statement has committed, so a batched status change is as durable as a single one.
 * `run` returns one result per item, in order; when it throws, every item of that batch rejects,
 * and so does every item that waited behind it when `failsWaiting` resolves true: the error is one
 * they would meet too (a database frozen, not one connection of it lost), and a caller must not wait
 * out one statement limit for the batch ahead and then another for its own. The next batch waits
 * for its answer.
 */
export function coalesce<I, O>(
  run: (items: I[]) => Promise<O[]>,
  maxBatch = 100,
  failsWaiting?: (err: unknown) => boolean | Promise<boolean>,
): (item: I) => Promise<O> {
  const waiting: Waiting<I, O>[] = [];
  let busy = false;
  const next = () => {
    if (busy || waiting.length === 0) return;
    busy = true;
    const batch = waiting.splice(0, maxBatch);
    run(batch.map((w) => w.item))
      .then(
        (out) => batch.forEach((w, i) => w.resolve(out[i]!)),
        async (err: unknown) => {
          for (const w of batch) w.reject(err);
          const shared = failsWaiting && (await Promise.resolve(failsWaiting(err)).catch(() => false));
          if (shared) for (const w of waiting.splice(0)) w.reject(err);
        },
      )
      .finally(() => {
        busy = false;
        next();
      });
  };
  return (item) =>
    new Promise<O>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      // Calls made in the same tick join the same batch.
      queueMicrotask(next);
    });
}

/**
 * One value per database handle, made on first use: coalesced statements must share a handle's
 * batches, and a test's second database must not share the first one's.
 */
export function perDb<D extends object, T>(make: (db: D) => T): (db: D) => T {
  const made = new WeakMap<D, T>();
  return (db) => {
    let value = made.get(db);
    if (value === undefined) {
      value = make(db);
      made.set(db, value);
    }
    return value;
  };
}

/**
 * A coalesced read of one row per key: `load` gets the batch's keys and returns rows carrying
 * `ord`, the key's 1-based position (SQL's `unnest(…) WITH ORDINALITY`); a key without a row
 * resolves to undefined.
 */
export function batchedRead<K, R extends { ord: number }>(
  load: (keys: K[]) => Promise<R[]>,
  failsWaiting?: (err: unknown) => boolean | Promise<boolean>,
): (key: K) => Promise<R | undefined> {
  return coalesce(async (keys: K[]) => {
    const rows = await load(keys);
    const byOrd = new Map(rows.map((r) => [r.ord, r]));
    return keys.map((_, i) => byOrd.get(i + 1));
  }, 100, failsWaiting);
}
