import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../../src/errors.ts';
import { idParam } from '../../../src/web/forms.ts';

describe('idParam', () => {
  it('reads an id written in plain digits', () => {
    expect(idParam('1', 'campaign')).toBe(1);
    expect(idParam('123456789012345', 'campaign')).toBe(123456789012345);
  });

  it('answers 404 for anything else, never guessing at what was meant', () => {
    for (const value of ['0', '-1', '01', '0x10', '1e3', ' 12 ', '12 ', '1.0', '', '1234567890123456', ['5'], 5, undefined]) {
      expect(() => idParam(value, 'campaign'), JSON.stringify(value)).toThrow(NotFoundError);
    }
  });
});
