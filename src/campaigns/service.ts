import type { Db, Queryable } from '../db/index.ts';
import { findCase, getCase, getCaseById, holdCase, whilePublished } from '../cases/service.ts';
import type { Case } from '../cases/types.ts';
import { perDb } from '../deliveries/coalesce.ts';
import { countDeliveries } from '../deliveries/service.ts';
import { ConflictError, EditConflictError, NotFoundError, TemplateError, ValidationError, type FieldErrors } from '../errors.ts';
import { parseInput, refuseUnknownFields } from '../validation.ts';
import { digestFieldLine, digestSubjectFields, renderLetter, STARTER_PLACEHOLDER, tooLong, validateLetterTemplate, type LetterContext } from './letter-template.ts';
import * as q from './queries.ts';
import * as tq from './target-queries.ts';
import { campaignInput, isLaunched, newCampaignInput, type Campaign, type CampaignInput, type CampaignStats, type CampaignStatus, type Target } from './types.ts';

const LETTER_DOES_NOT_COMPILE = 'The letter does not compile.';

/** The letter's template errors, named by their path in the input: letter.subject, letter.body. */
function letterTemplateErrors(input: unknown): FieldErrors {
  const letter = (input as { letter?: { subject?: unknown; body?: unknown } } | null)?.letter;
  const fields: FieldErrors = {};
  for (const part of ['subject', 'body'] as const) {
    const source = letter?.[part];
    // One too long is not parsed; its length is what campaignInput says is wrong with it.
    if (typeof source !== 'string' || tooLong(part, source)) continue;
    try {
      validateLetterTemplate(part, source);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      for (const [k, v] of Object.entries(err.fields)) fields[`letter.${k}`] = v;
    }
  }
  return fields;
}

/**
 * Every mistake at once: the input's field errors and the letter's template errors together, so
 * an organizer fixing an empty title learns about the template in the same round.
 * @throws TemplateError when the letter has errors (with any field errors), else ValidationError.
 */
function parseCampaign(input: unknown, schema: typeof campaignInput | typeof newCampaignInput = campaignInput): CampaignInput {
  const templateErrors = letterTemplateErrors(input);
  let c: CampaignInput;
  try {
    c = parseInput(schema, input);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    if (Object.keys(templateErrors).length) throw new TemplateError({ ...err.fields, ...templateErrors }, LETTER_DOES_NOT_COMPILE);
    throw err;
  }
  if (Object.keys(templateErrors).length) throw new TemplateError(templateErrors, LETTER_DOES_NOT_COMPILE);
  return c;
}

/**
 * Field errors for a case slug that names no case and a campaign slug already taken, as the form
 * would read them. A slug already refused (`refused`) is not looked up: it names nothing, and one
 * holding a NUL would make Postgres refuse the query, hiding every other mistake.
 */
async function unknownOrTaken(db: Queryable, input: unknown, refused: FieldErrors): Promise<FieldErrors> {
  const { caseSlug, slug } = (input ?? {}) as { caseSlug?: unknown; slug?: unknown };
  const fields: FieldErrors = {};
  const lookUp = (field: 'caseSlug' | 'slug', value: unknown): value is string => !refused[field] && typeof value === 'string' && value.trim() !== '';
  if (lookUp('caseSlug', caseSlug) && !(await findCase(db, caseSlug.trim()))) fields.caseSlug = 'no case has this slug';
  if (lookUp('slug', slug) && (await q.getCampaignBySlug(db, slug.trim()))) fields.slug = 'is taken already: choose another';
  return fields;
}

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
 * @throws ValidationError (TemplateError for the letter), ConflictError when the slug is taken.
 */
