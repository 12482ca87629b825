import { containing, type Queryable } from '../db/index.ts';
import { asciiSearch } from '../mail/address.ts';
import type { CaseStatus } from '../cases/types.ts';
import { FOLLOWS_CASE_NOW } from '../signatures/queries.ts';
import { LAUNCHED, type Campaign, type CampaignInput, type CampaignStatus } from './types.ts';

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

/** @returns the campaign saved; undefined when `revision` is given and no longer its own. */
export async function updateCampaign(db: Queryable, id: number, caseId: number, c: CampaignInput, revision: number | null) {
  const { rows } = await db.query<Campaign>(
    `UPDATE campaigns SET case_id = $2, title = $3, summary = $4, letter_subject = $5, letter_body = $6,
            delivery_mode = $7, digest_hour = $8, goal = $9, require_confirmation = $10, updated_at = now(),
            revision = revision + 1
      WHERE id = $1 AND ($11::int IS NULL OR revision = $11) RETURNING *`,
    [id, caseId, c.title, c.summary, c.letter.subject, c.letter.body, c.deliveryMode, c.digestHour,
      c.goal ?? null, c.requireConfirmation, revision],
  );
  return rows[0];
}

/**
 * Before a campaign's letter changes: keeps the text being replaced, and points every signature
 * made under it (those not pointing at an older text already) at it, so their letters, whenever
 * they go, carry what their signers saw; so too every digest made under it, whose letters may
 * still be waiting to go. Nothing happens when the text is not changing.
 */
