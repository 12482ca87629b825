// Runs each `npm run bench` measurement once on tiny sizes so the bench code keeps working.
// No timing is asserted: only that each runs end to end, checks its own work, and yields figures.
import { describe, expect, it } from 'vitest';
import { benchDelivery } from '../../bench/delivery.ts';
import { benchFanout } from '../../bench/fanout.ts';
import { benchIntake } from '../../bench/intake.ts';
import type { MeasurementResult, Sizes } from '../../bench/lib/result.ts';
import { benchScaleOut } from '../../bench/scale-out.ts';
import { benchStartup } from '../../bench/startup.ts';
import { benchWorkerOverhead } from '../../bench/worker-overhead.ts';

const TINY: Sizes = {
  rounds: 1,
  intake: { seconds: 0.5, connections: 5 },
  deliveries: 40,
  overheadJobs: 40,
  subscribers: 250,
};

function expectFigures(r: MeasurementResult) {
  expect(r.series.length).toBeGreaterThan(0);
  for (const s of r.series) {
    expect(s.values, s.label).toHaveLength(TINY.rounds);
    for (const v of s.values) expect(Number.isFinite(v) && v > 0, `${s.label}: ${v}`).toBe(true);
  }
  for (const t of r.targets) expect(Number.isFinite(t.value), t.name).toBe(true);
}

describe('the bench, on tiny sizes', { timeout: 240_000 }, () => {
  it('measures signature intake, and every answer from the app is a redirect with its rows and job stored', async () => {
    const r = await benchIntake(TINY);
    expectFigures(r);
    expect(r.notes.join('\n')).not.toMatch(/MISMATCH|other than 2xx/);
    expect(r.notes.join('\n')).toMatch(/Responses, app: 303: \d/);
  });

  it('measures delivery throughput: every letter reaches the sink and its row says sent', async () => {
    expectFigures(await benchDelivery(TINY));
  });

  it('measures fan-out enqueue: one alert row and one waiting job per subscriber, and the worker peak RSS', async () => {
    const r = await benchFanout(TINY);
    expectFigures(r);
    expect(r.targets.map((t) => t.name)).toContain('fan-out worker peak RSS');
  });

  it('measures scale-out with two send-worker processes against one', async () => {
    expectFigures(await benchScaleOut(TINY));
  });

  it('measures the send worker against a bare BullMQ worker, both with nothing to send', async () => {
    expectFigures(await benchWorkerOverhead(TINY));
  });

  it('measures start-up of npm start on an empty data directory until /readyz says 200', async () => {
    expectFigures(await benchStartup(TINY));
  });
});
