import { stringify } from 'csv-stringify/sync';
import type { Config } from '../config.ts';
import { hiddenFor, renderLetter, type LetterContext } from '../campaigns/letter-template.ts';
import type { Queryable } from '../db/index.ts';
import type { Composer } from '../deliveries/types.ts';
import { bodyLine, displayName, letterSender, oneLine } from '../mail/address.ts';
import { hasRightToLeft } from '../mail/bidi.ts';
import { formatLetterDate } from '../signatures/emails.ts';
import type { Views } from '../views.ts';
import { CSV_FORMAT, neutralize } from '../csv.ts';
import * as q from './queries.ts';
import { nextDigestAt } from './service.ts';

export interface DigestEmailDeps {
  config: Pick<Config, 'orgName' | 'mailFrom'>;
  views: Views;
}

const SIGNER_PAGE = 1_000;

interface ShownSigner {
  name: string;
  city: string;
  country: string;
  note: string;
  email: string;
}

/**
 * What a target may see of each signer, by its `disclose`: `name` hides the place, only `full`
 * shows the email. The digest's list and its CSV's columns (a name-only official's file has no
 * empty place columns, which read as signers who left their place blank).
 */
const SHOWN: Record<q.DigestParts['disclose'], readonly (keyof ShownSigner)[]> = {
  name: ['name', 'note'],
  name_place: ['name', 'city', 'country', 'note'],
  full: ['name', 'city', 'country', 'note', 'email'],
};

/** The signers of a digest as the target may see them (SHOWN); what it may not is empty. */
async function loadSigners(db: Queryable, digestId: number, targetId: number, disclose: q.DigestParts['disclose']): Promise<ShownSigner[]> {
  const seen = new Set(SHOWN[disclose]);
  const shown: ShownSigner[] = [];
  for (let afterId = 0; ; ) {
    const page = await q.listDigestSigners(db, digestId, targetId, afterId, SIGNER_PAGE);
    if (page.length === 0) return shown;
    for (const s of page) {
      shown.push({
        name: bodyLine(s.full_name),
        city: seen.has('city') ? bodyLine(s.city) : '',
        country: seen.has('country') ? bodyLine(s.country) : '',
        note: s.personal_note.trim(),
        email: seen.has('email') ? s.email : '',
      });
    }
    afterId = page[page.length - 1]!.id;
  }
}

function signersCsv(signers: ShownSigner[], disclose: q.DigestParts['disclose']): string {
  const columns = [...SHOWN[disclose]];
  const rows = signers.map((s) => columns.map((c) => neutralize(s[c])));
  return stringify(rows, { ...CSV_FORMAT, columns });
}

/** A date no template can hold, to see where `{{date}}` lands (a private-use character). */
const DATE_MARK = '\uE004';

/** Who signed a digest, as its From and subject say it. */
export const supportersText = (n: number) => (n === 1 ? '1 supporter' : `${n} supporters`);

/** Which letter of a day's digest sent in parts this is (see createDigest). */
export interface DigestPart {
  part: number;
  parts: number;
}

/**
 * The letter a digest carries: the campaign's template with the supporter variables empty (many
 * people sign it; their list follows the letter), the blank lines they leave dropped, and who
 * signed and when in the subject (the date only when the template's subject does not carry it
 * already), and which part it is on a day sent in parts. The console's preview of a digest
 * campaign shows the same.
 */
