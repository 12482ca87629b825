import { parse } from 'csv-parse/sync';
import type { CampaignInput } from './types.ts';
import { MAX_TARGETS, targetInput } from './types.ts';

/** Columns in the order a header-less file is read. */
export const TARGET_CSV_COLUMNS = ['name', 'title', 'email', 'salutation', 'disclose'] as const;

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
  email: 'email', emailaddress: 'email', mail: 'email', workemail: 'email', элпочта: 'email', эпочта: 'email',
  электроннаяпочта: 'email', почта: 'email', адресэлектроннойпочты: 'email', электрондықпошта: 'email', пошта: 'email',
  элпошта: 'email', эпошта: 'email', поштамекенжайы: 'email', электрондықпоштамекенжайы: 'email', emailмекенжайы: 'email', emailадрес: 'email',
  salutation: 'salutation', greeting: 'salutation', обращение: 'salutation', қаратпа: 'salutation', үндеу: 'salutation',
  disclose: 'disclose',
};

/**
 * Columns holding part of a name, as lists of people keep them (Фамилия, Имя, Отчество; First
 * name, Last name). With one of them, a column that alone would be the whole name (Имя, Аты,
 * Name) is one of the parts too, and the name is the parts in the order of their columns.
 */
const NAME_PARTS = new Set([
  'firstname', 'givenname', 'lastname', 'surname', 'familyname', 'middlename', 'patronymic',
  'фамилия', 'отчество', 'тегі', 'әкесініңаты',
]);
const PART_OR_NAME = new Set(['name', 'имя', 'аты']);

const headerKey = (cell: string) => cell.toLowerCase().replace(/[\s._-]+/g, '');

/**
 * The columns a first line names, when it is a header: it holds no address (every target row
 * does) and at least two column names Appeal knows. A header without both a name and an email
 * column is an error of the file: read as a target, it would only say "email is required".
 * `nameParts`: the columns whose cells make the name together, when it is kept in parts.
 */
