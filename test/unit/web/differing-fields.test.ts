import { describe, expect, it } from 'vitest';
import { differingFields } from '../../../src/web/routes/admin/render.ts';

describe('a console form compared with what is saved', () => {
  // Text is kept composed (NFC): the same form sent twice with its accents as separate marks
  // (a double click) is the form saved, not an edit made meanwhile.
  it('reads text the same however its accents are written, its line breaks too', () => {
    const saved = { person_name: 'Айгерим Нурланқызы', summary: 'Line one\nline two' };
    const typed = { person_name: 'Айгерим Нурланқызы'.normalize('NFD'), summary: 'Line one\r\nline two ' };
    expect(typed.person_name).not.toBe(saved.person_name);
    expect(differingFields(saved, typed, ['person_name', 'summary'])).toEqual([]);
    expect(differingFields(saved, { ...typed, person_name: 'Айгерим' }, ['person_name', 'summary'])).toEqual(['person_name']);
  });
});
