// 4. Scale-out: the delivery run of point 2 with two send-worker processes against one, the
// same total concurrency and SMTP connections, the same sink.
import { prepareLetters, sendLetters, type LetterRate } from './delivery.ts';
import type { MeasurementResult, Sizes } from './lib/result.ts';
import { alternate, summarize } from './lib/stats.ts';

const TOTAL_CONCURRENCY = 10;

function sharesOf(rates: LetterRate[], key: 'idle' | 'steal'): string {
  const values = rates.flatMap((r) => (r.cpu ? [r.cpu[key]] : []));
  return values.length ? `${Math.round(summarize(values).median * 100)} %` : 'not measured';
}

export async function benchScaleOut(sizes: Sizes): Promise<MeasurementResult> {
  const started = performance.now();
  const run = await prepareLetters(sizes.deliveries);
  const two: LetterRate[] = [];
  const one: LetterRate[] = [];
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
      { label: 'two worker processes', unit: 'msgs/s', values: two.map((r) => r.rate) },
      { label: 'one worker process', unit: 'msgs/s', values: one.map((r) => r.rate) },
    ],
    targets: [{ name: 'two / one', value: summarize(two.map((r) => r.rate)).median / summarize(one.map((r) => r.rate)).median, kind: 'atLeast', target: 1.5, format: 'times' }],
    notes: [
      // Where it stops: a second process can only go faster on CPU time nobody else is using.
      `Machine CPU idle while sending (all cores; median of the rounds): one process ${sharesOf(one, 'idle')}, two processes ${sharesOf(two, 'idle')}; ` +
        `stolen by the hypervisor: ${sharesOf(one, 'steal')} and ${sharesOf(two, 'steal')}.`,
    ],
    seconds: (performance.now() - started) / 1000,
  };
}
