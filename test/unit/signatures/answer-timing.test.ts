import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { answeredAlike, answerFloor, SIGN_ANSWER_MAX_MS, SIGN_ANSWER_MIN_MS } from '../../../src/signatures/answer-timing.ts';

const timed = async (work: () => Promise<unknown>, counted = true) => {
  const began = performance.now();
  await answeredAlike(work, counted);
  return performance.now() - began;
};

describe('how soon a signature or a request for alerts is answered', () => {
  it('no sooner than SIGN_ANSWER_MIN_MS, nor than the slowest work of the last two minutes, so a short path cannot be told from a long one', async () => {
    expect(answerFloor()).toBe(SIGN_ANSWER_MIN_MS);
    expect(await timed(async () => {})).toBeGreaterThanOrEqual(SIGN_ANSWER_MIN_MS - 1);
    // A long path (many statements to a database far away) takes 60 ms: the short ones after it wait as long.
    expect(await timed(() => sleep(60))).toBeGreaterThanOrEqual(59);
    expect(answerFloor()).toBeGreaterThanOrEqual(59);
    expect(await timed(async () => {})).toBeGreaterThanOrEqual(59);
    // A honeypot's pretence waits as long, and does not count.
    expect(await timed(async () => {}, false)).toBeGreaterThanOrEqual(59);
    // Quick posts made on purpose do not flush it out: it holds for two minutes, then goes.
    for (let i = 0; i < 32; i++) await answeredAlike(async () => {});
    expect(answerFloor()).toBeGreaterThanOrEqual(59);
    expect(answerFloor(performance.now() + 121_000)).toBe(SIGN_ANSWER_MIN_MS);
  });

  it('counts no work begun while the process was busy: it is mostly waiting for the other answers', async () => {
    // Five being answered (each waiting out its floor), then one whose work takes 80 ms.
    const others = Array.from({ length: 5 }, () => answeredAlike(async () => {}));
    const busy = answeredAlike(() => sleep(80));
    await Promise.all([...others, busy]);
    expect(answerFloor()).toBeLessThan(79);
  });

  it('never more than SIGN_ANSWER_MAX_MS for a pause of the process', async () => {
    const began = performance.now();
    const stalled = answeredAlike(() => sleep(SIGN_ANSWER_MAX_MS + 200));
    await stalled;
    expect(performance.now() - began).toBeLessThan(SIGN_ANSWER_MAX_MS + 400);
    expect(answerFloor()).toBe(SIGN_ANSWER_MAX_MS);
    expect(await timed(async () => {})).toBeLessThan(SIGN_ANSWER_MAX_MS + 100);
  });
});

