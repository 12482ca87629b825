import type { Queryable } from '../db/index.ts';
import { ConflictError, EditConflictError, NotFoundError } from '../errors.ts';
import { parseInput } from '../validation.ts';
import * as q from './queries.ts';
import { caseInput, type Case } from './types.ts';

/**
 * Creates a case.
 * @throws ValidationError for bad fields; ConflictError when the slug is taken.
 */
export async function createCase(db: Queryable, input: unknown): Promise<Case> {
  const c = parseInput(caseInput, input);
  const created = await q.insertCase(db, c);
  if (!created) throw new ConflictError('slug_taken', `A case with the slug "${c.slug}" exists already.`, { slug: 'is taken already: choose another' });
  return created;
}

/** With `revision` (what a form was opened on), a case saved since is not overwritten. @throws NotFoundError, ValidationError, EditConflictError */
export async function updateCase(db: Queryable, slug: string, input: unknown, revision: number | null = null): Promise<Case> {
  const existing = await getCase(db, slug);
  const c = parseInput(caseInput, { ...(input as object), slug });
  const saved = await q.updateCase(db, existing.id, c, revision);
  if (!saved) throw new EditConflictError('case', (await getCase(db, slug)).revision);
  return saved;
}

/** @throws NotFoundError */
export async function getCase(db: Queryable, slug: string): Promise<Case> {
  const c = await q.getCaseBySlug(db, slug);
  if (!c) throw new NotFoundError('case');
  return c;
}

export const getCaseById = q.getCaseById;
/** The case with this slug, or undefined. */
export const findCase = q.getCaseBySlug;
export const listCases = q.listCases;
