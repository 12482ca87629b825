import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { CSV_FORMAT, neutralize } from '../../src/csv.ts';

/** Cells as Excel with `;` for its list separator reads a comma file: a quote opens a field only at its start. */
const readAsSemicolonExcel = (text: string) =>
  (parse(text.replace(/^\uFEFF/, ''), { delimiter: ';', relax_quotes: true, relax_column_count: true, record_delimiter: ['\r\n', '\n', '\r'] }) as string[][]).flat();

/** Cells as a reader told to split on tabs reads it (LibreOffice's import dialog can be): quotes mean nothing there. */
const readAsTabbed = (text: string) => text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r|\t/);

describe('neutralizing formulas in exported cells', () => {
  it('quotes a formula at the start of a cell, and one after a semicolon or a line break inside it', () => {
    expect(neutralize('=HYPERLINK("x")')).toBe(`'=HYPERLINK("x")`);
    expect(neutralize('Almaty;=cmd|\' /C calc\'!A0;')).toBe(`Almaty;'=cmd|' /C calc'!A0;`);
    expect(neutralize('Free her;=1+2\nRegards\n@SUM(1)')).toBe(`Free her;'=1+2\nRegards\n'@SUM(1)`);
    expect(neutralize('Oslo; "=1+1"')).toBe(`Oslo;' "=1+1"`);
    expect(neutralize('" "=HYPERLINK("x")')).toBe(`'" "=HYPERLINK("x")`);
    expect(neutralize('Almaty;" "=1+1')).toBe(`Almaty;'" "=1+1`);
    expect(neutralize('Plain text; and more')).toBe('Plain text; and more');
    // A blank line starts no formula, and the line after one is checked as any other.
    expect(neutralize('Point:\n\n- first\n- second')).toBe("Point:\n\n'- first\n'- second");
    expect(neutralize('\n=1+1')).toBe("\n'=1+1");
    // A reader splitting on tabs starts a cell after one.
    expect(neutralize('a\t=2+2')).toBe("a\t'=2+2");
    expect(neutralize('a\t "@x"\tb')).toBe(`a\t' "@x"\tb`);
    // A run of tabs (a table pasted into a note) is empty cells, not formulas.
    expect(neutralize('a\t\tb\t\t\tc')).toBe('a\t\tb\t\t\tc');
  });

  it('leaves no cell starting like a formula whether the file is read on commas or on semicolons', () => {
    const signers = [
      ['Dana Example', 'dana@example.org', 'Almaty;=cmd|\' /C calc\'!A0;', 'KZ', 'Free her;=1+2\nRegards'],
      ['Erlan', 'erlan@example.org', 'Oslo;@SUM(1+1)', '+7;-2', 'Hello\n=2+3;\r\n-1;"=1+1"'],
      ['=1+1', 'x@example.org', '', 'KZ', '\t=1'],
      ['Tab', 't@example.org', 'a\t=2+2', 'KZ', 'b\t\t-3'],
    ];
    const csv = stringify(signers.map((r) => r.map(neutralize)), { ...CSV_FORMAT, header: false });
    const formula = /^[\s"]*[=+\-@\t\r]/;
    const byComma = (parse(csv, { bom: true }) as string[][]).flat();
    expect(byComma.filter((cell) => formula.test(cell))).toEqual([]);
    expect(readAsSemicolonExcel(csv).filter((cell) => formula.test(cell))).toEqual([]);
    expect(readAsTabbed(csv).filter((cell) => formula.test(cell))).toEqual([]);
    // Read on commas, as it was written, every value comes back with only the quotes added.
    expect(byComma.slice(0, 5)).toEqual(['Dana Example', 'dana@example.org', `Almaty;'=cmd|' /C calc'!A0;`, 'KZ', `Free her;'=1+2\nRegards`]);
  });
});

describe('a CSV export whose database goes away', () => {
  const away = () => Object.assign(new Error('connection failure'), { code: '08006' });
  async function serve(failAt: number) {
    const express = (await import('express')).default;
    const { pino } = await import('pino');
    const { sendCsv } = await import('../../src/csv.ts');
    const { errorHandler } = await import('../../src/web/middleware/errors.ts');
    const lines: { msg: string }[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
    const app = express();
    app.get('/api/v1/export.csv', async (_req, res) => {
      await sendCsv(res, {
        filename: 'people.csv', columns: ['name'],
        page: async (afterId) => { if (afterId / 1000 >= failAt) throw away(); return Array.from({ length: 1000 }, (_, i) => ({ id: afterId + i + 1, name: `n${afterId + i + 1}` })); },
        row: (p) => [p.name],
      }, async () => undefined);
    });
    app.use(errorHandler({ page: () => 'page' } as never, log));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    return { url: `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/api/v1/export.csv`, lines, close: () => new Promise((r) => server.close(r)) };
  }

  it('answers 503 as an error, not as a file to save, when nothing was sent yet', async () => {
    const s = await serve(0);
    try {
      const res = await fetch(s.url);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-disposition')).toBeNull();
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    } finally {
      await s.close();
    }
  });

  it('cuts the download off when part of it went, and logs why', async () => {
    const s = await serve(2);
    try {
      const res = await fetch(s.url);
      expect(res.status).toBe(200);
      await expect(res.text()).rejects.toThrow();
      await new Promise((r) => setTimeout(r, 100));
      expect(s.lines.map((l) => l.msg)).toEqual(['request failed: database unavailable: the database server could not be reached']);
    } finally {
      await s.close();
    }
  });
});
