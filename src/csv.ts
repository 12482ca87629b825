import { Semaphore } from 'async-mutex';
import { stringify } from 'csv-stringify/sync';
import type { Response } from 'express';

/**
 * How every CSV Appeal writes is laid out: a header row; a byte-order mark, without which Excel
 * reads the file in its legacy code page and names in Cyrillic or Uyghur come out garbled; CRLF
 * between records, as RFC 4180 has it; and a cell holding a line break or a semicolon quoted.
 * csv-stringify quotes only the record delimiter itself, and a personal note keeps its lines as
 * bare LF, which every reader would take for the end of the record.
 */
export const CSV_FORMAT = { header: true, bom: true, record_delimiter: 'windows', quoted_match: /[\r\n;\t]/ } as const;

/**
 * Where a spreadsheet may begin a cell inside a value: at its start; after a `;`, since Excel in
 * Russian, Kazakh or German splits a comma file on `;` (its list separator there), and a quote
 * that does not open its field there is only a character, so `x,"Almaty;=1+1"` opens with a cell
 * `=1+1`; after a tab, which a reader told to split on tabs (LibreOffice's import, a sheet's
 * guess) takes for a cell's end (a tab there starts no formula: it is the next cell's end); and
 * after a line break, which that reader takes for the end of the row. Quotes and spaces (not line breaks: a blank line starts no formula) before the
 * formula's first character do not stop it (`;"=1+1"` is a quoted `=1+1`).
 */
const CELL_START_LIKE_A_FORMULA = /(?<=^|[;\r\n])(?=(?:[^\S\r\n]|")*[=+\-@\t\r])|(?<=\t)(?=(?:[^\S\r\n\t]|")*[=+\-@\r])/g;

/**
 * Every place a value could begin a cell that starts like a formula gets a quote there, so a
 * spreadsheet shows it as text, however it splits the file (`Almaty;=1+1` → `Almaty;'=1+1`).
 */
export const neutralize = (v: string) => v.replace(CELL_START_LIKE_A_FORMULA, "'");

/** A CSV download: its file name, its header row, how to read it a page at a time, and an item's row. */
export interface CsvExport<T extends { id: number }> {
  filename: string;
  columns: string[];
  page: (afterId: number) => Promise<T[]>;
  row: (item: T) => string[];
}

/**
 * Pages of the CSV exports this process sends are read and laid out one at a time, each after the
 * requests already waiting: an export is work for the web process's one thread (about 30,000 rows
 * a second, most of it parsing the rows as they arrive from Postgres, so the read is in the turn
 * too), and five at once left the public pages a second behind. Writing a page out is not: a
 * client that stops reading holds up no other export.
 */
const makingPage = new Semaphore(1);

/** Resolves once `res` can take more, or is closed (a client gone never drains). */
const drainedOrClosed = (res: Response) =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });

/**
 * Sends a CSV attachment read page by page (keyset on `id`), so an export of any size holds one
 * page in memory, laid out as CSV_FORMAT; without the byte-order mark when `bom` is false (for a
 * program reading the API, whose CSV reader would take the mark for part of the first column's
 * name). Each page waits for the client to take the last
 * (backpressure) and for its turn among the process's other exports (makingPage); a client that
 * goes away stops the reading, and a read that fails mid-way cuts the download off instead of
 * leaving it hanging. `recordExport` (the audit entry) runs before the first read; a HEAD request
 * gets the headers only, with nothing read and nothing recorded, since no personal data leaves.
 */
export async function sendCsv<T extends { id: number }>(
  res: Response,
  { filename, columns, page, row }: CsvExport<T>,
  recordExport: () => Promise<unknown>,
  { bom = true }: { bom?: boolean } = {},
): Promise<void> {
  res.type('text/csv; charset=utf-8').attachment(filename);
  if (res.req.method === 'HEAD') {
    res.end();
    return;
  }
  await recordExport();
  let gone = false;
  res.once('close', () => (gone = true));
  try {
    for (let afterId = 0, first = true; ; first = false) {
      const chunk = await makingPage.runExclusive(async () => {
        await new Promise(setImmediate);
        if (gone) return undefined;
        const items = await page(afterId);
        if (items.length > 0) afterId = items[items.length - 1]!.id;
        // The header row (and the byte-order mark) go with the first page, even an empty one.
        return { done: items.length === 0, text: first || items.length > 0 ? stringify(items.map((item) => row(item).map(neutralize)), { ...CSV_FORMAT, header: first, bom: bom && first, columns }) : '' };
      });
      if (!chunk || gone) return;
      if (chunk.text && !res.write(chunk.text)) await drainedOrClosed(res);
      if (chunk.done) break;
    }
    res.end();
  } catch (err) {
    if (gone) return;
    // Part of the file is out: cut it off, so the client sees it did not end. Nothing out yet,
    // the error is answered as any other (a 503 while the database is away), as a page, not as a
    // file to save.
    if (res.headersSent) res.destroy();
    else {
      res.removeHeader('Content-Disposition');
      res.removeHeader('Content-Type');
    }
    throw err;
  }
}
