import type { Queryable } from '../db/index.ts';
import type { Campaign } from '../campaigns/types.ts';
import type { Signature, SignatureInput } from './types.ts';

export type CampaignForSigning = Pick<Campaign, 'id' | 'slug' | 'title' | 'status' | 'case_id' | 'require_confirmation' | 'delivery_mode'>;

/**
 * The campaigns signatures are for, by slug, each row with the id its signature will get: the
 * confirmation token is derived from that id, so knowing it first lets one statement store the
 * signature with its token hash. An id taken for a signature that is then not stored is a harmless
 * gap. `ord` is the slug's 1-based position; an unknown slug has no row.
 */
export async function getCampaignsForSigning(db: Queryable, slugs: readonly string[]) {
  // Only what signing reads: every signature of a batch gets its own row, and pg parses each
  // column of each (the letter template and the dates were most of this read's client time).
  const { rows } = await db.query<CampaignForSigning & { ord: number; next_signature_id: number }>(
    `SELECT x.ord, c.id, c.slug, c.title, c.status, c.case_id, c.require_confirmation, c.delivery_mode,
            nextval(pg_get_serial_sequence('signatures', 'id')) AS next_signature_id
       FROM unnest($1::text[]) WITH ORDINALITY AS x (slug, ord)
       JOIN campaigns c ON c.slug = x.slug`,
    [slugs],
  );
  return rows;
}

export interface NewSignature {
  id: number;
  campaignId: number;
  input: SignatureInput;
  status: 'pending' | 'confirmed';
  ipHash: string | null;
  /** For a pending signature: the hash of its confirmation token. */
  confirmTokenHash: string | null;
  /** For a confirmed one: whether its letters go now, one per target (not in a digest later). */
  lettersNow: boolean;
}

/**
 * Stores signatures and what they send in one statement, so each commits with its deliveries
 * without a transaction's extra round trips: a pending signature gets its confirmation email, a
 * confirmed one its letters when `lettersNow`. The unique (campaign, lower(email)) index makes a
 * second signature by the same address a no-op, within the batch too: nothing is sent for it.
 * Rows go in in index order, so two such statements cannot deadlock on each other.
 * @returns per signature, in order: whether it was stored, and the ids of its deliveries.
 */
export async function insertSignatures(db: Queryable, sigs: readonly NewSignature[]) {
  const column = <T>(pick: (s: NewSignature) => T) => sigs.map(pick);
  const { rows } = await db.query<{ id: number; delivery_ids: (string | number)[] }>(
    `WITH v AS (
       SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                            $8::boolean[], $9::text[], $10::text[], $11::text[], $12::boolean[])
         AS v (id, campaign_id, full_name, email, city, country, personal_note, subscribe, status, ip_hash,
               confirm_token_hash, letters_now)
     ), sig AS (
       INSERT INTO signatures (id, campaign_id, full_name, email, city, country, personal_note, subscribe, status, ip_hash,
                               confirm_token_hash, confirmed_at)
       OVERRIDING SYSTEM VALUE
       SELECT id, campaign_id, full_name, email, city, country, personal_note, subscribe, status, ip_hash,
              confirm_token_hash, CASE WHEN status = 'confirmed' THEN now() END
         FROM v ORDER BY campaign_id, lower(email), id
       ON CONFLICT (campaign_id, lower(email)) DO NOTHING
       RETURNING id, campaign_id, email, status
     ), confirm AS (
       INSERT INTO deliveries (kind, source_id, campaign_id, recipient)
       SELECT 'confirm', id, campaign_id, email FROM sig WHERE status = 'pending' ORDER BY id
       ON CONFLICT DO NOTHING RETURNING id, source_id
     ), letters AS (
       INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient)
       SELECT 'letter', sig.id, t.id, t.campaign_id, t.email
         FROM sig JOIN v ON v.id = sig.id JOIN targets t ON t.campaign_id = sig.campaign_id
        WHERE sig.status = 'confirmed' AND v.letters_now
        ORDER BY sig.id, t.position, t.id
       ON CONFLICT DO NOTHING RETURNING id, source_id
     ), sent AS (
       SELECT id, source_id FROM confirm UNION ALL SELECT id, source_id FROM letters
     )
     SELECT sig.id, ARRAY (SELECT sent.id FROM sent WHERE sent.source_id = sig.id ORDER BY sent.id) AS delivery_ids
       FROM sig`,
    [
      column((s) => s.id), column((s) => s.campaignId), column((s) => s.input.fullName), column((s) => s.input.email),
      column((s) => s.input.city), column((s) => s.input.country), column((s) => s.input.personalNote),
      column((s) => s.input.subscribe), column((s) => s.status), column((s) => s.ipHash),
      column((s) => s.confirmTokenHash), column((s) => s.lettersNow),
    ],
  );
  // pg parses int8 as a number (src/db), but an int8[] still comes back as strings.
  const stored = new Map(rows.map((r) => [r.id, r.delivery_ids.map(Number)]));
  return sigs.map((s) => ({ signed: stored.has(s.id), deliveryIds: stored.get(s.id) ?? [] }));
}