export function renderDigestLetter(subject: string, body: string, context: Omit<LetterContext, 'supporter'>, signers: number, part?: DigestPart) {
  const full = { ...context, supporter: { fullName: '', city: '', country: '', personalNote: '' } };
  const letter = renderLetter(subject, body, full, hiddenFor('digest', 'name'));
  // Whether the template puts today's date in the subject, not whether those words appear in it:
  // a subject about a hearing on 21 June would otherwise lose the date of the digest of 1 June.
  const dated = renderLetter(subject, '', { ...full, date: DATE_MARK }, hiddenFor('digest', 'name')).subject.includes(DATE_MARK);
  const when = dated ? '' : `, ${context.date}`;
  const which = part && part.parts > 1 ? `, letter ${part.part} of ${part.parts}` : '';
  // After a right-to-left subject, a reader that sets the line's direction from its first letter
  // parts the count from its word: "(supporters, 7 December 2026 3)". A LEFT-TO-RIGHT MARK before
  // the count keeps Appeal's words one run; a header holds no isolate (subjectLine).
  const keep = hasRightToLeft(letter.subject) ? '\u200e' : '';
  return {
    subject: oneLine(`${letter.subject} (${keep}${supportersText(signers)}${when}${which})`),
    text: letter.text.replace(/[ \t]+$/gm, '').replace(/\n{3,}/g, '\n\n'),
  };
}

/**
 * The letter of the digest to `targetId` that signature `signatureId`, confirmed today, goes in,
 * for the confirmation page: the text its signer saw (the campaign's letter as it reads now, or
 * the one it replaced since they signed, which their digest letter carries: see claimDigestParts),
 * signed by the day's signers listed below it.
 */
export async function nextDigestLetter(db: Queryable, targetId: number, signatureId: number, now = new Date()) {
  const p = await q.getNextDigestLetter(db, targetId, signatureId);
  if (!p) return undefined;
  // Dated the day it goes.
  const goes = nextDigestAt(p.digest_hour, p.last_digest_at, now).at;
  return {
    ...renderDigestLetter(p.letter_subject, p.letter_body, {
      target: { name: p.target_name, title: p.target_title, salutation: p.salutation },
      case: { personName: p.person_name, location: p.location },
      campaign: { title: p.campaign_title },
      date: formatLetterDate(goes),
    }, 1),
    targetName: p.target_name,
  };
}

/**
 * A digest letter: the campaign's letter to one target, signed by every supporter the digest
 * claimed, listed in the body and in a CSV attachment. What the target learns of each supporter
 * follows its `disclose`, as for single letters.
 */
export function createDigestComposer({ config, views }: DigestEmailDeps): Composer {
  return async (db, delivery) => {
    if (delivery.target_id === null) return null;
    const p = await q.getDigestParts(db, delivery.source_id, delivery.target_id);
    if (!p) return null;
    const signers = await loadSigners(db, p.digest_id, delivery.target_id, p.disclose);
    if (signers.length === 0) return null;
    const letter = renderDigestLetter(p.letter_subject, p.letter_body, {
      target: { name: p.target_name, title: p.target_title, salutation: p.salutation },
      case: { personName: p.person_name, location: p.location },
      campaign: { title: p.campaign_title },
      date: formatLetterDate(p.created_at),
    }, signers.length, p);
    const people = supportersText(signers.length);
    const inParts = p.parts > 1;
    const data = {
      part: inParts ? { part: p.part, parts: p.parts, texts: p.texts > 1 } : null,
      orgName: config.orgName,
      letter: letter.text,
      language: p.language,
      signedBy: signers.length === 1 ? 'the supporter below' : `the ${people} below`,
      since: p.since ? formatLetterDate(p.since) : null,
      // A note keeps its lines, each marked as the note's: a line of its own that read
      // "- Some Name, Astana" would otherwise pass for one more signer in the list. The line and
      // paragraph separators a form lets through (U+2028, U+2029) end a line in a reader too.
      signers: signers.map((s) => ({ ...s, place: [s.city, s.country].filter(Boolean).join(', '), noteLines: s.note ? s.note.split(/\n|\u2028|\u2029/).map((l) => l.trimEnd()) : [] })),
    };
    return {
      from: letterSender(people, config),
      to: { name: displayName(p.target_name), address: delivery.recipient },
      subject: letter.subject,
      ...views.email('digest', data),
      attachments: [
        {
          filename: `${p.campaign_slug}-signers-${p.created_at.toISOString().slice(0, 10)}${inParts ? `-part-${p.part}-of-${p.parts}` : ''}.csv`,
          content: signersCsv(signers, p.disclose),
          contentType: 'text/csv; charset=utf-8',
        },
      ],
    };
  };
}
