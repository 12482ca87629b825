// The statements on one signature after it is stored, mostly while it waits for confirmation:
// confirming it with its letters, replacing it when its address signs again, its link's rounds.
import type { Queryable } from '../db/index.ts';
import { TARGET_SEEN, TARGET_WRITTEN } from '../campaigns/types.ts';
import { TARGET_HELD } from '../deliveries/suppression-queries.ts';
import type { Disclose } from '../campaigns/letter-template.ts';
import type { Signature, SignatureInput, SignedVia } from './types.ts';

export async function getSignatureByTokenHash(db: Queryable, hash: string) {
  const { rows } = await db.query<Signature>('SELECT * FROM signatures WHERE confirm_token_hash = $1', [hash]);
  return rows[0];
}

export async function getSignature(db: Queryable, id: number) {
  const { rows } = await db.query<Signature>('SELECT * FROM signatures WHERE id = $1', [id]);
  return rows[0];
}

/**
 * A signature's campaign, read with a share lock for the rest of the transaction that confirms or
 * replaces a signature: a close or a letter save that committed first is seen (a locking read
 * returns the committed row, so `revision` may be newer than what the signing statement read),
 * and one that comes later waits for this transaction. Taken before any signature row: a letter
 * save takes the campaign, then marks every pending signature, and the other order deadlocked.
 * Confirmations and replacements do not wait for each other.
 */
export async function lockCampaignForSignatures(db: Queryable, campaignId: number) {
  const { rows } = await db.query<{ status: string; revision: number; require_confirmation: boolean }>(
    'SELECT status, revision, require_confirmation FROM campaigns WHERE id = $1 FOR SHARE',
    [campaignId],
  );
  return rows[0]!;
}

/**
 * A pending signature confirmed without its email, as one signed where confirmation is off is:
 * its link stops working, its address counts as unconfirmed (ADDRESS_CONFIRMED: no official is
 * given it), and its confirmation email, if not on its way yet, is not sent (giving back the one
 * email a suppressed address may have, if it had taken it).
 */
export async function confirmUnverified(db: Queryable, id: number) {
  const { rows } = await db.query<Signature>(
    `WITH unsent AS (
       DELETE FROM deliveries WHERE kind = 'confirm' AND source_id = $1 AND status IN ('queued', 'retry') RETURNING id
     ), released AS (
       -- The one email a suppressed address may be sent, taken by it (takeSuppressedAsk), is free again.
       UPDATE suppressions SET asked_at = NULL, asked_by = NULL WHERE asked_by IN (SELECT id FROM unsent)
     )
     UPDATE signatures SET status = 'confirmed', confirmed_at = now(), confirm_token_hash = NULL
      WHERE id = $1 AND status = 'pending' RETURNING *`,
    [id],
  );
  return rows[0];
}

/**
 * Only a pending signature moves, so two clicks on the button confirm once; and only as the page
 * showed it (`edits`, unless undefined), so words put in by signing again meanwhile are not confirmed unseen.
 */
export async function markConfirmed(db: Queryable, id: number, edits: number | undefined) {
  const { rows } = await db.query<Signature>(
    `UPDATE signatures SET status = 'confirmed', confirmed_at = now()
      WHERE id = $1 AND status = 'pending' AND ($2::int IS NULL OR edits = $2) RETURNING *`,
    [id, edits ?? null],
  );
  return rows[0];
}

/**
 * One letter per target of the signature's campaign that was there when it was signed: a target
 * added since is not one the signer saw.
 */
