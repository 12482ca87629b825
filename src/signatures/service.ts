import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isDatabaseTooSlow, isDatabaseUnavailable, type Db, type Queryable } from '../db/index.ts';
import { settlesWithin } from '../deadline.ts';
import { CampaignNotOpenError, ConflictError, LetterChangedError, NotFoundError, TargetsChangedError, ValidationError } from '../errors.ts';
import { batchedRead, coalesce, perDb } from '../deliveries/coalesce.ts';
import { addressWorks, enqueueAfreshLater, requeueFinished, RESEND_GAP_SECONDS } from '../deliveries/service.ts';
import { enqueueDeliveries, type Queues } from '../queues.ts';
import { getCaseById } from '../cases/service.ts';
import { requestSubscription, subscribeConfirmedSigner } from '../subscribers/service.ts';
import { deriveToken, hashToken } from '../tokens.ts';
import { parseInput } from '../validation.ts';
import { letterFingerprint } from '../campaigns/letter-template.ts';
import { discloseWords } from '../campaigns/preview.ts';
import { getCampaignById, signaturesChanged } from '../campaigns/service.ts';
import { isLaunched, targetsFingerprint, type Campaign } from '../campaigns/types.ts';
import * as q from './queries.ts';
import { signatureInput, type ConfirmResult, type Signature, type SignatureInput, type SignedVia, type SignResult } from './types.ts';

export interface SignDeps {
  queues: Pick<Queues, 'send' | 'later' | 'redis' | 'maintenance'>;
  /** Server secret the confirmation token is derived from. */
  secret: string;
  log: Pick<Logger, 'warn'>;
}

/**
 * The link in a signature's confirmation email number `round` (0: the first); signing again before
 * confirming sends a new email, and the older links stop working: at once, or when it is composed
 * if it is held back by the resend gap (see signAgain).
 */
export const confirmToken = (secret: string, signatureId: number, round = 0) =>
  deriveToken(secret, round === 0 ? 'confirm-signature' : `confirm-signature-${round}`, signatureId);

/**
 * Derives the kept confirmation links again from a new secret (see rotateSecret): each signature's
 * latest link, which an email still waiting is composed with. Links mailed before stop working.
 * @returns how many signatures' links changed.
 */
export async function rederiveConfirmLinks(db: Queryable, secret: string, pageSize = 1_000): Promise<number> {
  let changed = 0;
  for (let afterId = 0; ; ) {
    const page = await q.listConfirmLinks(db, afterId, pageSize);
    if (page.length === 0) return changed;
    afterId = page[page.length - 1]!.id;
    await q.setConfirmTokenHashes(db, page.map((s) => s.id), page.map((s) => hashToken(confirmToken(secret, s.id, s.confirm_round))));
    changed += page.length;
  }
}

/** Letters for a confirmed signature: one per target now, or none yet when the campaign sends digests. */
async function lettersFor(tx: Queryable, signature: Signature, deliveryMode: string): Promise<number[]> {
  return deliveryMode === 'each' ? q.insertLetterDeliveries(tx, signature) : [];
}

/** Signature ids taken from the sequence at once: one round trip serves this many signatures. */
const ID_BLOCK = 100;
/**
 * Reserved ids older than this are dropped: lists show signatures in id order, and with several
 * web processes each holding a block, an old block would file a new signature among old ones.
 * Under load a block lasts milliseconds; when it is quiet a fresh one costs one round trip.
 */
const ID_BLOCK_MS = 1_000;

/**
 * Signatures arriving together share their statement and their enqueue: under load a web
 * process's round trips to Postgres and Redis, not its own work, set how many it takes per second
 * (`npm run bench`, intake). Each caller still answers only after its own rows have committed.
 */
