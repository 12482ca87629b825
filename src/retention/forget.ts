// Erasure on request (`npm run cli -- forget`, or the console's Erase page): one person's records,
// whatever their age, where the rest of retention deletes by age.
import type { Redis } from 'ioredis';
import { counterPrefix } from '../budgets.ts';
import type { Db, Queryable } from '../db/index.ts';
import { signaturesChanged } from '../campaigns/service.ts';
import { OFFICIAL_KINDS } from '../deliveries/suppression-queries.ts';
import { addressCounterKeys } from '../deliveries/allowance.ts';
import { asciiAddress, mailboxKey } from '../mail/address.ts';
import { recordAudit } from '../organizers/service.ts';
import { counted } from '../words.ts';

/** SQL: what an audit entry that named a forgotten address keeps. */
export const FORGOTTEN = `object = 'suppression:(forgotten)', detail = NULL`;

/** A Postgres regular expression matching `address` as a whole, not inside a longer one. */
function wholeAddress(address: string): string {
  const escaped = address.toLowerCase().replace(/[^a-z0-9]/g, '\\$&');
  // Before it, none of the characters an address's local part may hold (o'neil@ is not neil@).
  return `(^|[^a-z0-9._%+'!#$&*=?^{}|~/-])${escaped}($|[^a-z0-9.-]|\\.($|[^a-z0-9]))`;
}

export interface Forgotten {
  signatures: number;
  subscribers: number;
  emails: number;
  /** Letters in their name not sent yet (queued, waiting for a retry, or failed): dropped, so no official gets them. */
  unsent: number;
  /** Letters in their name a worker was sending: left to finish (they may have gone), then counted as the rest. */
  sending: number;
  /** Other spellings of the same mailbox held (`ann+news@`, a Gmail address with dots): not erased, since they may be someone else's. */
  alsoHeld: string[];
}

/**
 * What an erasure took, in words both the cli and the console say: what went (`1 signature, 0
 * subscriber records and 2 emails to that address`), and the letters a worker was sending then.
 */
export function forgottenWords(f: Forgotten): { erased: string; unsent: string; sending: string } {
  return {
    unsent: f.unsent ? `${counted(f.unsent, 'letter in their name not sent yet is', 'letters in their name not sent yet are')} dropped: no official gets ${f.unsent === 1 ? 'it' : 'them'}` : '',
    erased: `${counted(f.signatures, 'signature', 'signatures')}, ${counted(f.subscribers, 'subscriber record', 'subscriber records')} and ${counted(f.emails, 'email', 'emails')} to that address`,
    sending: f.sending ? `${counted(f.sending, 'letter in their name was', 'letters in their name were')} being sent and may have gone: if so, counted, naming only the official; if not, dropped` : '',
  };
}

/**
 * Addresses of signers and subscribers held that reach the mailbox `email` reaches (mailboxKey)
 * but are spelled otherwise: `ann+news@example.org` for `ann@example.org`, dots in a Gmail address.
 * The per-address limits count them as one; an erasure names them rather than erase them, since a
 * tag or dot may be another person's address at a provider that does not ignore it.
 */
async function otherSpellings(db: Queryable, email: string): Promise<string[]> {
  const key = mailboxKey(email);
  const [local, domain] = [key.slice(0, key.lastIndexOf('@')), key.slice(key.lastIndexOf('@') + 1)];
  const domains = domain === 'gmail.com' ? ['gmail.com', 'googlemail.com'] : [domain];
  const { rows } = await db.query<{ email: string }>(
    `SELECT DISTINCT lower(email) AS email FROM (SELECT email FROM signatures UNION ALL SELECT email FROM subscribers) a
      WHERE lower(split_part(email, '@', 2)) = ANY ($2::text[]) AND lower(email) <> lower($3)
        AND left(lower(replace(split_part(email, '@', 1), '.', '')), $4) = $1`,
    [local.replace(/\./g, ''), domains, email, local.replace(/\./g, '').length],
  );
  return rows.map((r) => r.email).filter((e) => mailboxKey(e) === key).sort();
}

/**
 * Erases one person on request ("delete what you hold on me"): their signatures on every campaign,
 * their subscriber record with what they follow, every email to their address that is still
 * kept, their letters not yet sent, and their address on the suppression list. Letters already
 * sent stay counted: those rows hold the official's address and a dangling signature id, nothing
 * of the person. Audit entries that name the address lose what names it; the erasure itself is
 * not logged with the address.
 */
