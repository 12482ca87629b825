import type { Queryable } from '../db/index.ts';
import { TARGET_SEEN, type CampaignInput, type Target } from './types.ts';

// A campaign's targets: the officials it writes to.

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

/** Appends targets after the last position; an email the campaign targets already is skipped. */
export async function appendTargets(db: Queryable, campaignId: number, targets: CampaignInput['targets']) {
  const { rows } = await db.query<Target>(
    // Added as of now, not as of the transaction's start: it waited for the campaign's lock, and a
    // signature stored meanwhile was made on a page without it (TARGET_SEEN).
    `INSERT INTO targets (campaign_id, position, name, title, email, salutation, disclose, added_at)
     SELECT $1, coalesce((SELECT max(position) FROM targets WHERE campaign_id = $1), 0) + t.ord,
            t.name, t.title, t.email, t.salutation, t.disclose, clock_timestamp()
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
 * Deletes a target no letter has gone to, nor been tried. Its letters never tried (a failed one
 * sent again starts at 0 attempts, but keeps its last error) go first, as
 * they would if it were retired, each checked again under its row lock: one a worker claimed
 * meanwhile stays. Deliveries cascade from targets, so the target goes only once it has none:
 * one with a letter sent, being sent, failed or waiting for a retry stays, deleting it would
 * erase that record.
 * @returns the target when it was deleted, and how many letters were dropped either way.
 */
export async function deleteUnusedTarget(db: Queryable, campaignId: number, targetId: number) {
  const { rowCount: dropped } = await db.query(
    `DELETE FROM deliveries WHERE campaign_id = $1 AND target_id = $2 AND status = 'queued' AND attempts = 0 AND last_error IS NULL`,
    [campaignId, targetId],
  );
  const { rows } = await db.query<Target>(
    `DELETE FROM targets t WHERE t.id = $2 AND t.campaign_id = $1
        AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.campaign_id = t.campaign_id AND d.target_id = t.id)
     RETURNING *`,
    [campaignId, targetId],
  );
  return { target: rows[0], dropped };
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
 * SQL: the delivery `d` of the target `u` has a twin to `u`'s address, the same official's: another
 * row (an address changed only in its letters' case finds `d` itself, which is no twin).
 */
const ROW_TO_NEW_ADDRESS = `EXISTS (SELECT 1 FROM deliveries o WHERE o.id <> d.id AND o.kind = d.kind AND o.source_id = d.source_id
                                   AND o.target_id = u.id AND lower(o.recipient) = lower(u.email))`;

/**
 * Saves a target's details. Letters and digests to it not sent yet (queued, waiting for a retry, or
 * failed) follow a changed address, their last error marked as the previous address's, unless the
 * same letter has a row to that address already (ROW_TO_NEW_ADDRESS: then they are dropped); those
 * sent keep the one they went to.
 * @returns the target as saved and how many failed letters now name the new address; undefined
 * when it is not the campaign's.
 */
export async function updateTarget(db: Queryable, campaignId: number, targetId: number, t: CampaignInput['targets'][number]) {
  const { rows } = await db.query<Target & { failed_moved: number }>(
    `WITH updated AS (
       UPDATE targets SET name = $3, title = $4, email = $5, salutation = $6, disclose = $7
        WHERE id = $2 AND campaign_id = $1
       RETURNING *
     ), redundant AS (
       -- The same letter or digest has a row to this address already, this official's (an address
       -- set back after a mistaken correction, and the letters sent again to the mistaken one): it
       -- went, or goes, from there.
       DELETE FROM deliveries d USING updated u
        WHERE d.campaign_id = $1 AND d.target_id = u.id AND d.status IN ('queued', 'retry', 'failed') AND d.recipient <> u.email
          AND ${ROW_TO_NEW_ADDRESS}
     ), moved AS (
       -- The relay's last answer was about the old address: say so, next to the new one.
       UPDATE deliveries d SET recipient = u.email, updated_at = now(),
              last_error = CASE WHEN d.last_error IS NULL OR d.last_error LIKE 'to the previous address: %' THEN d.last_error
                                ELSE left('to the previous address: ' || d.last_error, 500) END
         FROM updated u
        WHERE d.campaign_id = $1 AND d.target_id = u.id AND d.status IN ('queued', 'retry', 'failed') AND d.recipient <> u.email
          AND NOT ${ROW_TO_NEW_ADDRESS}
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
  // The time it was off is kept (TARGET_SEEN): whoever signed then did not see it on the page, and
  // must not have a letter, nor their address, sent to it; whoever signed before still did. It
  // ends now, not when the transaction began: a signature stored while it waited for the lock
  // was made on a page without it.
  const { rows } = await db.query<Target>(
    `WITH off AS (SELECT id, retired_at FROM targets WHERE id = $2 AND campaign_id = $1 AND retired_at IS NOT NULL FOR UPDATE),
     absence AS (INSERT INTO target_absences (target_id, retired_at, reinstated_at) SELECT id, retired_at, clock_timestamp() FROM off)
     UPDATE targets t SET retired_at = NULL FROM off WHERE t.id = off.id RETURNING t.*`,
    [campaignId, targetId],
  );
  return rows[0];
}
