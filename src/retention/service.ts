import type { Config } from '../config.ts';
import type { Db, Queryable } from '../db/index.ts';
import { signaturesChanged } from '../campaigns/service.ts';
import { OFFICIAL_KINDS } from '../deliveries/suppression-queries.ts';
import { forgetDroppedOptins } from '../subscribers/queries.ts';
import { foldAlerts, listSettledAlerts } from '../alerts/outcome-queries.ts';
import { FORGOTTEN } from './forget.ts';

export { forgetAddressCounters, forgetAllCounters, forgetPerson, forgottenWords, type Forgotten } from './forget.ts';

/**
 * How long an unconfirmed signature or request is kept, as a confirmation or opt-in email tells
 * whoever did not ask for it: "deleted after 7 days".
 */
export function keptFor(days: number): string {
  return days === 1 ? 'a day' : `${days} days`;
}

/**
 * Deletes signatures and subscribers never confirmed within `days`, with the deliveries that
 * served them: an address that never said yes is not kept. All or nothing: a purge cut off
 * midway (the database restarting) would leave audit entries naming addresses whose rows are
 * gone, which no later purge would find.
 */
export async function purgeUnconfirmed(db: Db, days: number): Promise<{ signatures: number; subscribers: number }> {
  const purged = await db.transaction((tx) => purgeUnconfirmedIn(tx, days));
  // Counts are kept per handle: the public pages read through `db`, not the transaction.
  if (purged.signatures) signaturesChanged(db);
  return purged;
}

async function purgeUnconfirmedIn(db: Queryable, days: number): Promise<{ signatures: number; subscribers: number }> {
  const cutoff = [days];
  // One statement, the signature first: signing again locks the signature, then its confirmation
  // row, so this takes them in that order too. Deleted apart, a signature made again between the
  // two (its time renewed) was kept without the confirmation row every later request re-sends.
  const signatures = await db.query<{ email: string }>(
    `WITH gone AS (
       DELETE FROM signatures WHERE status = 'pending' AND created_at < now() - make_interval(days => $1)
       RETURNING id, lower(email) AS email
     ), emails AS (
       DELETE FROM deliveries d USING gone WHERE d.kind IN ('confirm', 'letter') AND d.source_id = gone.id
     )
     SELECT email FROM gone`,
    cutoff,
  );
  // Likewise the subscriber first: asking again locks the subscriber, renews its request, then
  // sends its opt-in again. Taken the other way, the opt-in just asked for was deleted (the
  // subscriber, renewed, kept), or the two deadlocked.
  const subscribers = await db.query<{ email: string }>(
    `WITH gone AS (
       DELETE FROM subscribers WHERE status = 'pending' AND optin_requested_at < now() - make_interval(days => $1)
       RETURNING id, lower(email) AS email
     ), emails AS (
       DELETE FROM deliveries d USING gone WHERE d.kind IN ('optin', 'welcome') AND d.source_id = gone.id
     )
     SELECT email FROM gone`,
    cutoff,
  );
  // Someone already known (active, or unsubscribed) who asked to follow more and never confirmed:
  // the request goes, the subscriber and what they did confirm stay.
  const dropped = await db.query<{ subscriber_id: number }>(
    `DELETE FROM subscriptions sub USING subscribers s
      WHERE sub.subscriber_id = s.id AND sub.status = 'pending'
        AND s.optin_requested_at < now() - make_interval(days => $1)
      RETURNING sub.subscriber_id`,
    cutoff,
  );
  if (dropped.rowCount) await forgetDroppedOptins(db, [...new Set(dropped.rows.map((r) => r.subscriber_id))]);
  // A confirmation or opt-in refused for its address suppressed it; once nothing of the address
  // is left, nor is it: its row would say the address was given to Appeal, and for what.
  const suppressions = await db.query<{ email: string }>(
    `DELETE FROM suppressions x
      WHERE x.kind IN ('confirm', 'optin') AND x.created_at < now() - make_interval(days => $1)
        AND NOT EXISTS (SELECT 1 FROM signatures g WHERE lower(g.email) = x.email)
        AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE lower(s.email) = x.email)
      RETURNING x.email`,
    cutoff,
  );
  await forgetInAuditLog(db, [...signatures.rows, ...subscribers.rows, ...suppressions.rows].map((r) => r.email));
  await forgetStaleLifts(db, days);
  return { signatures: signatures.rowCount, subscribers: subscribers.rowCount };
}