const intake = perDb((db: Queryable) => ({
  campaign: batchedRead((slugs: string[]) => q.getCampaignsForSigning(db, slugs), (err) => databaseFrozen(db, err)),
  nextId: reservedIds(() => q.reserveSignatureIds(db, ID_BLOCK), ID_BLOCK_MS),
  store: coalesce(async (sigs: q.NewSignature[]): Promise<(q.StoredSignature | Error)[]> => {
    try {
      return await insertSignatures(db, sigs);
    } catch (err) {
      // A database away or too slow (the web's statement limit) is no row's doing: every caller
      // hears of it now, not one statement limit later each. (A deadlock is tried again alone:
      // that is quick, and likely to go through.)
      if (sigs.length === 1 || notAboutOneRow(err)) throw err;
      // One row the database refuses must not fail the others that shared its statement: each
      // goes again alone, and only the refused one's caller hears of it.
      const alone = (s: q.NewSignature) =>
        insertSignatures(db, [s]).then((r) => r[0]!, (e: unknown) => (e instanceof Error ? e : new Error(String(e))));
      return Promise.all(sigs.map(alone));
    }
  }, 100, (err) => databaseFrozen(db, err)),
}));
const notAboutOneRow = (err: unknown) => isDatabaseUnavailable(err) || isDatabaseTooSlow(err);

/** How long a database that answered a batch with an error has to answer `SELECT 1` (or refuse it: then the next batch fails as fast). */
const PROBE_MS = 2_000;

/**
 * Whether the signatures queued behind a batch that failed with `err` would fail too, so they get
 * its error at once (coalesce). A statement Postgres cancelled at its limit (waiting for a lock)
 * would be cancelled again. A connection lost is the database away when it does not answer a
 * probe soon either (a frozen server); one connection lost (a backend killed, a firewall that
 * forgot it) is not: another pooled connection takes the next batch.
 */
async function databaseFrozen(db: Queryable, err: unknown): Promise<boolean> {
  if (isDatabaseTooSlow(err)) return true;
  if (!isDatabaseUnavailable(err)) return false;
  return !(await settlesWithin(db.query('SELECT 1'), PROBE_MS));
}

/**
 * Stores signatures (insertSignatures), once more when a target was deleted while the statement
 * waited for its campaign (removeTarget holds it): its letters' key check fails then, and a second
 * statement reads the targets as they are now.
 */
async function insertSignatures(db: Queryable, sigs: q.NewSignature[]): Promise<q.StoredSignature[]> {
  try {
    return await q.insertSignatures(db, sigs);
  } catch (err) {
    if ((err as { code?: unknown }).code !== FOREIGN_KEY_VIOLATION) throw err;
    return q.insertSignatures(db, sigs);
  }
}
const FOREIGN_KEY_VIOLATION = '23503';

const enqueueTogether = perDb((queues: Pick<Queues, 'send'>) =>
  coalesce(async (batches: number[][]) => {
    await enqueueDeliveries(queues, batches.flat());
    return batches.map(() => undefined);
  }),
);

/**
 * Adds the send jobs of committed rows without holding up the answer: jobs of requests that
 * arrive together share one addBulk, and a job not added (Redis away, the process gone) is added
 * by the sweeper, as after any crash between commit and enqueue.
 */
function addJobsAfterAnswer(deps: Pick<SignDeps, 'queues' | 'log'>, ids: number[]): void {
  if (ids.length === 0) return;
  deps.queues.later(
    enqueueTogether(deps.queues)(ids).catch((err: unknown) =>
      deps.log.warn({ err, deliveries: ids.length }, 'send jobs not added; the sweeper adds them once Redis takes jobs again (within two minutes of that)'),
    ),
  );
}

/**
 * Hands out ids from blocks taken with `take`, none from a block older than `maxAgeMs`; callers
 * that find none left share one refill.
 */
