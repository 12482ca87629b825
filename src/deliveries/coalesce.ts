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
 * `run` returns one result per item, in order; when it throws, every item of that batch rejects.
 */
export function coalesce<I, O>(run: (items: I[]) => Promise<O[]>, maxBatch = 100): (item: I) => Promise<O> {
  const waiting: Waiting<I, O>[] = [];
  let busy = false;
  const next = () => {
    if (busy || waiting.length === 0) return;
    busy = true;
    const batch = waiting.splice(0, maxBatch);
    run(batch.map((w) => w.item))
      .then(
        (out) => batch.forEach((w, i) => w.resolve(out[i]!)),
        (err: unknown) => batch.forEach((w) => w.reject(err)),
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
