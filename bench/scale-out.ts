// 4. Scale-out: the delivery run of point 2 with two send-worker processes against one, the
// same total concurrency and SMTP connections, the same sink.
import { prepareLetters, sendLetters } from './delivery.ts';
import type { MeasurementResult, Sizes } from './lib/result.ts';
import { alternate, summarize } from './lib/stats.ts';

const TOTAL_CONCURRENCY = 10;

export async function benchScaleOut(sizes: Sizes): Promise<MeasurementResult> {
  const started = performance.now();
  const run = await prepareLetters(sizes.deliveries);
  const two: number[] = [];
  const one: number[] = [];
  try {
    await alternate(
      sizes.rounds,
      async () => void two.push(await sendLetters(run, 2, TOTAL_CONCURRENCY / 2, TOTAL_CONCURRENCY / 2)),
      async () => void one.push(await sendLetters(run, 1, TOTAL_CONCURRENCY, TOTAL_CONCURRENCY)),
    );
  } finally {
    await run.close();
  }
  return {
    id: 'scale-out',
    title: '4. Scale-out',
    setup:
      `${sizes.deliveries.toLocaleString('en-US')} letters per round as in point 2. Two send-worker processes at concurrency ` +
      `${TOTAL_CONCURRENCY / 2} with ${TOTAL_CONCURRENCY / 2} SMTP connections each, against one process at concurrency ` +
      `${TOTAL_CONCURRENCY} with ${TOTAL_CONCURRENCY} connections.`,
    series: [
      { label: 'two worker processes', unit: 'msgs/s', values: two },
      { label: 'one worker process', unit: 'msgs/s', values: one },
    ],
    targets: [{ name: 'two / one', value: summarize(two).median / summarize(one).median, kind: 'atLeast', target: 1.5, format: 'times' }],
    notes: [],
    seconds: (performance.now() - started) / 1000,
  };
}
