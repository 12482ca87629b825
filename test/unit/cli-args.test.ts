import { describe, expect, it } from 'vitest';
import { commandEmail, usageProblem } from '../../src/cli/commands.ts';

describe('the cli command line', () => {
  // forget erased `-x@…` from the database but looked for the rate-limit counters of `--`.
  it('reads the email after `--` as the email, for every use of it', () => {
    expect(usageProblem(['forget', '--', '-x@example.org'])).toBeUndefined();
    expect(commandEmail(['forget', '--', '-x@example.org'])).toBe('-x@example.org');
    expect(commandEmail(['forget', 'ann@example.org'])).toBe('ann@example.org');
  });

  it('takes after-restore without arguments', () => {
    expect(usageProblem(['after-restore'])).toBeUndefined();
    expect(usageProblem(['after-restore', 'now'])).toMatchObject({ code: 2 });
  });
});
