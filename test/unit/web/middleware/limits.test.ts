import { describe, expect, it, vi } from 'vitest';
import { clientNetwork } from '../../../../src/web/middleware/limits.ts';

describe('the client a per-IP limit counts', () => {
  it('is an IPv4 address, also when a dual-stack socket reports it mapped into IPv6', () => {
    expect(clientNetwork('192.0.2.7')).toBe('192.0.2.7');
    expect(clientNetwork('::ffff:192.0.2.7')).toBe('192.0.2.7');
  });

  it('is the /64 of an IPv6 address, so one line cannot rotate through its addresses', () => {
    expect(clientNetwork('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('2001:db8:1:2:ffff:eeee:dddd:cccc')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('2001:db8:1:3::1')).not.toBe(clientNetwork('2001:db8:1:2::1'));
    expect(clientNetwork('::1')).toBe('0:0:0:0::/64');
  });

  it('drops the port a proxy may write after the address, so each connection is not a new client', () => {
    expect(clientNetwork('203.0.113.7:1001')).toBe('203.0.113.7');
    expect(clientNetwork('203.0.113.7:1002')).toBe(clientNetwork('203.0.113.7'));
    expect(clientNetwork('[2001:db8:1:2::1]:1001')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('[2001:db8:1:2::5]')).toBe('2001:db8:1:2::/64');
  });

  it('counts whatever is not an address as one client, not one per spelling', () => {
    expect(clientNetwork('unknown')).toBe('unparsed');
    expect(clientNetwork('garbage-1')).toBe(clientNetwork('garbage-2'));
    expect(clientNetwork('203.0.113.7:99999999')).toBe('unparsed');
  });
});

describe('a count given back', () => {
  it('leaves nothing in memory once it is back to nothing, and keeps a count still in use', async () => {
    const { localBudget } = await import('../../../../src/budgets.ts');
    const { RateLimiterMemory } = await import('rate-limiter-flexible');
    const deleted = vi.spyOn(RateLimiterMemory.prototype, 'delete');
    try {
      const budget = localBudget({ config: { queuePrefix: 'unit' } as never, secret: 'a secret of some length' }, 'unit', 10, 3600);
      await budget.take('ann@example.org');
      await budget.take('ann@example.org');
      await budget.giveBack('ann@example.org');
      expect(deleted).not.toHaveBeenCalled();
      await budget.giveBack('ann@example.org');
      expect(deleted).toHaveBeenCalledTimes(1);
    } finally {
      deleted.mockRestore();
    }
  });
});