export async function forgetPerson(db: Db, typed: string, by: { organizerId: number } | 'cli'): Promise<Forgotten> {
  const email = asciiAddress(typed);
  const forgotten = await db.transaction(async (tx) => {
    // A letter being sent stays: its message may be at the relay already, and deleted, it would go
    // unrecorded. Its worker marks it sent, or, not composed yet, finds no signature and drops it.
    const unsent = await tx.query(
      `DELETE FROM deliveries d USING signatures s
        WHERE d.kind = 'letter' AND d.source_id = s.id AND d.status NOT IN ('sent', 'sending') AND lower(s.email) = lower($1)`,
      [email],
    );
    const { rows: [sending] } = await tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM deliveries d JOIN signatures s ON s.id = d.source_id
        WHERE d.kind = 'letter' AND d.status = 'sending' AND lower(s.email) = lower($1)`,
      [email],
    );
    // The emails to them as a supporter or subscriber. Letters and digests to the address are an
    // official's (a target's address): the record of what was written to whom stays.
    const emails = await tx.query('DELETE FROM deliveries WHERE lower(recipient) = lower($1) AND kind <> ALL ($2::text[])', [email, OFFICIAL_KINDS]);
    const signatures = await tx.query('DELETE FROM signatures WHERE lower(email) = lower($1)', [email]);
    // Their subscriptions and alert rows go with the subscriber (ON DELETE CASCADE).
    const subscribers = await tx.query('DELETE FROM subscribers WHERE lower(email) = lower($1)', [email]);
    // An official's bounce stays too: letters must not go to an address known to refuse them.
    await tx.query('DELETE FROM suppressions WHERE email = lower($1) AND coalesce(kind, \'\') <> ALL ($2::text[])', [email, OFFICIAL_KINDS]);
    // The console's log of a lifted suppression names the address (and an organizer may have
    // written it in the reason): the entry stays, what names them goes. Only those entries: what
    // organizers did with officials' addresses (a target edited, letters sent again) is no
    // supporter's data, and a log an erasure could blank would hide what an organizer did. The
    // address is matched whole: forgetting g@example.org must not touch one naming org@example.org.
    await tx.query(
      `UPDATE audit_log SET ${FORGOTTEN}
        WHERE action = 'suppression.remove' AND coalesce(detail ->> 'kind', '') <> ALL ($3::text[])
          AND (object = 'suppression:' || lower($1) OR coalesce(detail::text, '') ~* $2)`,
      [email, wholeAddress(email), OFFICIAL_KINDS],
    );
    const counts = { signatures: signatures.rowCount, subscribers: subscribers.rowCount, emails: emails.rowCount, unsent: unsent.rowCount };
    // That an erasure ran, and what it took, is the owner's to see; whose address, no one's.
    await recordAudit(tx, by === 'cli' ? null : by.organizerId, 'person.forget', 'person:(forgotten)', { ...counts, by: by === 'cli' ? 'cli' : 'console' });
    return { ...counts, sending: sending!.n, alsoHeld: await otherSpellings(tx, email) };
  });
  if (forgotten.signatures) signaturesChanged(db);
  return forgotten;
}

/** What Redis can be asked for here: deleting keys, and rewriting its append-only file. */
interface CounterStore {
  del(...keys: string[]): Promise<number>;
  info(section: string): Promise<string>;
  bgrewriteaof(): Promise<unknown>;
}

/**
 * Deletes the counts of confirmation and opt-in emails sent to `email` (withAddressAllowance's),
 * which say for up to a day, by a keyed hash, that the address was used; then has a Redis that
 * keeps an append-only file write it anew, since the file holds every command since its last
 * rewrite (a deleted counter's keyed hash and times with them), for days on a quiet install:
 * Redis rewrites it only once it has grown past 64 MB. The rewrite leaves what Redis holds now.
 * @returns how many counters were deleted, and what to say when the rewrite was refused.
 */
export async function forgetAddressCounters(redis: CounterStore, queuePrefix: string, secret: string, email: string): Promise<{ deleted: number; fileKeepsThem?: string }> {
  return rewrittenAfter(redis, await redis.del(...addressCounterKeys(queuePrefix, secret, email)));
}

/**
 * Deletes every count kept under `queuePrefix` (per address, per IP, per sign-in: each a keyed
 * hash), for rotate-secret: made with the secret it replaces, they count nothing from then on, and
 * whoever has that secret (it may have leaked) could still tell from them, for a day, which
 * addresses were emailed. The append-only file is written anew, as forgetAddressCounters has it.
 */
export async function forgetAllCounters(redis: CounterStore & Pick<Redis, 'scan'>, queuePrefix: string): Promise<{ deleted: number; fileKeepsThem?: string }> {
  const pattern = `${counterPrefix(queuePrefix, '').replace(/[*?[\]\\]/g, '\\$&')}*`;
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return rewrittenAfter(redis, deleted);
}

async function rewrittenAfter(redis: CounterStore, deleted: number): Promise<{ deleted: number; fileKeepsThem?: string }> {
  // Also when none is left to delete: counters expired since are in the file all the same.
  try {
    if (/^aof_enabled:1\s*$/m.test(await redis.info('persistence'))) await redis.bgrewriteaof();
    return { deleted };
  } catch (err) {
    // A rewrite already running or scheduled writes what Redis holds now as well.
    if (/already in progress|scheduled/i.test((err as Error).message)) return { deleted };
    return { deleted, fileKeepsThem: `Redis's append-only file still holds those counters until Redis next rewrites it (BGREWRITEAOF was refused: ${(err as Error).message})` };
  }
}
