import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable, unavailableCause } from '../../src/db/index.ts';

describe('a database out of reach, in words', () => {
  it('names the cause an operator acts on, for every code counted as the database away', () => {
    const causes = Object.fromEntries(['53300', '53100', '25006', '3D000', '57P01', '28P01', 'ECONNREFUSED'].map((code) => {
      const err = Object.assign(new Error('away'), { code });
      expect(isDatabaseUnavailable(err), code).toBe(true);
      return [code, unavailableCause(err)];
    }));
    expect(causes).toEqual({
      '53300': "too many connections: raise max_connections or lower the processes' pools",
      '53100': "the database server's disk is full",
      '25006': 'the database takes no writes (a standby, or a primary a failover demoted)',
      '3D000': 'no such database',
      '57P01': 'the database server is shutting down, restarting or dropped the session',
      '28P01': 'the database refused the login',
      ECONNREFUSED: 'the database server could not be reached',
    });
  });

  it('counts connection exceptions (class 08) as away, and a statement\'s own mistakes or its time limit not', () => {
    const away = (code: string, more: object = {}) => isDatabaseUnavailable(Object.assign(new Error('x'), { code, ...more }));
    expect(['08006', '08001', '57P05', '55000'].map((code) => away(code, code === '55000' ? { severity: 'FATAL' } : {}))).toEqual([true, true, true, true]);
    expect(['23505', '42P01', '57014', '55000', '40001'].map((code) => away(code))).toEqual([false, false, false, false, false]);
  });

  it('names a statement cut off by the process\'s own limit as slow, not as out of reach', () => {
    expect(unavailableCause(Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }))).toMatch(/^a statement took longer than this process allows/);
  });
});
