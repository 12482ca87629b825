// What the emails are composed from (src/signatures/emails.ts): a letter's parts, read in batches
// by the send worker, and a confirmation email's, which the confirmation page shows too.
import type { Queryable } from '../db/index.ts';
import { ADDRESS_CONFIRMED, TARGET_WRITTEN } from '../campaigns/types.ts';

export interface LetterParts {
  full_name: string;
  email: string;
  /** Whether the signer confirmed the address by email; signed without confirmation, it is only what was typed. */
  email_confirmed: boolean;
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
  /** The case's language (its `lang`); empty for the site's own. */
  language: string;
}

/**
 * The parts of many letters in one statement, one row per (signature, target) pair that exists;
 * `ord` is the pair's 1-based position in the arguments.
 */
export async function getLetterPartsBatch(db: Queryable, pairs: readonly { signatureId: number; targetId: number }[]) {
  const { rows } = await db.query<LetterParts & { ord: number }>(
    `SELECT x.ord, s.full_name, s.email, ${ADDRESS_CONFIRMED} AS email_confirmed, s.city, s.country, s.personal_note, s.status AS sig_status, s.confirmed_at, s.created_at,
            t.name AS target_name, t.title AS target_title, t.email AS target_email, t.salutation, t.disclose,
            c.title AS campaign_title, c.slug AS campaign_slug,
            coalesce(v.letter_subject, c.letter_subject) AS letter_subject, coalesce(v.letter_body, c.letter_body) AS letter_body,
            k.person_name, k.location, k.language
       FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS x (signature_id, target_id, ord)
       JOIN signatures s ON s.id = x.signature_id
       -- A retired target's letter is not composed (a retry, or one made as it retired): it is dropped.
       JOIN targets t ON t.id = x.target_id AND t.campaign_id = s.campaign_id AND ${TARGET_WRITTEN}
       JOIN campaigns c ON c.id = s.campaign_id
       JOIN cases k ON k.id = c.case_id
       LEFT JOIN letter_versions v ON v.id = s.letter_version_id`,
    [pairs.map((p) => p.signatureId), pairs.map((p) => p.targetId)],
  );
  return rows;
}

export async function getConfirmParts(db: Queryable, signatureId: number) {
  const { rows } = await db.query<{ id: number; full_name: string; email: string; status: string; confirm_round: number; campaign_title: string; campaign_slug: string; campaign_status: string; delivery_mode: string; person_name: string; language: string | null; alerts_ask: boolean }>(
    `SELECT s.id, s.full_name, s.email, s.status, s.confirm_round, c.delivery_mode, c.title AS campaign_title, c.slug AS campaign_slug, c.status AS campaign_status, k.person_name, k.language,
            -- An address that left the alerts (or bounced) is asked by email before it gets them again.
            EXISTS (SELECT 1 FROM subscribers sub WHERE lower(sub.email) = lower(s.email) AND sub.status IN ('unsubscribed', 'bounced')) AS alerts_ask
       FROM signatures s JOIN campaigns c ON c.id = s.campaign_id JOIN cases k ON k.id = c.case_id
      WHERE s.id = $1`,
    [signatureId],
  );
  return rows[0];
}
