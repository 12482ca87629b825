import type { Queryable } from '../../src/db/index.ts';
import type { Child } from './child.ts';
import { sleep } from './stats.ts';

const POLL_MS = 25;

export interface Drained {
  seconds: number;
  done: number;
  failed: number;
}

/**
 * Tells each worker child to start and waits until together they have finished `n` jobs or
 * messages (or `n` completions of whatever `startArgs` asks for). Timing starts at `start`, so
 * process start-up and connecting are not counted.
 * @throws when nothing moves for `stallMs`.
 */
export async function drain(
  children: Child[],
  n: number,
  opts: { stallMs?: number; startArgs?: Record<string, unknown> } = {},
): Promise<Drained> {
  const [first] = children;
  if (children.length === 1 && first) {
    return first.profile(() => run(children, n, opts));
  }
  return run(children, n, opts);
}

async function run(children: Child[], n: number, opts: { stallMs?: number; startArgs?: Record<string, unknown> }): Promise<Drained> {
  const stallMs = opts.stallMs ?? 60_000;
  const counts = () => Promise.all(children.map((c) => c.call<{ done: number; failed: number }>('count')));
  const before = await counts();
  const t0 = performance.now();
  await Promise.all(children.map((c) => c.call('start', opts.startArgs ?? { n: Math.ceil(n / children.length) })));
  let last = -1;
  let lastChange = t0;
  for (;;) {
    const now = await counts();
    const done = now.reduce((s, c, i) => s + c.done - before[i]!.done, 0);
    const failed = now.reduce((s, c, i) => s + c.failed - before[i]!.failed, 0);
    const t = performance.now();
    if (done + failed >= n) return { seconds: (t - t0) / 1000, done, failed };
    if (done + failed !== last) {
      last = done + failed;
      lastChange = t;
    } else if (t - lastChange > stallMs) {
      throw new Error(`stalled at ${done} done, ${failed} failed of ${n}`);
    }
    await sleep(POLL_MS);
  }
}

/**
 * A send job ends before its sent mark commits (src/deliveries/send.ts), so a run is over only
 * once `n` rows say `sent`: polls until they do.
 * @returns the seconds that took after the last job ended, to add to the run's clock, and how
 * many rows said `sent` then.
 * @throws when they do not within `timeoutMs`.
 */
export async function untilSent(db: Queryable, n: number, timeoutMs = 30_000): Promise<{ seconds: number; sent: number }> {
  const t0 = performance.now();
  for (;;) {
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM deliveries WHERE status = 'sent'`);
    const sent = rows[0]!.n;
    if (sent >= n) return { seconds: (performance.now() - t0) / 1000, sent };
    if (performance.now() - t0 > timeoutMs) throw new Error(`${sent} of ${n} rows marked sent ${timeoutMs / 1000} s after the last job ended`);
    await sleep(5);
  }
}