function headerOf(first: string[]): { columns: string[]; nameParts?: number[] } | { error: string } | undefined {
  if (first.some((cell) => cell.includes('@'))) return undefined;
  const keys = first.map(headerKey);
  const columns = keys.map((k) => HEADER_NAMES[k] ?? '');
  // Without a column for the whole name (ФИО, Full name), its parts make it.
  let nameParts: number[] | undefined;
  if (keys.some((k) => NAME_PARTS.has(k)) && !keys.some((k, i) => columns[i] === 'name' && !PART_OR_NAME.has(k))) {
    nameParts = keys.flatMap((k, i) => (NAME_PARTS.has(k) || PART_OR_NAME.has(k) ? [i] : []));
    for (const i of nameParts) columns[i] = '';
    columns.push('name');
  }
  // One known word could be a value ("name" is one of disclose's); two make a header, and so
  // does a part of a name (no target is named "Фамилия").
  if (columns.filter(Boolean).length < 2 && !nameParts) return undefined;
  // Beside a column for the whole name (ФИО, Full name), one that could be either (Имя, Name) is a
  // part of it, as a first name kept for greetings is: the whole name is the name.
  if (keys.some((k, i) => columns[i] === 'name' && !PART_OR_NAME.has(k))) {
    for (const [i, k] of keys.entries()) if (PART_OR_NAME.has(k)) columns[i] = '';
  }
  // Two columns for one field (Email and E-mail, Title and Position): the second would be dropped.
  const twice = columns.filter((c, i) => c && columns.indexOf(c) !== i);
  if (twice.length) {
    const named = first.filter((_, i) => columns[i] === twice[0]).map((h) => `"${h}"`);
    return { error: `The columns ${named.join(' and ')} both mean ${twice[0]}: keep one of them, or leave the others out, so that no ${twice[0]} is dropped.` };
  }
  if (columns.includes('name') && columns.includes('email')) return { columns, ...(nameParts ? { nameParts } : {}) };
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

/** What a chosen file that is not UTF-8 reads as: nothing, and how to save it so it is. */
export const NOT_UTF8_FILE: TargetCsv = { rows: [], valid: false, fileError: NOT_UTF8 };

interface CsvRecord {
  record: string[];
  info: { lines: number };
  raw: string;
}

/** A cell that is an address and nothing more: one a row read with the right separator has. */
const ADDRESS_ALONE = /^[^\s@,;"]+@[^\s@,;"]+\.[^\s@,;"]+$/;
const CANDIDATE_SEPARATORS = [',', ';', '\t'] as const;
/**
 * Longest line or row read, in characters: a row of targets is four cells of at most 254
 * characters and a level, so ten times that is another kind of file. The reader takes seconds of
 * the process's one thread over a single line of a megabyte, while every page waits.
 */
const MAX_LINE = 10_000;
/** Rows read at most: past the targets' limit, the rest need not be read. */
const MAX_ROWS_READ = 5 * MAX_TARGETS;
const SEPARATOR_NAMES: Record<string, string> = { ',': ',', ';': ';', '\t': 'a tab' };

/**
 * The separator the file uses: a comma, the semicolon of Excel in Russian, Kazakh or German
 * settings (which leaves a cell's commas unquoted: "District Court, Zharkent"), or a tab. The one
 * that reads the first lines into rows with an address alone in a cell (or the header's email
 * column) wins; failing that, the one the first line holds most of, outside quotes.
 */
function guessDelimiter(text: string): string {
  const lines = text.split(/\r\n|\n|\r/).filter((l) => l.trim()).slice(0, 20);
  const rowsRead = (delimiter: string) => {
    try {
      const records = parse(lines.join('\n'), { delimiter, relax_quotes: true, relax_column_count: true, trim: true }) as string[][];
      return records.filter((r) => r.some((cell) => ADDRESS_ALONE.test(cell) || HEADER_NAMES[headerKey(cell)] === 'email')).length;
    } catch {
      return 0;
    }
  };
  const unquoted = (lines[0] ?? '').replace(/"[^"]*"/g, '');
  const count = (c: string) => unquoted.split(c).length - 1;
  const score = new Map(CANDIDATE_SEPARATORS.map((c) => [c, [rowsRead(c), count(c)] as const]));
  return CANDIDATE_SEPARATORS.reduce((best, c) => {
    const [rows, seen] = score.get(c)!;
    const [bestRows, bestSeen] = score.get(best)!;
    return rows > bestRows || (rows === bestRows && seen > bestSeen) ? c : best;
  });
}

/**
 * Reads targets from CSV: `name, title, email, salutation[, disclose]`, with or without that
 * header line (a header may order the columns as it likes). Each row is checked like a target
 * typed into the form; a second row with the same email is an error.
 */
export function parseTargetsCsv(text: string): TargetCsv {
  if (text.includes('\uFFFD')) return { rows: [], valid: false, fileError: NOT_UTF8 };
  // Line ends made one kind: csv-parse counts a CRLF inside quotes (as a browser sends a
  // textarea's text) as two lines, and every row after it was named a line too far.
  const csv = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const longLine = csv.split(/\r\n|\n|\r/).findIndex((line) => line.length > MAX_LINE);
  if (longLine >= 0) {
    return { rows: [], valid: false, fileError: `Line ${longLine + 1} is longer than ${MAX_LINE.toLocaleString('en-US')} characters, far more than a target's name, title, email and salutation: if the file has other columns (notes, biographies), save it without them.` };
  }
  let records: CsvRecord[];
  const delimiter = guessDelimiter(csv);
  try {
    records = parse(csv, {
      info: true,
      raw: true,
      skip_empty_lines: true,
      relax_column_count: true,
      // A quote inside an unquoted field (Judge "Iron" X) is taken as written, as spreadsheets write it.
      relax_quotes: true,
      trim: true,
      delimiter,
      // Any line ending on any line: left to guess, the first line's is taken for all, and a file
      // pasted together from two (a CRLF header, LF rows) read as one row.
      record_delimiter: ['\r\n', '\n', '\r'],
      // A quoted cell may hold line breaks, so a row may be longer than any of its lines.
      max_record_size: MAX_LINE,
      // A row of separators only (`;;;;`, as Excel writes a formatted empty row) is an empty line,
      // and not counted: reading stops, past a header, one row past MAX_ROWS_READ with something in it.
      skip_records_with_empty_values: true,
      to: MAX_ROWS_READ + 2,
    }) as unknown as CsvRecord[];
  } catch (err) {
    const e = err as { message: string; lines?: number; code?: string };
    // Where the reader stopped is the end of the file, not the line the quote opened on.
    if (e.code === 'CSV_QUOTE_NOT_CLOSED') {
      return { rows: [], valid: false, fileError: 'This is not readable CSV: a quote (") that opens a cell is never closed. Look for a cell that starts with a quote and has no closing one.' };
    }
    if (e.code === 'CSV_MAX_RECORD_SIZE') {
      return { rows: [], valid: false, fileError: `The row at line ${e.lines ?? 1} is longer than ${MAX_LINE.toLocaleString('en-US')} characters, far more than a target's name, title, email and salutation (a quote that opens a cell may be closed much later, or the file has other columns: save it without them).` };
    }
    return { rows: [], valid: false, fileError: `This is not readable CSV${e.lines ? ` (line ${e.lines})` : ''}: ${e.message.split('\n')[0]}` };
  }
  const header = records[0] && headerOf(records[0].record);
  if (header && 'error' in header) return { rows: [], valid: false, fileError: header.error };
  const body = header ? records.slice(1) : records;
  if (body.length === 0) return { rows: [], valid: false, fileError: 'There are no targets in this CSV.' };
  // More rows than a campaign may have targets is a mistake, not an import.
  if (body.length > MAX_ROWS_READ) {
    return { rows: [], valid: false, fileError: `A campaign takes at most ${MAX_TARGETS} targets; this CSV has more than ${MAX_ROWS_READ.toLocaleString('en-US')} rows.` };
  }
  if (body.length > MAX_TARGETS) return { rows: [], valid: false, fileError: `A campaign takes at most ${MAX_TARGETS} targets; this CSV has ${body.length} rows.` };
  const columns: readonly string[] = header?.columns ?? TARGET_CSV_COLUMNS;
  const nameParts = header?.nameParts;
  // Cells a row may have: the header's, or the five columns in order.
  const width = header ? records[0]!.record.length : TARGET_CSV_COLUMNS.length;
  const seen = new Set<string>();
  const rows = body.map(({ record, info, raw }): TargetCsvRow => {
    const cell = (name: string) => (columns.indexOf(name) >= 0 ? record[columns.indexOf(name)] ?? '' : '');
    const values = Object.fromEntries(TARGET_CSV_COLUMNS.map((c) => [c, cell(c)])) as TargetCsvRow['values'];
    if (nameParts) values.name = nameParts.map((i) => record[i] ?? '').filter(Boolean).join(' ');
    // Written as people write it: "Full", "NAME_PLACE", "name-place", "name place".
    values.disclose = values.disclose.toLowerCase().replace(/[\s-]+/g, '_');
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
    // A line pasted from another file (an Excel's semicolons among commas) is read as one cell.
    const other = record.length === 1 && errors.length ? CANDIDATE_SEPARATORS.find((c) => c !== delimiter && recordText.includes(c)) : undefined;
    if (other) errors.push(`this line has its cells apart with “${SEPARATOR_NAMES[other]}”, the file's first lines with “${SEPARATOR_NAMES[delimiter]}”: use one throughout`);
    // A separator inside an unquoted value ("Presiding judge, Almaty District Court") splits it,
    // and every cell after it moves one column on: the last would be dropped without a word, and
    // the rest land in the wrong fields. Empty cells past the end (a spreadsheet's) are nothing.
    const cells = record.findLastIndex((c) => c !== '') + 1;
    if (cells > width) {
      const sep = SEPARATOR_NAMES[delimiter];
      errors.push(`this line has ${cells} cells, ${header ? `the first line names ${width} columns` : `a target has at most ${width} (${TARGET_CSV_COLUMNS.join(', ')})`}: a value with “${sep}” in it needs quotes around it`);
    }
    const inner = recordText.match(/\r\n|\n|\r/g)?.length ?? 0;
    return { line: info.lines - inner, values, errors, target: parsed.success && !errors.length ? parsed.data : undefined };
  });
  return { rows, valid: rows.every((r) => r.errors.length === 0) };
}
