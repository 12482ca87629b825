// Naming the letter a sign page showed, so that a signature is bound to the text its signer read.
import crypto from 'node:crypto';

/**
 * Names a letter's text: the sign page carries the one it showed, so a signature made while an
 * organizer saved a new letter is bound to the text its signer read (bindSeenLetter).
 */
export const letterFingerprint = (subject: string, body: string) =>
  crypto.createHash('sha256').update(subject).update('\u0000').update(body).digest('base64url').slice(0, 22);

/** SQL: letterFingerprint of the letter in row `row` (a campaign or a letter version). */
export const letterFingerprintSql = (row: string) =>
  `left(translate(encode(sha256(convert_to(${row}.letter_subject, 'UTF8') || '\\x00'::bytea || convert_to(${row}.letter_body, 'UTF8')), 'base64'), '+/', '-_'), 22)`;

/**
 * How long a sign page's letter is honoured after an organizer replaced it: time enough to read
 * the page and write a note, not for a saved page (or its hidden field, replayed) to go on
 * sending a text the organizer withdrew. An older one is refused (LetterChangedError).
 */
export const SEEN_LETTER_KEPT = '1 hour';
