/** Geometry of the signatures chart; templates/partials/admin/chart.hbs draws it as inline SVG. */
const WIDTH = 900;
const HEIGHT = 200;
const LEFT = 44;
const BOTTOM = 26;
const TOP = 8;

export interface DayCount {
  day: string;
  total: number;
  confirmed: number;
}

/** Nice round top for the y axis: 1, 2, 5, 10, 20, 50 … */
function niceMax(n: number): number {
  if (n <= 5) return Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= n)!;
}

/**
 * Bars for the last `days` UTC days, today last: confirmed at the bottom, pending on top.
 * Days without signatures are drawn as empty slots, so the time axis stays even.
 */
export function signatureChart(rows: DayCount[], days: number, today = new Date()) {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const slots = Array.from({ length: days }, (_, i) => {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - (days - 1 - i)));
    const day = d.toISOString().slice(0, 10);
    const r = byDay.get(day);
    return { day, total: r?.total ?? 0, confirmed: r?.confirmed ?? 0 };
  });
  const max = niceMax(Math.max(0, ...slots.map((s) => s.total)));
  const plotH = HEIGHT - TOP - BOTTOM;
  const slot = (WIDTH - LEFT) / days;
  const y = (n: number) => TOP + plotH - (n / max) * plotH;
  const bars = slots.map((s, i) => {
    const x = +(LEFT + i * slot + slot * 0.15).toFixed(1);
    const w = +(slot * 0.7).toFixed(1);
    const pending = s.total - s.confirmed;
    return {
      ...s, pending, x, w,
      confirmedY: +y(s.confirmed).toFixed(1), confirmedH: +(TOP + plotH - y(s.confirmed)).toFixed(1),
      pendingY: +y(s.total).toFixed(1), pendingH: +(y(s.confirmed) - y(s.total)).toFixed(1),
    };
  });
  const ticks = [0, max / 2, max].filter((v, i, a) => Number.isInteger(v) && a.indexOf(v) === i).map((v) => ({ value: v, y: +y(v).toFixed(1), labelX: LEFT - 6, labelY: +(y(v) + 5).toFixed(1) }));
  const labelAt = (i: number, anchor: string) => ({ text: slots[i]!.day.slice(5), x: +(LEFT + i * slot + slot / 2).toFixed(1), anchor });
  return {
    width: WIDTH, height: HEIGHT, left: LEFT, right: WIDTH, baseY: TOP + plotH, labelY: HEIGHT - 6,
    bars, ticks, labels: [labelAt(0, 'start'), labelAt(Math.floor(days / 2), 'middle'), labelAt(days - 1, 'end')],
    total: slots.reduce((n, s) => n + s.total, 0), days,
  };
}