export async function getSignatureByTokenHash(db: Queryable, hash: string) {
  const { rows } = await db.query<Signature>('SELECT * FROM signatures WHERE confirm_token_hash = $1', [hash]);
  return rows[0];
}

export async function getSignature(db: Queryable, id: number) {
  const { rows } = await db.query<Signature>('SELECT * FROM signatures WHERE id = $1', [id]);
  return rows[0];
}

/** Only a pending signature moves, so two clicks on the button confirm once. */
export async function markConfirmed(db: Queryable, id: number) {
  const { rows } = await db.query<Signature>(
    `UPDATE signatures SET status = 'confirmed', confirmed_at = now() WHERE id = $1 AND status = 'pending' RETURNING *`,
    [id],
  );
  return rows[0];
}

/** One letter per target of the signature's campaign. */
export async function insertLetterDeliveries(db: Queryable, signature: Signature) {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient)
     SELECT 'letter', $1, t.id, t.campaign_id, t.email FROM targets t WHERE t.campaign_id = $2
     ORDER BY t.position, t.id
     ON CONFLICT DO NOTHING RETURNING id`,
    [signature.id, signature.campaign_id],
  );
  return rows.map((r) => r.id);
}

export interface LetterParts {
  full_name: string;
  email: string;
  city: string;
  country: string;
  personal_note: string;
  sig_status: string;
  confirmed_at: Date | null;
  created_at: Date;
  target_name: string;
  target_title: string;
  target_email: string;
  salutation: string;
  disclose: 'name' | 'name_place' | 'full';
  campaign_title: string;
  campaign_slug: string;
  letter_subject: string;
  letter_body: string;
  person_name: string;
  location: string;
}

/**
 * The parts of many letters in one statement, one row per (signature, target) pair that exists;
 * `ord` is the pair's 1-based position in the arguments.
 */
export async function getLetterPartsBatch(db: Queryable, pairs: readonly { signatureId: number; targetId: number }[]) {
  const { rows } = await db.query<LetterParts & { ord: number }>(
    `SELECT x.ord, s.full_name, s.email, s.city, s.country, s.personal_note, s.status AS sig_status, s.confirmed_at, s.created_at,
            t.name AS target_name, t.title AS target_title, t.email AS target_email, t.salutation, t.disclose,
            c.title AS campaign_title, c.slug AS campaign_slug, c.letter_subject, c.letter_body,
            k.person_name, k.location
       FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS x (signature_id, target_id, ord)
       JOIN signatures s ON s.id = x.signature_id
       JOIN targets t ON t.id = x.target_id AND t.campaign_id = s.campaign_id
       JOIN campaigns c ON c.id = s.campaign_id
       JOIN cases k ON k.id = c.case_id`,
    [pairs.map((p) => p.signatureId), pairs.map((p) => p.targetId)],
  );
  return rows;
}

export async function getConfirmParts(db: Queryable, signatureId: number) {
  const { rows } = await db.query<{ id: number; full_name: string; email: string; status: string; campaign_title: string; campaign_slug: string; person_name: string }>(
    `SELECT s.id, s.full_name, s.email, s.status, c.title AS campaign_title, c.slug AS campaign_slug, k.person_name
       FROM signatures s JOIN campaigns c ON c.id = s.campaign_id JOIN cases k ON k.id = c.case_id
      WHERE s.id = $1`,
    [signatureId],
  );
  return rows[0];
}

/** One keyset page of a campaign's signatures, oldest first. */
export async function listSignaturesPage(db: Queryable, campaignId: number, afterId: number, limit: number) {
  const { rows } = await db.query<Signature>(
    'SELECT * FROM signatures WHERE campaign_id = $1 AND id > $2 ORDER BY id LIMIT $3',
    [campaignId, afterId, limit],
  );
  return rows;
}
