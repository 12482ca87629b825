import { describe, expect, it } from 'vitest';
import { batchedRead, coalesce, perDb } from '../../src/deliveries/coalesce.ts';

/** A batch function that records the batches it was given and answers after a tick. */
function recording<I, O>(answer: (items: I[]) => O[]) {
  const batches: I[][] = [];
  let release: () => void = () => {};
  let gate = Promise.resolve();
  return {
    batches,
    hold() {
      gate = new Promise((r) => (release = r));
    },
    release: () => release(),
    run: async (items: I[]) => {
      batches.push(items);
      await gate;
      return answer(items);
    },
  };
}

describe('coalesce', () => {
  it('sends calls made in the same tick as one batch, each caller getting its own result', async () => {
    const rec = recording((xs: number[]) => xs.map((x) => x * 10));
    const call = coalesce(rec.run);
    expect(await Promise.all([call(1), call(2), call(3)])).toEqual([10, 20, 30]);
    expect(rec.batches).toEqual([[1, 2, 3]]);
  });

  it('collects what arrives while a batch is in flight into the next one', async () => {
    const rec = recording((xs: number[]) => xs);
    const call = coalesce(rec.run);
    rec.hold();
    const first = call(1);
    await new Promise((r) => setImmediate(r));
    const later = [call(2), call(3)];
    rec.release();
    expect(await Promise.all([first, ...later])).toEqual([1, 2, 3]);
    expect(rec.batches).toEqual([[1], [2, 3]]);
  });

  it('keeps batches at maxBatch', async () => {
    const rec = recording((xs: number[]) => xs);
    const call = coalesce(rec.run, 2);
    await Promise.all([1, 2, 3, 4, 5].map(call));
    expect(rec.batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('rejects the callers waiting behind a batch whose error failsWaiting names, without a batch of their own', async () => {
    const rec = recording((xs: number[]) => xs);
    const away = Object.assign(new Error('database away'), { code: '08006' });
    let fail = true;
    const call = coalesce(async (xs: number[]) => {
      const out = await rec.run(xs);
      if (fail) throw away;
      return out;
    }, 100, (err) => (err as { code?: string }).code === '08006');
    rec.hold();
    const first = call(1);
    await new Promise((r) => setImmediate(r));
    const waiting = [call(2), call(3)];
    rec.release();
    const results = await Promise.allSettled([first, ...waiting]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(rec.batches).toEqual([[1]]);
    fail = false;
    expect(await call(4)).toBe(4);
  });

  it('lets the callers waiting behind a failed batch run their own when failsWaiting answers no, after it answers', async () => {
    const rec = recording((xs: number[]) => xs);
    let fail = true;
    let answer!: (no: boolean) => void;
    const call = coalesce(async (xs: number[]) => {
      const out = await rec.run(xs);
      if (fail) {
        fail = false;
        throw new Error('one connection lost');
      }
      return out;
    }, 100, () => new Promise<boolean>((r) => (answer = r)));
    rec.hold();
    const first = call(1);
    await new Promise((r) => setImmediate(r));
    const waiting = [call(2), call(3)];
    rec.release();
    await expect(first).rejects.toThrow('one connection lost');
    // Asked, and not answered yet: the next batch waits.
    expect(rec.batches).toEqual([[1]]);
    answer(false);
    expect(await Promise.all(waiting)).toEqual([2, 3]);
    expect(rec.batches).toEqual([[1], [2, 3]]);
  });

  it('rejects every caller of a batch that throws, and goes on with the next', async () => {
    let fail = true;
    const call = coalesce(async (xs: number[]) => {
      if (fail) throw new Error('database down');
      return xs;
    });
    const results = await Promise.allSettled([call(1), call(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    expect(await call(3)).toBe(3);
  });
});

describe('batchedRead', () => {
  it('matches rows to keys by ordinal; a key without a row gets undefined', async () => {
    const seen: string[][] = [];
    const read = batchedRead(async (keys: string[]) => {
      seen.push(keys);
      // Rows come back in any order, and the second key has none.
      return [
        { ord: 3, value: keys[2]!.toUpperCase() },
        { ord: 1, value: keys[0]!.toUpperCase() },
      ];
    });
    const out = await Promise.all([read('a'), read('b'), read('c')]);
    expect(out.map((r) => r?.value)).toEqual(['A', undefined, 'C']);
    expect(seen).toEqual([['a', 'b', 'c']]);
  });
});

describe('perDb', () => {
  it('makes one value per handle, and a separate one for another handle', () => {
    let made = 0;
    const of = perDb((_db: object) => ({ n: ++made }));
    const a = {};
    const b = {};
    expect(of(a)).toBe(of(a));
    expect(of(b)).not.toBe(of(a));
    expect(made).toBe(2);
  });
});