export async function createCampaign(db: Db, input: unknown, { exact = false } = {}): Promise<Campaign> {
  const c = await validateCampaignInput(db, input, { exact });
  const kase = await findCase(db, c.caseSlug);
  // An unknown case and a taken slug are named together, not the slug only once the case is mended.
  if (!kase) throw new ValidationError({ ...(await unknownOrTaken(db, c, {})), caseSlug: 'no case has this slug' });
  return db.transaction(async (tx) => {
    const campaign = await q.insertCampaign(tx, kase.id, c);
    if (!campaign) throw new ConflictError('slug_taken', `A campaign with the slug "${c.slug}" exists already.`, { slug: 'is taken already: choose another' });
    await tq.insertTargets(tx, campaign.id, c.targets);
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
  const [kase, targets, signatures] = await Promise.all([
    getCaseById(db, campaign.case_id),
    tq.listTargets(db, campaign.id),
    publicSignatureCounts(db, campaign.id),
  ]);
  // Launched campaigns keep their case published (it cannot be unpublished, nor one moved to an
  // unpublished case); checked here all the same, since its page would show the person.
  if (!kase!.published) throw new NotFoundError('campaign');
  return { campaign, case: kase!, targets, signatures };
}

const TRANSITIONS: Record<'launch' | 'pause' | 'close', { to: CampaignStatus; from: CampaignStatus[] }> = {
  launch: { to: 'live', from: ['draft', 'paused'] },
  pause: { to: 'paused', from: ['live'] },
  close: { to: 'closed', from: ['draft', 'live', 'paused'] },
};

/** Whether a campaign in this status can be launched, paused or closed (changeCampaignStatus). */
export function canMove(status: CampaignStatus, action: keyof typeof TRANSITIONS): boolean {
  return TRANSITIONS[action].from.includes(status);
}

/**
 * What the console warns about before a campaign goes live or while it is: a letter still holding
 * the starter's placeholder line reaches officials as written.
 */
export function unfinishedLetter(campaign: Pick<Campaign, 'letter_subject' | 'letter_body'>): string | null {
  if (!campaign.letter_body.includes(STARTER_PLACEHOLDER) && !campaign.letter_subject.includes(STARTER_PLACEHOLDER)) return null;
  return `The letter still says “${STARTER_PLACEHOLDER}”: officials would get that line as it is. Write what has happened and what you ask the official to do in its place.`;
}

/** What reads broken in a line of a letter: a separator with nothing before it, one left at its end, two spaces between words. */
const oddities = (line: string) => (line.match(/^\s*[,;:.]|\s[,;:.]|[,;:]\s*$|\S\s{2,}\S/gu) ?? []).length;

/** The optional supporter fields, in the words brokenFieldLine uses for them. */
const OPTIONAL_FIELDS = [
  { key: 'city', words: 'city', hiddenFromName: true },
  { key: 'country', words: 'country', hiddenFromName: true },
  { key: 'personalNote', words: 'personal note', hiddenFromName: false },
] as const;

/** Stand-ins for all but the supporter, for rendering a letter to judge how its lines read. */
const SAMPLE_CONTEXT: Omit<LetterContext, 'supporter'> = {
  target: { name: 'Official', title: 'Title', salutation: 'Salutation' },
  case: { personName: 'Person', location: 'Place' },
  campaign: { title: 'Campaign' },
  date: 'Date',
};

/**
 * A line that says more than an optional supporter field, with the field written into it outside
 * an {{#if}}, is sent broken wherever the field is empty: “I am writing from ,  about …” for a
 * supporter who left out their city and country, and in every letter to an official told the name
 * only (said so when that letter's line reads broken too). renderLetter drops a line left with
 * nothing but separators, not one that says more. Said on
 * the campaign's page and before launching, quoting the line as such a letter has it. A digest's
 * letter names no supporter: see digestSupporterLine.
 */
export function brokenFieldLine(campaign: Pick<Campaign, 'letter_subject' | 'letter_body' | 'delivery_mode'>, targets: Pick<Target, 'disclose' | 'retired_at'>[]): string | null {
  if (campaign.delivery_mode === 'digest') return digestSupporterLine(campaign);
  // Private-use characters no template holds, standing for what a supporter typed.
  const MARKS = { city: '\uE004', country: '\uE005', personalNote: '\uE006' };
  // Quoted with what a supporter might have typed in the other fields.
  const SAMPLES: Record<string, string> = { '\uE004': 'Almaty', '\uE005': 'Kazakhstan', '\uE006': 'Please let him stay.' };
  const unmarked = (line: string) => line.replace(/[\uE004-\uE006]/g, (mark) => SAMPLES[mark]!);
  const render = (supporter: { city: string; country: string; personalNote: string }) => {
    const letter = renderLetter(campaign.letter_subject, campaign.letter_body, { ...SAMPLE_CONTEXT, supporter: { fullName: 'Signer', ...supporter } });
    return [letter.subject, ...letter.text.split('\n')];
  };
  try {
    const full = render(MARKS);
    // A letter to an official told the name only (no city, no country) reads broken too when a
    // line of it that the full letter does not have reads oddly.
    const fullLines = new Set(full);
    const nameOnlyBroken = render({ ...MARKS, city: '', country: '' }).some((l) => !fullLines.has(l) && oddities(unmarked(l)) > 0);
    for (const field of OPTIONAL_FIELDS) {
      const kept = new Set(render({ ...MARKS, [field.key]: '' }));
      // Kept as it is but for the field, and reading broken for it: a separator with nothing before
      // it, one left at the end, or two spaces where a word was, that the line with the field has not.
      const line = full.find((l) => {
        const left = l.replaceAll(MARKS[field.key], '');
        return l.includes(MARKS[field.key]) && kept.has(left) && oddities(unmarked(left)) > oddities(unmarked(l));
      });
      if (line === undefined) continue;
      const toName = field.hiddenFromName && nameOnlyBroken && targets.some((t) => t.retired_at === null && t.disclose === 'name');
      return `For a supporter who leaves out their ${field.words}${toName ? ' (and in every letter to an official told the name only)' : ''}, this line of the letter reads “${unmarked(line.replaceAll(MARKS[field.key], '')).trim()}” Put {{supporter.${field.key}}} on a line of its own, or inside {{#if supporter.${field.key}}}…{{/if}}.`;
    }
  } catch (err) {
    // A letter that does not render says so where it is edited.
    if (err instanceof TemplateError) return null;
    throw err;
  }
  return null;
}

/**
 * A digest's letter is the template with every supporter variable empty (renderDigestLetter), the
 * signers listed below it: a line that writes a supporter's field into more words reaches every
 * official with a gap in it (“Supporter:  of .”). Said as brokenFieldLine says its lines.
 */
function digestSupporterLine(campaign: Pick<Campaign, 'letter_subject' | 'letter_body'>): string | null {
  try {
    const line = digestFieldLine(campaign.letter_body, SAMPLE_CONTEXT);
    const subject = digestSubjectFields(campaign.letter_subject, SAMPLE_CONTEXT);
    if (line === null && subject === null) return null;
    const said = [
      line !== null ? `this line reaches every official as “${line}”` : '',
      subject !== null ? `${line !== null ? 'and the subject, which names no signer, reaches them' : 'the subject, which names no signer, reaches every official'} as “${subject}”` : '',
    ].filter(Boolean).join(' ');
    return `A digest lists its signers below the letter, so every {{supporter.…}} in the letter is empty: ${said} Take the supporter's fields out of the letter.`;
  } catch (err) {
    if (err instanceof TemplateError) return null;
    throw err;
  }
}

/**
 * A salutation is optional on every form and in a CSV. When officials still written to have none
 * and the letter writes `{{target.salutation}}` with nothing in its place, their letters open
 * with "Dear ," or a bare comma: said on the campaign's page and before launching, quoting the
 * line. A salutation inside `{{#if target.salutation}}` (as in the console's starter letter), or
 * on a line that reads well without it, is not warned about.
 */
export function missingSalutation(campaign: Pick<Campaign, 'letter_subject' | 'letter_body'>, targets: Pick<Target, 'name' | 'salutation' | 'retired_at'>[]): string | null {
  const without = targets.filter((t) => t.retired_at === null && t.salutation.trim() === '');
  if (without.length === 0) return null;
  // A private-use character no template holds, standing for a salutation there is.
  const SAMPLE = '\uE003';
  const lines = (salutation: string) => renderLetter(campaign.letter_subject, campaign.letter_body, {
    supporter: { fullName: 'Signer', city: 'City', country: 'Country', personalNote: 'Note' },
    target: { name: without[0]!.name, title: 'Title', salutation },
    case: { personName: 'Person', location: 'Place' },
    campaign: { title: 'Campaign' },
    date: 'Date',
  }).text.split('\n');
  let bare: string | undefined;
  try {
    const withIt = lines(SAMPLE);
    const withNone = lines('');
    // Written unguarded, the line reads the same with the salutation taken out; in an {{#if}},
    // the lines differ, or there are fewer of them.
    if (withIt.length === withNone.length) {
      bare = withIt.find((line, i) => line.includes(SAMPLE) && line.replaceAll(SAMPLE, '') === withNone[i]
        && /^\s*[,;:.!]|\s[,;:.!]/u.test(withNone[i]!))?.replaceAll(SAMPLE, '').trim();
    }
  } catch (err) {
    if (err instanceof TemplateError) return null;
    throw err;
  }
  if (bare === undefined) return null;
  const names = without.slice(0, 3).map((t) => t.name).join(', ') + (without.length > 3 ? ` and ${without.length - 3} more` : '');
  const one = without.length === 1;
  return `${names} ${one ? 'has' : 'have'} no salutation, so ${one ? 'their letter opens' : 'their letters open'} with “${bare}”. Give ${one ? 'it one' : 'them one'} on the targets page, or write {{#if target.salutation}}{{target.salutation}}{{else}}Dear {{target.name}}{{/if}} in the letter.`;
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
export const countLettersToGo = q.countLettersToGo;
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

/** A campaign's details as updateCampaignDetails reads them: its slug and targets stay. */
const parseDetails = (slug: string, input: unknown) => parseCampaign({ ...(input as object), slug, targets: [{ name: 'kept', email: 'kept@example.org' }] });

/**
 * What is wrong with new details for a campaign, field by field, without looking at the database:
 * for a form that found mistakes of its own first and names them all at once.
 */
export function detailErrors(slug: string, input: unknown): FieldErrors {
  try {
    parseDetails(slug, input);
    return {};
  } catch (err) {
    if (err instanceof ValidationError) return err.fields;
    throw err;
  }
}

export const listCampaignOverview = q.listCampaignOverview;
export const countSignaturesPerDay = q.countSignaturesPerDay;
export const searchSignatures = q.searchSignatures;
export type { CampaignOverview, SignatureListing } from './queries.ts';
export { parseTargetsCsv, TARGET_CSV_COLUMNS, type TargetCsv, type TargetCsvRow } from './targets-csv.ts';

/**
 * Checks a campaign as createCampaign does, without saving, so a form can show every problem at
 * once: its mistakes with an unknown case or a taken slug, not those two only once the rest is
 * mended. (Alone, those two are left to createCampaign, which answers them as it always has.)
 * @throws ValidationError
 */
export async function validateCampaignInput(db: Queryable, input: unknown, { exact = false } = {}): Promise<CampaignInput> {
  try {
    if (exact) refuseUnknownFieldsOfCampaign(input);
    return parseCampaign(input, newCampaignInput);
  } catch (err) {
    if (err instanceof ValidationError) {
      for (const [field, message] of Object.entries(await unknownOrTaken(db, input, err.fields))) err.fields[field] ??= message;
    }
    throw err;
  }
}

/**
 * refuseUnknownFields for a campaign: the body's other mistakes are named beside an unknown field,
 * the letter's template errors too (as parseCampaign names them beside the rest).
 * @throws ValidationError, or TemplateError when the letter does not compile either
 */
function refuseUnknownFieldsOfCampaign(input: unknown): void {
  try {
    refuseUnknownFields(campaignInput, input);
  } catch (err) {
    const templateErrors = err instanceof ValidationError ? letterTemplateErrors(input) : {};
    if (Object.keys(templateErrors).length) throw new TemplateError({ ...(err as ValidationError).fields, ...templateErrors }, LETTER_DOES_NOT_COMPILE);
    throw err;
  }
}

/**
 * A deadline as YYYY-MM-DD: a real calendar day (2026-02-30 is refused, not rolled over to March)
 * of a year from 1970 (Postgres refuses year 0000; no campaign ends before it began).
 */
export function isDeadline(v: string): boolean {
  const day = v.trim();
  const d = new Date(`${day}T00:00:00Z`);
  return /^\d{4}-\d{2}-\d{2}$/.test(day) && !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === day && d.getUTCFullYear() >= 1970;
}

/**
 * What is wrong with `deadline` (`YYYY-MM-DD`, or empty for none) for a campaign whose deadline is
 * `current`: not a day (isDeadline), or a day already past, most likely a slip of the year. Past
 * means before yesterday in UTC, so that today is today anywhere. A deadline that has passed is
 * kept when the campaign is saved again.
 */
export function deadlineMistake(deadline: string, current: string | null): string | undefined {
  const value = deadline.trim();
  if (!value || value === current) return undefined;
  if (!isDeadline(value)) return 'must be a date like 2026-03-31';
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  if (value < yesterday) return 'has passed: give the day the officials must act by, today or later';
  return undefined;
}

/**
 * Sets or clears a campaign's deadline (`YYYY-MM-DD`, or empty for none; see deadlineMistake).
 * @throws NotFoundError; ValidationError naming `deadline`.
 */
export async function setCampaignDeadline(db: Queryable, slug: string, deadline: string): Promise<string | null> {
  const campaign = await getCampaign(db, slug);
  const value = deadline.trim() || null;
  const mistake = deadlineMistake(deadline, await q.getDeadline(db, campaign.id));
  if (mistake) throw new ValidationError({ deadline: mistake });
  await q.setDeadline(db, campaign.id, value);
  return value;
}

/** @throws NotFoundError */
export async function getCampaignDeadline(db: Queryable, slug: string): Promise<string | null> {
  return q.getDeadline(db, (await getCampaign(db, slug)).id);
}
