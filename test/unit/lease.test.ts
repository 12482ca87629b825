import { describe, expect, it } from 'vitest';
import { LEASE_SECONDS, RECORD_SENT_FOR_MS } from '../../src/deliveries/send.ts';
import { SMTP_TIMEOUTS } from '../../src/mail/transport.ts';

describe('the delivery lease', () => {
  it('outlasts the slowest send the transport waits for and the retries of its sent mark', () => {
    // Past the lease the sweeper queues the letter again while a slow relay may still be taking
    // it: a second copy. The transport gives up first, and the mark's retries end before it too.
    const slowestSendMs = SMTP_TIMEOUTS.connectionTimeout + SMTP_TIMEOUTS.greetingTimeout + SMTP_TIMEOUTS.socketTimeout;
    expect(LEASE_SECONDS * 1000).toBeGreaterThanOrEqual(slowestSendMs + RECORD_SENT_FOR_MS);
  });
});
