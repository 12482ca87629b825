import { describe, expect, it } from 'vitest';
import { signatureInput } from '../../../src/signatures/types.ts';

const base = { email: 'signer@supporter.example' };

describe('the signature form', () => {
  it('takes a name of one character, as some scripts write a whole name', () => {
    for (const fullName of ['李', '김', 'Ó']) expect(signatureInput.parse({ ...base, fullName }).fullName).toBe(fullName);
  });

  it('refuses an empty or blank name, and a name of more than one line', () => {
    for (const fullName of ['', '   ', 'Ann\nBcc: x@evil.example']) expect(signatureInput.safeParse({ ...base, fullName }).success).toBe(false);
  });

  it('refuses the controls that turn how a name shows around, and takes right-to-left names as typed', () => {
    const reversed = signatureInput.safeParse({ ...base, fullName: 'Ann \u202Eelpmaxe.vog@retsinim' });
    expect(reversed.success).toBe(false);
    expect(reversed.error!.issues[0]!.message).toBe('must not contain text-direction control characters');
    expect(signatureInput.parse({ ...base, fullName: 'ئايگېرىم نۇرلان', city: 'ئۈرۈمچی' }).city).toBe('ئۈرۈمچی');
  });
});
