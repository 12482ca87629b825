import fs from 'node:fs';
import type { Machine } from './machine.ts';
import type { MeasurementResult, Sizes } from './result.ts';
import { describeTarget, formatNumber, formatValue, met, summarize } from './stats.ts';

export interface RunInfo {
  command: string;
  mode: 'quick' | 'full' | 'issue sizes';
  sizes: Sizes;
  date: Date;
  machine: Machine;
  loadBefore: string;
  loadAfter: string;
  minutes: number;
}

/** A measurement that could not run, and why. */
export interface Skipped {
  id: string;
  title: string;
  reason: string;
}

const BEGIN = '<!-- bench:begin (written by `npm run bench`; edit outside these markers) -->';
const END = '<!-- bench:end -->';

function table(r: MeasurementResult): string[] {
  const lines = ['| | min | median | max | unit | rounds |', '|---|---:|---:|---:|---|---:|'];
  for (const s of r.series) {
    const { min, median, max } = summarize(s.values);
    lines.push(`| ${s.label} | ${formatNumber(min)} | ${formatNumber(median)} | ${formatNumber(max)} | ${s.unit} | ${s.values.length} |`);
  }
  return lines;
}

export function renderFigures(run: RunInfo, results: MeasurementResult[], skipped: Skipped[]): string {
  const m = run.machine;
  const out = [
    BEGIN,
    '',
    run.mode === 'quick'
      ? '**Quick run** (`--quick`: small sizes, short rounds). These figures only show the bench works; a full run replaces them.'
      : `**${run.mode === 'full' ? 'Full run' : 'Run at the issue\'s sizes'}.**`,
    '',
    `- Sizes: ${run.sizes.rounds} rounds per measurement; intake ${run.sizes.intake.seconds} s × ${run.sizes.intake.connections} connections; ` +
      `${run.sizes.deliveries.toLocaleString('en-US')} letters per delivery round; ${run.sizes.overheadJobs.toLocaleString('en-US')} jobs per overhead round; ` +
      `${run.sizes.subscribers.toLocaleString('en-US')} subscribers`,
    `- Command: \`${run.command}\``,
    `- Date: ${run.date.toISOString().replace('T', ' ').slice(0, 16)} UTC; the whole run took ${run.minutes.toFixed(1)} min`,
    `- Machine: ${m.cores} cores (${m.cpu}), ${m.memoryGiB.toFixed(1)} GiB memory, ${m.os}`,
    `- Node ${m.node}, Redis ${m.redis}, PostgreSQL ${m.postgres}`,
    `- Load average (1 / 5 / 15 min): ${run.loadBefore} before, ${run.loadAfter} after`,
    '',
    '| measurement | result | target | |',
    '|---|---:|---:|---|',
  ];
  for (const r of results) {
    for (const t of r.targets) {
      out.push(`| ${r.title}: ${t.name} | ${formatValue(t.value, t.format)} | ${t.kind === 'atLeast' ? '≥' : '<'} ${formatValue(t.target, t.format)} | ${met(t) ? 'met' : '**missed**'} |`);
    }
  }
  for (const s of skipped) out.push(`| ${s.title} | not measured | | ${s.reason} |`);
  for (const r of results) {
    out.push('', `### ${r.title}`, '', r.setup, '', ...table(r), '');
    for (const t of r.targets) out.push(`- ${describeTarget(t)}`);
    for (const n of r.notes) out.push(`- ${n}`);
    out.push(`- Took ${r.seconds.toFixed(0)} s.`);
  }
  for (const s of skipped) out.push('', `### ${s.title}`, '', `Not measured: ${s.reason}`);
  out.push('', END);
  return out.join('\n');
}

/** Replaces the figures between the markers in `file`, keeping what people wrote around them. */
export function writeFigures(file: string, figures: string): void {
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n\n' + BEGIN + '\n' + END + '\n';
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a === -1 || b === -1) text = `${text.trimEnd()}\n\n${figures}\n`;
  else text = text.slice(0, a) + figures + text.slice(b + END.length);
  fs.writeFileSync(file, text);
}
