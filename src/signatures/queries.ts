import type { Queryable } from '../db/index.ts';
import { ADDRESS_CONFIRMED, TARGET_SEEN, TARGET_WRITTEN, targetsFingerprintOf, type Campaign } from '../campaigns/types.ts';
import { letterFingerprintSql, SEEN_LETTER_KEPT, type Disclose } from '../campaigns/letter-template.ts';
import type { Signature, SignatureInput, SignedVia } from './types.ts';

export type CampaignForSigning = Pick<Campaign, 'id' | 'slug' | 'title' | 'status' | 'discarded' | 'case_id' | 'require_confirmation' | 'delivery_mode' | 'revision'>;

/**
 * The campaigns signatures are for, by slug, with only what signing reads (pg parses every column
 * of every row, and each signature of a batch gets its own). `ord` is the slug's 1-based
 * position; an unknown slug has no row.
 */
export async function getCampaignsForSigning(db: Queryable, slugs: readonly string[]) {
  const { rows } = await db.query<CampaignForSigning & { ord: number }>(
    `SELECT x.ord, c.id, c.slug, c.title, c.status, c.discarded, c.case_id, c.require_confirmation, c.delivery_mode, c.revision
       FROM unnest($1::text[]) WITH ORDINALITY AS x (slug, ord)
       JOIN campaigns c ON c.slug = x.slug`,
    [slugs],
  );
  return rows;
}

/**
 * Takes `n` signature ids from the table's sequence. A signature's confirmation token is derived
 * from its id, so knowing the id first lets one statement store the signature with its token
 * hash; an id taken and never used is a harmless gap.
 */
export async function reserveSignatureIds(db: Queryable, n: number) {
  const { rows } = await db.query<{ id: number }>(
    `SELECT nextval(pg_get_serial_sequence('signatures', 'id')) AS id FROM generate_series(1, $1)`,
    [n],
  );
  return rows.map((r) => r.id);
}

export interface NewSignature {
  id: number;
  campaignSlug: string;
  input: SignatureInput;
  /** The hash of its confirmation token; kept only when the campaign asks for confirmation. */
  confirmTokenHash: string;
  via: SignedVia;
  /** targetsFingerprint of the targets the sign page listed; none from the API. */
  seenTargets?: string;
  /** The campaign's revision and the letterFingerprint of the letter the sign page showed; none from the API. */
  seenLetter?: { revision: number | null; letter: string };
}

export interface StoredSignature {
  /** The campaign named, whatever its status; undefined for an unknown slug. */
  campaign: CampaignForSigning | undefined;
  /** False when the campaign is not live, or the address signed it before. */
  signed: boolean;
  /** The status of the signature the address made before (`signed` false on a live campaign). */
  earlier?: 'pending' | 'confirmed';
  deliveryIds: number[];
  /** Not stored: the campaign sends without confirmation, and its targets are not the ones the page listed. */
  targetsChanged: boolean;
  /** Not stored: the page showed a letter that is neither the campaign's nor one replaced moments ago (SEEN_LETTER_KEPT). */
  letterChanged: boolean;
}

/**
 * Stores signatures and what they send in one statement, each on the campaign its slug names and
 * only while that campaign is live, so a signature commits with its deliveries without a
 * transaction's extra round trips, and the campaign is read in the same statement: a pending
 * signature (the campaign asks for confirmation) gets its confirmation email, a confirmed one
 * its letters when the campaign sends one per signature (not a digest later). The unique
 * (campaign, lower(email)) index makes a second signature by the same address send nothing; its
 * row is written anyway (an update that changes no value), so that the statement commits a write
 * whether or not the address had signed: a repeat that wrote nothing answered measurably sooner,
 * and the time of the answer told whether an address had signed. The same address twice in one
 * batch fails the statement (an upsert may not touch a row twice), and each is stored alone.
 * Rows go in in index order, so two such statements cannot deadlock on each other.
 * @returns per signature, in order: its campaign, whether it was stored, and its deliveries' ids.
 */
