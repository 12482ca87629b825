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

describe("a BullMQ worker's error log", () => {
  it('tells a job Redis lost (restarted empty) from an error, as a warning that says where to look', async () => {
    const { ErrorCode } = await import('bullmq');
    const { workerErrorLog } = await import('../../src/queues.ts');
    const lines: { level: string; msg: string }[] = [];
    const push = (level: string) => (_obj: unknown, msg: string) => void lines.push({ level, msg });
    const onError = workerErrorLog({ error: push('error'), warn: push('warn') } as never, 'send');
    // As BullMQ raises them (finishedErrors): the code on the error, the message naming the job.
    onError(Object.assign(new Error('Missing key for job d-17. moveToFinished'), { code: ErrorCode.JobNotExist }));
    onError(Object.assign(new Error('Missing lock for job d-18. moveToFinished'), { code: ErrorCode.JobLockNotExist }));
    // Redis away is what the connection's own warning says; the worker waits for it, no error of its own.
    onError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }));
    onError(new Error('Connection is closed.'));
    onError(new Error('ERR unknown command'));
    expect(lines.map((l) => l.level)).toEqual(['warn', 'warn', 'warn', 'warn', 'error']);
    expect(lines[0]!.msg).toMatch(/^Redis no longer holds a job the send worker finished \(restarted empty\?\): the database says what became of it/);
    expect(lines.slice(2, 4).map((l) => l.msg)).toEqual(['the send worker waits for Redis, out of reach', 'the send worker waits for Redis, out of reach']);
    expect(lines[4]!.msg).toBe('send worker error');
  });
});
