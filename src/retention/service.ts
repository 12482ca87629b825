import type { Queryable } from '../db/index.ts';

/**
 * Deletes signatures and subscribers never confirmed within `days`, with the deliveries that
 * served them: an address that never said yes is not kept.
 */
export async function purgeUnconfirmed(db: Queryable, days: number): Promise<{ signatures: number; subscribers: number }> {
  const cutoff = [days];
  await db.query(
    `DELETE FROM deliveries d USING signatures s
      WHERE d.kind IN ('confirm', 'letter') AND d.source_id = s.id
        AND s.status = 'pending' AND s.created_at < now() - make_interval(days => $1)`,
    cutoff,
  );
  const signatures = await db.query(
    `DELETE FROM signatures WHERE status = 'pending' AND created_at < now() - make_interval(days => $1)`,
    cutoff,
  );
  await db.query(
    `DELETE FROM deliveries d USING subscribers s
      WHERE d.kind IN ('optin', 'welcome') AND d.source_id = s.id
        AND s.status = 'pending' AND s.optin_requested_at < now() - make_interval(days => $1)`,
    cutoff,
  );
  const subscribers = await db.query(
    `DELETE FROM subscribers WHERE status = 'pending' AND optin_requested_at < now() - make_interval(days => $1)`,
    cutoff,
  );
  // Someone already known (active, or unsubscribed) who asked to follow more and never confirmed:
  // the request goes, the subscriber and what they did confirm stay.
  await db.query(
    `DELETE FROM subscriptions sub USING subscribers s
      WHERE sub.subscriber_id = s.id AND sub.status = 'pending'
        AND s.optin_requested_at < now() - make_interval(days => $1)`,
    cutoff,
  );
  return { signatures: signatures.rowCount, subscribers: subscribers.rowCount };
}
