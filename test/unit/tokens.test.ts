import { describe, expect, it } from 'vitest';
import { deriveToken, hashIdentifier, hashToken, randomToken } from '../../src/tokens.ts';

describe('tokens', () => {
  it('derives the same url-safe token for the same secret, purpose and row', () => {
    const token = deriveToken('secret-one', 'confirm-signature', 42);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(deriveToken('secret-one', 'confirm-signature', 42)).toBe(token);
  });

  it('derives a different token for another row, purpose or secret', () => {
    const token = deriveToken('secret-one', 'confirm-signature', 42);
    expect(new Set([
      token,
      deriveToken('secret-one', 'confirm-signature', 43),
      deriveToken('secret-one', 'confirm-subscriber', 42),
      deriveToken('secret-two', 'confirm-signature', 42),
    ]).size).toBe(4);
  });

  it('stores a token as its sha256 hash, which does not contain it', () => {
    const token = randomToken();
    const hash = hashToken(token);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).toBe(hashToken(token));
    expect(hash).not.toContain(token);
  });

  it('makes random tokens long and unguessable', () => {
    const tokens = new Set(Array.from({ length: 100 }, () => randomToken()));
    expect(tokens.size).toBe(100);
    for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('keys identifier hashes with the secret and ignores capitals', () => {
    const a = hashIdentifier('secret-one', 'Dana@Example.org');
    expect(a).toHaveLength(32);
    expect(hashIdentifier('secret-one', 'dana@example.org')).toBe(a);
    expect(hashIdentifier('secret-two', 'dana@example.org')).not.toBe(a);
    expect(hashIdentifier('secret-one', '203.0.113.7')).not.toContain('203');
  });
});
