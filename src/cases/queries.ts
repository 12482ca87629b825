import type { Queryable } from '../db/index.ts';
import { LAUNCHED } from '../campaigns/types.ts';
import type { Case, CaseStatus } from './types.ts';

/** What a case's form and the API write. */
interface CaseFields {
  personName: string;
  summary: string;
  status: CaseStatus;
  location: string;
  language: string;
}

export async function insertCase(db: Queryable, c: CaseFields & { slug: string }, published: boolean) {
  const { rows } = await db.query<Case>(
    `INSERT INTO cases (slug, person_name, summary, status, location, language, published) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (slug) DO NOTHING RETURNING *`,
    [c.slug, c.personName, c.summary, c.status, c.location, c.language, published],
  );
  return rows[0];
}

/** @returns the case saved; undefined when `revision` is given and no longer its own. */
export async function updateCase(db: Queryable, id: number, c: CaseFields, revision: number | null) {
  const { rows } = await db.query<Case>(
    `UPDATE cases SET person_name = $2, summary = $3, status = $4, location = $5, language = $6, updated_at = now(), revision = revision + 1
      WHERE id = $1 AND ($7::int IS NULL OR revision = $7) RETURNING *`,
    [id, c.personName, c.summary, c.status, c.location, c.language, revision],
  );
  return rows[0];
}

/**
 * SQL: case `k` was announced: a campaign of it was launched (LAUNCHED), an update of it was
 * posted (withdrawn or not: its alerts went out), or someone asked to follow it (their opt-in
 * email named it).
 */
const ANNOUNCED = `(EXISTS (SELECT 1 FROM campaigns c WHERE c.case_id = k.id AND ${LAUNCHED})
                  OR EXISTS (SELECT 1 FROM case_updates u WHERE u.case_id = k.id)
                  OR EXISTS (SELECT 1 FROM subscriptions x WHERE x.case_id = k.id))`;

export async function isAnnounced(db: Queryable, id: number) {
  const { rows } = await db.query<{ announced: boolean }>(`SELECT ${ANNOUNCED} AS announced FROM cases k WHERE k.id = $1`, [id]);
  return rows[0]?.announced ?? false;
}

/**
 * Locks a case row against a change of `published` (`share`: launching a campaign or posting an
 * update of it) or for one (`update`), so the check of the one and the write of the other cannot
 * pass each other. @returns the case as locked.
 */
export async function lockCase(db: Queryable, id: number, mode: 'share' | 'update') {
  const { rows } = await db.query<Case>(`SELECT * FROM cases WHERE id = $1 FOR ${mode === 'share' ? 'SHARE' : 'UPDATE'}`, [id]);
  return rows[0];
}

/**
 * Publishes a case, or takes it off the public site while it was never announced (run it under
 * lockCase(…, 'update')).
 * @returns the case; undefined when it is to be unpublished and was announced.
 */
export async function setCasePublished(db: Queryable, id: number, published: boolean) {
  const { rows } = await db.query<Case>(
    `UPDATE cases k SET published = $2, updated_at = now() WHERE k.id = $1 AND ($2 OR NOT ${ANNOUNCED}) RETURNING *`,
    [id, published],
  );
  return rows[0];
}

export async function getCaseBySlug(db: Queryable, slug: string) {
  const { rows } = await db.query<Case>('SELECT * FROM cases WHERE slug = $1', [slug]);
  return rows[0];
}

export async function getCaseById(db: Queryable, id: number) {
  const { rows } = await db.query<Case>('SELECT * FROM cases WHERE id = $1', [id]);
  return rows[0];
}

/** A keyset page of cases, changed last first, after `before` (a row's `cursor`: its time as Postgres writes it, and its id). */
export async function listCasesPage(db: Queryable, before: { updatedAt: string; id: number } | undefined, limit: number) {
  const { rows } = await db.query<Case & { cursor: string }>(
    `SELECT *, updated_at::text || '~' || id AS cursor FROM cases
      WHERE $1::timestamptz IS NULL OR (updated_at, id) < ($1::timestamptz, $2::bigint)
      ORDER BY updated_at DESC, id DESC LIMIT $3`,
    [before?.updatedAt ?? null, before?.id ?? 0, limit],
  );
  return rows;
}

/**
 * The 500 cases changed last, and the case `alsoSlug` names wherever it falls: a campaign's own
 * case must be on its edit form, or saving it would ask for one.
 */
export async function listCases(db: Queryable, alsoSlug?: string) {
  const { rows } = await db.query<Case>(
    `SELECT * FROM (SELECT * FROM cases ORDER BY updated_at DESC, id DESC LIMIT 500) recent
     UNION SELECT * FROM cases WHERE slug = $1
     ORDER BY updated_at DESC, id DESC`,
    [alsoSlug ?? null],
  );
  return rows;
}
