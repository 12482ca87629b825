import type { Queryable } from '../db/index.ts';
import type { Signature, SignatureInput } from './types.ts';

/** The unique (campaign, lower(email)) index makes a second signature a no-op: no row comes back. */
export async function insertSignature(
  db: Queryable,
  campaignId: number,
  s: SignatureInput,
  status: 'pending' | 'confirmed',
  ipHash: string | null,
) {
  const { rows } = await db.query<Signature>(
    `INSERT INTO signatures (campaign_id, full_name, email, city, country, personal_note, subscribe, status, ip_hash,
                             confirmed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $8 = 'confirmed' THEN now() END)
     ON CONFLICT (campaign_id, lower(email)) DO NOTHING
     RETURNING *`,
    [campaignId, s.fullName, s.email, s.city, s.country, s.personalNote, s.subscribe, status, ipHash],
  );
  return rows[0];
}

export async function setConfirmTokenHash(db: Queryable, id: number, hash: string) {
  await db.query('UPDATE signatures SET confirm_token_hash = $2 WHERE id = $1', [id, hash]);
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

export async function insertConfirmDelivery(db: Queryable, signature: Signature) {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO deliveries (kind, source_id, campaign_id, recipient) VALUES ('confirm', $1, $2, $3)
     ON CONFLICT DO NOTHING RETURNING id`,
    [signature.id, signature.campaign_id, signature.email],
  );
  return rows.map((r) => r.id);
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

export async function getLetterParts(db: Queryable, signatureId: number, targetId: number) {
  const { rows } = await db.query<LetterParts>(
    `SELECT s.full_name, s.email, s.city, s.country, s.personal_note, s.status AS sig_status, s.confirmed_at, s.created_at,
            t.name AS target_name, t.title AS target_title, t.email AS target_email, t.salutation, t.disclose,
            c.title AS campaign_title, c.slug AS campaign_slug, c.letter_subject, c.letter_body,
            k.person_name, k.location
       FROM signatures s
       JOIN targets t ON t.id = $2 AND t.campaign_id = s.campaign_id
       JOIN campaigns c ON c.id = s.campaign_id
       JOIN cases k ON k.id = c.case_id
      WHERE s.id = $1`,
    [signatureId, targetId],
  );
  return rows[0];
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
