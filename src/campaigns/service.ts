import type { Db, Queryable } from '../db/index.ts';
import { findCase, getCase, getCaseById, holdCase, whilePublished } from '../cases/service.ts';
import type { Case } from '../cases/types.ts';
import { perDb } from '../deliveries/coalesce.ts';
import { countDeliveries } from '../deliveries/service.ts';
import { ConflictError, EditConflictError, NotFoundError, ValidationError, type FieldErrors } from '../errors.ts';
import { parseDetails, unknownOrTaken, validateCampaignInput } from './campaign-input.ts';
import * as q from './queries.ts';
import * as tq from './target-queries.ts';
import { isLaunched, type Campaign, type CampaignStats, type CampaignStatus } from './types.ts';

async function caseFor(db: Queryable, caseSlug: string): Promise<Case> {
  try {
    return await getCase(db, caseSlug);
  } catch (err) {
    if (err instanceof NotFoundError) throw new ValidationError({ caseSlug: 'no case has this slug' });
    throw err;
  }
}

/**
 * Creates a draft campaign with its targets; the letter templates are compiled now so an
 * organizer sees mistakes before anyone signs.
 * `exact` refuses fields the input does not take (a JSON body; a form carries fields of its own).
 * `deadline` (`YYYY-MM-DD`, checked by the caller with deadlineMistake; empty for none) is saved with it.
 * @throws ValidationError (TemplateError for the letter), ConflictError when the slug is taken.
 */
export async function createCampaign(db: Db, input: unknown, { exact = false, deadline = '' }: { exact?: boolean; deadline?: string } = {}): Promise<Campaign> {
  const c = await validateCampaignInput(db, input, { exact });
  const kase = await findCase(db, c.caseSlug);
  // An unknown case and a taken slug are named together, not the slug only once the case is mended.
  if (!kase) throw new ValidationError({ ...(await unknownOrTaken(db, c, {})), caseSlug: 'no case has this slug' });
  return db.transaction(async (tx) => {
    const campaign = await q.insertCampaign(tx, kase.id, c);
    if (!campaign) throw new ConflictError('slug_taken', `A campaign with the slug "${c.slug}" exists already.`, { slug: 'is taken already: choose another' });
    await tq.insertTargets(tx, campaign.id, c.targets);
    // In the same transaction, as updateCampaignDetails saves it: saved after, a form sent twice at
    // once found the campaign made and its deadline not yet, and was told the slug was taken.
    if (deadline.trim()) await q.setDeadline(tx, campaign.id, deadline.trim());
    return campaign;
  });
}

/** The campaign with this slug, if there is one. */
export const findCampaign = q.getCampaignBySlug;

/** @throws NotFoundError */
export async function getCampaign(db: Queryable, slug: string): Promise<Campaign> {
  const campaign = await q.getCampaignBySlug(db, slug);
  if (!campaign) throw new NotFoundError('campaign');
  return campaign;
}

/**
 * How long public pages share one count of a campaign's signatures. A campaign's page is viewed
 * far more often than it is signed, and a count reads every signature: a page of 300,000 took
 * 0.3 s a view, 19 views a second, until the site stood still.
 */
const PUBLIC_COUNT_MS = 2_000;
type SignatureCounts = Awaited<ReturnType<typeof q.countSignatures>>;
const publicCounts = perDb((_db: Queryable) => new Map<number, { at: number; counts: Promise<SignatureCounts> }>());

/**
 * A campaign's signature counts as its public pages show them: one count shared by every view for
 * a couple of seconds, read afresh once this process stored, confirmed or deleted signatures
 * (signaturesChanged), so a signer sees their own. Another process's changes show within seconds.
 */
export function publicSignatureCounts(db: Queryable, campaignId: number): Promise<SignatureCounts> {
  const kept = publicCounts(db);
  const now = Date.now();
  const hit = kept.get(campaignId);
  if (hit && now - hit.at < PUBLIC_COUNT_MS) return hit.counts;
  if (kept.size > 1_000) for (const [id, k] of kept) if (now - k.at >= PUBLIC_COUNT_MS) kept.delete(id);
  const counts = q.countSignatures(db, campaignId);
  kept.set(campaignId, { at: now, counts });
  counts.catch(() => kept.get(campaignId)?.counts === counts && kept.delete(campaignId));
  return counts;
}

