// An organizer's address and name, changed after they were added: a typo at the start, a new
// address at work, a name spelt as its owner spells it.
import { z } from 'zod';
import type { Db } from '../db/index.ts';
import { email } from '../campaigns/types.ts';
import { line } from '../cases/types.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.ts';
import { parseInput } from '../validation.ts';
import * as q from './queries.ts';
import { recordAudit } from './service.ts';

const profileInput = z.object({ email, name: line(200) });

/**
 * Changes an organizer's sign-in address and name: an admin's doing, as adding one is. The
 * address is what they sign in with, and what the audit log names them by from then on (earlier
 * entries keep the address they had). Sessions, API tokens and the audit entries they made stay
 * theirs.
 * @returns what changed, as the audit entry says it (nothing: no entry).
 * @throws NotFoundError; ForbiddenError when the actor is not an admin; ValidationError;
 * ConflictError when another organizer has the address.
 */
export async function updateOrganizer(db: Db, actor: { id: number; role: string }, organizerId: number, input: { email: unknown; name: unknown }): Promise<Record<string, { from: string; to: string }>> {
  if (actor.role !== 'admin') throw new ForbiddenError('Only an admin changes an organizer’s address or name.');
  const wanted = parseInput(profileInput, input);
  return db.transaction(async (tx) => {
    const organizer = await q.getOrganizer(tx, organizerId);
    if (!organizer) throw new NotFoundError('organizer');
    const changed: Record<string, { from: string; to: string }> = {};
    if (wanted.email !== organizer.email) changed.email = { from: organizer.email, to: wanted.email };
    if (wanted.name !== organizer.name) changed.name = { from: organizer.name, to: wanted.name };
    if (Object.keys(changed).length === 0) return changed;
    if (!(await q.setProfile(tx, organizerId, wanted.email, wanted.name))) throw new ConflictError('email_taken', `An organizer with the email ${wanted.email} exists already.`);
    await recordAudit(tx, actor.id, 'organizer.update', `organizer:${organizerId}`, changed);
    return changed;
  });
}
