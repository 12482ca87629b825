import type { Series, Target } from './stats.ts';

/** How big each measurement is. `--quick` and the test suite shrink them. */
export interface Sizes {
  /** Rounds of product and baseline, alternating. */
  rounds: number;
  intake: { seconds: number; connections: number };
  /** Letters per delivery round (points 2 and 4). */
  deliveries: number;
  /** Jobs per worker-overhead round. */
  overheadJobs: number;
  /** Confirmed subscribers the fan-out pages through. */
  subscribers: number;
}

/**
 * The issue's sizes (20,000 letters, 1,000,000 subscribers). On the 2-core machine the whole run
 * at these sizes takes about half an hour, so `npm run bench` uses FULL and this is `--issue-sizes`.
 */
export const ISSUE: Sizes = {
  rounds: 3,
  intake: { seconds: 10, connections: 50 },
  deliveries: 20_000,
  overheadJobs: 20_000,
  subscribers: 1_000_000,
};

/** Sized so the whole run stays under 15 minutes on 2 cores; rates are steady well before these counts. */
export const FULL: Sizes = {
  rounds: 3,
  intake: { seconds: 10, connections: 50 },
  deliveries: 5_000,
  overheadJobs: 10_000,
  subscribers: 500_000,
};

export const QUICK: Sizes = {
  rounds: 3,
  intake: { seconds: 1.5, connections: 50 },
  deliveries: 1_000,
  overheadJobs: 1_000,
  subscribers: 10_000,
};

/** One measurement's figures, ready for the console and BENCHMARKS.md. */
export interface MeasurementResult {
  id: string;
  title: string;
  /** What ran, in a sentence or two. */
  setup: string;
  series: Series[];
  targets: Target[];
  notes: string[];
  seconds: number;
}

/** A measurement whose product code is not in the tree: reported as not measured, not as a failure. */
export class NotReadyError extends Error {
  override name = 'NotReadyError';
}