export async function insertSignatures(db: Queryable, sigs: readonly NewSignature[]): Promise<StoredSignature[]> {
  const column = <T>(pick: (s: NewSignature) => T) => sigs.map(pick);
  const { rows } = await db.query<CampaignForSigning & { sig_id: number; signed: boolean; earlier: StoredSignature['earlier'] | null; targets_changed: boolean; letter_changed: boolean; delivery_ids: (string | number)[] }>(
    `WITH v AS (
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                            $8::boolean[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[])
         AS v (id, slug, full_name, email, city, country, personal_note, subscribe, confirm_token_hash, via, seen_targets,
               seen_revision, seen_letter)
     ), held AS (
       -- Where letters go at once, the campaign is held before its targets are read, and they are
       -- read with a lock: a locking read returns a row as committed, not as this statement's
       -- snapshot has it. A disclosure widened (or a target retired) by a change that held the
       -- campaign while this statement waited for it is seen, and the page checked against it: the
       -- change found no signature (this one was not committed) and let the target learn more.
       -- The campaign first: a change holds it before it writes a target, so neither waits on the other's lock.
       -- One that asks for confirmation as committed is not held: its signature is stored as its
       -- page said (this statement's snapshot), where the letters go at once.
       SELECT c.id FROM campaigns c
        WHERE c.slug IN (SELECT slug FROM v WHERE seen_targets IS NOT NULL) AND NOT c.require_confirmation
          FOR KEY SHARE
     ), listed AS (
       SELECT t.id, t.campaign_id, t.disclose, t.name, t.title FROM held JOIN targets t ON t.campaign_id = held.id
        WHERE ${TARGET_WRITTEN}
          FOR SHARE OF t
     ), page AS (
       -- What the sign page showed, against the campaign as it is; a signature refused for it is not stored.
       -- targets: the page listed other targets, where the letters would go at once.
       -- letter: its letter is not the campaign's, nor one replaced moments ago; hashed only for a
       -- page of another revision (a CASE keeps that order).
       SELECT v.id,
              v.seen_targets IS NOT NULL AND NOT c.require_confirmation AND c.id IN (SELECT id FROM held)
                AND v.seen_targets <> ${targetsFingerprintOf('listed')} AS targets_changed,
              CASE WHEN v.seen_letter IS NULL OR v.seen_revision IS NOT DISTINCT FROM c.revision THEN false
                   ELSE v.seen_letter <> ${letterFingerprintSql('c')}
                        AND NOT EXISTS (SELECT 1 FROM letter_versions lv
                                         WHERE lv.campaign_id = c.id AND lv.replaced_at > now() - $14::interval
                                           AND ${letterFingerprintSql('lv')} = v.seen_letter) END AS letter_changed
         FROM v JOIN campaigns c ON c.slug = v.slug
     ), refused AS (
       SELECT id FROM page WHERE targets_changed OR letter_changed
     ), sig AS (
       INSERT INTO signatures (id, campaign_id, full_name, email, city, country, personal_note, subscribe, via, status,
                               confirm_token_hash, confirmed_at, last_request)
       OVERRIDING SYSTEM VALUE
       SELECT v.id, c.id, v.full_name, v.email, v.city, v.country, v.personal_note, v.subscribe, v.via,
              CASE WHEN c.require_confirmation THEN 'pending' ELSE 'confirmed' END,
              CASE WHEN c.require_confirmation THEN v.confirm_token_hash END,
              CASE WHEN NOT c.require_confirmation THEN now() END,
              CASE WHEN c.require_confirmation THEN v.id END
         FROM v JOIN campaigns c ON c.slug = v.slug AND c.status = 'live'
        WHERE v.id NOT IN (SELECT id FROM refused)
        ORDER BY c.id, lower(v.email), v.id
       -- A pending row records this request as its newest: its details are applied after the answer,
       -- and of two requests moments apart only this one's may stay (signAgain).
       ON CONFLICT (campaign_id, lower(email)) DO UPDATE
         SET status = signatures.status,
             last_request = CASE WHEN signatures.status = 'pending' THEN EXCLUDED.id ELSE signatures.last_request END
       -- A row stored now has an id of this batch's (reserved up front); one that was there keeps its own.
       RETURNING id, campaign_id, email, status, id = ANY ($1::bigint[]) AS inserted
     ), confirm AS (
       INSERT INTO deliveries (kind, source_id, campaign_id, recipient)
       SELECT 'confirm', id, campaign_id, email FROM sig WHERE inserted AND status = 'pending' ORDER BY id
       ON CONFLICT DO NOTHING RETURNING id, source_id
     ), saved AS (
       -- The campaign's revision and delivery mode as committed, not as this statement's snapshot
       -- has them: a save that held the row while the signature waited for it (its key check) has
       -- committed since, and a locking read returns the row it wrote (see bindSeenLetter). The key
       -- check locks so anyway. A switch to a digest that committed meanwhile saw no signature
       -- (this one was not committed): the letters go in the digest, not one by one as well.
       SELECT c.id, c.revision, c.delivery_mode FROM campaigns c WHERE c.id IN (SELECT campaign_id FROM sig) FOR KEY SHARE
     ), written AS (
       -- The targets a signature sending at once writes to, as committed, for the same reason: an
       -- address corrected while the signature waited is the one its letters go to (the correction
       -- moved the unsent letters it could see, and these it could not). Read with a lock only
       -- where a confirmed signature was stored, so signatures that wait for confirmation lock none.
       SELECT t.id, t.campaign_id, t.email, t.position FROM targets t JOIN saved ON saved.id = t.campaign_id
        WHERE ${TARGET_WRITTEN} AND EXISTS (SELECT 1 FROM sig WHERE sig.campaign_id = t.campaign_id AND sig.inserted AND sig.status = 'confirmed')
          FOR SHARE OF t
     ), letters AS (
       INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient)
       SELECT 'letter', sig.id, t.id, t.campaign_id, t.email
         FROM sig JOIN saved ON saved.id = sig.campaign_id AND saved.delivery_mode = 'each'
              JOIN written t ON t.campaign_id = sig.campaign_id
        WHERE sig.inserted AND sig.status = 'confirmed'
        ORDER BY sig.id, t.position, t.id
       ON CONFLICT DO NOTHING RETURNING id, source_id
     ), sent AS (
       SELECT id, source_id FROM confirm UNION ALL SELECT id, source_id FROM letters
     )
     SELECT v.id AS sig_id, c.id, c.slug, c.title, c.status, c.discarded, c.case_id, c.require_confirmation,
            coalesce(saved.delivery_mode, c.delivery_mode) AS delivery_mode,
            coalesce(saved.revision, c.revision) AS revision,
            coalesce(sig.inserted, false) AS signed, CASE WHEN NOT sig.inserted THEN sig.status END AS earlier,
            coalesce(page.targets_changed, false) AS targets_changed, coalesce(page.letter_changed, false) AS letter_changed,
            ARRAY (SELECT sent.id FROM sent WHERE sent.source_id = v.id ORDER BY sent.id) AS delivery_ids
       FROM v LEFT JOIN campaigns c ON c.slug = v.slug
            LEFT JOIN sig ON sig.campaign_id = c.id AND lower(sig.email) = lower(v.email)
            LEFT JOIN saved ON saved.id = c.id
            LEFT JOIN page ON page.id = v.id`,
    [
      column((s) => s.id), column((s) => s.campaignSlug), column((s) => s.input.fullName), column((s) => s.input.email),
      column((s) => s.input.city), column((s) => s.input.country), column((s) => s.input.personalNote),
      column((s) => s.input.subscribe), column((s) => s.confirmTokenHash), column((s) => s.via), column((s) => s.seenTargets ?? null),
      column((s) => s.seenLetter?.revision ?? null), column((s) => s.seenLetter?.letter ?? null), SEEN_LETTER_KEPT,
    ],
  );
  const byId = new Map(rows.map((r) => [r.sig_id, r]));
  return sigs.map((s) => {
    const r = byId.get(s.id)!;
    const campaign: CampaignForSigning | undefined = r.id === null ? undefined : {
      id: r.id, slug: r.slug, title: r.title, status: r.status, discarded: r.discarded, case_id: r.case_id,
      require_confirmation: r.require_confirmation, delivery_mode: r.delivery_mode, revision: r.revision,
    };
    // pg parses int8 as a number (src/db), but an int8[] still comes back as strings.
    return { campaign, signed: r.signed, ...(r.earlier ? { earlier: r.earlier } : {}), deliveryIds: r.delivery_ids.map(Number), targetsChanged: r.targets_changed, letterChanged: r.letter_changed };
  });
}

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
  const { rows } = await db.query<{ status: string; revision: number }>('SELECT status, revision FROM campaigns WHERE id = $1 FOR SHARE', [campaignId]);
  return rows[0]!;
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