/**
 * Deletes subscribers who left more than `days` ago, with what they followed and every email to
 * them that is kept (opt-ins and alerts carry the subscriber, ON DELETE CASCADE): someone who said
 * no more is not kept on a list a hostile state would want. Until then their manage link still
 * answers (a mistaken click can be undone). One who left (unsubscribed or bounced) while a
 * signature with the updates box ticked waits for its confirmation keeps only that they left
 * (keepLeavingAlone), since that confirmation must find them so (subscribeConfirmedSigner); anyone
 * may sign with any address, again every few days, so such a signature must not keep more. One
 * with a request to follow again still waiting for its opt-in (one
 * never confirmed goes after RETENTION_UNCONFIRMED_DAYS: purgeUnconfirmed, which purgeExpired runs
 * first) keeps the request alone: what they had confirmed and left is forgotten,
 * and the row is a new address's request, purged as one if never confirmed. Anyone may ask for an
 * address, so a request (a stranger's, a month after each other) must not keep a record of the
 * one who left. A subscriber whose address bounced goes too once the bounce
 * (bounced_at) is as old: until then, lifting the suppression restores them as they last chose;
 * after, what they followed is not kept for an address that no longer takes mail. The suppression
 * itself stays, so nothing is sent there again. A subscriber still active who follows no case
 * (every box unticked, or the case deleted) is sent nothing either, and goes once they have
 * followed nothing for as long (follows_nothing_since): counted from the save of their preferences
 * page that left nothing ticked (replaceSubscriptions), or else from the run that first found them
 * so; a confirmed subscription clears it, a request (which anyone may make) does not.
 * Those who left are locked while this decides, so a request made meanwhile is either seen, and
 * kept, or made after, on a new row.
 * @returns how many were deleted.
 */
export async function purgeUnsubscribed(db: Db, days: number): Promise<number> {
  // Marks who follows nothing without a mark (an opt-in never confirmed and purged, a case deleted,
  // a subscriber from before migration 035: the preferences page marks the rest), and unmarks who
  // follows something (one given a subscription while this very statement marked them).
  await db.query(
    `UPDATE subscribers s SET follows_nothing_since = CASE WHEN s.follows_nothing_since IS NULL THEN now() END
      WHERE s.status = 'active'
        AND (s.follows_nothing_since IS NULL) = NOT EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id AND x.status = 'active')`,
  );
  // A bounced subscriber who had confirmed said yes once: the suppression its bounce made stays as
  // an alert's, which no purge takes, not as an opt-in's or a confirmation's, which go with the last
  // record of an address that never said yes (purgeUnconfirmed).
  await db.query(
    `UPDATE suppressions x SET kind = 'alert'
       FROM subscribers s
      WHERE x.email = lower(s.email) AND x.kind IN ('confirm', 'optin')
        AND s.status = 'bounced' AND s.confirmed_at IS NOT NULL AND s.bounced_at < now() - make_interval(days => $1)`,
    [days],
  );
  const leftLongAgo = `
    SELECT s.id, lower(s.email) AS email,
           EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id AND x.status = 'pending') AS asked,
           s.status IN ('unsubscribed', 'bounced')
             AND EXISTS (SELECT 1 FROM signatures g WHERE lower(g.email) = lower(s.email) AND g.status = 'pending' AND g.subscribe) AS held
      FROM subscribers s
     WHERE (s.status = 'unsubscribed' AND s.unsubscribed_at < now() - make_interval(days => $1))
        OR (s.status = 'bounced' AND s.bounced_at < now() - make_interval(days => $1))
        OR (s.status = 'active' AND s.follows_nothing_since < now() - make_interval(days => $1)
            AND NOT EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id AND x.status = 'active'))`;
  return db.transaction(async (tx) => {
    // Locked first, then read again: a request that committed while the lock waited for it is
    // seen by the second statement (a new snapshot), not by the first's subqueries.
    const { rows: locked } = await tx.query<{ id: number }>(`${leftLongAgo} FOR UPDATE OF s`, [days]);
    if (locked.length === 0) return 0;
    const { rows: due } = await tx.query<{ id: number; email: string; asked: boolean; held: boolean }>(
      `SELECT * FROM (${leftLongAgo}) d WHERE d.id = ANY ($2::bigint[])`,
      [days, locked.map((r) => r.id)],
    );
    const held = due.filter((d) => d.held).map((d) => d.id);
    const asking = due.filter((d) => d.asked && !d.held).map((d) => d.id);
    const gone = due.filter((d) => !d.asked && !d.held);
    if (held.length) await keepLeavingAlone(tx, held);
    if (asking.length) await keepRequestAlone(tx, asking);
    if (gone.length) await tx.query('DELETE FROM subscribers WHERE id = ANY ($1::bigint[])', [gone.map((d) => d.id)]);
    // Only the deleted: an address still held (a request kept alone) keeps its audit entries, as forgetInAuditLog would find.
    await forgetInAuditLog(tx, gone.map((d) => d.email));
    return gone.length;
  });
}

