import { afterEach, describe, expect, it, vi } from 'vitest';
import { deadlineMistake } from '../../../src/campaigns/service.ts';

describe('deadlineMistake', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('takes a day from yesterday in UTC on (today somewhere), and refuses one before as past', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-06T00:30:00Z'));
    expect(deadlineMistake('2026-12-06', null)).toBeUndefined();
    expect(deadlineMistake('2026-12-05', null)).toBeUndefined();
    expect(deadlineMistake('2026-12-04', null)).toBe('has passed: give the day the officials must act by, today or later');
    expect(deadlineMistake('2036-01-01', null)).toBeUndefined();
  });

  it('keeps a deadline that passed while the campaign ran, and takes none at all', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-06T12:00:00Z'));
    expect(deadlineMistake('2026-01-31', '2026-01-31')).toBeUndefined();
    expect(deadlineMistake(' 2026-01-31 ', '2026-01-31')).toBeUndefined();
    expect(deadlineMistake('2026-01-30', '2026-01-31')).toMatch(/^has passed/);
    expect(deadlineMistake('', '2026-01-31')).toBeUndefined();
    expect(deadlineMistake('2026-02-30', null)).toBe('must be a date like 2026-03-31');
  });
});
