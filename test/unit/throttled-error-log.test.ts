import { afterEach, describe, expect, it, vi } from 'vitest';
import { throttledErrorLog } from '../../src/log.ts';

describe('an error log that repeats nothing', () => {
  // The clock is the test's: a pause of the machine between two calls must not open a new period.
  afterEach(() => void vi.useRealTimers());

  it('writes each kind of error once per period, then says how many alike it left out', async () => {
    vi.useFakeTimers();
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const onError = throttledErrorLog({ error: (obj: Record<string, unknown>, msg: string) => void lines.push({ obj, msg }) } as never, 'send worker error', 40);
    const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    for (let i = 0; i < 5; i++) onError(refused());
    onError(new Error('Missing key for job d-17. moveToFinished'));
    onError(new Error('Missing key for job d-18. moveToFinished'));
    expect(lines.map((l) => l.msg)).toEqual(['send worker error', 'send worker error']);
    expect(lines[0]!.obj).not.toHaveProperty('alikeLeftOut');
    await vi.advanceTimersByTimeAsync(60);
    onError(refused());
    expect(lines).toHaveLength(3);
    expect(lines[2]!.obj).toMatchObject({ alikeLeftOut: 4 });
  });
});
