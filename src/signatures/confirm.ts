// Confirming a signature by the link in its email: the link itself (confirmToken), the page it
// opens (findSignatureByToken), and its button (confirmSignature).
import type { Db, Queryable } from '../db/index.ts';
import { CampaignNotOpenError, ConflictError, NotFoundError } from '../errors.ts';
import { addressWorks } from '../deliveries/service.ts';
import { subscribeConfirmedSigner } from '../subscribers/service.ts';
import { deriveToken, hashToken } from '../tokens.ts';
import { discloseWords } from '../campaigns/preview.ts';
import { getCampaignById, signaturesChanged } from '../campaigns/service.ts';
import { targetsFingerprint } from '../campaigns/types.ts';
import { askForAlerts } from './follow-up.ts';
import { addJobsAfterAnswer } from './intake-batch.ts';
import * as q from './queries.ts';
import type { SignDeps } from './service.ts';
import type { ConfirmResult } from './types.ts';

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
    // The case's language, for the campaign's title and the letter on the page (a screen reader's voice).
    language: parts.language,
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
    return { ids: await q.lettersFor(tx, signature, campaign.delivery_mode), askFor: ask ? signature : null };
  });
  signaturesChanged(db, found.campaign_id);
  // Not waited for, as when signing: the signer is answered while Redis is away.
  addJobsAfterAnswer(deps, ids, 'letter');
  // They left these alerts once: the tick asks, and their own click in the opt-in email answers.
  // After the answer, as when signing: the confirmation page need not wait for the opt-in's rows.
  if (askFor) {
    deps.queues.later(
      askForAlerts(db, deps, askFor.email, campaign.case_id, askFor.via).catch((err: unknown) => deps.log.warn({ err }, 'a confirmed signer\'s request for alerts was not recorded')),
    );
  }
  return { kind: 'confirmed', campaignSlug: campaign.slug };
}
