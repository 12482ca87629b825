import { LOCK_OBJECT, type Queryable } from '../db/index.ts';
import type { Disclose } from '../campaigns/letter-template.ts';
import { ADDRESS_CONFIRMED, TARGET_SEEN, TARGET_WRITTEN } from '../campaigns/types.ts';

// Any fixed number, the same in every process: with the campaign id it names one campaign's digest lock.
const DIGEST_LOCK = 7_417_002;

// When today's digest of campaign `c` falls due: its digest_hour, in UTC, on the day of $1.
const DUE_AT = `((date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC') + make_interval(hours => c.digest_hour)) AT TIME ZONE 'UTC')`;
/** Midnight UTC of $1's day: a digest made since was today's, whatever the hour was then. */
const DAY_START = `(date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`;

// A digest campaign is due when its hour has come today, it has had no digest since, and some
// confirmed signer waits for one. A letter carries at most `max` signers (the placeholder passed
// in), so a run with more makes several: a full digest of today does not count as today's while
// signers it left behind (confirmed before it was made) still wait. One who confirms later waits
// for tomorrow, as after any digest. A digest made earlier today counts even when the hour has
// moved since: an official gets one a day. Closed and paused campaigns still owe their signers' letters.
const isDue = (max: string) => `c.delivery_mode = 'digest'
  AND $1::timestamptz >= ${DUE_AT}
  AND NOT EXISTS (SELECT 1 FROM digests d WHERE d.campaign_id = c.id AND d.created_at >= ${DAY_START}
                    AND (d.signatures < ${max}
                         OR NOT EXISTS (SELECT 1 FROM signatures w
                                         WHERE w.campaign_id = c.id AND w.status = 'confirmed' AND w.digest_id IS NULL
                                           AND coalesce(w.confirmed_at, w.created_at) <= d.created_at)))
  AND EXISTS (SELECT 1 FROM signatures s WHERE s.campaign_id = c.id AND s.status = 'confirmed' AND s.digest_id IS NULL)`;

export async function listDueCampaigns(db: Queryable, now: Date, max: number) {
  const { rows } = await db.query<{ id: number }>(`SELECT c.id FROM campaigns c WHERE ${isDue('$2')} ORDER BY c.id`, [now, max]);
  return rows.map((r) => r.id);
}

/**
 * Serialises digest runs of one campaign until the transaction ends, then re-checks that it is
 * still due: a second run that waited here sees the first one's digest and does nothing.
 * The campaign is held (KEY SHARE, as the digests' key check would hold it) before any signer
 * is: a save of the letter holds the campaign, then marks its signers (keepReplacedLetter), and
 * the other order deadlocked, the organizer's save undone.
 */
export async function lockDueCampaign(db: Queryable, campaignId: number, now: Date, max: number) {
  await db.query(`SELECT pg_advisory_xact_lock($1, ${LOCK_OBJECT})`, [DIGEST_LOCK, campaignId]);
  const { rows } = await db.query<{ id: number }>(`SELECT c.id FROM campaigns c WHERE c.id = $2 AND ${isDue('$3')} FOR KEY SHARE OF c`, [now, campaignId, max]);
  return rows.length > 0;
}

/**
 * About how many bytes a signer adds to a digest message: their name, place, note and address (in
 * UTF-8; the address for a target that learns it) go into the text part and the HTML part,
 * quoted-printable, and into the CSV, base64; each line of a note becomes an element of the HTML
 * part, and Unicode's line and paragraph separators (U+2028, U+2029) end a line as a line break
 * does. Measured on 250-signer letters: 2,000-character notes in Kazakh Cyrillic 20 kB a signer, in
 * Chinese 29 kB, of 1,985 line breaks 72 kB. Weighed short, 130 signers of separator notes made a
 * 10 MB letter, past what relays take, and past the sending worker's memory.
 */
const SIGNER_BYTES = `(1000 + 5 * (octet_length(full_name) + octet_length(coalesce(city, '')) + octet_length(coalesce(country, ''))
  + octet_length(coalesce(personal_note, '')) + octet_length(email))
  + 36 * (length(coalesce(personal_note, '')) - length(regexp_replace(coalesce(personal_note, ''), E'[\\n\\u2028\\u2029]', '', 'g'))))`;

/**
 * Makes the day's digest of a campaign: every confirmed signer not yet in one, in signing order,
 * `max` to a part, numbered (part k of n) and claimed in one statement. Claiming part by part in one
 * transaction grew with the square of the backlog (each claim stepped over the rows the earlier
 * ones had claimed, their index entries not cleaned up before the commit).
 * @returns the parts in order, with how many signers each claimed; none when nobody waits.
 */
