import { describe, expect, it } from 'vitest';
import { displayName, oneLine } from '../../../src/mail/address.ts';

describe('header text', () => {
  it('puts a value on one line', () => {
    expect(oneLine(' Aigerim\r\nBcc: x@evil.example\t')).toBe('Aigerim Bcc: x@evil.example');
  });

  it('keeps a display name from showing an address of its own', () => {
    expect(displayName('Ann <minister@gov.example> via Appeal')).toBe('Ann minister gov.example via Appeal');
    expect(displayName('Айгерим "<x@evil.com>" Нурлановна')).toBe('Айгерим " x evil.com " Нурлановна');
    expect(displayName('Ann ＜minister＠gov.example＞ ﹤x﹫y.example﹥')).toBe('Ann minister gov.example x y.example');
  });

  it('leaves real names as they are', () => {
    for (const name of ["Zhanar O'Neil-Seitkali", 'Dr. Nurlan Ä. Bek, Jr.', '李', 'Ayşe & Friends']) expect(displayName(name)).toBe(name);
  });
});
