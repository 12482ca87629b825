import { describe, expect, it } from 'vitest';
import { passwordWeakness } from '../../../src/organizers/passwords.ts';

describe('what a new organizer password may not be', () => {
  const own = ['org@example.org', 'Otto Org'];

  it('refuses one made of the organizer\'s own email or name, however often it is repeated', async () => {
    for (const password of ['Otto Org Otto Org', 'org@example.org org@example.org', 'ottoorg2026!!', 'OttoOrgOttoOrg', 'Otto Org 2026']) {
      expect(await passwordWeakness(password, own), password).toMatch(/made of your email or name/);
    }
  });

  it('takes a passphrase of unrelated words, with or without the name in it', async () => {
    expect(await passwordWeakness('correct horse battery staple', own)).toBeUndefined();
    expect(await passwordWeakness('otto rides purple bicycles daily', own)).toBeUndefined();
  });

  it('refuses a common password', async () => {
    expect(await passwordWeakness('password1234', own)).toMatch(/common password or pattern/);
  });
});
