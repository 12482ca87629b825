import { describe, expect, it } from 'vitest';
import { displayName, mailboxKey, oneLine } from '../../../src/mail/address.ts';

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

  it('drops the controls that reverse how text shows', () => {
    expect(displayName('Ann \u202Eelpmaxe.vog@retsinim\u202C via Appeal')).toBe('Ann elpmaxe.vog@retsinim via Appeal'.replace('@', ' '));
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
  ])('counts %j as %j', (address, key) => {
    expect(mailboxKey(address)).toBe(key);
  });
});
