import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordSentAndClaim } from '../../src/deliveries/queries.ts';
import { createTestDb, DB_KINDS, type TestDb } from '../helpers/db.ts';

describe.each(DB_KINDS)('the send ledger on %s', (kind) => {
  let t: TestDb;
  beforeEach(async () => {
    t = await createTestDb(kind);
  });
  afterEach(async () => {
    await t.close();
  });

  async function delivery(status: string, leaseSeconds: number | null = null): Promise<number> {
    const { rows } = await t.db.query<{ id: number }>(
      `INSERT INTO deliveries (kind, source_id, recipient, status, attempts, lease_until)
       VALUES ('confirm', (SELECT coalesce(max(source_id), 0) + 1 FROM deliveries), 'someone@appeal.test', $1, $2,
               CASE WHEN $3::int IS NULL THEN NULL ELSE now() + make_interval(secs => $3::int) END)
       RETURNING id`,
      [status, status === 'queued' ? 0 : 1, leaseSeconds],
    );
    return rows[0]!.id;
  }
  const row = async (id: number) =>
    (await t.db.query<{ status: string; attempts: number; message_id: string | null; lease_until: Date | null }>(
      'SELECT status, attempts, message_id, lease_until FROM deliveries WHERE id = $1',
      [id],
    )).rows[0]!;

  it('records a sent mark and claims other deliveries in the same statement', async () => {
    const sending = await delivery('sending', 90);
    const queued = await delivery('queued');
    const claimed = await recordSentAndClaim(t.db, [{ id: sending, messageId: '<one@appeal.test>' }], [queued], 90);
    expect(claimed.map((d) => d.id)).toEqual([queued]);
    expect(claimed[0]).toMatchObject({ status: 'sending', attempts: 1, suppressed: false });
    expect(await row(sending)).toMatchObject({ status: 'sent', message_id: '<one@appeal.test>', lease_until: null });
  });

  it('does not claim a delivery it marks sent in the same statement, even with its lease run out', async () => {
    const lapsed = await delivery('sending', -5);
    const claimed = await recordSentAndClaim(t.db, [{ id: lapsed, messageId: '<late@appeal.test>' }], [lapsed], 90);
    expect(claimed).toEqual([]);
    expect(await row(lapsed)).toMatchObject({ status: 'sent', attempts: 1, message_id: '<late@appeal.test>' });
  });

  it('claims a delivery whose lease ran out, but not one held by a live lease, nor one already sent', async () => {
    const lapsed = await delivery('sending', -5);
    const held = await delivery('sending', 90);
    const sent = await delivery('sent');
    const claimed = await recordSentAndClaim(t.db, [], [lapsed, held, sent], 90);
    expect(claimed.map((d) => d.id)).toEqual([lapsed]);
    expect((await row(lapsed)).attempts).toBe(2);
    expect((await row(held)).attempts).toBe(1);
  });

  it('a repeated or late sent mark changes nothing', async () => {
    const id = await delivery('sending', 90);
    await recordSentAndClaim(t.db, [{ id, messageId: '<first@appeal.test>' }], [], 90);
    await recordSentAndClaim(t.db, [{ id, messageId: '<second@appeal.test>' }], [], 90);
    expect(await row(id)).toMatchObject({ status: 'sent', message_id: '<first@appeal.test>' });
  });

  it('leaves a failed delivery failed: only a sending row becomes sent', async () => {
    const id = await delivery('failed');
    await recordSentAndClaim(t.db, [{ id, messageId: '<stray@appeal.test>' }], [], 90);
    expect(await row(id)).toMatchObject({ status: 'failed', message_id: null });
  });
});
