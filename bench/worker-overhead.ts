// 5. Worker overhead: the send worker's own path (claim, compose, mark sent; BullMQ around it)
// with a mailer that resolves at once, against a bare BullMQ Worker whose processor does nothing.
import { enqueueDeliveries, sendPriority } from '../src/queues.ts';
import { createBenchEnv } from './lib/bench-env.ts';
import { startChild } from './lib/child.ts';
import { drain, untilSent } from './lib/drain.ts';
import { createBenchCampaign, insertSignatures, queueLetters } from './lib/fixtures.ts';
import type { MeasurementResult, Sizes } from './lib/result.ts';
import { alternate, summarize } from './lib/stats.ts';
import { CONCURRENCY } from './delivery.ts';

export async function benchWorkerOverhead(sizes: Sizes): Promise<MeasurementResult> {
  const started = performance.now();
  const n = sizes.overheadJobs;
  const env = await createBenchEnv();
  const product: number[] = [];
  const raw: number[] = [];
  try {
    const campaign = await createBenchCampaign(env.db);
    await insertSignatures(env.db, campaign.id, n);
    await env.db.query('ANALYZE');
    const childEnv = { ...env.env, WORKER_CONCURRENCY: String(CONCURRENCY) };

    const run = async (role: 'send' | 'raw-bullmq') => {
      await env.resetQueues();
      if (role === 'send') await queueLetters(env.db, env.queues, campaign.id);
      // The same jobs, options and priority included, as the letters queued for the send worker.
      else await enqueueDeliveries(env.queues, Array.from({ length: n }, (_, i) => i + 1), 0, { priority: sendPriority('letter') });
      const worker = await startChild('worker-process.ts', { ...childEnv, BENCH_ROLE: role, BENCH_MAILER: 'noop' });
      try {
        const r = await drain([worker], n);
        if (r.failed) throw new Error(`${role}: ${r.failed} jobs failed`);
        return n / (r.seconds + (role === 'send' ? (await untilSent(env.db, n)).seconds : 0));
      } finally {
        await worker.stop();
      }
    };
    await alternate(
      sizes.rounds,
      async () => void product.push(await run('send')),
      async () => void raw.push(await run('raw-bullmq')),
    );
    const { rows } = await env.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM deliveries WHERE status = 'sent'`);
    if (rows[0]!.n !== n) throw new Error(`send worker: ${rows[0]!.n} of ${n} rows marked sent`);
  } finally {
    await env.close();
  }
  return {
    id: 'worker-overhead',
    title: '5. Worker overhead',
    setup:
      `${n.toLocaleString('en-US')} send jobs per round, each worker in its own process at concurrency ${CONCURRENCY}. ` +
      'Product: the send worker (claim with lease, compose the letter from its rows, mark sent) with a mailer whose send resolves at once. ' +
      'Baseline: a bare BullMQ Worker with a no-op processor on jobs with the same options. ' +
      'Clock: from the start command to the last job done, and for the send worker until every row is marked sent.',
    series: [
      { label: 'send worker, no-op mailer', unit: 'jobs/s', values: product },
      { label: 'raw BullMQ worker, no-op processor', unit: 'jobs/s', values: raw },
    ],
    targets: [{ name: 'send worker / raw', value: summarize(product).median / summarize(raw).median, kind: 'atLeast', target: 0.4, format: 'percent' }],
    notes: [],
    seconds: (performance.now() - started) / 1000,
  };
}