export function reservedIds(take: () => Promise<number[]>, maxAgeMs: number): () => Promise<number> {
  let ids: number[] = [];
  let takenAt = 0;
  let refill: Promise<void> | undefined;
  return async () => {
    if (performance.now() - takenAt > maxAgeMs) ids = [];
    while (ids.length === 0) {
      refill ??= take()
        .then((got) => {
          ids = got;
          takenAt = performance.now();
        })
        .finally(() => (refill = undefined));
      await refill;
    }
    return ids.shift()!;
  };
}

/**
 * Where a signature comes from: the campaign page's form, with the letter it showed (its hidden
 * field `letter`), or a page embedding it through the public API.
 */
export type SignedFrom = { via: 'sign form'; seen?: SeenPage } | { via: 'api'; seen?: undefined };

/** What a sign page showed, as its hidden `letter` field carries it back: `revision.letter.targets`. */
export interface SeenPage {
  /** The campaign's revision (see bindSeenLetter). */
  revision: number;
  /** letterFingerprint of its letter. */
  letter: string;
  /** targetsFingerprint of its targets; '' from a page rendered before it carried them, which matches none. */
  targets: string;
}

/** The `letter` field of a sign page showing this campaign, with its letter and these targets. */
export function seenPageField(campaign: Pick<Campaign, 'revision' | 'letter_subject' | 'letter_body'>, targets: Parameters<typeof targetsFingerprint>[0]): string {
  return `${campaign.revision}.${letterFingerprint(campaign.letter_subject, campaign.letter_body)}.${targetsFingerprint(targets)}`;
}

/** A sign form's `letter` field read back; undefined when it sent none (a form of one's own, whose sender chose). */
export function readSeenPage(field: unknown): SeenPage | undefined {
  if (typeof field !== 'string' || field === '') return undefined;
  const [revision = '', letter = '', targets = ''] = field.slice(0, 64).split('.');
  return { revision: Number(revision), letter, targets };
}

/** @throws NotFoundError (a campaign unknown or not launched), CampaignNotOpenError. */
function checkOpen(campaign: q.CampaignForSigning | undefined): q.CampaignForSigning {
  if (!campaign || !isLaunched(campaign)) throw new NotFoundError('campaign');
  if (campaign.status !== 'live') throw new CampaignNotOpenError(campaign.status, campaign.title);
  return campaign;
}

/** @throws NotFoundError (a campaign unknown or not launched), CampaignNotOpenError. */
async function openCampaign(db: Queryable, slug: string) {
  return checkOpen(await intake(db).campaign(slug));
}

/**
 * What `sign` would answer, with the same checks, storing and sending nothing: a bot caught by
 * the honeypot gets the answer a person would, so it cannot tell it was caught.
 * @throws as `sign` does.
 */
export function pretendToSign(db: Queryable, slug: string, input: unknown): Promise<SignResult> {
  return answeredAlike(async () => {
    const campaign = await openCampaign(db, slug);
    parseInput(signatureInput, input);
    const confirmNow = !campaign.require_confirmation;
    return { kind: confirmNow ? 'signed' : 'confirmation-sent', campaignSlug: campaign.slug, confirmationRequired: !confirmNow } as const;
  }, false);
}

/**
 * The least time a signature takes to be answered. A first signature writes its confirmation
 * email's row, and right after it its job is added and, in a process that also sends, the email
 * composed; a repeat by an address that signed writes less and defers the rest. On an idle server
 * that is a millisecond or two, in the answer and in the request after it, which a few hundred
 * probes measure: whether an address signed. Every answer waits until this much has passed since
 * it began, by when, on a server not overloaded, either has done that work.
 */
export const SIGN_ANSWER_MIN_MS = 25;
/**
 * With this many signatures being answered at once in this process (their waits included), none
 * waits for SIGN_ANSWER_MIN_MS: the wait would only slow a burst (`npm run bench`, intake, where
 * autocannon's 50 connections lost 44 % of their rate to it). It is above RATE_LIMIT_PER_IP's
 * default of 20 posts in 10 minutes, and a bot's posts caught by the honeypot, which store nothing,
 * are not counted: a prober must post that many real signatures at once, from as many addresses
 * and to as many inboxes, to have one answered without the wait.
 */
