import type { Queryable } from '../db/index.ts';

// Every subscriber a keyset page at a time: the console's CSV export and counts, and the kept
// links that a secret rotation derives again (rederiveSubscriberLinks).

export interface SubscriberExportRow {
  id: number;
  email: string;
  status: string;
  consent_at: Date | null;
  consent_source: string | null;
  created_at: Date;
  confirmed_at: Date | null;
  unsubscribed_at: Date | null;
  /** Slugs of the cases followed (confirmed subscriptions), `*` for all cases. */
  follows: string;
  /**
   * Slugs asked for on a form and not yet confirmed by email, `*` for all cases. Kept apart from
   * `follows`: anyone can type an address into a form, so these are no one's consent.
   */
  awaiting_confirmation: string;
}

/** One keyset page of subscribers with what each follows, for the console's CSV export. */
export async function listSubscribersPage(db: Queryable, afterId: number, limit: number) {
  const { rows } = await db.query<SubscriberExportRow>(
    `SELECT s.id, s.email, s.status, s.consent_at, s.consent_source, s.created_at, s.confirmed_at, s.unsubscribed_at,
            coalesce(f.follows, '') AS follows, coalesce(f.awaiting, '') AS awaiting_confirmation
       FROM subscribers s
            LEFT JOIN LATERAL (
              SELECT string_agg(coalesce(c.slug, '*'), ' ' ORDER BY c.slug NULLS FIRST) FILTER (WHERE x.status = 'active') AS follows,
                     string_agg(coalesce(c.slug, '*'), ' ' ORDER BY c.slug NULLS FIRST) FILTER (WHERE x.status = 'pending') AS awaiting
                FROM subscriptions x LEFT JOIN cases c ON c.id = x.case_id
               WHERE x.subscriber_id = s.id
            ) f ON true
      WHERE s.id > $1 ORDER BY s.id LIMIT $2`,
    [afterId, limit],
  );
  return rows;
}

export async function countSubscribersByStatus(db: Queryable) {
  const { rows } = await db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM subscribers GROUP BY status ORDER BY status');
  return rows;
}

/** A keyset page of subscribers with a link kept (the hash of their opt-in or manage link), and the round of their opt-in. */
export async function listSubscriberLinks(db: Queryable, afterId: number, limit: number) {
  const { rows } = await db.query<{ id: number; optin_round: number }>(
    `SELECT id, optin_round FROM subscribers
      WHERE id > $1 AND (confirm_token_hash IS NOT NULL OR manage_token_hash IS NOT NULL) ORDER BY id LIMIT $2`,
    [afterId, limit],
  );
  return rows;
}

/** Replaces the kept hashes of subscribers' links; a link not kept (NULL) stays so. */
export async function setSubscriberTokenHashes(db: Queryable, ids: readonly number[], optin: readonly string[], manage: readonly string[]) {
  await db.query(
    `UPDATE subscribers s
        SET confirm_token_hash = CASE WHEN s.confirm_token_hash IS NULL THEN NULL ELSE v.optin END,
            manage_token_hash = CASE WHEN s.manage_token_hash IS NULL THEN NULL ELSE v.manage END
       FROM unnest($1::bigint[], $2::text[], $3::text[]) AS v (id, optin, manage)
      WHERE s.id = v.id`,
    [ids, optin, manage],
  );
}
