import { describe, expect, it } from 'vitest';
import { parseTargetsCsv } from '../../../src/campaigns/targets-csv.ts';

describe('reading targets from CSV', () => {
  it('reads rows with a header in any column order', () => {
    const csv = parseTargetsCsv('email,name\njudge@court.example,Judge One\n');
    expect(csv.valid).toBe(true);
    expect(csv.rows.map((r) => r.target)).toEqual([expect.objectContaining({ name: 'Judge One', email: 'judge@court.example' })]);
  });

  it('reads the semicolons of a Russian or German Excel export, also with a comma in a cell, and tabs', () => {
    const semi = parseTargetsCsv('\uFEFFname;title;email;salutation\nСудья Ермек;Районный суд, Жаркент;judge2@example.org;Уважаемый судья\n');
    expect(semi.valid).toBe(true);
    expect(semi.rows[0]!.target).toMatchObject({ name: 'Судья Ермек', title: 'Районный суд, Жаркент', email: 'judge2@example.org' });
    const tabs = parseTargetsCsv('name\temail\nJudge One\tjudge@court.example\n');
    expect(tabs.rows[0]!.target).toMatchObject({ name: 'Judge One', email: 'judge@court.example' });
  });

  it('names the line a row starts on, also after a quoted value that spans lines', () => {
    const csv = parseTargetsCsv('name,title,email\nA Judge,"Judge of the\ndistrict\ncourt",a@court.example\nNo Address,,\n');
    expect(csv.rows.map((r) => r.line)).toEqual([2, 5]);
    expect(csv.rows[1]!.errors.join()).toMatch(/email/);
  });

  it('counts the empty lines between rows', () => {
    const csv = parseTargetsCsv('name,title,email\nA Judge,x,a@court.example\n\n  \nB Judge,y,bad\n');
    expect(csv.rows.map((r) => r.line)).toEqual([2, 5]);
  });

  it('refuses a second row with the same email, in any casing', () => {
    const csv = parseTargetsCsv('name,email\nOne,x@gov.example\nTwo,X@GOV.example\n');
    expect(csv.valid).toBe(false);
    expect(csv.rows[1]!.errors).toContain('email appears twice in this file');
  });

  it('takes a quote inside an unquoted cell as written', () => {
    const csv = parseTargetsCsv('name,email\nJudge "Iron" X,iron@court.example\n"Quoted, Name",q@court.example\n');
    expect(csv.valid).toBe(true);
    expect(csv.rows.map((r) => r.target?.name)).toEqual(['Judge "Iron" X', 'Quoted, Name']);
  });

  it('says so when nothing is readable', () => {
    expect(parseTargetsCsv('name,email\n"unclosed,x\n').fileError).toMatch(/not readable CSV/);
    expect(parseTargetsCsv('name,email\n').fileError).toBe('There are no targets in this CSV.');
  });
});
