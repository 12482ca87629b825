import { describe, expect, it } from 'vitest';
import { reservedIds } from '../../../src/signatures/service.ts';

describe('signature ids reserved in blocks', () => {
  it('hands out each id once, and callers that find the block empty share one refill', async () => {
    let next = 1;
    let takes = 0;
    const nextId = reservedIds(async () => {
      takes += 1;
      await new Promise((r) => setTimeout(r, 5));
      return Array.from({ length: 3 }, () => next++);
    }, 60_000);
    const ids = await Promise.all(Array.from({ length: 7 }, () => nextId()));
    expect([...ids].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(takes).toBe(3);
  });

  it('drops a block older than its age limit, so a quiet process files a new signature after the others', async () => {
    let next = 1;
    const nextId = reservedIds(async () => Array.from({ length: 100 }, () => next++), 20);
    expect(await nextId()).toBe(1);
    expect(await nextId()).toBe(2);
    await new Promise((r) => setTimeout(r, 40));
    expect(await nextId()).toBe(101);
  });
});
