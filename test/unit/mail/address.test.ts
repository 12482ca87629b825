import { describe, expect, it } from 'vitest';
import MailComposer from 'nodemailer/lib/mail-composer';
import { simpleParser } from 'mailparser';
import { subjectLine } from '../../../src/campaigns/letter-template.ts';
import { displayName, listIdHeader, mailboxKey, oneLine, orgSender } from '../../../src/mail/address.ts';

describe('header text', () => {
  it('puts a value on one line', () => {
    expect(oneLine(' Aigerim\r\nBcc: x@evil.example\t')).toBe('Aigerim Bcc: x@evil.example');
    expect(oneLine('Real Person\u2028Minister\u2029of\u0085Justice\u009b')).toBe('Real Person Minister of Justice');
  });

  it('keeps a display name from showing an address of its own', () => {
    expect(displayName('Ann <minister@gov.example> via Appeal')).toBe('Ann minister gov.example via Appeal');
    expect(displayName('Айгерим "<x@evil.com>" Нурлановна')).toBe('Айгерим " x evil.com " Нурлановна');
    expect(displayName('Ann ＜minister＠gov.example＞ ﹤x﹫y.example﹥')).toBe('Ann minister gov.example x y.example');
  });

  it('breaks up an encoded word, so no client decodes a typed name into an address', () => {
    const encoded = '=?utf-8?b?TWluaXN0ZXIgPG1pbmlzdGVyQGdvdi5rej4=?=';
    expect(displayName(encoded)).not.toContain('=?');
    expect(oneLine(`Appeal for ${encoded}`)).toBe('Appeal for = ?utf-8?b?TWluaXN0ZXIgPG1pbmlzdGVyQGdvdi5rej4= ?=');
  });

  it('makes a run of blanks, visible or not, one space, so nothing pushes "via ORG_NAME" out of sight', () => {
    const padded = `Ministry of Justice${'\u2800'.repeat(50)}.`;
    expect(displayName(`${padded} via Appeal`)).toBe('Ministry of Justice . via Appeal');
    expect(displayName(`Ann\u3164\u200b\u115f\u2060\uffa0 \u00a0Bek via Appeal`)).toBe('Ann Bek via Appeal');
    expect(subjectLine(`Letter from ${padded}`)).toBe('Letter from Ministry of Justice .');
    // One joiner stays: it belongs inside an emoji or a word.
    expect(displayName('Family 👨\u200d👩\u200d👧 Bek')).toBe('Family 👨\u200d👩\u200d👧 Bek');
    // Nor do the tag characters that spell a subdivision's flag.
    const scotland = '🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}';
    expect(displayName(`Amnesty ${scotland} team`)).toBe(`Amnesty ${scotland} team`);
    expect(subjectLine(`From Amnesty ${scotland}`)).toBe(`From Amnesty ${scotland}`);
  });

  it('drops the controls that reverse how text shows', () => {
    expect(displayName('Ann \u202Eelpmaxe.vog@retsinim\u202C via Appeal')).toBe('Ann elpmaxe.vog@retsinim via Appeal'.replace('@', ' '));
  });

  it("names what Appeal sends by itself with ORG_NAME cleaned as a supporter's name is, and MAIL_FROM's address", async () => {
    const config = { orgName: 'Atajurt "Kazakh Rights" <info@atajurt.kz>, =?utf-8?q?Gov?=', mailFrom: { address: 'letters@example.org' } };
    expect(orgSender(config)).toEqual({ name: 'Atajurt "Kazakh Rights" info atajurt.kz , = ?utf-8?q?Gov?=', address: 'letters@example.org' });
    const raw = await new MailComposer({ from: orgSender(config), to: 'a@example.net', subject: 's', text: 't' }).compile().build();
    const from = (await simpleParser(raw)).from!;
    expect(from.value).toHaveLength(1);
    expect(from.value[0]).toMatchObject({ address: 'letters@example.org', name: 'Atajurt "Kazakh Rights" info atajurt.kz , = ?utf-8?q?Gov?=' });
    expect(orgSender({ orgName: 'Атажұрт', mailFrom: config.mailFrom }).name).toBe('Атажұрт');
  });

  it('leaves real names as they are', () => {
    for (const name of ["Zhanar O'Neil-Seitkali", 'Dr. Nurlan Ä. Bek, Jr.', '李', 'Ayşe & Friends', 'ئايگېرىم نۇرلان', 'x = y?']) expect(displayName(name)).toBe(name);
  });
});

