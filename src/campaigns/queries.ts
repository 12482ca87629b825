import type { Queryable } from '../db/index.ts';
import type { Campaign, CampaignInput, CampaignStatus, Target } from './types.ts';

export async function insertCampaign(db: Queryable, caseId: number, c: CampaignInput) {
  const { rows } = await db.query<Campaign>(
    `INSERT INTO campaigns (slug, case_id, title, summary, letter_subject, letter_body, delivery_mode,
                            digest_hour, goal, require_confirmation)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (slug) DO NOTHING RETURNING *`,
    [c.slug, caseId, c.title, c.summary, c.letter.subject, c.letter.body, c.deliveryMode, c.digestHour,
      c.goal ?? null, c.requireConfirmation],
  );
  return rows[0];
}

export async function updateCampaign(db: Queryable, id: number, caseId: number, c: CampaignInput) {
  const { rows } = await db.query<Campaign>(
    `UPDATE campaigns SET case_id = $2, title = $3, summary = $4, letter_subject = $5, letter_body = $6,
            delivery_mode = $7, digest_hour = $8, goal = $9, require_confirmation = $10, updated_at = now()
      WHERE id = $1 RETURNING *`,
    [id, caseId, c.title, c.summary, c.letter.subject, c.letter.body, c.deliveryMode, c.digestHour,
      c.goal ?? null, c.requireConfirmation],
  );
  return rows[0];
}

/** Replaces the target list in one statement: unnest keeps it one round trip whatever the size. */
export async function replaceTargets(db: Queryable, campaignId: number, targets: CampaignInput['targets']) {
  await db.query('DELETE FROM targets WHERE campaign_id = $1', [campaignId]);
  await db.query(
    `INSERT INTO targets (campaign_id, position, name, title, email, salutation, disclose)
     SELECT $1, t.ord, t.name, t.title, t.email, t.salutation, t.disclose
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY
            AS t(name, title, email, salutation, disclose, ord)`,
    [campaignId, targets.map((t) => t.name), targets.map((t) => t.title), targets.map((t) => t.email),
      targets.map((t) => t.salutation), targets.map((t) => t.disclose)],
  );
}

export async function getCampaignBySlug(db: Queryable, slug: string) {
  const { rows } = await db.query<Campaign>('SELECT * FROM campaigns WHERE slug = $1', [slug]);
  return rows[0];
}

export async function getCampaignById(db: Queryable, id: number) {
  const { rows } = await db.query<Campaign>('SELECT * FROM campaigns WHERE id = $1', [id]);
  return rows[0];
}

export async function listTargets(db: Queryable, campaignId: number) {
  const { rows } = await db.query<Target>('SELECT * FROM targets WHERE campaign_id = $1 ORDER BY position, id', [campaignId]);
  return rows;
}

/** Moves a campaign only from the states listed, so a repeated or racing request is a no-op. */
export async function setCampaignStatus(db: Queryable, id: number, to: CampaignStatus, from: CampaignStatus[]) {
  const { rows } = await db.query<Campaign>(
    'UPDATE campaigns SET status = $2, updated_at = now() WHERE id = $1 AND status = ANY($3::text[]) RETURNING *',
    [id, to, from],
  );
  return rows[0];
}

export interface CampaignListing extends Campaign {
  confirmed: number;
  pending: number;
  person_name: string;
  case_slug: string;
}

export async function listCampaigns(db: Queryable, filter: { status?: CampaignStatus; caseId?: number }) {
  const { rows } = await db.query<CampaignListing>(
    `SELECT c.*, k.person_name, k.slug AS case_slug,
            (SELECT count(*)::int FROM signatures s WHERE s.campaign_id = c.id AND s.status = 'confirmed') AS confirmed,
            (SELECT count(*)::int FROM signatures s WHERE s.campaign_id = c.id AND s.status = 'pending') AS pending
       FROM campaigns c JOIN cases k ON k.id = c.case_id
      WHERE ($1::text IS NULL OR c.status = $1) AND ($2::bigint IS NULL OR c.case_id = $2)
      ORDER BY c.updated_at DESC, c.id DESC
      LIMIT 200`,
    [filter.status ?? null, filter.caseId ?? null],
  );
  return rows;
}

export async function countSignatures(db: Queryable, campaignId: number) {
  const { rows } = await db.query<{ pending: number; confirmed: number }>(
    `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
            count(*) FILTER (WHERE status = 'confirmed')::int AS confirmed
       FROM signatures WHERE campaign_id = $1`,
    [campaignId],
  );
  return rows[0]!;
}
