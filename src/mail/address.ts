import { domainToASCII, domainToUnicode } from 'node:url';
import { encodeWords, isPlainText, quoteString } from 'nodemailer/lib/mime-funcs';
import { collapseBlankRuns } from '../cases/types.ts';
import { deriveToken } from '../tokens.ts';

/**
 * Header text on one line: control characters (CR and LF among them, C1 and U+2028/2029 too) become a space; the
 * controls that reorder how text shows (U+202A–202E, U+2066–2069) go; and `=?` is broken up, so
 * what a supporter typed cannot be an RFC 2047 encoded word that a mail client decodes into
 * something else (`=?utf-8?b?…?=` showing `Minister <minister@gov.example>`).
 */
export function oneLine(s: string): string {
  return bodyLine(s).replace(/=\?/g, '= ?');
}

/**
 * One line of a message body or attachment, such as a signer's name in a digest's list: as
 * `oneLine`, less the breaking of `=?`, which a body does not decode, so the name stays as typed.
 */
export function bodyLine(s: string): string {
  return s
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
    .replace(/[\u202a-\u202e\u2066-\u2069]/g, '')
    .trim();
}

/** `<`, `>`, `@` and whatever Unicode folds into them (fullwidth ＜＞＠, small ﹤﹥﹫). */
const ADDRESS_MARKS = /[<>@\uFE64\uFE65\uFE6B\uFF1C\uFF1E\uFF20]+/g;

/**
 * A display name for From, To or Reply-To. Beyond `oneLine`, address marks go: a supporter named
 * `Ann <minister@gov.example>` would otherwise show an address that is not the sender's in a mail
 * client that prints the name alone. No real name needs them. A run of blanks, visible or not,
 * is one space (collapseBlankRuns).
 */
export function displayName(s: string): string {
  return collapseBlankRuns(oneLine(s.replace(ADDRESS_MARKS, ' ')));
}

/**
 * The sender of a letter or digest: MAIL_FROM's address in the name of who it is for ("Dana
 * Example via Appeal", "12 supporters via Appeal"), never a supporter's own address (DMARC).
 */
export function letterSender(who: string, config: { orgName: string; mailFrom: { address: string } }): { name: string; address: string } {
  return { name: displayName(`${who} via ${config.orgName}`), address: config.mailFrom.address };
}

/**
 * The sender of what Appeal writes by itself (confirmations, opt-ins, alerts): MAIL_FROM's address
 * in ORG_NAME, cleaned as a supporter's name is in a letter's From, so that no mail client shows
 * an address of ORG_NAME's (`Rights <info@rights.example>`) as the sender.
 */
export function orgSender(config: { orgName: string; mailFrom: { address: string } }): { name: string; address: string } {
  return { name: displayName(config.orgName), address: config.mailFrom.address };
}

/** Names only a local network knows (RFC 6762, RFC 8375 and common habit): no mail domain for the world. */
export const PRIVATE_NAME = /(^|\.)(localhost|localdomain|local|lan|internal|intranet|home|corp|home\.arpa)$/i;

/** The domain of an address (MAIL_FROM's, for ids and list names that must be ours). */
export function domainOf(address: string): string {
  return address.split('@').pop() || 'localhost';
}

/**
 * A Message-ID derived with the secret from what the email is (`purpose`, and the delivery row it
 * goes out for): the same gives the same id, so every attempt at one email carries one id (when a
 * relay took a message but its reply was lost, the copy sent again is recognisably the same
 * message), and it gives away no numbers. A new email needs a new id: mail providers drop a
 * message whose id they have seen. So the row's creation time counts as well as its number: a
 * database restored from a backup, or another one with the same secret (staging beside
 * production), numbers its rows again from where it was, and would give a new letter to the same
 * official the id of one they already have.
 */
export function stableMessageId(secret: string, purpose: string, row: { id: number; created_at: Date }, from: string): string {
  return `<${deriveToken(secret, `message-id-${purpose}-${row.created_at.getTime()}`, row.id).slice(0, 32)}@${domainOf(from)}>`;
}