/** Signatures of a campaign (or, without one, of any) were stored, confirmed or deleted here. */
export function signaturesChanged(db: Queryable, campaignId?: number): void {
  if (campaignId === undefined) publicCounts(db).clear();
  else publicCounts(db).delete(campaignId);
}

/**
 * Campaigns for public pages (launched ones: see LAUNCHED), changed last first, each with its
 * signature counts (publicSignatureCounts); a keyset page after `before` (see listCampaigns), 200 unless `limit` says.
 */
export async function listPublicCampaigns(db: Queryable, filter: { status?: CampaignStatus; caseId?: number }, page: { before?: { updatedAt: string; id: number }; limit: number } = { limit: 200 }) {
  const campaigns = await q.listCampaigns(db, filter, page);
  return Promise.all(campaigns.map(async (c) => ({ ...c, ...(await publicSignatureCounts(db, c.id)) })));
}

/** A campaign with what its public page needs, once launched (isLaunched). @throws NotFoundError */
export async function getPublicCampaign(db: Queryable, slug: string) {
  const campaign = await q.getCampaignBySlug(db, slug);
  if (!campaign || !isLaunched(campaign)) throw new NotFoundError('campaign');
  const page = await campaignPage(db, campaign);
  // Launched campaigns keep their case published (it cannot be unpublished, nor one moved to an
  // unpublished case); checked here all the same, since its page would show the person.
  if (!page.case.published) throw new NotFoundError('campaign');
  return page;
}

/**
 * What a campaign's public page shows, whatever its status: for the public, getPublicCampaign;
 * for organizers, the page of a draft as it will read once launched.
 */
export async function campaignPage(db: Queryable, campaign: Campaign) {
  const [kase, targets, signatures, letters] = await Promise.all([
    getCaseById(db, campaign.case_id),
    tq.listTargets(db, campaign.id),
    publicSignatureCounts(db, campaign.id),
    // A closed campaign's page says whether its letters went: by the letters, not the signatures,
    // which an erasure deletes while the letters they sent stay counted.
    campaign.status === 'closed' ? countDeliveries(db, campaign.id, ['letter', 'digest']) : undefined,
  ]);
  return { campaign, case: kase!, targets, signatures, lettersWent: !!letters && letters.sent > 0 };
}

export type CampaignPage = Awaited<ReturnType<typeof campaignPage>>;

const TRANSITIONS: Record<'launch' | 'pause' | 'close', { to: CampaignStatus; from: CampaignStatus[] }> = {
  launch: { to: 'live', from: ['draft', 'paused'] },
  pause: { to: 'paused', from: ['live'] },
  close: { to: 'closed', from: ['draft', 'live', 'paused'] },
};

/** Whether a campaign in this status can be launched, paused or closed (changeCampaignStatus). */
export function canMove(status: CampaignStatus, action: keyof typeof TRANSITIONS): boolean {
  return TRANSITIONS[action].from.includes(status);
}

export interface StatusMove {
  campaign: Campaign;
  changed: boolean;
  /** What the move was, in words: launching a paused campaign resumes it. */
  done: keyof typeof TRANSITIONS | 'resume';
}

/**
 * Launches, pauses or closes a campaign. Asking for the state it is in already is not an error,
 * and changes nothing: `changed` says whether this call moved it (two clicks, or two organizers
 * at once, make one change).
 * @throws NotFoundError; ConflictError for a move the current state does not allow.
 */
