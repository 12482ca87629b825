import type { Queryable } from '../db/index.ts';

/**
 * A signer who ticked `subscribe` follows the case once their signature is confirmed: they
 * confirmed this address already, so no second opt-in is asked. An address that unsubscribed
 * before stays unsubscribed.
 */
export async function subscribeConfirmedSigner(db: Queryable, email: string, caseId: number, source: string): Promise<void> {
  const { rows } = await db.query<{ id: number; status: string }>(
    `INSERT INTO subscribers (email, status, consent_at, consent_source, consent_text, confirmed_at)
     VALUES ($1, 'active', now(), $2, $3, now())
     ON CONFLICT (lower(email)) DO UPDATE SET email = subscribers.email
     RETURNING id, status`,
    [email, source, 'Keep me informed about this case by email.'],
  );
  const subscriber = rows[0]!;
  if (subscriber.status === 'pending') {
    await db.query(
      `UPDATE subscribers SET status = 'active', confirmed_at = now(), consent_at = now(), consent_source = $2
        WHERE id = $1 AND status = 'pending'`,
      [subscriber.id, source],
    );
  } else if (subscriber.status !== 'active') {
    return;
  }
  await db.query(
    'INSERT INTO subscriptions (subscriber_id, case_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
    [subscriber.id, caseId],
  );
}
