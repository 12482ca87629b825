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
  it('folds case, a +tag, and Gmail dots and domains into one key', () => {
    expect(mailboxKey(' Ann+1@Example.ORG ')).toBe('ann@example.org');
    expect(mailboxKey('ann+x+y@example.org')).toBe('ann@example.org');
    expect(mailboxKey('a.n.n+news@googlemail.com')).toBe('ann@gmail.com');
    expect(mailboxKey('A.nn@gmail.com')).toBe('ann@gmail.com');
  });

  it('keeps dots elsewhere, and an address that starts with + as it is', () => {
    expect(mailboxKey('a.nn@example.org')).toBe('a.nn@example.org');
    expect(mailboxKey('+ann@example.org')).toBe('+ann@example.org');
    expect(mailboxKey('not-an-address')).toBe('not-an-address');
  });
});
