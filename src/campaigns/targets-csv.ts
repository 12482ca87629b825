import { parse } from 'csv-parse/sync';
import type { CampaignInput } from './types.ts';
import { targetInput } from './types.ts';

/** Columns in the order a header-less file is read. */
export const TARGET_CSV_COLUMNS = ['name', 'title', 'email', 'salutation', 'disclose'] as const;
/** More rows than a campaign may have targets is a mistake, not an import. */
const MAX_ROWS = 500;

export interface TargetCsvRow {
  /** Line in the file where the row starts (1-based). */
  line: number;
  values: Record<(typeof TARGET_CSV_COLUMNS)[number], string>;
  target?: CampaignInput['targets'][number];
  errors: string[];
}

export interface TargetCsv {
  rows: TargetCsvRow[];
  /** A problem with the file as a whole (not CSV, no rows, too many rows). */
  fileError?: string;
  valid: boolean;
}

type Column = (typeof TARGET_CSV_COLUMNS)[number];

/**
 * Column names as spreadsheets and people write them, with case, spaces, dots, dashes and
 * underscores taken out: in English, Russian and Kazakh, the languages the campaigns' organizers
 * keep their lists in.
 */
const HEADER_NAMES: Record<string, Column> = {
  name: 'name', fullname: 'name', фио: 'name', имя: 'name', получатель: 'name', атыжөні: 'name', аты: 'name',
  title: 'title', position: 'title', jobtitle: 'title', должность: 'title', лауазымы: 'title', лауазым: 'title',
  email: 'email', emailaddress: 'email', mail: 'email',
  электроннаяпочта: 'email', почта: 'email', адресэлектроннойпочты: 'email', электрондықпошта: 'email', пошта: 'email',
  salutation: 'salutation', greeting: 'salutation', обращение: 'salutation', қаратпа: 'salutation', үндеу: 'salutation',
  disclose: 'disclose',
};

/**
 * The columns a first line names, when it is a header: it holds no address (every target row
 * does) and at least two column names Appeal knows. A header without both a name and an email
 * column is an error of the file: read as a target, it would only say "email is required".
 */
function headerOf(first: string[]): { columns: string[] } | { error: string } | undefined {
  if (first.some((cell) => cell.includes('@'))) return undefined;
  const columns = first.map((h) => HEADER_NAMES[h.toLowerCase().replace(/[\s._-]+/g, '')] ?? '');
  // One known word could be a value ("name" is one of disclose's); two make a header.
  if (columns.filter(Boolean).length < 2) return undefined;
  if (columns.includes('name') && columns.includes('email')) return { columns };
  const missing = (['name', 'email'] as const).filter((c) => !columns.includes(c));
  return {
    error: `The first line reads as column names (${first.map((h) => `"${h}"`).join(', ')}), but none of them is ${missing.map((c) => `"${c}"`).join(' or ')}. ` +
      `Name the columns ${TARGET_CSV_COLUMNS.join(', ')}, or leave that line out and put the columns in that order.`,
  };
}

/**
 * A spreadsheet saved in a legacy encoding (Excel's "CSV" on Russian or Kazakh Windows is
 * Windows-1251) arrives with every letter outside English replaced by U+FFFD: names an official
 * would read as "����". Refused, saying how to save it, rather than imported.
 */
const NOT_UTF8 = 'This file is not saved as UTF-8, so its letters outside English cannot be read (they show as "�"). ' +
  'In Excel choose File › Save As › "CSV UTF-8 (Comma delimited)"; in LibreOffice tick "Edit filter settings" and choose "Unicode (UTF-8)". Then choose the file again.';

interface CsvRecord {
  record: string[];
  info: { lines: number };
  raw: string;
}

/**
 * The separator the file's first line uses most: a comma, or the semicolon of Excel in Russian,
 * Kazakh or German settings (whose cells may hold commas: "District Court, Zharkent"), or a tab.
 */
function guessDelimiter(text: string): string {
  const first = text.replace(/^\uFEFF/, '').split(/\r?\n/).find((l) => l.trim()) ?? '';
  const count = (c: string) => first.split(c).length - 1;
  return [',', ';', '\t'].reduce((best, c) => (count(c) > count(best) ? c : best));
}

/**
 * Reads targets from CSV: `name, title, email, salutation[, disclose]`, with or without that
 * header line (a header may order the columns as it likes). Each row is checked like a target
 * typed into the form; a second row with the same email is an error.
 */
export function parseTargetsCsv(text: string): TargetCsv {
  if (text.includes('\uFFFD')) return { rows: [], valid: false, fileError: NOT_UTF8 };
  let records: CsvRecord[];
  try {
    records = parse(text.replace(/^\uFEFF/, ''), {
      info: true,
      raw: true,
      skip_empty_lines: true,
      relax_column_count: true,
      // A quote inside an unquoted field (Judge "Iron" X) is taken as written, as spreadsheets write it.
      relax_quotes: true,
      trim: true,
      delimiter: guessDelimiter(text),
      // Any line ending on any line: left to guess, the first line's is taken for all, and a file
      // pasted together from two (a CRLF header, LF rows) read as one row.
      record_delimiter: ['\r\n', '\n', '\r'],
    }) as unknown as CsvRecord[];
  } catch (err) {
    const e = err as { message: string; lines?: number };
    return { rows: [], valid: false, fileError: `This is not readable CSV${e.lines ? ` (line ${e.lines})` : ''}: ${e.message.split('\n')[0]}` };
  }
  const header = records[0] && headerOf(records[0].record);
  if (header && 'error' in header) return { rows: [], valid: false, fileError: header.error };
  // A row of separators only (`;;;;`, as Excel writes a formatted empty row) is an empty line.
  const body = (header ? records.slice(1) : records).filter((r) => r.record.some((cell) => cell !== ''));
  if (body.length === 0) return { rows: [], valid: false, fileError: 'There are no targets in this CSV.' };
  if (body.length > MAX_ROWS) return { rows: [], valid: false, fileError: `A campaign takes at most ${MAX_ROWS} targets; this CSV has ${body.length} rows.` };
  const columns: readonly string[] = header?.columns ?? TARGET_CSV_COLUMNS;
  const seen = new Set<string>();
  const rows = body.map(({ record, info, raw }): TargetCsvRow => {
    const cell = (name: string) => (columns.indexOf(name) >= 0 ? record[columns.indexOf(name)] ?? '' : '');
    const values = Object.fromEntries(TARGET_CSV_COLUMNS.map((c) => [c, cell(c)])) as TargetCsvRow['values'];
    const parsed = targetInput.safeParse({ ...values, disclose: values.disclose || undefined });
    const errors = parsed.success ? [] : parsed.error.issues.map((i) => `${String(i.path[0] ?? 'row')} ${i.message}`);
    // As stored: two spellings of one domain (in its own script and in ASCII) are one address.
    const key = (parsed.success ? parsed.data.email : values.email).toLowerCase();
    if (key && seen.has(key)) errors.push('email appears twice in this file');
    seen.add(key);
    // csv-parse counts the line a record ends on; a record can span lines inside quotes, so the
    // line breaks within it lead back to the line it starts on.
    // `raw` also holds the empty lines skipped before the record: they are not inside it.
    const recordText = raw.replace(/^(?:[ \t]*(?:\r\n|\n|\r))+/, '').replace(/(\r\n|\n|\r)$/, '');
    const inner = recordText.match(/\r\n|\n|\r/g)?.length ?? 0;
    return { line: info.lines - inner, values, errors, target: parsed.success && !errors.length ? parsed.data : undefined };
  });
  return { rows, valid: rows.every((r) => r.errors.length === 0) };
}
