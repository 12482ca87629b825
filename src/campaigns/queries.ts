import type { Queryable } from '../db/index.ts';
import { TARGET_SEEN, type Campaign, type CampaignInput, type CampaignStatus, type Target } from './types.ts';

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
 * they go, carry what their signers saw. Nothing happens when the text is not changing.
 */
export async function keepReplacedLetter(db: Queryable, campaignId: number, next: { subject: string; body: string }) {
  await db.query(
    `WITH kept AS (
       INSERT INTO letter_versions (campaign_id, letter_subject, letter_body)
       SELECT id, letter_subject, letter_body FROM campaigns
        WHERE id = $1 AND (letter_subject <> $2 OR letter_body <> $3)
       RETURNING id
     )
     UPDATE signatures SET letter_version_id = kept.id
       FROM kept
      WHERE signatures.campaign_id = $1 AND signatures.letter_version_id IS NULL`,
    [campaignId, next.subject, next.body],
  );
}

/**
 * Inserts a new campaign's targets in one statement: unnest keeps it one round trip whatever the
 * size. Targets are never replaced wholesale: deliveries reference them.
 */
export async function insertTargets(db: Queryable, campaignId: number, targets: CampaignInput['targets']) {
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

/** A campaign's targets; those retired (no longer written to) only when asked for. */
export async function listTargets(db: Queryable, campaignId: number, withRetired = false) {
  const { rows } = await db.query<Target>(
    'SELECT * FROM targets WHERE campaign_id = $1 AND ($2::boolean OR retired_at IS NULL) ORDER BY position, id',
    [campaignId, withRetired],
  );
  return rows;
}

/** One target of a campaign, retired or not; undefined when it is not the campaign's. */
export async function getTarget(db: Queryable, campaignId: number, targetId: number) {
  const { rows } = await db.query<Target>('SELECT * FROM targets WHERE id = $2 AND campaign_id = $1', [campaignId, targetId]);
  return rows[0];
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
 * `recentDays` keeps live and paused campaigns plus any changed within that many days.
 */
export async function listCampaignOverview(db: Queryable, filter: { status?: CampaignStatus; recentDays?: number }) {
  const { rows } = await db.query<CampaignOverview>(
    `SELECT c.id, c.slug, c.title, c.status, c.goal, c.delivery_mode, c.updated_at, k.person_name, k.slug AS case_slug,
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
      ORDER BY c.status = 'live' DESC, c.updated_at DESC, c.id DESC
      LIMIT 200`,
    [filter.status ?? null, filter.recentDays ?? null],
  );
  return rows;
}

/** Signatures started per UTC day over the last `days` days, with how many of them are confirmed. */
export async function countSignaturesPerDay(db: Queryable, campaignId: number, days: number) {
  const { rows } = await db.query<{ day: string; total: number; confirmed: number }>(
    `SELECT to_char(date_trunc('day', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day,
            count(*)::int AS total, count(*) FILTER (WHERE status = 'confirmed')::int AS confirmed
       FROM signatures
      WHERE campaign_id = $1 AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => $2 - 1)
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
  status: string;
  subscribe: boolean;
  created_at: Date;
  confirmed_at: Date | null;
}

/**
 * One keyset page of a campaign's signatures, newest first, optionally those whose name, email,
 * city or country contains `search`. LIKE wildcards typed by the organizer are matched literally.
 */
export async function searchSignatures(db: Queryable, campaignId: number, opts: { search?: string; beforeId?: number; limit: number }) {
  const pattern = opts.search ? `%${opts.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
  const { rows } = await db.query<SignatureListing>(
    `SELECT id, full_name, email, city, country, status, subscribe, created_at, confirmed_at
       FROM signatures
      WHERE campaign_id = $1 AND ($2::bigint IS NULL OR id < $2)
        AND ($3::text IS NULL OR full_name ILIKE $3 OR email ILIKE $3 OR city ILIKE $3 OR country ILIKE $3)
      ORDER BY id DESC LIMIT $4`,
    [campaignId, opts.beforeId ?? null, pattern, opts.limit],
  );
  return rows;
}

/** Appends targets after the last position; an email the campaign targets already is skipped. */
export async function appendTargets(db: Queryable, campaignId: number, targets: CampaignInput['targets']) {
  const { rows } = await db.query<Target>(
    `INSERT INTO targets (campaign_id, position, name, title, email, salutation, disclose)
     SELECT $1, coalesce((SELECT max(position) FROM targets WHERE campaign_id = $1), 0) + t.ord,
            t.name, t.title, t.email, t.salutation, t.disclose
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY
            AS t(name, title, email, salutation, disclose, ord)
      WHERE NOT EXISTS (SELECT 1 FROM targets x WHERE x.campaign_id = $1 AND lower(x.email) = lower(t.email))
     RETURNING *`,
    [campaignId, targets.map((t) => t.name), targets.map((t) => t.title), targets.map((t) => t.email),
      targets.map((t) => t.salutation), targets.map((t) => t.disclose)],
  );
  return rows;
}

/**
 * Deletes a target that has no deliveries. Deliveries cascade from targets, so a target that
 * has letters stays: deleting it would erase the record of what was sent.
 */
export async function deleteUnusedTarget(db: Queryable, campaignId: number, targetId: number) {
  const { rows } = await db.query<Target>(
    `DELETE FROM targets t WHERE t.id = $2 AND t.campaign_id = $1
        AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.campaign_id = t.campaign_id AND d.target_id = t.id)
     RETURNING *`,
    [campaignId, targetId],
  );
  return rows[0];
}

export async function countTargets(db: Queryable, campaignId: number) {
  return (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM targets WHERE campaign_id = $1 AND retired_at IS NULL', [campaignId])).rows[0]!.n;
}

/**
 * Stops writing to a target that letters went to already, and drops its letters no worker has
 * taken yet (one being sent now still goes).
 * @returns the target and how many letters were dropped; undefined when it is not the campaign's
 * or was retired already.
 */
export async function retireTarget(db: Queryable, campaignId: number, targetId: number) {
  const { rows } = await db.query<Target & { dropped: number }>(
    `WITH retired AS (
       UPDATE targets SET retired_at = now() WHERE id = $2 AND campaign_id = $1 AND retired_at IS NULL RETURNING *
     ), dropped AS (
       DELETE FROM deliveries
        WHERE campaign_id = $1 AND target_id IN (SELECT id FROM retired) AND status IN ('queued', 'retry')
       RETURNING 1
     )
     SELECT retired.*, (SELECT count(*) FROM dropped)::int AS dropped FROM retired`,
    [campaignId, targetId],
  );
  return rows[0];
}

/**
 * Saves a target's details. Letters and digests to it not sent yet (queued, waiting for a retry, or
 * failed) follow a changed address; those sent keep the one they went to.
 * @returns the target as saved and how many failed letters now name the new address; undefined
 * when it is not the campaign's.
 */
export async function updateTarget(db: Queryable, campaignId: number, targetId: number, t: CampaignInput['targets'][number]) {
  const { rows } = await db.query<Target & { failed_moved: number }>(
    `WITH updated AS (
       UPDATE targets SET name = $3, title = $4, email = $5, salutation = $6, disclose = $7
        WHERE id = $2 AND campaign_id = $1
       RETURNING *
     ), moved AS (
       UPDATE deliveries d SET recipient = u.email, updated_at = now()
         FROM updated u
        WHERE d.campaign_id = $1 AND d.target_id = u.id AND d.status IN ('queued', 'retry', 'failed') AND d.recipient <> u.email
       RETURNING d.status
     )
     SELECT updated.*, (SELECT count(*) FROM moved WHERE status = 'failed')::int AS failed_moved FROM updated`,
    [campaignId, targetId, t.name, t.title, t.email, t.salutation, t.disclose],
  );
  return rows[0];
}

/** Whether anyone signed a campaign since `target` was added: people who were told what it learns. */
export async function signedSinceAdded(db: Queryable, campaignId: number, targetId: number) {
  const { rows } = await db.query(
    `SELECT 1 FROM signatures s JOIN targets t ON t.id = $2 AND t.campaign_id = s.campaign_id
      WHERE s.campaign_id = $1 AND ${TARGET_SEEN} LIMIT 1`,
    [campaignId, targetId],
  );
  return rows.length > 0;
}

/** Writes to a retired target again. @returns it; undefined when it is not a retired target of the campaign. */
export async function reinstateTarget(db: Queryable, campaignId: number, targetId: number) {
  const { rows } = await db.query<Target>(
    'UPDATE targets SET retired_at = NULL WHERE id = $2 AND campaign_id = $1 AND retired_at IS NOT NULL RETURNING *',
    [campaignId, targetId],
  );
  return rows[0];
}

export async function setDeadline(db: Queryable, id: number, deadline: string | null) {
  await db.query('UPDATE campaigns SET deadline = $2::date, updated_at = now() WHERE id = $1', [id, deadline]);
}

export async function getDeadline(db: Queryable, id: number) {
  const { rows } = await db.query<{ deadline: string | null }>(`SELECT to_char(deadline, 'YYYY-MM-DD') AS deadline FROM campaigns WHERE id = $1`, [id]);
  return rows[0]?.deadline ?? null;
}

/**
 * What a change to a digest campaign's letter would still reach: digests queued and not yet gone,
 * and signatures not in a digest yet (unconfirmed, or waiting for the next one). A digest is
 * composed when it goes, from the campaign's current template; letters of `each` campaigns keep
 * the text their signers saw, so only digest campaigns ask.
 */
export async function countLettersToGo(db: Queryable, campaignId: number) {
  const { rows } = await db.query<{ letters: number; signatures: number }>(
    `SELECT (SELECT count(*) FROM deliveries
              WHERE campaign_id = $1 AND kind IN ('letter', 'digest') AND status IN ('queued', 'retry', 'sending'))::int AS letters,
            (SELECT count(*) FROM signatures s
              WHERE s.campaign_id = $1 AND (s.status = 'pending' OR (s.status = 'confirmed' AND s.digest_id IS NULL)))::int AS signatures`,
    [campaignId],
  );
  return rows[0]!;
}

/** Confirmed signatures of a digest campaign that no digest has carried yet. */
export async function countWaitingForDigest(db: Queryable, campaignId: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM signatures WHERE campaign_id = $1 AND status = 'confirmed' AND digest_id IS NULL",
    [campaignId],
  );
  return rows[0]!.n;
}

/** Holds the campaign's row until the transaction ends: its targets change one change at a time. */
export async function lockCampaign(db: Queryable, campaignId: number) {
  await db.query('SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE', [campaignId]);
}
