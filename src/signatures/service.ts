import type { Logger } from 'pino';
import type { CsvExport } from '../csv.ts';
import type { Db, Queryable } from '../db/index.ts';
import { CampaignNotOpenError, LetterChangedError, NotFoundError, TargetsChangedError, ValidationError } from '../errors.ts';
import type { Queues } from '../queues.ts';
import { hashToken } from '../tokens.ts';
import { parseInput } from '../validation.ts';
import { signaturesChanged } from '../campaigns/service.ts';
import { isLaunched } from '../campaigns/types.ts';
import { answeredAlike } from './answer-timing.ts';
import { confirmToken } from './confirm.ts';
import { followUp } from './follow-up.ts';
import { addJobsAfterAnswer, intake } from './intake-batch.ts';
import * as q from './queries.ts';
import { bindSeenLetter, type SignedFrom } from './seen-page.ts';
import { signatureInput, type SignatureInput, type SignResult } from './types.ts';

// The area's public face: signing is here; its other topics are filed apart and exported from here.
export { SIGN_ANSWER_MIN_MS, SIGN_BUSY_AT } from './answer-timing.ts';
export { confirmSignature, confirmToken, findSignatureByToken, rederiveConfirmLinks } from './confirm.ts';
export { reservedIds } from './intake-batch.ts';
export { readSeenPage, seenPageField, type SeenPage, type SignedFrom } from './seen-page.ts';

export interface SignDeps {
  queues: Pick<Queues, 'send' | 'later' | 'redis' | 'maintenance'>;
  /** Server secret the confirmation token is derived from. */
  secret: string;
  log: Pick<Logger, 'warn'>;
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
    const s = parseInput(signatureInput, input);
    const confirmNow = !campaign.require_confirmation;
    return { kind: confirmNow ? 'signed' : 'confirmation-sent', campaignSlug: campaign.slug, confirmationRequired: !confirmNow, alertsAsked: confirmNow && s.subscribe } as const;
  }, false);
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
  addJobsAfterAnswer(deps, stored.deliveryIds, confirmNow ? 'letter' : 'confirm');
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
  return { kind, campaignSlug: campaign.slug, confirmationRequired: !confirmNow, alertsAsked: confirmNow && s.subscribe };
}

type ListedSignature = Awaited<ReturnType<typeof q.listSignaturesPage>>[number];

/**
 * A campaign's signatures as CSV, the console's and the API's.
 * `subscribe` says whether the signer asked for alerts when signing and follows the case now
 * (FOLLOWS_CASE_NOW): one who ticked the box and left since is no one to write to.
 * A pending signature's address is left out: nobody has shown it is theirs (anyone can type
 * anyone's address on the form), nothing is sent in its name, and an export travels to places
 * (a laptop, a shared drive) where unconfirmed addresses would outlive their purge.
 */
export const signaturesCsv = (db: Queryable, campaign: { id: number; slug: string }): CsvExport<ListedSignature> => ({
  filename: `${campaign.slug}-signatures.csv`,
  columns: ['full_name', 'email', 'city', 'country', 'personal_note', 'status', 'subscribe', 'signed_at', 'confirmed_at'],
  page: (afterId) => q.listSignaturesPage(db, campaign.id, afterId, 1000),
  row: (s) => [s.full_name, s.status === 'confirmed' ? s.email : '', s.city, s.country, s.personal_note, s.status, s.follows ? 'yes' : 'no', s.created_at.toISOString(), s.confirmed_at?.toISOString() ?? ''],
});