export const SIGN_BUSY_AT = 24;

/** Signatures this process is answering now, their wait included. */
let answering = 0;

/**
 * Runs `work` for a signature's answer, answered no sooner than SIGN_ANSWER_MIN_MS after it began
 * unless SIGN_BUSY_AT signatures are being answered; `counted`: whether it is one of those (not a
 * honeypot's pretence).
 */
async function answeredAlike<T>(work: () => Promise<T>, counted = true): Promise<T> {
  const began = performance.now();
  if (counted) answering++;
  try {
    const result = await work();
    // Rounded up: a timer takes whole milliseconds, and would end the wait up to one early.
    if (answering < SIGN_BUSY_AT) await sleep(Math.max(0, Math.ceil(began + SIGN_ANSWER_MIN_MS - performance.now())));
    return result;
  } finally {
    if (counted) answering--;
  }
}

/**
 * Records a signature. With confirmation on, stores it pending with a confirmation email;
 * with it off, confirms at once and queues the letters. The rows commit together; jobs follow.
 * A second signature by the same address sends no second letter: one still waiting for
 * confirmation takes the new details and gets a new confirmation email (see signAgain), and a
 * confirmed one only asks for alerts when `subscribe` is ticked. Every case answers alike.
 * @throws ValidationError, NotFoundError (a campaign unknown or not launched), CampaignNotOpenError.
 */
export function sign(db: Db, deps: SignDeps, slug: string, input: unknown, from: SignedFrom = { via: 'sign form' }): Promise<SignResult> {
  return answeredAlike(() => storeSignature(db, deps, slug, input, from));
}

async function storeSignature(db: Db, deps: SignDeps, slug: string, input: unknown, from: SignedFrom): Promise<SignResult> {
  const { via, seen } = from;
  let s: SignatureInput;
  try {
    s = parseInput(signatureInput, input);
  } catch (err) {
    // A campaign that is gone or closed says so before the form's mistakes do.
    if (err instanceof ValidationError) await openCampaign(db, slug);
    throw err;
  }
  const id = await intake(db).nextId();
  // The campaign is read in the statement that stores the signature: its status decides whether
  // anything is stored, and whether the signature waits for confirmation or sends at once.
  const stored = await intake(db).store({
    id,
    campaignSlug: slug,
    input: s,
    confirmTokenHash: hashToken(confirmToken(deps.secret, id)),
    via,
    seenTargets: seen?.targets,
    // A field with no fingerprint in it (a form of one's own, a damaged one) names no letter.
    seenLetter: seen?.letter ? { revision: Number.isSafeInteger(seen.revision) ? seen.revision : null, letter: seen.letter } : undefined,
  });
  if (stored instanceof Error) throw stored;
  if (stored.campaign) signaturesChanged(db, stored.campaign.id);
  const campaign = checkOpen(stored.campaign);
  if (stored.targetsChanged) throw new TargetsChangedError();
  if (stored.letterChanged) throw new LetterChangedError();
  // Before its letters are queued: one saved while the signer read the page is not theirs.
  if (seen && stored.signed) await bindSeenLetter(db, id, campaign, seen);
  const confirmNow = !campaign.require_confirmation;
  // The rows are committed, so the signer is answered now and the jobs follow: a job not added
  // (Redis away, the process gone) is added by the sweeper, as after any crash between the two.
  // Waiting for them cost every signature a round trip to Redis (`npm run bench`, intake).
  addJobsAfterAnswer(deps, stored.deliveryIds);
  // What a repeat or a ticked box asks for besides comes after the answer too: done before it,
  // it made the answer measurably later for an address that had signed (or had asked for
  // alerts), and the time of the answer told whether it had.
  if (!stored.signed || (confirmNow && s.subscribe)) {
    deps.queues.later(
      followUp(db, deps, campaign, s, stored, from, id).catch((err: unknown) =>
        deps.log.warn({ err }, 'a repeated signature or its request for alerts was not recorded'),
      ),
    );
  }
  const kind = !stored.signed ? 'already-signed' : confirmNow ? 'signed' : 'confirmation-sent';
  return { kind, campaignSlug: campaign.slug, confirmationRequired: !confirmNow };
}

