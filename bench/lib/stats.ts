/** Figures of one arm (product or baseline) over the rounds. */
export interface Series {
  label: string;
  unit: string;
  values: number[];
}

export interface Summary {
  min: number;
  median: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { min: NaN, median: NaN, max: NaN };
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s[s.length - 1]! };
}

/** The median of a figure over the rounds that have it; undefined when none has. */
export function medianOf<T>(rounds: readonly T[], pick: (round: T) => number | undefined): number | undefined {
  const values = rounds.flatMap((r) => {
    const v = pick(r);
    return v === undefined ? [] : [v];
  });
  return values.length ? summarize(values).median : undefined;
}

/** A ratio and the target it must reach (`atLeast`) or stay under (`below`). */
export interface Target {
  name: string;
  value: number;
  kind: 'atLeast' | 'below';
  target: number;
  /** How the value reads: a percentage of the baseline, a multiple, or a plain quantity. */
  format: 'percent' | 'times' | 'seconds' | 'MB';
}

export const met = (t: Target) => (t.kind === 'atLeast' ? t.value >= t.target : t.value < t.target);

export function formatValue(value: number, format: Target['format']): string {
  if (!Number.isFinite(value)) return 'n/a';
  switch (format) {
    case 'percent':
      return `${(value * 100).toFixed(0)} %`;
    case 'times':
      return `${value.toFixed(2)}×`;
    case 'seconds':
      return `${value.toFixed(2)} s`;
    case 'MB':
      return `${value.toFixed(0)} MB`;
  }
}

export function describeTarget(t: Target): string {
  const goal = `${t.kind === 'atLeast' ? '≥' : '<'} ${formatValue(t.target, t.format)}`;
  return `${t.name}: ${formatValue(t.value, t.format)} (target ${goal}) ${met(t) ? 'met' : 'MISSED'}`;
}

/** Readable number: 1234.5 → "1,235", 12.34 → "12.3", 0.1234 → "0.123". */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/**
 * Runs `rounds` rounds of product and baseline, swapping which goes first each round so
 * neither always gets the warmer (or the more crowded) machine.
 */
export async function alternate(rounds: number, product: (round: number) => Promise<void>, baseline: (round: number) => Promise<void>): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const pair = r % 2 === 0 ? [product, baseline] : [baseline, product];
    for (const run of pair) await run(r);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
