// 2. Delivery throughput: letters from `deliveries` rows through the send worker and pooled
// nodemailer into a counting SMTP sink, against bare pooled nodemailer sending as many letters
// of the same shape to the same sink.
import { createBenchEnv, type BenchEnv } from './lib/bench-env.ts';
import { startChild, type Child } from './lib/child.ts';
import { drain, untilSent } from './lib/drain.ts';
import { cpuMeter, cpuShares, cpuTimes, type CpuShares } from './lib/machine.ts';
import { createBenchCampaign, insertSignatures, queueLetters, type BenchCampaign } from './lib/fixtures.ts';
import type { MeasurementResult, Sizes } from './lib/result.ts';
import { alternate, medianOf } from './lib/stats.ts';

/** Product defaults: WORKER_CONCURRENCY 10, and as many pooled SMTP connections (one per job slot). */
export const CONCURRENCY = 10;
export const POOL = CONCURRENCY;

export interface LetterRun {
  env: BenchEnv;
  sink: Child;
  campaign: BenchCampaign;
  n: number;
}

/** Sets up a schema with `n` confirmed signatures (one letter each) and a sink child. */
export async function prepareLetters(n: number): Promise<LetterRun & { close(): Promise<void> }> {
  const env = await createBenchEnv();
  let sink: Child | undefined;
  try {
    sink = await startChild('sink-process.ts', {});
    const campaign = await createBenchCampaign(env.db, { requireConfirmation: true });
    await insertSignatures(env.db, campaign.id, n);
    await env.db.query('ANALYZE');
    const s = sink;
    return { env, sink: s, campaign, n, close: async () => { await s.stop(); await env.close(); } };
  } catch (err) {
    await sink?.stop();
    await env.close();
    throw err;
  }
}

async function sinkCount(sink: Child) {
  return sink.call<number>('count');
}

export interface LetterRate {
  /** Messages per second, from the workers' start to the last row marked sent. */
  rate: number;
  /** How the machine's cores spent that time. */
  cpu?: CpuShares;
  /** CPU time the sending processes used per message, together, in µs. */
  senderCpuUs?: number;
}

const perMessageUs = (ms: number | undefined, n: number) => (ms === undefined ? undefined : (ms * 1000) / n);

/** Queues `n` letters and sends them with `processes` send-worker children of `concurrency` each. */
export async function sendLetters(run: LetterRun, processes: number, concurrency: number, pool: number): Promise<LetterRate> {
  const { env, sink, campaign, n } = run;
  await env.resetQueues();
  await queueLetters(env.db, env.queues, campaign.id);
  const childEnv = { ...env.env, SMTP_URL: String(sink.info.url), BENCH_ROLE: 'send', WORKER_CONCURRENCY: String(concurrency), BENCH_SMTP_POOL: String(pool) };
  const workers = await Promise.all(Array.from({ length: processes }, () => startChild('worker-process.ts', childEnv)));
  try {
    const before = await sinkCount(sink);
    const cpuBefore = cpuTimes();
    const senderCpu = cpuMeter(workers.map((w) => w.pid));
    const r = await drain(workers, n);
    const marked = await untilSent(env.db, n);
    const cpu = cpuShares(cpuBefore, cpuTimes());
    const senderMs = senderCpu();
    const received = (await sinkCount(sink)) - before;
    if (r.failed || marked.sent !== n || received !== n) {
      throw new Error(`send workers: ${r.failed} jobs failed, ${marked.sent} of ${n} rows sent, sink got ${received}`);
    }
    return { rate: n / (r.seconds + marked.seconds), cpu, senderCpuUs: perMessageUs(senderMs, n) };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

/**
 * Bare pooled nodemailer with the same pool and as many messages in flight as the worker runs
 * jobs; with `processes` > 1, that many senders share the messages, the pool and the concurrency.
 */
export async function sendRaw(run: LetterRun, concurrency: number, pool: number, processes = 1): Promise<LetterRate> {
  const { env, sink } = run;
  // Each sender sends its own share; an odd count split in two sends one message more.
  const n = Math.ceil(run.n / processes) * processes;
  const senders = await Promise.all(
    Array.from({ length: processes }, () =>
      startChild('worker-process.ts', {
        ...env.env,
        SMTP_URL: String(sink.info.url),
        BENCH_ROLE: 'raw-nodemailer',
        WORKER_CONCURRENCY: String(concurrency / processes),
        BENCH_SMTP_POOL: String(pool / processes),
      }),
    ),
  );
  try {
    const before = await sinkCount(sink);
    const senderCpu = cpuMeter(senders.map((s) => s.pid));
    const r = await drain(senders, n);
    const senderMs = senderCpu();
    const received = (await sinkCount(sink)) - before;
    if (r.failed || received !== n) throw new Error(`raw nodemailer: ${r.failed} failed, sink got ${received} of ${n}`);
    return { rate: n / r.seconds, senderCpuUs: perMessageUs(senderMs, n) };
  } finally {
    await Promise.all(senders.map((s) => s.stop()));
  }
}

export const microseconds = (v: number | undefined) => (v === undefined ? 'not measured' : `${Math.round(v).toLocaleString('en-US')} µs`);

/** The sending processes' CPU per message, median of the rounds. */
export const senderCpu = (rates: LetterRate[]) => microseconds(medianOf(rates, (r) => r.senderCpuUs));

/** Messages per second, median of the rounds. */
export const medianRate = (rates: LetterRate[]) => medianOf(rates, (r) => r.rate) ?? NaN;

export async function benchDelivery(sizes: Sizes): Promise<MeasurementResult> {
  const started = performance.now();
  const run = await prepareLetters(sizes.deliveries);
  const product: LetterRate[] = [];
  const raw: LetterRate[] = [];
  try {
    await alternate(
      sizes.rounds,
      async () => void product.push(await sendLetters(run, 1, CONCURRENCY, POOL)),
      async () => void raw.push(await sendRaw(run, CONCURRENCY, POOL)),
    );
  } finally {
    await run.close();
  }
  return {
    id: 'delivery',
    title: '2. Delivery throughput',
    setup:
      `${sizes.deliveries.toLocaleString('en-US')} letter deliveries per round (rows and jobs made before the clock starts) through one send-worker ` +
      `process (concurrency ${CONCURRENCY}, pooled nodemailer, maxConnections ${POOL}, maxMessages Infinity) into a counting smtp-server ` +
      `in another process; baseline: bare pooled nodemailer in its own process, same pool, ${CONCURRENCY} messages in flight. ` +
      'Clock: from the start command until every row is marked sent.',
    series: [
      { label: 'send worker (claim, compose, send, mark sent)', unit: 'msgs/s', values: product.map((r) => r.rate) },
      { label: 'raw pooled nodemailer', unit: 'msgs/s', values: raw.map((r) => r.rate) },
    ],
    targets: [{ name: 'worker / raw', value: medianRate(product) / medianRate(raw), kind: 'atLeast', target: 0.7, format: 'percent' }],
    notes: [
      // Where it stops: each side sends from one event loop, so its CPU per message bounds its rate.
      `CPU time of the sending process per message (median): send worker ${senderCpu(product)}, raw nodemailer ${senderCpu(raw)}.`,
    ],
    seconds: (performance.now() - started) / 1000,
  };
}