/**
 * The sign page carries `revision.fingerprint` of the campaign and letter it showed. When the
 * campaign has been saved since (rarely: the revision is read in the statement that stored the
 * signature) and its letter is not the one shown, the signature is bound to the text its signer
 * read, kept when the new one was saved, so that is what its letters carry. A value that names
 * no text of the campaign changes nothing.
 */
async function bindSeenLetter(db: Queryable, signatureId: number, campaign: q.CampaignForSigning, seen: SeenPage): Promise<void> {
  if (seen.revision === campaign.revision || !seen.letter) return;
  const texts = await q.listLetterTexts(db, campaign.id);
  const text = texts.find((t) => letterFingerprint(t.letter_subject, t.letter_body) === seen.letter);
  if (text && text.id !== null) await q.setLetterVersion(db, signatureId, text.id);
}

/**
 * After a signature is answered: one by an address that signed before replaces a pending one
 * (signAgain); a confirmed signature with `subscribe` ticked asks for alerts. No subscription when
 * confirming at once: nobody has confirmed this address, and alerts need double opt-in (a pending
 * signature subscribes when it is confirmed).
 */
async function followUp(db: Db, deps: SignDeps, campaign: q.CampaignForSigning, s: SignatureInput, stored: q.StoredSignature, from: SignedFrom, request: number): Promise<void> {
  const confirmed = stored.signed ? !campaign.require_confirmation : stored.earlier === 'confirmed' || !(await signAgain(db, deps, campaign, s, from, request));
  if (confirmed && s.subscribe) await askForAlerts(db, deps, s.email, campaign.case_id, from.via);
}

/**
 * The address signed this campaign before. While that signature waits for confirmation it takes
 * these details, and its confirmation email goes again with a new link (the older one stops
 * working) unless one is still on its way, which will carry them; the same details sent twice in
 * a row change nothing (isRepeatOfPending). Otherwise a stranger who gave
 * the address first would choose what the person then confirms, and the person could not sign.
 * Of several requests moments apart, the newest stored (`request`, the id reserved for it) wins
 * whichever order this work runs in: an older one that comes after it changes nothing.
 * @returns whether a pending signature was replaced, or left to a newer request; false when it is confirmed.
 */
async function signAgain(db: Db, deps: SignDeps, campaign: q.CampaignForSigning, s: SignatureInput, from: SignedFrom, request: number): Promise<boolean> {
  const again = await db.transaction(async (tx) => {
    // The campaign first (see the query), and its revision as of now: a letter saved since this
    // signature's statement read it is not the one the page showed.
    const current = { ...campaign, revision: (await q.lockCampaignForSignatures(tx, campaign.id)).revision };
    const pending = await q.lockPendingSignature(tx, campaign.id, s.email);
    if (!pending) return undefined;
    if (pending.last_request !== null && pending.last_request !== request) return { requeued: undefined };
    // The same form again while its email is on its way or has just gone: a new link would make
    // the one arriving say "does not exist" when it is opened, and the next come a minute later.
    // Sent longer ago, the same details get a new email as any repeat does (it may never have come).
    const onCurrentLetter = !from.seen || from.seen.revision === current.revision;
    if (onCurrentLetter && (await q.isRepeatOfPending(tx, pending.id, s, from.via, RESEND_GAP_SECONDS))) return { requeued: undefined };
    const replaced = await q.replacePendingSignature(tx, pending.id, s, from.via);
    // The new details are for the letter their page showed, as a first signature's are.
    if (from.seen) await bindSeenLetter(tx, replaced.id, current, from.seen);
    // A new email with a new link, which takes over when the email is composed (useConfirmRound):
    // the link sent before keeps working until then, and for good if the email is never composed
    // (its address suppressed). A relay that refuses it once composed leaves the new link alone.
    // The page shows, and the button sends, the signature as it is now, whichever link opens it.
    const requeued = await requeueFinished(tx, 'confirm', replaced.id);
    if (requeued) await q.setConfirmRound(tx, replaced.id, replaced.confirm_round + 1);
    return { requeued };
  });
  if (again?.requeued) enqueueAfreshLater(deps.queues, deps.log, [again.requeued.id], again.requeued.waitMs);
  return again !== undefined;
}

