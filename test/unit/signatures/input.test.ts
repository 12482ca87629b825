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
});
