import type { Queryable } from '../db/index.ts';
import type { DeliveryKind, DeliveryStatus } from './types.ts';

// A campaign's letters and digests as the console shows them: counts by status, the list, and
// those sent to an official's address since corrected, to send again to the address it has now.

/**
 * A campaign's deliveries of these kinds by status, from deliveries_campaign_kind_idx alone (one
 * fixed shape: a `$1 IS NULL OR …` filter made a prepared statement's generic plan scan them all).
 */
export async function countDeliveriesByStatus(db: Queryable, campaignId: number, kinds: DeliveryKind[]) {
  const { rows } = await db.query<{ status: DeliveryStatus; n: number }>(
    `SELECT status, count(*)::int AS n FROM deliveries WHERE campaign_id = $1 AND kind = ANY($2::text[]) GROUP BY status`,
    [campaignId, kinds],
  );
  return rows;
}

/** One official's letters and digests of a campaign: sent (the relay took them), waiting (queued, to be retried, being sent), failed. */
export interface TargetLetterCounts {
  sent: number;
  waiting: number;
  failed: number;
}

/**
 * Each target's letters and digests by how they stand, so an organizer can tell whether the judge
 * got them all; by target id, targets with none left out. One pass over the campaign's
 * deliveries when its page opens: no index holds the target beside the campaign, so Postgres reads
 * the rows (about 300 ms for 2.4 million letters of one campaign). A letter sent again after its
 * target's address was corrected counts once per row, so `sent` may exceed the signers.
 */
export async function countLettersByTarget(db: Queryable, campaignId: number): Promise<Map<number, TargetLetterCounts>> {
  const { rows } = await db.query<TargetLetterCounts & { target_id: number }>(
    `SELECT target_id, count(*) FILTER (WHERE status = 'sent')::int AS sent,
            count(*) FILTER (WHERE status IN ('queued', 'retry', 'sending'))::int AS waiting,
            count(*) FILTER (WHERE status = 'failed')::int AS failed
       FROM deliveries WHERE campaign_id = $1 AND kind IN ('letter', 'digest') AND target_id IS NOT NULL
      GROUP BY target_id`,
    [campaignId],
  );
  return new Map(rows.map(({ target_id, ...counts }) => [Number(target_id), counts]));
}

export interface CampaignLetter {
  id: number;
  kind: string;
  recipient: string;
  status: string;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date | null;
  sent_at: Date | null;
  created_at: Date;
  target_name: string | null;
}

/**
 * A campaign's letters and digests, newest first, a keyset page at a time (ids below `beforeId`),
 * optionally of one status: which official got which letter, and when. Nothing of the signer.
 */
export async function listCampaignLetters(db: Queryable, campaignId: number, opts: { status?: string; beforeId?: number; limit: number }) {
  const { rows } = await db.query<CampaignLetter>(
    `SELECT d.id, d.kind, d.recipient, d.status, d.attempts, d.last_error, d.next_attempt_at, d.sent_at, d.created_at, t.name AS target_name
       FROM deliveries d LEFT JOIN targets t ON t.id = d.target_id
      WHERE d.campaign_id = $1 AND d.kind IN ('letter', 'digest')
        AND ($2::text IS NULL OR d.status = $2) AND ($3::bigint IS NULL OR d.id < $3)
      ORDER BY d.id DESC LIMIT $4`,
    [campaignId, opts.status ?? null, opts.beforeId ?? null, opts.limit],
  );
  return rows;
}

/**
 * SQL, for each target `t`: its letters and digests `d` that went (the relay took them) to an
 * address it no longer has, and of which no email of the same key (deliveries_once_key) went to
 * the address it has now. A relay takes a letter to a mailbox that does not exist and reports the
 * bounce later, to MAIL_FROM, where Appeal does not see it: such letters are `sent`, not failed,
 * and a corrected address alone does not bring them back. Two range scans of
 * deliveries_target_recipient_idx, below and above the address now: only letters to other
 * addresses are read, however many went to the right one.
 */
const SENT_ELSEWHERE = (alias: string) =>
  ['<', '>'].map((side) => `SELECT d.* FROM deliveries d
      WHERE d.target_id = ${alias}.id AND lower(d.recipient) ${side} lower(${alias}.email)
        AND d.kind IN ('letter', 'digest') AND d.status = 'sent'
        -- A letter of a signer since forgotten could not be written again (its row names nobody).
        AND (d.kind <> 'letter' OR EXISTS (SELECT 1 FROM signatures s WHERE s.id = d.source_id))
        AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.kind = d.kind AND e.source_id = d.source_id AND lower(e.recipient) = lower(${alias}.email))`).join(' UNION ALL ');

/** Per target of the campaign written to: how many emails SENT_ELSEWHERE would send again, and the addresses they went to. */
export async function countSentElsewhere(db: Queryable, campaignId: number) {
  const { rows } = await db.query<{ target_id: number; n: number; addresses: string }>(
    `SELECT t.id AS target_id, count(DISTINCT (w.kind, w.source_id))::int AS n, string_agg(DISTINCT w.recipient, ', ') AS addresses
       FROM targets t CROSS JOIN LATERAL (${SENT_ELSEWHERE('t')}) w
      WHERE t.campaign_id = $1 AND t.retired_at IS NULL
      GROUP BY t.id`,
    [campaignId],
  );
  return new Map(rows.map((r) => [r.target_id, { n: r.n, addresses: r.addresses }]));
}

/**
 * A new delivery to the target's address now for each email SENT_ELSEWHERE: the same letter or
 * digest goes to the corrected address. Sent again, the form adds nothing (deliveries_once_key).
 * @returns the new deliveries' ids and kinds
 */
export async function sendAgainToCurrentAddress(db: Queryable, campaignId: number, targetId: number): Promise<{ id: number; kind: DeliveryKind }[]> {
  const { rows } = await db.query<{ id: number; kind: DeliveryKind }>(
    `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient)
     SELECT DISTINCT ON (w.kind, w.source_id) w.kind, w.source_id, w.target_id, w.campaign_id, t.email
       FROM targets t CROSS JOIN LATERAL (${SENT_ELSEWHERE('t')}) w
      WHERE t.id = $2 AND t.campaign_id = $1 AND t.retired_at IS NULL
      ORDER BY w.kind, w.source_id
     ON CONFLICT DO NOTHING RETURNING id, kind`,
    [campaignId, targetId],
  );
  return rows;
}

/**
 * How many letters and digests to the target's address now were made in the last `seconds` in
 * place of one sent to another address (what sendAgainToCurrentAddress makes): a form sent twice
 * finds those its first sending made.
 */
export async function countSentAgainLately(db: Queryable, campaignId: number, targetId: number, seconds: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM targets t JOIN deliveries d ON d.target_id = t.id AND lower(d.recipient) = lower(t.email)
      WHERE t.id = $2 AND t.campaign_id = $1 AND d.kind IN ('letter', 'digest') AND d.created_at > now() - make_interval(secs => $3)
        AND EXISTS (SELECT 1 FROM deliveries o WHERE o.kind = d.kind AND o.source_id = d.source_id AND o.target_id = d.target_id
                       AND o.status = 'sent' AND o.created_at < d.created_at AND lower(o.recipient) <> lower(t.email))`,
    [campaignId, targetId, seconds],
  );
  return rows[0]!.n;
}
