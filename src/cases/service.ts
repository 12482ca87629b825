import type { Db, Queryable } from '../db/index.ts';
import { ConflictError, EditConflictError, NotFoundError } from '../errors.ts';
import { parseInput } from '../validation.ts';
import * as q from './queries.ts';
import { caseInput, newCaseInput, type Case } from './types.ts';

/**
 * Creates a case, public at once unless `published` is false: then its page, its alerts and its
 * campaigns wait until it is published (publishCase).
 * @throws ValidationError for bad fields; ConflictError when the slug is taken.
 */
export async function createCase(db: Queryable, input: unknown, { published = true }: { published?: boolean } = {}): Promise<Case> {
  const c = parseInput(newCaseInput, input);
  const created = await q.insertCase(db, c, published);
  if (!created) throw new ConflictError('slug_taken', `A case with the slug "${c.slug}" exists already.`, { slug: 'is taken already: choose another' });
  return created;
}

/** With `revision` (what a form was opened on), a case saved since is not overwritten. @throws NotFoundError, ValidationError, EditConflictError */
export async function updateCase(db: Queryable, slug: string, input: unknown, revision: number | null = null): Promise<Case> {
  const existing = await getCase(db, slug);
  // A caller that says nothing of the language (the status form) keeps it.
  const c = parseInput(caseInput, { language: existing.language, ...(input as object), slug });
  const saved = await q.updateCase(db, existing.id, c, revision);
  if (!saved) throw new EditConflictError('case', (await getCase(db, slug)).revision);
  return saved;
}

/** Makes a case's page public; `changed` false when it was already. @throws NotFoundError */
export async function publishCase(db: Queryable, slug: string): Promise<{ case: Case; changed: boolean }> {
  const kase = await getCase(db, slug);
  if (kase.published) return { case: kase, changed: false };
  return { case: (await q.setCasePublished(db, kase.id, true))!, changed: true };
}

/**
 * Takes a case off the public site again, while nothing announced it yet.
 * @throws NotFoundError; ConflictError once a campaign of it was launched, an update was posted, or
 * someone asked to follow it.
 */
export async function unpublishCase(db: Db, slug: string): Promise<{ case: Case; changed: boolean }> {
  const kase = await getCase(db, slug);
  if (!kase.published) return { case: kase, changed: false };
  const unpublished = await db.transaction(async (tx) => {
    await q.lockCase(tx, kase.id, 'update');
    return q.setCasePublished(tx, kase.id, false);
  });
  if (!unpublished) throw new ConflictError('case_announced', 'This case was announced (a campaign of it was launched, an update posted, or someone asked to follow it): its page stays public.');
  return { case: unpublished, changed: true };
}

/** Whether anything announced the case, so that it can no longer be unpublished. */
export const isAnnounced = (db: Queryable, kase: Pick<Case, 'id'>) => q.isAnnounced(db, kase.id);

/**
 * Runs `act` (launching a campaign of the case, posting an update) only while the case is
 * published, holding it so: it cannot be unpublished in between.
 * @throws ConflictError when the case is not published: a campaign or an update would announce it.
 */
export async function whilePublished<T>(tx: Queryable, caseId: number, doing: string, act: () => Promise<T>): Promise<T> {
  const kase = await holdCase(tx, caseId);
  if (!kase.published) {
    throw new ConflictError('case_unpublished', `The case of ${kase.person_name} is not published yet: publish it first (on its page in the console), then ${doing}.`);
  }
  return act();
}

/** A case, held for the rest of the transaction `tx` against a change of `published` (see whilePublished). */
export async function holdCase(tx: Queryable, caseId: number): Promise<Case> {
  return (await q.lockCase(tx, caseId, 'share'))!;
}

/**
 * A published case, held so for the rest of the transaction `tx` (unpublishing waits for it): for
 * a public request that announces it, such as asking to follow it.
 * @throws NotFoundError when it is not published (unpublished meanwhile), as getPublicCase.
 */
export async function lockPublicCase(tx: Queryable, caseId: number): Promise<Case> {
  const kase = await q.lockCase(tx, caseId, 'share');
  if (!kase?.published) throw new NotFoundError('case');
  return kase;
}

/** A case as the public sees it: one not published is not there. @throws NotFoundError */
export async function getPublicCase(db: Queryable, slug: string): Promise<Case> {
  const c = await getCase(db, slug);
  if (!c.published) throw new NotFoundError('case');
  return c;
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
export const listCasesPage = q.listCasesPage;