export async function changeCampaignStatus(db: Db, slug: string, action: keyof typeof TRANSITIONS): Promise<StatusMove> {
  const { to, from } = TRANSITIONS[action];
  const campaign = await getCampaign(db, slug);
  const done = action === 'launch' && campaign.status === 'paused' ? 'resume' : action;
  if (campaign.status === to) return { campaign, changed: false, done };
  // Said first: a move that cannot be made is not one to publish a case for.
  if (!(from as readonly CampaignStatus[]).includes(campaign.status)) throw new ConflictError('invalid_transition', `A ${campaign.status} campaign cannot ${action}.`);
  // A live campaign shows its case: one the organizers keep unpublished stays so until they say.
  // The case is read under the campaign's lock, as a save of the draft takes it: a save that
  // moved the draft to another case meanwhile has committed by then, and that case is held.
  const moved = action === 'launch'
    ? await db.transaction(async (tx) => {
        const { case_id } = await q.lockCampaign(tx, campaign.id);
        return whilePublished(tx, case_id, 'launch the campaign', () => q.setCampaignStatus(tx, campaign.id, to, from));
      })
    : await q.setCampaignStatus(db, campaign.id, to, from);
  if (moved) return { campaign: moved, changed: true, done };
  // Moved meanwhile by someone else: to where this call wanted, or somewhere it cannot go from.
  const now = await getCampaign(db, slug);
  if (now.status === to) return { campaign: now, changed: false, done };
  throw new ConflictError('invalid_transition', `A ${now.status} campaign cannot ${action}.`);
}

/** Signature and letter counts. Deliveries here are the letters to targets, not confirmations. */
export async function getCampaignStats(db: Queryable, slug: string): Promise<CampaignStats> {
  return campaignStats(db, (await getCampaign(db, slug)).id);
}

/** getCampaignStats of a campaign already read. */
export async function campaignStats(db: Queryable, campaignId: number): Promise<CampaignStats> {
  const [signatures, deliveries] = await Promise.all([q.countSignatures(db, campaignId), countDeliveries(db, campaignId, ['letter', 'digest'])]);
  return { signatures, deliveries };
}

export const getCampaignById = q.getCampaignById;
export const countSignatures = q.countSignatures;
export const countWaitingForDigest = q.countWaitingForDigest;

/**
 * Changes what a campaign says and how it sends, leaving its targets (and their deliveries) alone.
 * The slug stays: links to the campaign are out in the world. A new letter text is for signatures
 * from now on: those made before keep the text their signers saw (keepReplacedLetter).
 * With `revision` (what a form was opened on), a campaign saved since is not overwritten.
 * `deadline` (a date as the form sends it, '' for none), when given, is saved in the same
 * transaction: saved after it, a form sent twice found the details saved and the deadline not yet,
 * and was told someone else had changed it.
 * @throws NotFoundError; ValidationError (TemplateError for the letter); EditConflictError.
 */
export async function updateCampaignDetails(db: Db, slug: string, input: unknown, revision: number | null = null, deadline?: string): Promise<Campaign> {
  const existing = await getCampaign(db, slug);
  const c = parseDetails(slug, input);
  const kase = await caseFor(db, c.caseSlug);
  const refused = await frozenDetailErrors(db, existing, { caseId: kase.id, deliveryMode: c.deliveryMode, letter: c.letter });
  if (Object.keys(refused).length) throw new ValidationError(refused);
  return db.transaction(async (tx) => {
    // Checked again under the lock, which a signature's statement waits for: a signature stored
    // since the check above was handled by the old mode and case (its letters may be out), and a
    // close that landed meanwhile keeps the letter too.
    const { status } = await q.lockCampaign(tx, existing.id);
    const now = await frozenDetailErrors(tx, { ...existing, status }, { caseId: kase.id, deliveryMode: c.deliveryMode, letter: c.letter });
    if (Object.keys(now).length) throw new ValidationError(now);
    // A launched campaign shows its case, as launching one does: moved to a case the organizers
    // keep unpublished, it would put that person's name on the home page.
    if (kase.id !== existing.case_id && isLaunched({ ...existing, status }) && !(await holdCase(tx, kase.id)).published) {
      throw new ValidationError({ caseSlug: `is not published yet: publish the case of ${kase.person_name} first (on its page in the console), then move this ${status} campaign to it` });
    }
    await q.keepReplacedLetter(tx, existing.id, c.letter);
    const saved = await q.updateCampaign(tx, existing.id, kase.id, c, revision);
    if (!saved) throw new EditConflictError('campaign', (await getCampaign(tx, slug)).revision);
    if (deadline !== undefined) await q.setDeadline(tx, existing.id, deadline.trim() || null);
    return saved;
  });
}

