// 4. Scale-out: the delivery run of point 2 with two send-worker processes against one, the
// same total concurrency and SMTP connections, the same sink.
import os from 'node:os';
import { medianRate, microseconds, prepareLetters, senderCpu, sendLetters, sendRaw, type LetterRate } from './delivery.ts';
import type { MeasurementResult, Sizes } from './lib/result.ts';
import { alternate, medianOf } from './lib/stats.ts';

const TOTAL_CONCURRENCY = 10;

function sharesOf(rates: LetterRate[], key: 'idle' | 'steal'): string {
  const share = medianOf(rates, (r) => r.cpu?.[key]);
  return share === undefined ? 'not measured' : `${Math.round(share * 100)} %`;
}

/** Share of all cores' time that was busy: neither idle nor stolen. */
const busy = (cpu: NonNullable<LetterRate['cpu']>) => 1 - cpu.idle - cpu.steal;

/** The machine's busy CPU time per message, all cores together, in µs (median of the rounds). */
function cpuPerMessage(rates: LetterRate[]): number | undefined {
  return medianOf(rates, (r) => r.cpu && (busy(r.cpu) * os.cpus().length * 1e6) / r.rate);
}

/**
 * Where it stops: at one process's CPU cost per message, every core the hypervisor leaves us could
 * carry at most this multiple of one process's rate, whatever the second process does.
 */
function ceiling(one: LetterRate[]): number | undefined {
  return medianOf(one, (r) => r.cpu && (1 - r.cpu.steal) / busy(r.cpu));
}

export async function benchScaleOut(sizes: Sizes): Promise<MeasurementResult> {
  const started = performance.now();
  const run = await prepareLetters(sizes.deliveries);
  const two: LetterRate[] = [];
  const one: LetterRate[] = [];
  const rawTwo: LetterRate[] = [];
  const rawOne: LetterRate[] = [];
  try {
    await alternate(
      sizes.rounds,
      async () => {
        two.push(await sendLetters(run, 2, TOTAL_CONCURRENCY / 2, TOTAL_CONCURRENCY / 2));
        rawTwo.push(await sendRaw(run, TOTAL_CONCURRENCY, TOTAL_CONCURRENCY, 2));
      },
      async () => {
        one.push(await sendLetters(run, 1, TOTAL_CONCURRENCY, TOTAL_CONCURRENCY));
        rawOne.push(await sendRaw(run, TOTAL_CONCURRENCY, TOTAL_CONCURRENCY, 1));
      },
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
      `${TOTAL_CONCURRENCY} with ${TOTAL_CONCURRENCY} connections. For reference, bare pooled nodemailer split the same way ` +
      '(two sender processes sharing the messages, the connections and the messages in flight, against one), in the same rounds.',
    series: [
      { label: 'two worker processes', unit: 'msgs/s', values: two.map((r) => r.rate) },
      { label: 'one worker process', unit: 'msgs/s', values: one.map((r) => r.rate) },
      { label: 'raw nodemailer, two processes', unit: 'msgs/s', values: rawTwo.map((r) => r.rate) },
      { label: 'raw nodemailer, one process', unit: 'msgs/s', values: rawOne.map((r) => r.rate) },
    ],
    targets: [{ name: 'two / one', value: medianRate(two) / medianRate(one), kind: 'atLeast', target: 1.5, format: 'times' }],
    notes: [
      // Where it stops: a second process can only go faster on CPU time nobody else is using.
      `Machine CPU idle while sending (all cores; median of the rounds): one process ${sharesOf(one, 'idle')}, two processes ${sharesOf(two, 'idle')}; ` +
        `stolen by the hypervisor: ${sharesOf(one, 'steal')} and ${sharesOf(two, 'steal')}.`,
      `Machine CPU per message (every process on it: workers, sink, Postgres, Redis): one process ${microseconds(cpuPerMessage(one))}, ` +
        `two processes ${microseconds(cpuPerMessage(two))}. At one process's cost per message the whole machine could carry ` +
        `${ceiling(one)?.toFixed(2) ?? '(not measured)'}× its rate: the most a second process on these cores can reach.`,
      `CPU time of the send-worker processes per message, together: one process ${senderCpu(one)}, two processes ${senderCpu(two)}; ` +
        `of bare nodemailer's: one process ${senderCpu(rawOne)}, two processes ${senderCpu(rawTwo)}.`,
      `Bare nodemailer itself, two processes / one: ${(medianRate(rawTwo) / medianRate(rawOne)).toFixed(2)}× on this machine.`,
    ],
    seconds: (performance.now() - started) / 1000,
  };
}