export async function claimDigestParts(db: Queryable, campaignId: number, now: Date, max: number, maxBytes: number) {
  const { rows } = await db.query<{ id: number; signatures: number }>(
    `WITH waiting AS (
       -- The text each signer confirmed: a letter saved anew while they waited kept theirs. One the
       -- same as the letter now (saved back) is the letter now; old texts alike are one text.
       SELECT s.id, s.letter_version_id AS version, ${SIGNER_BYTES} AS bytes,
              CASE WHEN v.id IS NULL OR (v.letter_subject = c.letter_subject AND v.letter_body = c.letter_body) THEN NULL
                   ELSE md5(v.letter_subject || E'\\x01' || v.letter_body) END AS text_key
         FROM signatures s JOIN campaigns c ON c.id = s.campaign_id LEFT JOIN letter_versions v ON v.id = s.letter_version_id
        WHERE s.campaign_id = $1 AND s.status = 'confirmed' AND s.digest_id IS NULL FOR UPDATE OF s
     ), texts AS (
       SELECT id, bytes, CASE WHEN text_key IS NOT NULL THEN min(version) OVER (PARTITION BY text_key) END AS version FROM waiting
     ), weighed AS (
       -- Signers under one text share letters. Within that, a new part each time the bytes of the
       -- signers before a row pass a multiple of the budget,
       SELECT id, version, ((sum(bytes) OVER (PARTITION BY version ORDER BY id) - bytes) / $4)::bigint AS by_bytes FROM texts
     ), counted AS (
       -- and within those, after as many signers as a letter takes.
       SELECT id, version, by_bytes, (row_number() OVER (PARTITION BY version, by_bytes ORDER BY id) - 1) / $3 AS by_count FROM weighed
     ), numbered AS (
       -- Older texts first; the letter as it reads now (no version) last.
       SELECT id, version, dense_rank() OVER (ORDER BY version NULLS LAST, by_bytes, by_count)::int AS part FROM counted
     ), parts AS (
       SELECT part, min(version) AS version, count(*)::int AS n, (max(part) OVER ())::int AS parts FROM numbered GROUP BY part
     ), made AS (
       INSERT INTO digests (campaign_id, created_at, part, parts, signatures, letter_version_id)
       SELECT $1, $2, part, parts, n, version FROM parts ORDER BY part
       RETURNING id, part, signatures
     ), claimed AS (
       UPDATE signatures s SET digest_id = made.id FROM numbered JOIN made USING (part) WHERE s.id = numbered.id
     )
     SELECT id, signatures FROM made ORDER BY part`,
    [campaignId, now, max, maxBytes],
  );
  return rows;
}

/** One letter per target for each of the digests `digestIds` (a day's parts); source_id is the digest. */
export async function insertDigestDeliveries(db: Queryable, campaignId: number, digestIds: readonly number[]) {
  const { rows } = await db.query<{ id: number; source_id: number }>(
    `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient)
     SELECT 'digest', d.id, t.id, t.campaign_id, t.email
       FROM unnest($2::bigint[]) WITH ORDINALITY AS d (id, ord)
       CROSS JOIN targets t
      WHERE t.campaign_id = $1 AND ${TARGET_WRITTEN}
      ORDER BY d.ord, t.position, t.id
     ON CONFLICT DO NOTHING RETURNING id, source_id`,
    [campaignId, digestIds],
  );
  return rows;
}

export interface DigestParts {
  digest_id: number;
  signatures: number;
  created_at: Date;
  /** Which letter of the day's digest this is, of how many (1 of 1 on most days). */
  part: number;
  parts: number;
  /** How many texts of the letter the day's letters carry (signers are split by the text each signed). */
  texts: number;
  /** When the campaign's previous digest ran; null for its first. */
  since: Date | null;
  campaign_slug: string;
  campaign_title: string;
  letter_subject: string;
  letter_body: string;
  person_name: string;
  location: string;
  /** The case's language, which the letter is written in (its `lang`); empty for the site's own. */
  language: string;
  target_name: string;
  target_title: string;
  salutation: string;
  disclose: Disclose;
}

/**
 * What a digest to target `targetId` would carry for signature `signatureId` if made now: the
 * text that signature is bound to (a letter replaced since it was made), else the campaign's
 * letter as it reads today.
 */
