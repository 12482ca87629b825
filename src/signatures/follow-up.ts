// What a signature's answer does not wait for: a repeat by an address that signed replaces its
// pending signature (signAgain), and a request for alerts is recorded (askForAlerts).
import type { Db } from '../db/index.ts';
import { enqueueAfreshLater, requeueFinished, RESEND_GAP_SECONDS } from '../deliveries/service.ts';
import { getCaseById } from '../cases/service.ts';
import { signaturesChanged } from '../campaigns/service.ts';
import { addJobsAfterAnswer } from './intake-batch.ts';
import { requestSubscription } from '../subscribers/service.ts';
import * as q from './queries.ts';
import { bindSeenLetter, type SignedFrom } from './seen-page.ts';
import type { SignDeps } from './service.ts';
import type { SignatureInput, SignedVia } from './types.ts';

/**
 * After a signature is answered: one by an address that signed before replaces a pending one
 * (signAgain); a confirmed signature with `subscribe` ticked asks for alerts. No subscription when
 * confirming at once: nobody has confirmed this address, and alerts need double opt-in (a pending
 * signature subscribes when it is confirmed).
 */
export async function followUp(db: Db, deps: SignDeps, campaign: q.CampaignForSigning, s: SignatureInput, stored: q.StoredSignature, from: SignedFrom, request: number): Promise<void> {
  const confirmed = stored.signed ? !campaign.require_confirmation : stored.earlier === 'confirmed' || (await signAgain(db, deps, campaign, s, from, request)) !== 'pending';
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
 * Where confirmation was turned off since it was signed, the repeat is signed as any signature
 * there is, and answered so ("your letter is on its way"): it is confirmed with these details at
 * once and its letters go; its confirmation email, if not on its way, is not sent.
 * @returns 'pending' when a pending signature was replaced, or left to a newer request;
 * 'confirmed' when it was confirmed now; undefined when it was confirmed already.
 */
async function signAgain(db: Db, deps: SignDeps, campaign: q.CampaignForSigning, s: SignatureInput, from: SignedFrom, request: number): Promise<'pending' | 'confirmed' | undefined> {
  const again = await db.transaction(async (tx) => {
    // The campaign first (see the query), and its revision as of now: a letter saved since this
    // signature's statement read it is not the one the page showed.
    const locked = await q.lockCampaignForSignatures(tx, campaign.id);
    const current = { ...campaign, revision: locked.revision };
    const pending = await q.lockPendingSignature(tx, campaign.id, s.email);
    if (!pending) return undefined;
    if (pending.last_request !== null && pending.last_request !== request) return { requeued: undefined };
    if (!locked.require_confirmation) {
      const replaced = await q.replacePendingSignature(tx, pending.id, s, from.via);
      if (from.seen) await bindSeenLetter(tx, replaced.id, current, from.seen);
      const signature = (await q.confirmUnverified(tx, replaced.id))!;
      return { letters: await q.lettersFor(tx, signature, campaign.delivery_mode) };
    }
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
  if (!again) return undefined;
  if (again.letters) {
    signaturesChanged(db, campaign.id);
    addJobsAfterAnswer(deps, again.letters, 'letter');
    return 'confirmed';
  }
  if (again.requeued) enqueueAfreshLater(deps.queues, deps.log, [again.requeued.id], again.requeued.waitMs);
  return 'pending';
}

/**
 * A signer who ticked `subscribe` on a campaign without confirmation (nobody has confirmed this
 * address), or whose address left the alerts before: the alerts wait for the usual opt-in email
 * instead of starting at once.
 */
export async function askForAlerts(db: Db, deps: SignDeps, email: string, caseId: number, via: SignedVia): Promise<void> {
  const kase = await getCaseById(db, caseId);
  if (kase) await requestSubscription(db, deps, { email, caseSlug: kase.slug }, via);
}
