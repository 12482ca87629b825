import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits for `work` for at most `ms`; true if it settled (resolved or rejected) in time. What it
 * waits for goes on: a stopping process uses this to leave a Redis or Postgres that no longer
 * answers, whose client would otherwise hold the command, and the process, until it came back.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = work.then(() => true, () => true);
  return Promise.race([settled, sleep(ms, false, { ref: false })]);
}

/** Waits for `work` for at most `ms`; true only if it resolved in time (a rejection or the wait is false). */
export async function resolvesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([work.then(() => true, () => false), sleep(ms, false, { ref: false })]);
}