export async function getNextDigestLetter(db: Queryable, targetId: number, signatureId: number) {
  const { rows } = await db.query<Pick<DigestParts, 'campaign_title' | 'letter_subject' | 'letter_body' | 'person_name' | 'location' | 'target_name' | 'target_title' | 'salutation'> & { digest_hour: number; last_digest_at: Date | null }>(
    `SELECT c.title AS campaign_title, coalesce(v.letter_subject, c.letter_subject) AS letter_subject, coalesce(v.letter_body, c.letter_body) AS letter_body,
            c.digest_hour, k.person_name, k.location, t.name AS target_name, t.title AS target_title, t.salutation,
            (SELECT max(d.created_at) FROM digests d WHERE d.campaign_id = c.id) AS last_digest_at
       FROM targets t JOIN campaigns c ON c.id = t.campaign_id JOIN cases k ON k.id = c.case_id
       LEFT JOIN signatures s ON s.id = $2 LEFT JOIN letter_versions v ON v.id = s.letter_version_id
      WHERE t.id = $1`,
    [targetId, signatureId],
  );
  return rows[0];
}

export async function getDigestParts(db: Queryable, digestId: number, targetId: number) {
  const { rows } = await db.query<DigestParts>(
    `WITH seen AS (
       -- The day's parts that carry a signer this target saw: only those are sent to it (the
       -- composer drops a part with none), so they are what it counts, "letter 1 of 1" and not
       -- "letter 2 of 2" with a first that never comes to a target added during the day.
       SELECT p.part, p.letter_version_id FROM digests d0 JOIN digests p ON p.campaign_id = d0.campaign_id AND p.created_at = d0.created_at
        WHERE d0.id = $1 AND EXISTS (SELECT 1 FROM signatures s JOIN targets t ON t.id = $2 WHERE s.digest_id = p.id AND ${TARGET_SEEN})
     )
     SELECT d.id AS digest_id, d.signatures, d.created_at,
            greatest((SELECT count(*) FROM seen WHERE seen.part <= d.part), 1)::int AS part,
            greatest((SELECT count(*) FROM seen), 1)::int AS parts,
            -- How many texts of the letter they carry: the day's signers are split by the text each signed.
            greatest((SELECT count(DISTINCT coalesce(seen.letter_version_id, 0)) FROM seen), 1)::int AS texts,
            -- The last digest of an earlier day that reached this target: one made before it was
            -- added, or refused by its server, is not "our letter" to it, and a day's other parts
            -- are not earlier.
            (SELECT max(p.created_at) FROM digests p
              WHERE p.campaign_id = d.campaign_id AND p.created_at < d.created_at
                AND EXISTS (SELECT 1 FROM deliveries x WHERE x.kind = 'digest' AND x.source_id = p.id AND x.target_id = t.id AND x.status = 'sent')) AS since,
            c.slug AS campaign_slug, c.title AS campaign_title,
            -- The text its signers confirmed, when the letter was saved anew while they waited.
            coalesce(v.letter_subject, c.letter_subject) AS letter_subject, coalesce(v.letter_body, c.letter_body) AS letter_body,
            k.person_name, k.location, k.language,
            t.name AS target_name, t.title AS target_title, t.salutation, t.disclose
       FROM digests d
       JOIN campaigns c ON c.id = d.campaign_id
       LEFT JOIN letter_versions v ON v.id = d.letter_version_id
       JOIN cases k ON k.id = c.case_id
       JOIN targets t ON t.id = $2 AND t.campaign_id = d.campaign_id AND ${TARGET_WRITTEN}
      WHERE d.id = $1`,
    [digestId, targetId],
  );
  return rows[0];
}

export interface DigestSigner {
  id: number;
  full_name: string;
  email: string;
  city: string;
  country: string;
  personal_note: string;
}

/**
 * One keyset page of a digest's signers for one target, in signing order: those who signed before
 * the target was added did not write to it.
 */
export async function listDigestSigners(db: Queryable, digestId: number, targetId: number, afterId: number, limit: number) {
  const { rows } = await db.query<DigestSigner>(
    `SELECT s.id, s.full_name, CASE WHEN ${ADDRESS_CONFIRMED} THEN s.email ELSE '' END AS email, s.city, s.country, s.personal_note
       FROM signatures s JOIN targets t ON t.id = $2
      WHERE s.digest_id = $1 AND s.id > $3 AND ${TARGET_SEEN} ORDER BY s.id LIMIT $4`,
    [digestId, targetId, afterId, limit],
  );
  return rows;
}
