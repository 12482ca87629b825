// What the sign page showed (its hidden `letter` field), read back, and the letter a signature is
// bound to when the campaign's was saved while its signer read the page.
import type { Queryable } from '../db/index.ts';
import { letterFingerprint } from '../campaigns/letter-template.ts';
import { targetsFingerprint, type Campaign } from '../campaigns/types.ts';
import * as q from './queries.ts';

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

/**
 * What a page of a campaign whose signers confirm first carries for its targets. Their letters go
 * to the officials the confirmation page shows, checked there; what the sign page promised was
 * that step. Where confirmation was turned off since, the letters would go at once, from a page
 * that said they would not (nor what a `full` official learns), and this matches no targets: the
 * signature is refused as one from a page listing other targets is (TargetsChangedError).
 */
const CONFIRM_FIRST = 'confirm';

/** The `letter` field of a sign page showing this campaign, with its letter and these targets. */
export function seenPageField(campaign: Pick<Campaign, 'revision' | 'letter_subject' | 'letter_body' | 'require_confirmation'>, targets: Parameters<typeof targetsFingerprint>[0]): string {
  const shown = campaign.require_confirmation ? CONFIRM_FIRST : targetsFingerprint(targets);
  return `${campaign.revision}.${letterFingerprint(campaign.letter_subject, campaign.letter_body)}.${shown}`;
}

/** A sign form's `letter` field read back; undefined when it sent none (a form of one's own, whose sender chose). */
export function readSeenPage(field: unknown): SeenPage | undefined {
  if (typeof field !== 'string' || field === '') return undefined;
  const [revision = '', letter = '', targets = ''] = field.slice(0, 64).split('.');
  return { revision: Number(revision), letter, targets };
}

/**
 * The sign page carries `revision.fingerprint` of the campaign and letter it showed. When the
 * campaign has been saved since (rarely: the revision is read in the statement that stored the
 * signature) and its letter is not the one shown, the signature is bound to the text its signer
 * read, kept when the new one was saved, so that is what its letters carry. A value that names
 * no text of the campaign changes nothing.
 */
export async function bindSeenLetter(db: Queryable, signatureId: number, campaign: q.CampaignForSigning, seen: SeenPage): Promise<void> {
  if (seen.revision === campaign.revision || !seen.letter) return;
  const texts = await q.listLetterTexts(db, campaign.id);
  const text = texts.find((t) => letterFingerprint(t.letter_subject, t.letter_body) === seen.letter);
  if (text && text.id !== null) await q.setLetterVersion(db, signatureId, text.id);
}