/** Who a signature's letters go to (see insertLetterDeliveries), for the confirmation page. */
export async function listSignatureTargets(db: Queryable, signatureId: number) {
  const { rows } = await db.query<{ id: number; name: string; title: string; disclose: Disclose }>(
    `SELECT t.id, t.name, t.title, t.disclose FROM signatures s JOIN targets t ON t.campaign_id = s.campaign_id AND ${TARGET_SEEN} AND ${TARGET_WRITTEN}
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

export interface LetterParts {
  full_name: string;
  email: string;
  /** Whether the signer confirmed the address by email; signed without confirmation, it is only what was typed. */
  email_confirmed: boolean;
  city: string;
  country: string;
  personal_note: string;
  sig_status: string;
  confirmed_at: Date | null;
  created_at: Date;
  target_name: string;
  target_title: string;
  target_email: string;
  salutation: string;
  disclose: 'name' | 'name_place' | 'full';
  campaign_title: string;
  campaign_slug: string;
  letter_subject: string;
  letter_body: string;
  person_name: string;
  location: string;
}

/**
 * The parts of many letters in one statement, one row per (signature, target) pair that exists;
 * `ord` is the pair's 1-based position in the arguments.
 */
export async function getLetterPartsBatch(db: Queryable, pairs: readonly { signatureId: number; targetId: number }[]) {
  const { rows } = await db.query<LetterParts & { ord: number }>(
    `SELECT x.ord, s.full_name, s.email, ${ADDRESS_CONFIRMED} AS email_confirmed, s.city, s.country, s.personal_note, s.status AS sig_status, s.confirmed_at, s.created_at,
            t.name AS target_name, t.title AS target_title, t.email AS target_email, t.salutation, t.disclose,
            c.title AS campaign_title, c.slug AS campaign_slug,
            coalesce(v.letter_subject, c.letter_subject) AS letter_subject, coalesce(v.letter_body, c.letter_body) AS letter_body,
            k.person_name, k.location
       FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS x (signature_id, target_id, ord)
       JOIN signatures s ON s.id = x.signature_id
       -- A retired target's letter is not composed (a retry, or one made as it retired): it is dropped.
       JOIN targets t ON t.id = x.target_id AND t.campaign_id = s.campaign_id AND ${TARGET_WRITTEN}
       JOIN campaigns c ON c.id = s.campaign_id
       JOIN cases k ON k.id = c.case_id
       LEFT JOIN letter_versions v ON v.id = s.letter_version_id`,
    [pairs.map((p) => p.signatureId), pairs.map((p) => p.targetId)],
  );
  return rows;
}

export async function getConfirmParts(db: Queryable, signatureId: number) {
  const { rows } = await db.query<{ id: number; full_name: string; email: string; status: string; confirm_round: number; campaign_title: string; campaign_slug: string; campaign_status: string; delivery_mode: string; person_name: string; alerts_ask: boolean }>(
    `SELECT s.id, s.full_name, s.email, s.status, s.confirm_round, c.delivery_mode, c.title AS campaign_title, c.slug AS campaign_slug, c.status AS campaign_status, k.person_name,
            -- An address that left the alerts (or bounced) is asked by email before it gets them again.
            EXISTS (SELECT 1 FROM subscribers sub WHERE lower(sub.email) = lower(s.email) AND sub.status IN ('unsubscribed', 'bounced')) AS alerts_ask
       FROM signatures s JOIN campaigns c ON c.id = s.campaign_id JOIN cases k ON k.id = c.case_id
      WHERE s.id = $1`,
    [signatureId],
  );
  return rows[0];
}

/** One keyset page of a campaign's signatures, oldest first. */
/**
 * Whether signature `s`'s signer, who ticked `subscribe`, follows its campaign's case now: a
 * subscriber still, of the case or of every case. One who left, or whose address bounced, does not;
 * what they ticked once is no list to write to.
 */
export const FOLLOWS_CASE_NOW = `(s.subscribe AND EXISTS (
  SELECT 1 FROM subscribers sub JOIN subscriptions ss ON ss.subscriber_id = sub.id
   WHERE lower(sub.email) = lower(s.email) AND sub.status = 'active' AND ss.status = 'active'
     AND (ss.case_id IS NULL OR ss.case_id = (SELECT case_id FROM campaigns WHERE id = s.campaign_id))))`;

/** A page of a campaign's signatures, oldest first, after `afterId`; `follows`: FOLLOWS_CASE_NOW. */
export async function listSignaturesPage(db: Queryable, campaignId: number, afterId: number, limit: number) {
  const { rows } = await db.query<Signature & { follows: boolean }>(
    `SELECT s.*, ${FOLLOWS_CASE_NOW} AS follows FROM signatures s WHERE s.campaign_id = $1 AND s.id > $2 ORDER BY s.id LIMIT $3`,
    [campaignId, afterId, limit],
  );
  return rows;
}

/**
 * The campaign's letters, the one it has now (id null) and the ones it replaced, for matching the
 * text a sign page showed (one replaced too long ago is refused when the signature is stored).
 */
export async function listLetterTexts(db: Queryable, campaignId: number) {
  const { rows } = await db.query<{ id: number | null; letter_subject: string; letter_body: string }>(
    `SELECT NULL::bigint AS id, letter_subject, letter_body FROM campaigns WHERE id = $1
     UNION ALL
     SELECT id, letter_subject, letter_body FROM letter_versions WHERE campaign_id = $1`,
    [campaignId],
  );
  return rows;
}

/** Binds a signature to a letter it replaced: its letters carry that text, whatever comes after. */
export async function setLetterVersion(db: Queryable, signatureId: number, letterVersionId: number) {
  await db.query('UPDATE signatures SET letter_version_id = $2 WHERE id = $1', [signatureId, letterVersionId]);
}

/** A keyset page of signatures whose confirmation link is kept (its hash), with the round of their latest link. */
export async function listConfirmLinks(db: Queryable, afterId: number, limit: number) {
  const { rows } = await db.query<{ id: number; confirm_round: number }>(
    'SELECT id, confirm_round FROM signatures WHERE id > $1 AND confirm_token_hash IS NOT NULL ORDER BY id LIMIT $2',
    [afterId, limit],
  );
  return rows;
}

/** Replaces the kept hashes of confirmation links (a new secret derives other links). */
export async function setConfirmTokenHashes(db: Queryable, ids: readonly number[], hashes: readonly string[]) {
  await db.query(
    `UPDATE signatures s SET confirm_token_hash = v.hash FROM unnest($1::bigint[], $2::text[]) AS v (id, hash)
      WHERE s.id = v.id AND s.confirm_token_hash IS NOT NULL`,
    [ids, hashes],
  );
}
