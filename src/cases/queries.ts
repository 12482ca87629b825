import type { Queryable } from '../db/index.ts';
import type { Case, CaseStatus } from './types.ts';

export async function insertCase(db: Queryable, c: { slug: string; personName: string; summary: string; status: CaseStatus; location: string }) {
  const { rows } = await db.query<Case>(
    `INSERT INTO cases (slug, person_name, summary, status, location) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (slug) DO NOTHING RETURNING *`,
    [c.slug, c.personName, c.summary, c.status, c.location],
  );
  return rows[0];
}

/** @returns the case saved; undefined when `revision` is given and no longer its own. */
export async function updateCase(db: Queryable, id: number, c: { personName: string; summary: string; status: CaseStatus; location: string }, revision: number | null) {
  const { rows } = await db.query<Case>(
    `UPDATE cases SET person_name = $2, summary = $3, status = $4, location = $5, updated_at = now(), revision = revision + 1
      WHERE id = $1 AND ($6::int IS NULL OR revision = $6) RETURNING *`,
    [id, c.personName, c.summary, c.status, c.location, revision],
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

export async function listCases(db: Queryable) {
  const { rows } = await db.query<Case>('SELECT * FROM cases ORDER BY updated_at DESC, id DESC LIMIT 500');
  return rows;
}
