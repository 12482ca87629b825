import type { Queryable } from '../db/index.ts';
import type { Signature } from './types.ts';

// The statements are filed by topic; every one is reached through this module.
export * from './intake-queries.ts';
export * from './pending-queries.ts';
export * from './letter-parts-queries.ts';

/**
 * Whether signature `s`'s signer, who ticked `subscribe`, follows its campaign's case now: a
 * subscriber still, of the case or of every case. One who left, or whose address bounced, does not;
 * what they ticked once is no list to write to.
 */
export const FOLLOWS_CASE_NOW = `(s.subscribe AND EXISTS (
  SELECT 1 FROM subscribers sub JOIN subscriptions ss ON ss.subscriber_id = sub.id
   WHERE lower(sub.email) = lower(s.email) AND sub.status = 'active' AND ss.status = 'active'
     AND (ss.case_id IS NULL OR ss.case_id = (SELECT case_id FROM campaigns WHERE id = s.campaign_id))))`;

/**
 * A page of a campaign's signatures, oldest first, after `afterId`, with the columns the export
 * shows (each one more is parsed a thousand times a page); `follows`: FOLLOWS_CASE_NOW.
 */
export async function listSignaturesPage(db: Queryable, campaignId: number, afterId: number, limit: number) {
  const { rows } = await db.query<Pick<Signature, 'id' | 'full_name' | 'email' | 'city' | 'country' | 'personal_note' | 'status' | 'created_at' | 'confirmed_at'> & { follows: boolean }>(
    `SELECT s.id, s.full_name, s.email, s.city, s.country, s.personal_note, s.status, s.created_at, s.confirmed_at, ${FOLLOWS_CASE_NOW} AS follows
       FROM signatures s WHERE s.campaign_id = $1 AND s.id > $2 ORDER BY s.id LIMIT $3`,
    [campaignId, afterId, limit],
  );
  return rows;
}

/**
 * The campaign's letters, the one it has now (id null) and the ones it replaced, for matching the
 * text a sign page showed (one replaced too long ago is refused when the signature is stored).
 */
export async function listLetterTexts(db: Queryable, campaignId: number) {
  const { rows } = await db.query<{ id: number | null; letter_subject: string; letter_body: string }>(
    `SELECT NULL::bigint AS id, letter_subject, letter_body FROM campaigns WHERE id = $1
     UNION ALL
     SELECT id, letter_subject, letter_body FROM letter_versions WHERE campaign_id = $1`,
    [campaignId],
  );
  return rows;
}

/** Binds a signature to a letter it replaced: its letters carry that text, whatever comes after. */
export async function setLetterVersion(db: Queryable, signatureId: number, letterVersionId: number) {
  await db.query('UPDATE signatures SET letter_version_id = $2 WHERE id = $1', [signatureId, letterVersionId]);
}

/** A keyset page of signatures whose confirmation link is kept (its hash), with the round of their latest link. */
export async function listConfirmLinks(db: Queryable, afterId: number, limit: number) {
  const { rows } = await db.query<{ id: number; confirm_round: number }>(
    'SELECT id, confirm_round FROM signatures WHERE id > $1 AND confirm_token_hash IS NOT NULL ORDER BY id LIMIT $2',
    [afterId, limit],
  );
  return rows;
}

/** Replaces the kept hashes of confirmation links (a new secret derives other links). */
export async function setConfirmTokenHashes(db: Queryable, ids: readonly number[], hashes: readonly string[]) {
  await db.query(
    `UPDATE signatures s SET confirm_token_hash = v.hash FROM unnest($1::bigint[], $2::text[]) AS v (id, hash)
      WHERE s.id = v.id AND s.confirm_token_hash IS NOT NULL`,
    [ids, hashes],
  );
}
