// `npm run bench`: the product against the raw tools it is built on, side by side, on this machine.
// Options: --quick (small sizes), --issue-sizes (the issue's 20,000 letters and 1,000,000 subscribers,
// about half an hour), --only=intake,delivery,…  --rounds=N
// --subscribers=N --deliveries=N (override one size)  --out=FILE  --no-write
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchDelivery } from './delivery.ts';
import { benchFanout } from './fanout.ts';
import { benchIntake } from './intake.ts';
import { createBenchEnv } from './lib/bench-env.ts';
import { ROOT } from './lib/child.ts';
import { describeMachine, loadAverage } from './lib/machine.ts';
import { renderFigures, writeFigures, type Skipped } from './lib/report.ts';
import { FULL, ISSUE, NotReadyError, QUICK, type MeasurementResult, type Sizes } from './lib/result.ts';
import { describeTarget, formatNumber, summarize } from './lib/stats.ts';
import { benchScaleOut } from './scale-out.ts';
import { benchStartup } from './startup.ts';
import { benchWorkerOverhead } from './worker-overhead.ts';

/** Each measurement; a fan-out without the alerts code says so instead of failing the run. */
const MEASUREMENTS: Record<string, { title: string; run(sizes: Sizes): Promise<MeasurementResult> }> = {
  intake: { title: '1. Signature intake', run: benchIntake },
  delivery: { title: '2. Delivery throughput', run: benchDelivery },
  fanout: { title: '3. Fan-out enqueue', run: benchFanout },
  'scale-out': { title: '4. Scale-out', run: benchScaleOut },
  'worker-overhead': { title: '5. Worker overhead', run: benchWorkerOverhead },
  startup: { title: '6. Start-up', run: benchStartup },
};

function print(r: MeasurementResult): void {
  const lines = [`\n${r.title}  (${r.seconds.toFixed(0)} s)`];
  for (const s of r.series) {
    const { min, median, max } = summarize(s.values);
    lines.push(`  ${s.label.padEnd(48)} min ${formatNumber(min).padStart(9)}  median ${formatNumber(median).padStart(9)}  max ${formatNumber(max).padStart(9)}  ${s.unit}`);
  }
  for (const t of r.targets) lines.push(`  ${describeTarget(t)}`);
  for (const n of r.notes) lines.push(`  · ${n}`);
  process.stdout.write(lines.join('\n') + '\n');
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      'issue-sizes': { type: 'boolean', default: false },
      only: { type: 'string' },
      rounds: { type: 'string' },
      subscribers: { type: 'string' },
      deliveries: { type: 'string' },
      out: { type: 'string', default: path.join(ROOT, 'BENCHMARKS.md') },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const sizes: Sizes = { ...(args.quick ? QUICK : args['issue-sizes'] ? ISSUE : FULL) };
  if (args.rounds) sizes.rounds = Math.max(1, Number(args.rounds));
  if (args.subscribers) sizes.subscribers = Math.max(1, Number(args.subscribers));
  if (args.deliveries) sizes.deliveries = Math.max(1, Number(args.deliveries));
  const ids = args.only ? args.only.split(',').map((s) => s.trim()) : Object.keys(MEASUREMENTS);
  for (const id of ids) if (!MEASUREMENTS[id]) throw new Error(`unknown measurement "${id}"; pick from ${Object.keys(MEASUREMENTS).join(', ')}`);

  const probe = await createBenchEnv();
  const machine = await describeMachine(probe.db, probe.redis).finally(() => probe.close());
  const loadBefore = loadAverage();
  const t0 = performance.now();
  process.stdout.write(
    `Appeal bench (${args.quick ? 'quick' : args['issue-sizes'] ? 'issue sizes' : 'full'}): ${machine.cores} cores, ${machine.cpu}, Node ${machine.node}, ` +
      `Redis ${machine.redis}, PostgreSQL ${machine.postgres}; load ${loadBefore}\n`,
  );

  const results: MeasurementResult[] = [];
  const skipped: Skipped[] = [];
  let failed = false;
  for (const id of ids) {
    const m = MEASUREMENTS[id]!;
    try {
      const r = await m.run(sizes);
      results.push(r);
      print(r);
    } catch (err) {
      const reason = (err as Error).message;
      skipped.push({ id, title: m.title, reason });
      if (!(err instanceof NotReadyError)) failed = true;
      process.stdout.write(`\n${m.title}: not measured: ${reason}\n`);
    }
  }

  const minutes = (performance.now() - t0) / 60_000;
  const loadAfter = loadAverage();
  process.stdout.write(`\nWhole run: ${minutes.toFixed(1)} min; load ${loadAfter}\n`);
  if (!args['no-write']) {
    const argv = process.argv.slice(2).filter((a) => !a.startsWith('--out'));
    const figures = renderFigures(
      { command: ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' '), mode: args.quick ? 'quick' : args['issue-sizes'] ? 'issue sizes' : 'full', sizes, date: new Date(), machine, loadBefore, loadAfter, minutes },
      results,
      skipped,
    );
    writeFigures(args.out!, figures);
    process.stdout.write(`Figures written to ${path.relative(process.cwd(), args.out!) || args.out}\n`);
  }
  if (failed) process.exitCode = 1;
}

await main();