export async function insertLetterDeliveries(db: Queryable, signature: Signature) {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient)
     SELECT 'letter', s.id, t.id, t.campaign_id, t.email
       FROM signatures s JOIN targets t ON t.campaign_id = s.campaign_id AND ${TARGET_SEEN} AND ${TARGET_WRITTEN}
      WHERE s.id = $1
     ORDER BY t.position, t.id
     ON CONFLICT DO NOTHING RETURNING id`,
    [signature.id],
  );
  return rows.map((r) => r.id);
}

/** Letters for a confirmed signature: one per target now, or none yet when the campaign sends digests. */
export async function lettersFor(db: Queryable, signature: Signature, deliveryMode: string): Promise<number[]> {
  return deliveryMode === 'each' ? insertLetterDeliveries(db, signature) : [];
}

/**
 * Who a signature's letters go to (see insertLetterDeliveries), for the confirmation page;
 * `held`: the target's address refused mail for good, so its letter waits for a corrected one.
 */
export async function listSignatureTargets(db: Queryable, signatureId: number) {
  const { rows } = await db.query<{ id: number; name: string; title: string; disclose: Disclose; held: boolean }>(
    `SELECT t.id, t.name, t.title, t.disclose, ${TARGET_HELD} AS held
       FROM signatures s JOIN targets t ON t.campaign_id = s.campaign_id AND ${TARGET_SEEN} AND ${TARGET_WRITTEN}
      WHERE s.id = $1 ORDER BY t.position, t.id`,
    [signatureId],
  );
  return rows;
}

/**
 * The address's pending signature on the campaign, locked, and the id of the newest sign request
 * that reached it (null on a row from before requests were recorded); undefined when there is none.
 */
export async function lockPendingSignature(db: Queryable, campaignId: number, email: string) {
  const { rows } = await db.query<{ id: number; last_request: number | null }>(
    `SELECT id, last_request FROM signatures WHERE campaign_id = $1 AND lower(email) = lower($2) AND status = 'pending' FOR UPDATE`,
    [campaignId, email],
  );
  return rows[0];
}

/**
 * A signature still waiting for confirmation (locked by lockPendingSignature) takes what its
 * address signs with now: whoever gave the address first must not decide what a letter in that
 * person's name says. The address itself stays as first written (its confirmation email's key).
 */
export async function replacePendingSignature(db: Queryable, signatureId: number, input: SignatureInput, via: SignedVia) {
  const { rows } = await db.query<{ id: number; confirm_round: number }>(
    `UPDATE signatures
        SET full_name = $2, city = $3, country = $4, personal_note = $5, subscribe = $6, via = $7,
            letter_version_id = NULL, created_at = now(), edits = edits + 1
      WHERE id = $1
      RETURNING id, confirm_round`,
    [signatureId, input.fullName, input.city, input.country, input.personalNote, input.subscribe, via],
  );
  return rows[0]!;
}

/**
 * Whether a pending signature (locked by lockPendingSignature) already says exactly this, on the
 * campaign's current letter, and its confirmation email is on its way or went less than
 * `withinSeconds` ago: the same form sent twice (a double click, Back and Sign again), not a change.
 */
export async function isRepeatOfPending(db: Queryable, signatureId: number, input: SignatureInput, via: SignedVia, withinSeconds: number) {
  const { rows } = await db.query(
    `SELECT 1
       FROM signatures s
       JOIN deliveries d ON d.kind = 'confirm' AND d.source_id = s.id
      WHERE s.id = $1 AND s.letter_version_id IS NULL
        AND (s.full_name, s.city, s.country, s.personal_note, s.subscribe, s.via) = ($2::text, $3::text, $4::text, $5::text, $6::boolean, $7::text)
        AND (d.status IN ('queued', 'sending', 'retry') OR (d.status = 'sent' AND d.sent_at > now() - make_interval(secs => $8)))`,
    [signatureId, input.fullName, input.city, input.country, input.personalNote, input.subscribe, via, withinSeconds],
  );
  return rows.length > 0;
}

/** The next confirmation email is number `round`: its link works once it is composed (useConfirmRound). */
export async function setConfirmRound(db: Queryable, signatureId: number, round: number) {
  await db.query('UPDATE signatures SET confirm_round = $2 WHERE id = $1', [signatureId, round]);
}

/**
 * The link of confirmation email `round`, as it is composed, becomes the one that works, while
 * the signature waits for confirmation and that is still its round.
 */
export async function useConfirmRound(db: Queryable, signatureId: number, round: number, tokenHash: string) {
  await db.query(
    `UPDATE signatures SET confirm_token_hash = $3
      WHERE id = $1 AND confirm_round = $2 AND status = 'pending' AND confirm_token_hash IS DISTINCT FROM $3`,
    [signatureId, round, tokenHash],
  );
}
