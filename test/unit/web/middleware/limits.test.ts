import { describe, expect, it } from 'vitest';
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

  it('keeps what is not an address as it is', () => {
    expect(clientNetwork('unknown')).toBe('unknown');
  });
});