/**
 * What retention keeps of a subscriber who left long ago, besides their row: a request to follow
 * again that waits for its opt-in, with that email (dated by the last request) and its link. What
 * they followed, the other emails they were sent, their consent and when they confirmed go.
 */
async function forgetAllButRequest(tx: Queryable, ids: number[]): Promise<void> {
  await tx.query(`DELETE FROM subscriptions WHERE subscriber_id = ANY ($1::bigint[]) AND status <> 'pending'`, [ids]);
  await tx.query(
    `DELETE FROM deliveries d WHERE d.subscriber_id = ANY ($1::bigint[])
        AND (d.kind <> 'optin' OR NOT EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = d.subscriber_id AND x.status = 'pending'))`,
    [ids],
  );
  // The opt-in email's row was made with their first request, and is sent again for each later one.
  await tx.query(
    `UPDATE deliveries d SET created_at = s.optin_requested_at FROM subscribers s
      WHERE d.subscriber_id = s.id AND d.kind = 'optin' AND s.id = ANY ($1::bigint[])`,
    [ids],
  );
  await tx.query(
    `UPDATE subscribers SET consent_at = NULL, consent_source = NULL, consent_text = NULL, confirmed_at = NULL, follows_nothing_since = NULL
      WHERE id = ANY ($1::bigint[])`,
    [ids],
  );
}

/**
 * What is kept of a subscriber who left long ago while a signature with the updates box ticked
 * waits for its confirmation: besides a waiting request (forgetAllButRequest), that the address
 * left, and when. The row is looked at again on each run, and goes (or keeps its request alone)
 * once no such signature waits.
 */
async function keepLeavingAlone(tx: Queryable, ids: number[]): Promise<void> {
  await forgetAllButRequest(tx, ids);
  await tx.query(`UPDATE subscribers SET created_at = coalesce(unsubscribed_at, bounced_at, created_at) WHERE id = ANY ($1::bigint[])`, [ids]);
}

/**
 * What is kept of a subscriber who left long ago and has asked to follow again since: the request,
 * its opt-in email and its link (forgetAllButRequest); when they came and left is forgotten too,
 * as if the address were new.
 */
async function keepRequestAlone(tx: Queryable, ids: number[]): Promise<void> {
  await forgetAllButRequest(tx, ids);
  await tx.query(
    `UPDATE subscribers SET status = 'pending', unsubscribed_at = NULL, bounced_at = NULL, created_at = optin_requested_at
      WHERE id = ANY ($1::bigint[])`,
    [ids],
  );
}

/**
 * The console's log of a lifted suppression names the address, and the organizer's reason may
 * name the person: once retention has deleted the last signature and subscriber of an address,
 * those entries stay, and what names them goes, as forgetPerson does on request.
 */
