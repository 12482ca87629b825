import type { Queryable } from '../db/index.ts';
import { LAUNCHED } from '../campaigns/types.ts';

// The cases a subscriber may choose to follow, as the subscribe and preferences pages list them
// and as a save of the preferences page checks them.

/** SQL: case `k` is offered to anyone to follow: published, with a campaign launched or an update not withdrawn. */
const OFFERED_TO_FOLLOW = `(k.published
        AND (EXISTS (SELECT 1 FROM campaigns c WHERE c.case_id = k.id AND ${LAUNCHED})
             OR EXISTS (SELECT 1 FROM case_updates u WHERE u.case_id = k.id AND u.withdrawn_at IS NULL)))`;

/** SQL: case `k` may be followed by the subscriber whose subscription to it, if any, is `x`: it is followed already, or OFFERED_TO_FOLLOW. */
const MAY_FOLLOW = `(x.case_id IS NOT NULL OR ${OFFERED_TO_FOLLOW})`;

/** The most cases the preferences page lists: those followed, then others by name. */
export const CASES_TO_FOLLOW = 500;

/**
 * The cases a subscriber may choose from: published ones made public by a campaign launched or
 * by an update, and those they follow already, which come first, so that however many
 * cases there are the page shows each one followed. A case an organizer is still preparing is
 * not listed to every subscriber before it is announced.
 */
export async function listCasesToFollow(db: Queryable, subscriberId: number) {
  const { rows } = await db.query<{ id: number; slug: string; person_name: string; status: string }>(
    `SELECT * FROM (
       SELECT k.id, k.slug, k.person_name, k.status
         FROM cases k LEFT JOIN subscriptions x ON x.case_id = k.id AND x.subscriber_id = $1
        WHERE ${MAY_FOLLOW}
        ORDER BY x.case_id IS NULL, k.person_name, k.id LIMIT $2
     ) listed
     -- Shown by name: following a case only decided that it made the cut.
     ORDER BY person_name, id`,
    [subscriberId, CASES_TO_FOLLOW],
  );
  return rows;
}

/**
 * The cases anyone may choose to follow (OFFERED_TO_FOLLOW), by name, as the preferences page
 * lists them, up to CASES_TO_FOLLOW. A case whose campaigns are closed is still followed for its outcome.
 */
export async function listCasesOffered(db: Queryable) {
  const { rows } = await db.query<{ slug: string; person_name: string; location: string; language: string | null }>(
    `SELECT k.slug, k.person_name, k.location, k.language FROM cases k WHERE ${OFFERED_TO_FOLLOW} ORDER BY k.person_name, k.id LIMIT $1`,
    [CASES_TO_FOLLOW],
  );
  return rows;
}

/** Of the cases these slugs name, the ids of those the subscriber may follow (see listCasesToFollow), however many there are. */
export async function casesToFollowBySlug(db: Queryable, subscriberId: number, slugs: readonly string[]) {
  const { rows } = await db.query<{ id: number }>(
    `SELECT k.id FROM cases k LEFT JOIN subscriptions x ON x.case_id = k.id AND x.subscriber_id = $1
      WHERE k.slug = ANY ($2::text[]) AND ${MAY_FOLLOW}`,
    [subscriberId, slugs],
  );
  return rows.map((r) => r.id);
}