export async function keepReplacedLetter(db: Queryable, campaignId: number, next: { subject: string; body: string }) {
  await db.query(
    `WITH kept AS (
       INSERT INTO letter_versions (campaign_id, letter_subject, letter_body)
       SELECT id, letter_subject, letter_body FROM campaigns
        WHERE id = $1 AND (letter_subject <> $2 OR letter_body <> $3)
       RETURNING id
     ), digests_kept AS (
       UPDATE digests SET letter_version_id = kept.id
         FROM kept
        WHERE digests.campaign_id = $1 AND digests.letter_version_id IS NULL
     )
     UPDATE signatures SET letter_version_id = kept.id
       FROM kept
      WHERE signatures.campaign_id = $1 AND signatures.letter_version_id IS NULL`,
    [campaignId, next.subject, next.body],
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

/** Moves a campaign only from the states listed, so a repeated or racing request is a no-op. */
export async function setCampaignStatus(db: Queryable, id: number, to: CampaignStatus, from: CampaignStatus[]) {
  const { rows } = await db.query<Campaign>(
    // A draft closed is put away: the database sets `discarded` (migration 031's trigger).
    'UPDATE campaigns SET status = $2, updated_at = now() WHERE id = $1 AND status = ANY($3::text[]) RETURNING *',
    [id, to, from],
  );
  return rows[0];
}

export interface CampaignListing extends Campaign {
  person_name: string;
  case_slug: string;
  /** The case's language, its campaigns' too (`lang`). */
  language: string;
}

/**
 * Public campaigns (LAUNCHED, of a published case) with their case's name, changed last first;
 * their counts come from publicSignatureCounts. A keyset page: `limit` after `before` (a row's `cursor`: its time as
 * Postgres writes it, and its id).
 */
export async function listCampaigns(db: Queryable, filter: { status?: CampaignStatus; caseId?: number }, page: { before?: { updatedAt: string; id: number }; limit: number }) {
  const { rows } = await db.query<CampaignListing & { cursor: string }>(
    `SELECT c.*, k.person_name, k.slug AS case_slug, k.language, c.updated_at::text || '~' || c.id AS cursor
       FROM campaigns c JOIN cases k ON k.id = c.case_id
      WHERE ${LAUNCHED} AND k.published AND ($1::text IS NULL OR c.status = $1) AND ($2::bigint IS NULL OR c.case_id = $2)
        AND ($3::timestamptz IS NULL OR (c.updated_at, c.id) < ($3::timestamptz, $4::bigint))
      ORDER BY c.updated_at DESC, c.id DESC
      LIMIT $5`,
    [filter.status ?? null, filter.caseId ?? null, page.before?.updatedAt ?? null, page.before?.id ?? 0, page.limit],
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

export interface CampaignOverview {
  id: number;
  slug: string;
  title: string;
  status: CampaignStatus;
  goal: number | null;
  delivery_mode: string;
  updated_at: Date;
  person_name: string;
  case_slug: string;
  case_status: CaseStatus;
  confirmed: number;
  pending: number;
  sent: number;
  failed: number;
  waiting: number;
  /** YYYY-MM-DD, or null. */
  deadline: string | null;
  /** Whole days from today (UTC) to the deadline; negative once it has passed. */
  days_left: number | null;
}

/**
 * Campaigns with their signature and letter counts in one statement (the console's lists).
 * `recentDays` keeps live and paused campaigns plus any changed within that many days; `caseId`
 * those of one case. `page`: how many (null: all), live ones first, then by last change, after the
 * row whose `cursor` is `before` (whether it is live, its time as Postgres writes it, its id).
 */
export async function listCampaignOverview(
  db: Queryable,
  filter: { status?: CampaignStatus; recentDays?: number; caseId?: number },
  page: { limit: number | null; before?: { live: boolean; updatedAt: string; id: number } } = { limit: 200 },
) {
  const { rows } = await db.query<CampaignOverview & { cursor: string }>(
    `SELECT c.id, c.slug, c.title, c.status, c.goal, c.delivery_mode, c.updated_at, k.person_name, k.slug AS case_slug, k.status AS case_status,
            (c.status = 'live')::int || '~' || c.updated_at::text || '~' || c.id AS cursor,
            s.confirmed, s.pending, d.sent, d.failed, d.waiting,
            to_char(c.deadline, 'YYYY-MM-DD') AS deadline, c.deadline - (now() AT TIME ZONE 'UTC')::date AS days_left
       FROM campaigns c
       JOIN cases k ON k.id = c.case_id
       CROSS JOIN LATERAL (
         SELECT count(*) FILTER (WHERE status = 'confirmed')::int AS confirmed,
                count(*) FILTER (WHERE status = 'pending')::int AS pending
           FROM signatures WHERE campaign_id = c.id) s
       CROSS JOIN LATERAL (
         SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent,
                count(*) FILTER (WHERE status = 'failed')::int AS failed,
                count(*) FILTER (WHERE status IN ('queued', 'sending', 'retry'))::int AS waiting
           FROM deliveries WHERE campaign_id = c.id AND kind IN ('letter', 'digest')) d
      WHERE ($1::text IS NULL OR c.status = $1)
        AND ($2::int IS NULL OR c.status IN ('live', 'paused') OR c.updated_at > now() - make_interval(days => $2))
        AND ($3::bigint IS NULL OR c.case_id = $3)
        AND ($6::timestamptz IS NULL OR (c.status = 'live', c.updated_at, c.id) < ($5::boolean, $6::timestamptz, $7::bigint))
      ORDER BY c.status = 'live' DESC, c.updated_at DESC, c.id DESC
      LIMIT $4`,
    [filter.status ?? null, filter.recentDays ?? null, filter.caseId ?? null, page.limit, page.before?.live ?? false, page.before?.updatedAt ?? null, page.before?.id ?? 0],
  );
  return rows;
}

/**
 * Signatures started per UTC day over the last `days` days, with how many of them are confirmed.
 * The days are counted back before the time is made a timestamptz again: subtracted after, they
 * would follow the server's own time zone across a daylight-saving change.
 */
export async function countSignaturesPerDay(db: Queryable, campaignId: number, days: number) {
  const { rows } = await db.query<{ day: string; total: number; confirmed: number }>(
    `SELECT to_char(date_trunc('day', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day,
            count(*)::int AS total, count(*) FILTER (WHERE status = 'confirmed')::int AS confirmed
       FROM signatures
      WHERE campaign_id = $1 AND created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => $2 - 1)) AT TIME ZONE 'UTC'
      GROUP BY 1 ORDER BY 1`,
    [campaignId, days],
  );
  return rows;
}

export interface SignatureListing {
  id: number;
  full_name: string;
  email: string;
  city: string;
  country: string;
  status: 'pending' | 'confirmed';
  /** Whether the signer follows the case's alerts now (FOLLOWS_CASE_NOW), not only ticked it once. */
  follows: boolean;
  created_at: Date;
  confirmed_at: Date | null;
}

/**
 * One keyset page of a campaign's signatures, newest first, optionally those whose name, email,
 * city or country contains `search` (an address's domain also in the ASCII form it is stored in).
 * LIKE wildcards typed by the organizer are matched literally.
 */
export async function searchSignatures(db: Queryable, campaignId: number, opts: { search?: string; beforeId?: number; limit: number }) {
  // Composed, as names are kept (oneLineText).
  const search = opts.search?.normalize('NFC');
  const ascii = search ? asciiSearch(search) : undefined;
  const { rows } = await db.query<SignatureListing>(
    `SELECT s.id, s.full_name, s.email, s.city, s.country, s.status, ${FOLLOWS_CASE_NOW} AS follows, s.created_at, s.confirmed_at
       FROM signatures s
      WHERE s.campaign_id = $1 AND ($2::bigint IS NULL OR s.id < $2)
        AND ($3::text IS NULL OR s.full_name ILIKE $3 OR s.email ILIKE $3 OR s.city ILIKE $3 OR s.country ILIKE $3 OR s.email ILIKE $5)
      ORDER BY s.id DESC LIMIT $4`,
    [campaignId, opts.beforeId ?? null, search ? containing(search) : null, opts.limit, ascii ? containing(ascii) : null],
  );
  return rows;
}

export async function setDeadline(db: Queryable, id: number, deadline: string | null) {
  await db.query('UPDATE campaigns SET deadline = $2::date, updated_at = now() WHERE id = $1', [id, deadline]);
}

export async function getDeadline(db: Queryable, id: number) {
  const { rows } = await db.query<{ deadline: string | null }>(`SELECT to_char(deadline, 'YYYY-MM-DD') AS deadline FROM campaigns WHERE id = $1`, [id]);
  return rows[0]?.deadline ?? null;
}

/** Confirmed signatures of a digest campaign that no digest has carried yet. */
export async function countWaitingForDigest(db: Queryable, campaignId: number): Promise<{ waiting: number; lastDigestAt: Date | null }> {
  const { rows } = await db.query<{ n: number; last: Date | null }>(
    `SELECT (SELECT count(*)::int FROM signatures WHERE campaign_id = $1 AND status = 'confirmed' AND digest_id IS NULL) AS n,
            (SELECT max(created_at) FROM digests WHERE campaign_id = $1) AS last`,
    [campaignId],
  );
  return { waiting: rows[0]!.n, lastDigestAt: rows[0]!.last };
}

/** Holds the campaign's row until the transaction ends: its targets change one change at a time. */
export async function lockCampaign(db: Queryable, campaignId: number): Promise<Pick<Campaign, 'status' | 'case_id'>> {
  const { rows } = await db.query<Pick<Campaign, 'status' | 'case_id'>>('SELECT status, case_id FROM campaigns WHERE id = $1 FOR UPDATE', [campaignId]);
  return rows[0]!;
}