/**
 * A List-ID header (RFC 2919) for the list called `name`, as a header nodemailer sends as it is.
 * Its own `list.id` puts a name that is not ASCII (an ORG_NAME in Kazakh) in one encoded word of
 * any length, past RFC 2047's 75 characters and a line's 78; here the name is cut into words that
 * fit, and the header folded between them.
 */
export function listIdHeader(name: string, id: string): { prepared: true; foldLines: true; value: string } {
  const text = displayName(name);
  const phrase = isPlainText(text) ? quoteString(text) : encodeWords(text, 'Q', 52, true);
  return { prepared: true, foldLines: true, value: `${phrase} <${id}>` };
}

/**
 * Headers of the emails Appeal writes by itself (confirmations, opt-ins, alerts), not of letters,
 * which a person signed: RFC 3834 asks vacation replies and other automatic answers not to
 * answer them, so none goes back to the MAIL_FROM mailbox. Exchange and Outlook heed their own
 * header for it instead.
 */
export const AUTOMATIC = { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' } as const;

/** Alerts go to a list: `Precedence: bulk` is what older vacation responders look for. */
export const BULK = { ...AUTOMATIC, Precedence: 'bulk' } as const;

/**
 * An address as it is stored and looked up: trimmed, and a domain written in another script
 * (`ann@bücher.example`, a `.қаз` domain) in the ASCII form (punycode) that DNS and every relay
 * take. The conversion also drops what shows nothing in a domain (a soft hyphen, a zero-width
 * space) and folds full-width letters, so every lookup by a typed address must go through it too,
 * or `ann@gmai\u00adl.com` would be another address to a limit and the same one to the mailbox.
 */
export function asciiAddress(address: string): string {
  const trimmed = address.trim();
  const at = trimmed.lastIndexOf('@');
  const domain = trimmed.slice(at + 1);
  if (at < 0 || /^[\x00-\x7f]*$/.test(domain)) return trimmed;
  return trimmed.slice(0, at + 1) + (domainToASCII(domain) || domain);
}

/**
 * The ASCII form of what an organizer searches addresses for, when it has another: an address
 * (`ann@почта.қаз`) or whole labels of a domain (`почта.қаз`), as asciiAddress stores them.
 */
export function asciiSearch(text: string): string | undefined {
  const trimmed = text.trim();
  if (/^[\x00-\x7f]*$/.test(trimmed)) return undefined;
  const ascii = trimmed.includes('@') ? asciiAddress(trimmed) : domainToASCII(trimmed);
  return ascii && ascii !== trimmed ? ascii : undefined;
}

/**
 * A stored address as its owner wrote it, for a page: a domain kept in its ASCII form
 * (`xn--80a1acny.xn--80ao21a`) in its own script (`почта.қаз`); `undefined` when it has no other form.
 */
export function unicodeAddress(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  const domain = address.slice(at + 1);
  if (at < 0 || !/(^|\.)xn--/i.test(domain)) return undefined;
  const unicode = domainToUnicode(domain);
  return unicode && unicode !== domain ? address.slice(0, at + 1) + unicode : undefined;
}

/** Providers that ignore dots in the local part: one mailbox, many spellings. */
const DOTLESS_DOMAINS = new Set(['gmail.com', 'googlemail.com']);

/**
 * The mailbox an address reaches, for counting what is asked of it: lower case, without a
 * `+tag` (most providers deliver `ann+1@…` to `ann@…`), and for Gmail without dots. Ten posts
 * naming `ann+1@…` to `ann+10@…` are ten asked of one inbox. Only for counting: what is stored
 * and sent to is the address as typed (in its ASCII form, asciiAddress).
 */
export function mailboxKey(typed: string): string {
  const email = asciiAddress(typed);
  const at = email.lastIndexOf('@');
  if (at < 1) return email.toLowerCase();
  let local = email.slice(0, at).toLowerCase();
  let domain = email.slice(at + 1).toLowerCase();
  const plus = local.indexOf('+');
  if (plus > 0) local = local.slice(0, plus);
  if (DOTLESS_DOMAINS.has(domain)) {
    local = local.replace(/\./g, '');
    domain = 'gmail.com';
  }
  return `${local}@${domain}`;
}
