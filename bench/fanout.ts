// 3. Fan-out enqueue: a case update for N confirmed subscribers, from posting it until every
// alert delivery row exists and every send job is in the queue, against bare Queue.addBulk of
// as many jobs in chunks of 1,000. Also the fan-out worker's peak RSS.
import fs from 'node:fs';
import { postCaseUpdate } from '../src/alerts/service.ts';
import { createBenchEnv, type BenchEnv } from './lib/bench-env.ts';
import { startChild, WORKER_NODE_FLAGS, type Child } from './lib/child.ts';
import { drain } from './lib/drain.ts';
import { createBenchCampaign } from './lib/fixtures.ts';
import type { MeasurementResult, Sizes } from './lib/result.ts';
import { alternate, sleep, summarize } from './lib/stats.ts';

/** Peak resident set of a process so far, in MB of 1,000,000 bytes, as the target is (Linux: VmHWM, in KiB). */
function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return (kib * 1024) / 1_000_000;
}

/** `n` active subscribers: nine in ten follow the case, one in ten all cases. */
async function insertSubscribers(env: BenchEnv, caseId: number, n: number): Promise<void> {
  await env.db.query(
    // Opted in through the form, so each already has its manage-token hash (a stand-in value here).
    `INSERT INTO subscribers (email, status, manage_token_hash, consent_at, consent_source, consent_text, confirmed_at)
     SELECT 'subscriber' || i || '@bench.example', 'active', md5('manage' || i), now(), 'bench', 'Alerts about this case', now()
       FROM generate_series(1, $1::int) AS i`,
    [n],
  );
  await env.db.query(
    `INSERT INTO subscriptions (subscriber_id, case_id, status, consent_source, confirmed_at)
     SELECT id, CASE WHEN id % 10 = 0 THEN NULL ELSE $1::bigint END, 'active', 'bench', now() FROM subscribers`,
    [caseId],
  );
  await env.db.query('ANALYZE');
}

async function waitingJobs(env: BenchEnv): Promise<number> {
  return env.queues.send.getJobCountByTypes('wait', 'prioritized', 'delayed');
}

async function clean(env: BenchEnv): Promise<void> {
  await env.resetQueues();
  await env.db.query('TRUNCATE deliveries');
}

export async function benchFanout(sizes: Sizes): Promise<MeasurementResult> {
  const started = performance.now();
  const n = sizes.subscribers;
  const env = await createBenchEnv();
  const product: number[] = [];
  const raw: number[] = [];
  const productRss: number[] = [];
  const rawRss: number[] = [];
  try {
    const { caseId, caseSlug } = await createBenchCampaign(env.db);
    await insertSubscribers(env, caseId, n);

    const productRound = async () => {
      await clean(env);
      const child: Child = await startChild('worker-process.ts', { ...env.env, BENCH_ROLE: 'fanout' });
      try {
        await child.call('start');
        const { update, seconds } = await child.profile(async () => {
          const t0 = performance.now();
          // A title of its own each round: the same words again within minutes would be taken for
          // this request sent again (postCaseUpdate), answered with the last round's update.
          const update = await postCaseUpdate(env.db, { queues: env.queues, log: console }, caseSlug, { title: `Verdict postponed (${product.length + 1})`, body: 'The court meets again next month.' }, null);
          for (;;) {
            const { done, failed } = await child.call<{ done: number; failed: number }>('count');
            if (failed) throw new Error('the fan-out job failed');
            if (done) break;
            await sleep(25);
          }
          return { update, seconds: (performance.now() - t0) / 1000 };
        });
        productRss.push(peakRssMb(child.pid));
        const { rows } = await env.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM deliveries WHERE kind = 'alert' AND source_id = $1`,
          [update.id],
        );
        const jobs = await waitingJobs(env);
        if (rows[0]!.n !== n || jobs !== n || update.recipients !== n) {
          throw new Error(`fan-out: ${update.recipients} recipients counted, ${rows[0]!.n} rows, ${jobs} jobs for ${n} subscribers`);
        }
        product.push(n / seconds);
      } finally {
        await child.stop();
      }
    };
    const rawRound = async () => {
      await clean(env);
      const child = await startChild('worker-process.ts', { ...env.env, BENCH_ROLE: 'raw-addbulk' });
      try {
        const r = await drain([child], 1, { stallMs: 300_000, startArgs: { n } });
        if (r.failed) throw new Error('raw addBulk failed');
        rawRss.push(peakRssMb(child.pid));
        const jobs = await waitingJobs(env);
        if (jobs !== n) throw new Error(`raw addBulk: ${jobs} jobs of ${n}`);
        raw.push(n / r.seconds);
      } finally {
        await child.stop();
      }
    };
    await alternate(sizes.rounds, productRound, rawRound);
  } finally {
    await env.close();
  }
  return {
    id: 'fanout',
    title: '3. Fan-out enqueue',
    setup:
      `${n.toLocaleString('en-US')} active subscribers (nine in ten follow the case, one in ten all cases). Product: postCaseUpdate ` +
      '(the API handler\'s service call) then the fan-out worker in its own process, pages of 1,000: one INSERT … SELECT … ON CONFLICT ' +
      'and one addBulk each; clock from posting to the fan-out job completed, then checked: one alert row and one waiting send job per ' +
      'subscriber. Baseline: bare Queue.addBulk of as many send jobs (same ids and options) in chunks of 1,000, in its own process. ' +
      `Redis and Postgres emptied between rounds. Both processes run with the V8 flags of \`npm run worker\` (${WORKER_NODE_FLAGS.join(' ') || 'none'}); ` +
      'peak RSS is the kernel\'s high-water mark (VmHWM) of the whole process, start-up included, in MB of 10⁶ bytes. The fan-out ' +
      'worker runs alone in its process, loaded through tsx (as every bench child is); `npm run worker` runs the build, with the send ' +
      'and maintenance workers beside it.',
    series: [
      { label: 'fan-out (rows + jobs)', unit: 'recipients/s', values: product },
      { label: 'raw addBulk (jobs only)', unit: 'jobs/s', values: raw },
      { label: 'fan-out worker peak RSS', unit: 'MB', values: productRss },
      { label: 'raw addBulk process peak RSS', unit: 'MB', values: rawRss },
    ],
    targets: [
      { name: 'fan-out / raw addBulk', value: summarize(product).median / summarize(raw).median, kind: 'atLeast', target: 0.5, format: 'percent' },
      { name: 'fan-out worker peak RSS', value: Math.max(...productRss), kind: 'below', target: 200, format: 'MB' },
    ],
    notes: [],
    seconds: (performance.now() - started) / 1000,
  };
}