/**
 * A signer who ticked `subscribe` on a campaign without confirmation (nobody has confirmed this
 * address), or whose address left the alerts before: the alerts wait for the usual opt-in email
 * instead of starting at once.
 */
async function askForAlerts(db: Db, deps: SignDeps, email: string, caseId: number, via: SignedVia): Promise<void> {
  const kase = await getCaseById(db, caseId);
  if (kase) await requestSubscription(db, deps, { email, caseSlug: kase.slug }, via);
}

const TARGETS_CHANGED =
  'The officials this letter goes to, or what one of them learns, changed after this page was opened. Nothing was sent. Check the list below before you confirm.';
const NO_OFFICIALS =
  'None of the officials this letter was to go to is written to by the campaign any more, so nothing would be sent in your name. Sign again on the campaign page to write to the officials it writes to now.';
const SIGNATURE_CHANGED =
  'Someone signed again with this address after this page was opened, so the signature now says something else. Nothing was sent. Check what it says now before you confirm.';

/** A signature not confirmed within the retention period is deleted with its link. */
const SIGNATURE_LINK_HINT =
  'If you signed more than once, only the link in the newest email works once it is on its way, and that email can take a minute to arrive. A signature not confirmed in the time its email gave is deleted: sign again on the campaign page to get a new link.';

/** What the confirmation page shows before the button is pressed. @throws NotFoundError */
export async function findSignatureByToken(db: Queryable, token: string) {
  const signature = await q.getSignatureByTokenHash(db, hashToken(token));
  const parts = signature && (await q.getConfirmParts(db, signature.id));
  // Also when deleted between the two reads (retention, `forget`).
  if (!signature || !parts) throw new NotFoundError('confirmation link', SIGNATURE_LINK_HINT);
  const targets = await q.listSignatureTargets(db, signature.id);
  return {
    signature,
    // What the button sends, and to whom: the person confirms what they see, not what whoever
    // gave their address may have written.
    // Only a signature confirmed by its address is sent with it, so a `full` target gets it here.
    targets: targets.map((t) => ({ ...t, learns: discloseWords(t.disclose, true, parts.delivery_mode === 'digest') })),
    // Carried by the button (see confirmSignature).
    targetsSeen: targetsFingerprint(targets, true),
    alertsAsk: parts.alerts_ask,
    digest: parts.delivery_mode === 'digest',
    campaignTitle: parts.campaign_title,
    campaignSlug: parts.campaign_slug,
    personName: parts.person_name,
    campaignClosed: parts.campaign_status === 'closed',
    // Every official it was to go to taken off since: confirmed, it would count and send nothing.
    noOfficials: targets.length === 0,
  };
}

/**
 * Confirms a signature as the confirmation page showed it (`shown`: its `edits`, when the button
 * carried them; `targetsSeen`: the fingerprint of the officials it listed, likewise) and queues its
 * letters in the same transaction. Confirming twice is not an error and sends nothing new.
 * @throws NotFoundError for an unknown token; CampaignNotOpenError when the campaign closed
 * meanwhile; ConflictError `no_officials` when every official it was to go to was taken off since, `signature_changed` when someone signed again with the address after
 * the page was opened, `targets_changed` when its officials changed (one written to again, a
 * disclosure changed): the page must show what is sent, and to whom, before it is confirmed.
 */
