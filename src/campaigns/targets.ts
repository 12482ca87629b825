import { createHash } from 'node:crypto';
import type { Db, Queryable } from '../db/index.ts';
import { ConflictError, EditConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { adminsToAsk } from '../organizers/service.ts';
import { parseInput } from '../validation.ts';
import { DISCLOSE_LEVELS } from './letter-template.ts';
import { lockCampaign } from './queries.ts';
import * as q from './target-queries.ts';
import { getCampaign } from './service.ts';
import { MAX_TARGETS, targetInput, type Campaign, type Target } from './types.ts';

/** Whether a campaign writes to more officials than it may, counted after a write, inside its transaction. */
const overMax = async (tx: Queryable, campaignId: number) => (await q.countTargets(tx, campaignId)) > MAX_TARGETS;

// The officials a campaign writes to: adding, correcting, retiring and reinstating them.

/** A campaign's targets written to; with `withRetired`, also those retired (the console's list). */
export const listTargets = (db: Queryable, campaignId: number, opts: { withRetired?: boolean } = {}): Promise<Target[]> =>
  q.listTargets(db, campaignId, opts.withRetired ?? false);

/**
 * A closed campaign's page says who its letters went to: nobody is added to that list afterwards.
 * Its targets may still be corrected (a failed letter sent again to a fixed address) or retired.
 * @throws ConflictError `campaign_closed`
 */
function refuseIfClosed(campaign: Pick<Campaign, 'status'>): void {
  if (campaign.status === 'closed') {
    throw new ConflictError('campaign_closed', 'This campaign is closed: it writes to nobody new, and its page keeps the officials its letters went to.');
  }
}

/**
 * What the audit log keeps of targets added (one by one, by a CSV, with a new campaign): who
 * each is, where its letters go, and what it learns of a signer. An address an organizer added
 * and later removed would otherwise be found nowhere in the log, though letters went to it.
 */
export const targetsForAudit = (targets: readonly Pick<Target, 'id' | 'name' | 'email' | 'disclose'>[]) =>
  targets.map((t) => ({ target: t.id, name: t.name, email: t.email, disclose: t.disclose }));

/**
 * Adds targets to a campaign. A target whose email the campaign has already is skipped. On a
 * live campaign the new targets get the letters of those who sign from now on (TARGET_SEEN).
 * @throws NotFoundError; ConflictError `campaign_closed`; ValidationError for a bad target or more than MAX_TARGETS in all.
 */
export async function addTargets(db: Db, slug: string, input: unknown[]): Promise<{ added: Target[]; skipped: number }> {
  const campaign = await getCampaign(db, slug);
  const targets = input.map((t, i) => {
    try {
      return parseInput(targetInput, t);
    } catch (err) {
      if (err instanceof ValidationError && input.length > 1) {
        throw new ValidationError(Object.fromEntries(Object.entries(err.fields).map(([k, v]) => [`targets.${i}.${k}`, v])));
      }
      throw err;
    }
  });
  return db.transaction(async (tx) => {
    // Locked and read again: a close that lands meanwhile must not be passed by.
    refuseIfClosed(await lockCampaign(tx, campaign.id));
    const added = await q.appendTargets(tx, campaign.id, targets);
    if (await overMax(tx, campaign.id)) throw new ValidationError({ targets: `a campaign takes at most ${MAX_TARGETS} targets` });
    return { added, skipped: targets.length - added.length };
  });
}

/**
 * Takes a target off a campaign. One that no letter went to, nor was tried, is deleted with the
 * letters waiting for it. One that letters went to, or were tried, stays on record, retired: no
 * new letter or digest goes to it, and its letters not yet taken by a worker are dropped (an
 * official who left office, or asked to be written to no more).
 * @returns the target, whether it was retired rather than deleted, how many letters were dropped,
 * and whether this call changed anything (a target retired already is left as it is).
 * @throws NotFoundError; ConflictError when it is the last target an open campaign writes to.
 */
export async function removeTarget(db: Db, slug: string, targetId: number): Promise<{ target: Target; retired: boolean; dropped: number; changed: boolean }> {
  const campaign = await getCampaign(db, slug);
  return db.transaction(async (tx) => {
    // Two removals at once must not both count the other's target as left.
    const locked = await lockCampaign(tx, campaign.id);
    const target = await q.getTarget(tx, campaign.id, targetId);
    if (!target) throw new NotFoundError('target');
    if (target.retired_at) return { target, retired: true, dropped: 0, changed: false };
    // A closed campaign writes to nobody new: its last official may go (one who left office, whose
    // letters still waiting must not reach whoever reads that address now).
    if (locked.status !== 'closed' && (await q.countTargets(tx, campaign.id)) <= 1) {
      throw new ConflictError('last_target', 'A campaign needs at least one target; add another before removing this one.');
    }
    const unused = await q.deleteUnusedTarget(tx, campaign.id, targetId);
    if (unused.target) return { target: unused.target, retired: false, dropped: unused.dropped, changed: true };
    const { dropped, ...retired } = (await q.retireTarget(tx, campaign.id, targetId))!;
    return { target: retired, retired: true, dropped: unused.dropped + dropped, changed: true };
  });
}

/**
 * What a target's edit form was opened on, as a number from what it says (a target keeps no
 * revision of its own): the same fields give the same number, a save made meanwhile another.
 */
export function targetRevision(t: Pick<Target, 'name' | 'title' | 'email' | 'salutation' | 'disclose'>): number {
  const digest = createHash('sha256').update(JSON.stringify([t.name, t.title, t.email, t.salutation, t.disclose])).digest('hex');
  return parseInt(digest.slice(0, 7), 16);
}

/**
 * Corrects a target: its name, title, salutation and address, and what it learns of a supporter.
 * Letters not sent yet (queued, waiting for a retry, or failed) go to a changed address; sent
 * ones keep the address they went to. What it learns may be narrowed at any time, and widened
 * only until someone signed after it was added: they signed being told what it would learn.
 * With `revision` (targetRevision of what the form showed), a target saved since is not
 * overwritten: a stale form would put back an address that bounced, or a disclosure taken back.
 * Once people signed for it, its address is an admin's to change (`by.admin`): their letters not
 * sent yet follow the address, so an organizer's account (taken over, or gone rogue) could
 * otherwise send them, names, places and notes, to an address of its own, and retry the failed
 * ones there: the very thing sending letters again is kept to admins for.
 * @returns the target, and how many failed letters now name its new address (to send again).
 * @throws NotFoundError; ValidationError for a bad field, an address another of the campaign's
 * targets has, an address changed by an organizer once people signed, or a wider `disclose` once
 * people signed; EditConflictError.
 */
export async function updateTarget(db: Db, campaign: Pick<Campaign, 'id'>, targetId: number, input: unknown, revision: number | null, by: { admin: boolean }): Promise<{ target: Target; failedMoved: number }> {
  const t = parseInput(targetInput, input);
  return db.transaction(async (tx) => {
    await lockCampaign(tx, campaign.id);
    const all = await q.listTargets(tx, campaign.id, true);
    const current = all.find((x) => x.id === targetId);
    if (!current) throw new NotFoundError('target');
    if (revision !== null && targetRevision(current) !== revision) throw new EditConflictError('target', targetRevision(current));
    if (all.some((x) => x.id !== targetId && x.email.toLowerCase() === t.email.toLowerCase())) {
      throw new ValidationError({ email: 'another target of this campaign has this address' });
    }
    if (!by.admin && t.email.toLowerCase() !== current.email.toLowerCase() && (await q.signedSinceAdded(tx, campaign.id, targetId))) {
      throw new ValidationError({
        email: `people have signed for this official, and their letters not sent yet would follow a new address: only an admin changes it now, and may then send the letters that went to the old address again, to the new one. Ask ${await adminsToAsk(tx)}. `
          + 'Added as another official instead, the new address gets the letters of those who sign from now on only, and this one keeps getting theirs until it is removed',
      });
    }
    if (DISCLOSE_LEVELS.indexOf(t.disclose) > DISCLOSE_LEVELS.indexOf(current.disclose) && (await q.signedSinceAdded(tx, campaign.id, targetId))) {
      throw new ValidationError({ disclose: 'people signed being told what this target learns of them: it can be told less now, not more' });
    }
    try {
      const { failed_moved: failedMoved, ...target } = (await q.updateTarget(tx, campaign.id, targetId, t))!;
      return { target, failedMoved };
    } catch (err) {
      // A digest run names each address once: another campaign's target with this address has
      // one in the same run, not sent yet.
      if ((err as { code?: string }).code === '23505') {
        throw new ValidationError({ email: 'a digest not sent yet goes to this address already; try again once it has gone' });
      }
      throw err;
    }
  });
}

/**
 * Writes to a retired target again: letters of signatures made from now on go to it, and of those
 * made before it was retired, never of those made while it was off (their page did not name it).
 * A target written to already is left as it is (`changed` false).
 * @throws NotFoundError; ConflictError `campaign_closed`, `too_many_targets` (past MAX_TARGETS)
 */
export async function reinstateTarget(db: Db, campaign: Pick<Campaign, 'id'>, targetId: number): Promise<{ target: Target; changed: boolean }> {
  return db.transaction(async (tx) => {
    refuseIfClosed(await lockCampaign(tx, campaign.id));
    const target = await q.reinstateTarget(tx, campaign.id, targetId);
    if (target && (await overMax(tx, campaign.id))) {
      throw new ConflictError('too_many_targets', `This campaign writes to ${MAX_TARGETS} officials already, the most it takes: take one off before ${target.name} is written to again.`);
    }
    if (target) return { target, changed: true };
    const current = await q.getTarget(tx, campaign.id, targetId);
    if (!current) throw new NotFoundError('target');
    return { target: current, changed: false };
  });
}

/** One target of a campaign, retired or not. @throws NotFoundError */
export async function getTarget(db: Queryable, campaign: Pick<Campaign, 'id'>, targetId: number): Promise<Target> {
  const target = await q.getTarget(db, campaign.id, targetId);
  if (!target) throw new NotFoundError('target');
  return target;
}