describe('the mailbox an address reaches, for counting', () => {
  // Case, a +tag, and Gmail's dots and two domains fold into one key; other dots, a leading +
  // and what is no address stay as they are.
  it.each([
    [' Ann+1@Example.ORG ', 'ann@example.org'],
    ['ann+x+y@example.org', 'ann@example.org'],
    ['a.n.n+news@googlemail.com', 'ann@gmail.com'],
    ['A.nn@gmail.com', 'ann@gmail.com'],
    ['a.nn@example.org', 'a.nn@example.org'],
    ['+ann@example.org', '+ann@example.org'],
    ['not-an-address', 'not-an-address'],
    // A domain as the schema stores it: what shows nothing or folds in it is no other inbox.
    ['victim@gmai\u00adl.com', 'victim@gmail.com'],
    ['victim@ｇｍａｉｌ.com', 'victim@gmail.com'],
    ['ann@ex\u200bample.org', 'ann@example.org'],
    ['ann@Bücher.example', 'ann@xn--bcher-kva.example'],
  ])('counts %j as %j', (address, key) => {
    expect(mailboxKey(address)).toBe(key);
  });
});

describe('the List-ID header', () => {
  const build = async (name: string) => {
    const raw = await new MailComposer({ from: 'letters@example.org', to: 'a@example.net', subject: 's', text: 't', headers: { 'List-ID': listIdHeader(name, 'case-alerts.example.org') } }).compile().build();
    const head = raw.toString().split('\r\n\r\n')[0]!;
    const lines = head.slice(head.indexOf('List-ID:')).split('\r\n');
    const header = [lines[0]!, ...lines.slice(1).filter((_, i) => lines.slice(1, i + 2).every((l) => l.startsWith(' ')))];
    return { header, parsed: ((await simpleParser(raw)).headers.get('list') as { id: { name: string; id: string } }).id };
  };

  it('cuts a name that is not ASCII into encoded words of at most 75 characters, on lines of at most 78', async () => {
    const { header, parsed } = await build('Атажұрт Еріктілері — Қазақстан, case alerts');
    expect(header.length).toBeGreaterThan(1);
    for (const line of header) expect(line.length).toBeLessThanOrEqual(78);
    for (const word of header.join('').match(/=\?[^?]+\?Q\?[^?]*\?=/g)!) expect(word.length).toBeLessThanOrEqual(75);
    // The words, decoded (RFC 2047 Q: `_` a space, `=XX` a byte) and joined, give the name back.
    const bytes = header.join('').match(/=\?UTF-8\?Q\?([^?]*)\?=/g)!.map((w) => w.slice('=?UTF-8?Q?'.length, -2)).join('')
      .replace(/_/g, ' ').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    expect(Buffer.from(bytes, 'latin1').toString('utf8')).toBe('Атажұрт Еріктілері — Қазақстан, case alerts');
    expect(parsed.id).toBe('case-alerts.example.org');
  });

  it('folds a name of one long word with CRLF, never a bare line feed', async () => {
    const { header } = await build('Amnesty-International-Kazakhstan-Section-Volunteer-Network-Coordination case alerts');
    expect(header.join('\r\n')).not.toMatch(/[^\r]\n/);
    expect(header.join(' ')).toContain('<case-alerts.example.org>');
  });

  it('shows no address in the name of the list', async () => {
    const { header, parsed } = await build('Rights <info@rights.example> case alerts');
    expect(header).toEqual(['List-ID: "Rights info rights.example case alerts" <case-alerts.example.org>']);
    expect(parsed.id).toBe('case-alerts.example.org');
  });

  it('quotes an ASCII name, so a comma or a quote in it cannot spill into the id', async () => {
    const { header, parsed } = await build('Free "Them", Now');
    expect(header).toEqual(['List-ID: "Free \\"Them\\", Now" <case-alerts.example.org>']);
    expect(parsed.id).toBe('case-alerts.example.org');
  });
});