export async function confirmSignature(db: Db, deps: SignDeps, token: string, shown?: number, targetsSeen?: string): Promise<ConfirmResult> {
  const found = await q.getSignatureByTokenHash(db, hashToken(token));
  if (!found) throw new NotFoundError('confirmation link', SIGNATURE_LINK_HINT);
  // A signature's campaign is there as long as the signature is (ON DELETE CASCADE).
  const campaign = (await getCampaignById(db, found.campaign_id))!;
  if (found.status === 'confirmed') return { kind: 'already-confirmed', campaignSlug: campaign.slug };

  const { ids, askFor } = await db.transaction(async (tx) => {
    // Its status read with a lock, not above: a close that commits meanwhile sends no letter.
    if ((await q.lockCampaignForSignatures(tx, found.campaign_id)).status === 'closed') throw new CampaignNotOpenError('closed', campaign.title);
    const signature = await q.markConfirmed(tx, found.id, shown);
    if (!signature) {
      // Confirmed by another click meanwhile, or changed by signing again since it was read, or
      // deleted since (retention, `forget`): its letters would never go, so no thanks for it.
      const now = await q.getSignature(tx, found.id);
      if (!now) throw new NotFoundError('confirmation link', SIGNATURE_LINK_HINT);
      if (now.status === 'pending') throw new ConflictError('signature_changed', SIGNATURE_CHANGED);
      return { ids: [], askFor: null };
    }
    // After the words (which say more when they changed too), before any letter: targets change
    // under the campaign's lock, so the list read now is the one the letters go to. Refused, the
    // transaction leaves the signature pending.
    const targets = await q.listSignatureTargets(tx, found.id);
    if (targets.length === 0) throw new ConflictError('no_officials', NO_OFFICIALS);
    if (targetsSeen !== undefined && targetsFingerprint(targets, true) !== targetsSeen) {
      throw new ConflictError('targets_changed', TARGETS_CHANGED);
    }
    await addressWorks(tx, signature.email);
    const ask = signature.subscribe && (await subscribeConfirmedSigner(tx, signature.email, campaign.case_id, signature.via)) === 'ask';
    return { ids: await lettersFor(tx, signature, campaign.delivery_mode), askFor: ask ? signature : null };
  });
  signaturesChanged(db, found.campaign_id);
  // Not waited for, as when signing: the signer is answered while Redis is away.
  addJobsAfterAnswer(deps, ids);
  // They left these alerts once: the tick asks, and their own click in the opt-in email answers.
  // After the answer, as when signing: the confirmation page need not wait for the opt-in's rows.
  if (askFor) {
    deps.queues.later(
      askForAlerts(db, deps, askFor.email, campaign.case_id, askFor.via).catch((err: unknown) => deps.log.warn({ err }, 'a confirmed signer\'s request for alerts was not recorded')),
    );
  }
  return { kind: 'confirmed', campaignSlug: campaign.slug };
}

export const listSignaturesPage = q.listSignaturesPage;

type ListedSignature = Awaited<ReturnType<typeof q.listSignaturesPage>>[number];

/**
 * A campaign's signatures as CSV, the console's and the API's: its columns, and a signature's row.
 * `subscribe` says whether the signer asked for alerts when signing and follows the case now
 * (FOLLOWS_CASE_NOW): one who ticked the box and left since is no one to write to.
 */
export const SIGNATURES_CSV = {
  columns: ['full_name', 'email', 'city', 'country', 'personal_note', 'status', 'subscribe', 'signed_at', 'confirmed_at'],
  row: (s: ListedSignature) => [s.full_name, s.email, s.city, s.country, s.personal_note, s.status, s.follows ? 'yes' : 'no', s.created_at.toISOString(), s.confirmed_at?.toISOString() ?? ''],
};