async function forgetInAuditLog(db: Queryable, emails: string[]): Promise<void> {
  if (emails.length === 0) return;
  await db.query(
    `UPDATE audit_log a SET ${FORGOTTEN}
       FROM unnest($1::text[]) AS gone (email)
      WHERE a.object = 'suppression:' || gone.email
        AND NOT EXISTS (SELECT 1 FROM signatures g WHERE lower(g.email) = gone.email)
        AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE lower(s.email) = gone.email)`,
    [[...new Set(emails)]],
  );
}

/**
 * A suppression lifted for an address with no signature or subscriber left (often after
 * retention deleted them, which forgetInAuditLog covers only as it happens): its entry, once as
 * old as `days`, loses what names the address. An official's (a letter or digest was refused)
 * is kept: it is no supporter's.
 */
async function forgetStaleLifts(db: Queryable, days: number): Promise<void> {
  await db.query(
    `UPDATE audit_log a SET ${FORGOTTEN}
      WHERE a.action = 'suppression.remove' AND a.object LIKE 'suppression:%@%'
        AND a.at < now() - make_interval(days => $1)
        AND coalesce(a.detail ->> 'kind', '') <> ALL ($2::text[])
        AND NOT EXISTS (SELECT 1 FROM signatures g WHERE lower(g.email) = substr(a.object, 13))
        AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE lower(s.email) = substr(a.object, 13))`,
    [days, OFFICIAL_KINDS],
  );
}
export interface Purged {
  signatures: number;
  subscribers: number;
  /** Subscribers who left or bounced, deleted with what they followed. */
  unsubscribed: number;
  /** Alert rows folded into their update's counts (foldSettledAlerts). */
  alerts: number;
}

/** How long an update's alert rows are kept once its fan-out ended: the console lists failed ones to retry. */
export const ALERT_ROWS_KEPT_DAYS = 30;

/** How many updates foldSettledAlerts lists at a time. */
const FOLD_PAGE = 100;

/**
 * Deletes the sent and failed alert rows of updates whose fan-out ended over `days` ago (one
 * still being retried stays until it settles), keeping only how many went and failed on the
 * update: a row per subscriber per update, each naming the address, otherwise grew for as long as
 * the subscriber stayed (10,000 subscribers and three updates a week: 1.5 million rows a year).
 * An update at a time, each in its own statement, so one with a million alerts does not hold the
 * rest.
 * @returns how many rows were deleted.
 */
export async function foldSettledAlerts(db: Queryable, days = ALERT_ROWS_KEPT_DAYS): Promise<number> {
  let folded = 0;
  for (let after = 0; ; ) {
    const ids = await listSettledAlerts(db, days, after, FOLD_PAGE);
    for (const id of ids) folded += await foldAlerts(db, id);
    if (ids.length < FOLD_PAGE) return folded;
    after = ids.at(-1)!;
  }
}

/**
 * The embedded database runs no autovacuum: without this, every row an update or a delete left
 * behind (a delivery is written three times on its way) stays in its files for good, so the
 * tables grow without end and deleted data stays on disk; and no ANALYZE runs, so the planner
 * plans a year-old install by the statistics of its first day. Daily, after the purge; Postgres
 * does both on its own. It holds the database for a moment: ~0.2 s per 100,000 rows here.
 */
export async function tidyEmbedded(db: Db): Promise<boolean> {
  if (db.kind !== 'pglite') return false;
  await db.exec('VACUUM (ANALYZE)');
  return true;
}

/**
 * What retention deletes, all of it: the daily maintenance job's and `npm run cli -- purge`'s.
 * @returns how many of each were deleted.
 */
export async function purgeExpired(db: Db, config: Pick<Config, 'retentionUnconfirmedDays' | 'retentionUnsubscribedDays'>): Promise<Purged> {
  const unconfirmed = await purgeUnconfirmed(db, config.retentionUnconfirmedDays);
  const unsubscribed = await purgeUnsubscribed(db, config.retentionUnsubscribedDays);
  return { ...unconfirmed, unsubscribed, alerts: await foldSettledAlerts(db) };
}