/**
 * The details that may not change once people have signed: the delivery mode (signers so far were
 * handled by the old one: switching would send their letters again in a digest, or, digest →
 * each, never send the letters of those not yet in one) and the case (each of them signed about
 * this case: their names must not go out on letters about another person); and, once the campaign
 * is closed, the letter (closedLetterErrors).
 */
async function frozenDetailErrors(db: Queryable, existing: Campaign, next: { caseId: number | undefined; deliveryMode: string; letter?: { subject?: unknown; body?: unknown } }): Promise<FieldErrors> {
  // A draft put away (closed, never launched) showed its letter to nobody.
  const closed = existing.status === 'closed' && !existing.discarded ? closedLetterErrors(existing, next.letter) : {};
  const modeChanged = next.deliveryMode !== existing.delivery_mode;
  const caseChanged = next.caseId !== undefined && next.caseId !== existing.case_id;
  if (!modeChanged && !caseChanged) return closed;
  const { pending, confirmed } = await q.countSignatures(db, existing.id);
  if (pending + confirmed === 0) return closed;
  const refused = 'cannot change once people have signed; start a new campaign instead';
  return { ...closed, ...(modeChanged ? { deliveryMode: refused } : {}), ...(caseChanged ? { caseSlug: refused } : {}) };
}

/**
 * A closed campaign's page shows the letter its signers sent: a text saved afterwards would show
 * there as what went out. Its title and summary may still change (to tell how it ended).
 */
function closedLetterErrors(existing: Campaign, letter: { subject?: unknown; body?: unknown } | undefined): FieldErrors {
  const refused = 'cannot change once the campaign is closed: its page shows the letter people sent';
  const differs = (next: unknown, now: string) => typeof next === 'string' && next.replace(/\r\n?/g, '\n').trim() !== now;
  return {
    ...(differs(letter?.subject, existing.letter_subject) ? { 'letter.subject': refused } : {}),
    ...(differs(letter?.body, existing.letter_body) ? { 'letter.body': refused } : {}),
  };
}

/**
 * What is wrong with new details for a campaign that the form's other mistakes would otherwise
 * hide until they are fixed: a case or delivery mode that may no longer change.
 */
export async function frozenDetailsChanged(db: Queryable, existing: Campaign, input: { caseSlug?: unknown; deliveryMode?: unknown; letter?: unknown }): Promise<FieldErrors> {
  const kase = typeof input.caseSlug === 'string' ? await findCase(db, input.caseSlug) : undefined;
  const letter = typeof input.letter === 'object' && input.letter !== null ? input.letter : undefined;
  return frozenDetailErrors(db, existing, { caseId: kase?.id, deliveryMode: typeof input.deliveryMode === 'string' && input.deliveryMode ? input.deliveryMode : 'each', letter });
}

export const listCampaignOverview = q.listCampaignOverview;
export const countSignaturesPerDay = q.countSignaturesPerDay;
export const searchSignatures = q.searchSignatures;
export type { CampaignOverview, SignatureListing } from './queries.ts';
export { NOT_UTF8_FILE, parseTargetsCsv, TARGET_CSV_COLUMNS, type TargetCsv, type TargetCsvRow } from './targets-csv.ts';
export { detailErrors, validateCampaignInput } from './campaign-input.ts';
export { brokenFieldLine, letterWarnings, missingSalutation, supporterInLink, unfinishedLetter } from './letter-warnings.ts';
export { deadlineMistake } from './campaign-deadline.ts';

/** @throws NotFoundError */
export async function getCampaignDeadline(db: Queryable, slug: string): Promise<string | null> {
  return q.getDeadline(db, (await getCampaign(db, slug)).id);
}
