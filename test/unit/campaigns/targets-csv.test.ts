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

  it('reads semicolons or tabs in a file without a header whose first row has as many commas, quoted or not', () => {
    for (const first of ['District Court, Zharkent;Judge, Criminal Division;court@example.org', '"District Court, Zharkent";"Judge, Criminal Division";court@example.org']) {
      const csv = parseTargetsCsv(`${first}\nMinistry;Minister;min@example.org\n`);
      expect(csv.valid, first).toBe(true);
      expect(csv.rows.map((r) => r.target)).toEqual([
        expect.objectContaining({ name: 'District Court, Zharkent', title: 'Judge, Criminal Division', email: 'court@example.org' }),
        expect.objectContaining({ name: 'Ministry', title: 'Minister', email: 'min@example.org' }),
      ]);
    }
    const tabs = parseTargetsCsv('Court, Zharkent\tJudge, Division\tcourt@example.org\n');
    expect(tabs.rows[0]!.target).toMatchObject({ name: 'Court, Zharkent', title: 'Judge, Division', email: 'court@example.org' });
    // And a comma file whose cells hold semicolons stays a comma file.
    const commas = parseTargetsCsv('Court; Zharkent,Judge; Division,court@example.org\n');
    expect(commas.rows[0]!.target).toMatchObject({ name: 'Court; Zharkent', email: 'court@example.org' });
  });

  it('says a line uses another separator than the file when it reads as one cell', () => {
    const csv = parseTargetsCsv('Judge Smith; Judge; smith@example.org; Your Honour\nEmbassy, Consul, embassy@example.org, Dear Sir\n');
    expect(csv.rows[0]!.errors).toEqual([]);
    expect(csv.rows[1]!.errors).toContain('this line has its cells apart with “,”, the file\'s first lines with “;”: use one throughout');
    // A line of one cell with no other separator in it is only missing its address.
    expect(parseTargetsCsv('name;email\nJust A Name\n').rows[0]!.errors.join()).not.toMatch(/separat|apart/);
  });

  it('names the line a row starts on, also after a quoted value that spans lines', () => {
    const csv = parseTargetsCsv('name,title,email\nA Judge,"Judge of the\ndistrict\ncourt",a@court.example\nNo Address,,\n');
    expect(csv.rows.map((r) => r.line)).toEqual([2, 5]);
    expect(csv.rows[1]!.errors.join()).toMatch(/email/);
    // With CRLF line ends, as a browser sends a textarea's text, and with lone CRs; a row of one empty quoted line break is skipped.
    expect(parseTargetsCsv('name,title,email\r\n"\r\n",,\r\nA,T,a@x.example\r\nB,T,\r\n').rows.map((r) => r.line)).toEqual([4, 5]);
    const crlf = parseTargetsCsv('name,title,email\r\n"Multi\r\nLine Name",T,ok@court.example\r\nNo Email,T,\r\n"Two\r\nbreaks\r\nhere",T,x@court.example\r\nLast,T,\r\n');
    expect(crlf.rows.map((r) => r.line)).toEqual([2, 4, 5, 8]);
    expect(crlf.rows[1]!.values.name).toBe('No Email');
    const cr = parseTargetsCsv('name,title,email\r"A\rB",T,a@court.example\rC,T,\r');
    expect(cr.rows.map((r) => r.line)).toEqual([2, 4]);
  });

  it('reads a file whose lines end differently (a CRLF header over LF rows, and the reverse), row by row', () => {
    const crlfHeader = parseTargetsCsv('name,email\r\nA,a@court.example\nB,b@court.example\nC,c@court.example\n');
    expect(crlfHeader.rows.map((r) => [r.line, r.target?.email])).toEqual([[2, 'a@court.example'], [3, 'b@court.example'], [4, 'c@court.example']]);
    const lfHeader = parseTargetsCsv('name,email\nA,a@court.example\r\nB,b@court.example\r\n');
    expect(lfHeader.rows.map((r) => [r.line, r.target?.email])).toEqual([[2, 'a@court.example'], [3, 'b@court.example']]);
  });

  it('reads Russian and Kazakh column names, and skips rows of separators only, as Excel writes formatted empty rows', () => {
    const ru = parseTargetsCsv('\uFEFFФИО;Должность;Электронная почта;Обращение\nСудья Ермек;Районный суд;judge2@example.org;Уважаемый судья\n;;;\n');
    expect(ru.valid).toBe(true);
    expect(ru.rows.map((r) => r.target)).toEqual([expect.objectContaining({ name: 'Судья Ермек', title: 'Районный суд', email: 'judge2@example.org', salutation: 'Уважаемый судья' })]);
    const kk = parseTargetsCsv('Аты-жөні;Лауазымы;Электрондық пошта\nСот;Аудандық сот;sot@example.kz\n');
    expect(kk.rows[0]!.target).toMatchObject({ name: 'Сот', title: 'Аудандық сот', email: 'sot@example.kz' });
  });

  it('refuses a row with more cells than its columns (a comma in an unquoted value) instead of dropping the last', () => {
    const headed = parseTargetsCsv('name,email,title,salutation\nJudge Serikova,judge9@court.example,Presiding judge, Almaty District Court,Your Honour\nMinister,min@example.org,Minister,,\n');
    expect(headed.valid).toBe(false);
    expect(headed.rows[0]!.errors).toEqual(['this line has 5 cells, the first line names 4 columns: a value with “,” in it needs quotes around it']);
    expect(headed.rows[0]!.target).toBeUndefined();
    // Empty cells past the last column, as spreadsheets write them, are nothing.
    expect(headed.rows[1]!.errors).toEqual([]);
    const bare = parseTargetsCsv('Judge Serikova,Presiding judge,judge9@court.example,Dear Judge,name,Almaty\n');
    expect(bare.rows[0]!.errors).toEqual(['this line has 6 cells, a target has at most 5 (name, title, email, salutation, disclose): a value with “,” in it needs quotes around it']);
    const quoted = parseTargetsCsv('name,email,title,salutation\nJudge Serikova,judge9@court.example,"Presiding judge, Almaty District Court",Your Honour\n');
    expect(quoted.rows[0]!.target).toMatchObject({ title: 'Presiding judge, Almaty District Court', salutation: 'Your Honour' });
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

  it('reads the column names spreadsheets use: E-mail, Email Address, Full name, Position', () => {
    const csv = parseTargetsCsv('Full name,Position,E-mail,Salutation\nJudge One,District judge,judge@court.example,Your Honour\n');
    expect(csv.valid).toBe(true);
    expect(csv.rows[0]!.target).toMatchObject({ name: 'Judge One', title: 'District judge', email: 'judge@court.example', salutation: 'Your Honour' });
    const reordered = parseTargetsCsv('Email Address;NAME\njudge2@example.org;Judge Two\n');
    expect(reordered.rows.map((r) => [r.line, r.target?.name, r.errors])).toEqual([[2, 'Judge Two', []]]);
  });

  it('says what a header lacks, instead of reading it as a target without an address', () => {
    const csv = parseTargetsCsv('Name,Position,E-post\nJudge One,District judge,judge@court.example\n');
    expect(csv.valid).toBe(false);
    expect(csv.fileError).toMatch(/^The first line reads as column names \("Name", "Position", "E-post"\), but none of them is "email"\./);
    // A first line of a header-less file that lacks its address is still a row with an error.
    const rowFirst = parseTargetsCsv('Judge One,District judge,,Your Honour\nJudge Two,x,two@court.example\n');
    expect(rowFirst.fileError).toBeUndefined();
    expect(rowFirst.rows[0]!.errors.join()).toMatch(/email/);
    // Nor does one word a column could be named ("name" is a value of disclose).
    const oneWord = parseTargetsCsv('Jane Doe,Minister,,Dear Minister,name\nJohn,Judge,john@gov.example,Dear Judge\n');
    expect(oneWord.fileError).toBeUndefined();
    expect(oneWord.rows.map((r) => [r.line, r.errors.length > 0])).toEqual([[1, true], [2, false]]);
  });

  it('refuses a file not saved as UTF-8 (Excel on Russian Windows writes Windows-1251) instead of importing "����"', () => {
    // "Суд;Судья;sud@example.org" in Windows-1251, read as UTF-8 as the upload is.
    const bytes = Buffer.from([0xd1, 0xf3, 0xe4, 0x3b, 0xd1, 0xf3, 0xe4, 0xfc, 0xff, 0x3b, ...Buffer.from('sud@example.org\n')]);
    const csv = parseTargetsCsv(bytes.toString('utf8'));
    expect(csv.valid).toBe(false);
    expect(csv.rows).toEqual([]);
    expect(csv.fileError).toMatch(/not saved as UTF-8.*CSV UTF-8/);
  });

  it('makes the name of its parts, in the order of their columns, where a list keeps it in parts', () => {
    const ru = parseTargetsCsv('Фамилия,Имя,Отчество,Email,Должность\nИванов,Иван,Иванович,ivan@example.org,Министр\n');
    expect(ru.rows[0]!.target).toMatchObject({ name: 'Иванов Иван Иванович', title: 'Министр', email: 'ivan@example.org' });
    const kk = parseTargetsCsv('Тегі;Аты;Әкесінің аты;Электрондық пошта\nСерікұлы;Серік;;serik@example.org\n');
    expect(kk.rows[0]!.target).toMatchObject({ name: 'Серікұлы Серік' });
    const en = parseTargetsCsv('First name,Last name,Email,Position\nAnn,Lee,ann@example.org,MP\n');
    expect(en.rows[0]!.target).toMatchObject({ name: 'Ann Lee', title: 'MP' });
    // A column for the whole name is the name; alone, Имя is one too.
    expect(parseTargetsCsv('ФИО,Фамилия,Email\nИванов И. И.,Иванов,i@example.org\n').rows[0]!.target).toMatchObject({ name: 'Иванов И. И.' });
    expect(parseTargetsCsv('Имя,Email\nИван Иванов,i@example.org\n').rows[0]!.target).toMatchObject({ name: 'Иван Иванов' });
    // Column names with a part of a name are a header, however few of the others are known.
    expect(parseTargetsCsv('Фамилия;Имя;Отчество;Эл. почта\nИванов;Иван;Иванович;i@example.org\n').rows[0]!.target).toMatchObject({ name: 'Иванов Иван Иванович', email: 'i@example.org' });
    expect(parseTargetsCsv('First name,Last name,Phone\nJohn,Smith,+7 700\n').fileError).toMatch(/^The first line reads as column names .*none of them is "email"/);
  });

  it('refuses two columns for one field rather than drop the second', () => {
    const csv = parseTargetsCsv('name,email,E-mail\nDup Court,court-first@example.org,court-second@example.org\n');
    expect(csv.valid).toBe(false);
    expect(csv.rows).toEqual([]);
    expect(csv.fileError).toBe('The columns "email" and "E-mail" both mean email: keep one of them, or leave the others out, so that no email is dropped.');
    expect(parseTargetsCsv('Name,Title,Position,Email\nA,Judge,Chair,a@example.org\n').fileError).toMatch(/^The columns "Title" and "Position" both mean title/);
    expect(parseTargetsCsv('name,name,email\nA,B,a@example.org\n').fileError).toMatch(/^The columns "name" and "name" both mean name/);
    // A first name beside the whole name is a part of it, wherever it stands.
    expect(parseTargetsCsv('Имя,ФИО,Email\nИван,Иванов Иван Иванович,i@example.org\n').rows[0]!.target).toMatchObject({ name: 'Иванов Иван Иванович' });
  });

  it('knows the email column by its Kazakh abbreviation, in any case', () => {
    for (const header of ['Аты-жөні;Лауазымы;Эл. пошта;Қаратпа', 'АТЫ-ЖӨНІ;ЛАУАЗЫМЫ;ЭЛ. ПОШТА;ҚАРАТПА', 'Аты-жөні;Лауазымы;Электрондық пошта мекенжайы;Қаратпа']) {
      const csv = parseTargetsCsv(`${header}\nАлматы облыстық соты;Төраға;kense@example.kz;Құрметті төраға,\n`);
      expect(csv.fileError).toBeUndefined();
      expect(csv.rows[0]!.target).toMatchObject({ name: 'Алматы облыстық соты', title: 'Төраға', email: 'kense@example.kz', salutation: 'Құрметті төраға,' });
    }
  });

  it('reads disclose as people write it: any case, a dash or a space for the underscore', () => {
    const csv = parseTargetsCsv('name,email,disclose\nA,a@example.org,Full\nB,b@example.org,NAME_PLACE\nC,c@example.org,name-place\nD,d@example.org,Name Place\nE,e@example.org,everything\n');
    expect(csv.rows.map((r) => r.target?.disclose ?? r.errors.join())).toEqual(['full', 'name_place', 'name_place', 'name_place', expect.stringMatching(/^disclose /)]);
  });

  it('says a quote is never closed without naming the line the reader stopped at', () => {
    const csv = parseTargetsCsv('name,email\n"Ivan,ivan@example.org\nPetr,petr@example.org\n');
    expect(csv.fileError).toMatch(/a quote \(\"\) that opens a cell is never closed/);
    expect(csv.fileError).not.toMatch(/line 3/);
  });

  it('says so when nothing is readable', () => {
    expect(parseTargetsCsv('name,email\n"unclosed,x\n').fileError).toMatch(/not readable CSV/);
    expect(parseTargetsCsv('name,email\n').fileError).toBe('There are no targets in this CSV.');
  });

  // A megabyte on one line held the process's thread for seconds while every page waited.
  it('refuses a line or a row far longer than a target takes, without reading the rest', () => {
    const ok = 'name,email\nJudge One,judge@court.example\n';
    expect(parseTargetsCsv(ok + 'a'.repeat(1_000_000)).fileError).toBe(
      "Line 3 is longer than 10,000 characters, far more than a target's name, title, email and salutation: if the file has other columns (notes, biographies), save it without them.",
    );
    expect(parseTargetsCsv(`${ok}"${'x\n'.repeat(6_000)}",a@b.example\n`).fileError).toMatch(/^The row at line \d+ is longer than 10,000 characters/);
    // A long row that is still a target's is read as before.
    const long = parseTargetsCsv(`name,title,email,salutation\n${'N'.repeat(200)},${'T'.repeat(200)},judge@court.example,${'S'.repeat(200)}\n`);
    expect(long.valid).toBe(true);
  });

  it('counts the rows of a file far over the limit without reading them all', () => {
    const many = parseTargetsCsv('name,email\n' + 'J,j@x.example\n'.repeat(100_000));
    expect(many.fileError).toBe('A campaign takes at most 500 targets; this CSV has more than 2,500 rows.');
    expect(parseTargetsCsv('name,email\n' + 'J,j@x.example\n'.repeat(2_500)).fileError).toBe('A campaign takes at most 500 targets; this CSV has 2500 rows.');
    // Rows of separators only, as a spreadsheet with a cleared range exports them, are not rows.
    const cleared = parseTargetsCsv('name,email\n' + Array.from({ length: 200 }, (_, i) => `J${i},j${i}@x.example`).join('\n') + '\n' + ',\n'.repeat(2_400));
    expect(cleared.valid).toBe(true);
    expect(cleared.rows).toHaveLength(200);
    const over = parseTargetsCsv('name,email\n' + Array.from({ length: 501 }, (_, i) => `J${i},j${i}@x.example`).join('\n'));
    expect(over.fileError).toBe('A campaign takes at most 500 targets; this CSV has 501 rows.');
    // Rows of separators only count toward neither limit's targets.
    const padded = parseTargetsCsv('name;email\n' + ';\n'.repeat(1_000) + Array.from({ length: 500 }, (_, i) => `J${i};j${i}@x.example`).join('\n'));
    expect(padded.valid).toBe(true);
    expect(padded.rows).toHaveLength(500);
  });
});
