import type { Config } from '../config.ts';
import { discloseTo, hiddenFor, renderLetter } from '../campaigns/letter-template.ts';
import { batchedRead, perDb } from '../deliveries/coalesce.ts';
import type { Composer } from '../deliveries/types.ts';
import type { Queryable } from '../db/index.ts';
import { UnsendableMessage } from '../mail/transport.ts';
import { AUTOMATIC, displayName, letterSender, oneLine, orgSender, stableMessageId } from '../mail/address.ts';
import { letterBodyHtml, type Views } from '../views.ts';
import * as q from './queries.ts';
import { confirmToken } from './service.ts';
import { hashToken } from '../tokens.ts';
import { keptFor } from '../retention/service.ts';

export interface EmailDeps {
  config: Pick<Config, 'orgName' | 'mailFrom' | 'publicUrl' | 'retentionUnconfirmedDays'>;
  views: Views;
  secret: string;
}

// Built once: constructing an Intl.DateTimeFormat costs most of a millisecond, more than the
// rest of composing a letter (measured by `npm run bench`, worker overhead).
const LETTER_DATE = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });

const DAY_MS = 86_400_000;
// Formatting is still ~15 µs a letter, and the letters sent together were mostly signed the same
// day: the last few days formatted are kept.
const letterDates = new Map<number, string>();

export function formatLetterDate(d: Date): string {
  const day = Math.floor(d.getTime() / DAY_MS);
  let text = letterDates.get(day);
  if (text === undefined) {
    text = LETTER_DATE.format(d);
    if (letterDates.size >= 16) letterDates.clear();
    letterDates.set(day, text);
  }
  return text;
}

/**
 * The letter's HTML part: the same text in paragraphs of lines (letterBodyHtml), as the page's
 * preview shows it, marked with its case's language (a tag of letters, digits and hyphens). A word
 * longer than the screen (a pasted link, a name with no spaces) wraps, as in our other emails.
 */
export function letterHtml(text: string, language = ''): string {
  const lang = /^[A-Za-z0-9-]+$/.test(language) ? ` lang="${language}"` : '';
  return `<!doctype html><html${lang}><body style="font-family: Georgia, serif; line-height: 1.5; max-width: 40em; overflow-wrap: anywhere; word-wrap: break-word">\n${letterBodyHtml(text)}\n</body></html>\n`;
}

/** Letters composed at once share one read (`npm run bench`, delivery throughput). */
const letterParts = perDb((db: Queryable) => batchedRead((pairs: { signatureId: number; targetId: number }[]) => q.getLetterPartsBatch(db, pairs)));

/**
 * Letters go From "<Full Name> via ORG_NAME" <MAIL_FROM address>, never from the supporter's own
 * address (their domain's DMARC would reject it). What the target learns follows `disclose`.
 */
export function createLetterComposer({ config }: EmailDeps): Composer {
  return async (db, delivery) => {
    if (delivery.target_id === null) return null;
    const p = await letterParts(db)({ signatureId: delivery.source_id, targetId: delivery.target_id });
    if (!p || p.sig_status !== 'confirmed') return null;
    const { subject, text } = letterFrom(p, p.confirmed_at ?? p.created_at);
    if (text.length > LETTER_TEXT_MAX) throw new LetterTooLargeError(text.length);
    return {
      from: letterSender(p.full_name, config),
      to: { name: displayName(p.target_name), address: delivery.recipient },
      // Only an address its owner confirmed: with confirmation off, anyone can type anyone's, and
      // the official's answer would go to a stranger who never signed.
      replyTo: p.disclose === 'full' && p.email_confirmed ? { name: displayName(p.full_name), address: p.email } : undefined,
      subject,
      text,
      html: letterHtml(text, p.language),
    };
  };
}

/**
 * The longest letter text sent, in characters: past any template saved now (20,000 characters,
 * each supporter field written at most MAX_WRITES times), where a template saved before that
 * limit could write a note hundreds of times. Its HTML part, a few times larger, took a worker
 * past its heap, and again on every restart.
 */
const LETTER_TEXT_MAX = 100_000;

/** A letter too large to send (LETTER_TEXT_MAX): it fails for good, as a message a relay refuses does. */
class LetterTooLargeError extends UnsendableMessage {
  constructor(length: number) {
    super(`the letter is ${length} characters long, over the ${LETTER_TEXT_MAX} a letter may have: its template writes a supporter's note too many times (edit the letter)`);
  }
}

/** A signature's letter to one target, as the target reads it. */
function letterFrom(p: q.LetterParts, date: Date) {
  const supporter = discloseTo(p.disclose, { fullName: p.full_name, city: p.city, country: p.country, personalNote: p.personal_note });
  return renderLetter(p.letter_subject, p.letter_body, {
    supporter,
    target: { name: p.target_name, title: p.target_title, salutation: p.salutation },
    case: { personName: p.person_name, location: p.location },
    campaign: { title: p.campaign_title },
    date: formatLetterDate(date),
  }, hiddenFor('each', p.disclose));
}

/**
 * The letter a signature waiting for confirmation sends to `targetId`, as it will read if confirmed
 * today, for the confirmation page: who signed through a partner's page (the API) may never have
 * seen it, and the campaign's page shows the campaign's letter now, not the one the signature keeps.
 * (A digest campaign's is nextDigestLetter.)
 */
export async function letterToConfirm(db: Queryable, signatureId: number, targetId: number) {
  const p = await letterParts(db)({ signatureId, targetId });
  return p && { ...letterFrom(p, new Date()), targetName: p.target_name };
}

export function createConfirmComposer({ config, views, secret }: EmailDeps): Composer {
  return async (db, delivery) => {
    const p = await q.getConfirmParts(db, delivery.source_id);
    // Closed while the email waited: its link could only say that no letter will be sent.
    if (!p || p.status !== 'pending' || p.campaign_status === 'closed') return null;
    const token = confirmToken(secret, p.id, p.confirm_round);
    // A later email's link works from now on, and the earlier ones stop (the first's is stored with the signature).
    if (p.confirm_round > 0) await q.useConfirmRound(db, p.id, p.confirm_round, hashToken(token));
    // No typed name: anyone can put any address in the form, and the name would be their words
    // mailed from the organisation's domain to a stranger.
    const body = views.email('confirm', {
      orgName: config.orgName,
      campaignTitle: p.campaign_title,
      personName: p.person_name,
      confirmUrl: `${config.publicUrl}/confirm/${token}`,
      campaignUrl: `${config.publicUrl}/c/${p.campaign_slug}`,
      keptFor: keptFor(config.retentionUnconfirmedDays),
    });
    return {
      // A new email for each round (signing again sends one): a copy of the first one's id would be
      // taken for the same message and dropped by some mailboxes.
      messageId: stableMessageId(secret, `confirm-${p.confirm_round}`, delivery, config.mailFrom.address),
      from: orgSender(config),
      to: delivery.recipient,
      subject: oneLine(`Please confirm your signature: ${p.campaign_title}`),
      headers: AUTOMATIC,
      ...body,
    };
  };
}
