// The statements that store signatures as they arrive, batched (see intake in intake-batch.ts):
// the campaign read for signing, ids reserved up front, and the one statement that stores them.
import type { Queryable } from '../db/index.ts';
import { TARGET_WRITTEN, targetsFingerprintOf, type Campaign } from '../campaigns/types.ts';
import { letterFingerprintSql, SEEN_LETTER_KEPT } from '../campaigns/letter-template.ts';
import type { SignatureInput, SignedVia } from './types.ts';

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
