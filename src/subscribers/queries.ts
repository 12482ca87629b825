import type { Queryable } from '../db/index.ts';
import { PREFERENCES_WORDING, type Followed, type Subscriber } from './types.ts';

// A subscriber's row and subscriptions: requests, the opt-in, consent, preferences and leaving.
// The cases one may follow, and pages of all subscribers, are apart (follow-queries.ts, roster-queries.ts).

/**
 * The subscriber for an address, created pending when new. The unique index on lower(email)
 * makes any casing the same subscriber; the no-op update returns the row and locks it for the
 * rest of the transaction, so two requests for one address queue up instead of racing.
 */
export async function upsertSubscriber(db: Queryable, email: string) {
  const { rows } = await db.query<Subscriber>(
    `INSERT INTO subscribers (email) VALUES ($1)
     ON CONFLICT (lower(email)) DO UPDATE SET email = subscribers.email
     RETURNING *`,
    [email],
  );
  return rows[0]!;
}

/**
 * SQL: a CTE that clears subscriber $1's mark of following nothing, for a statement that gives them
 * a confirmed subscription: a purge of those who follow nothing, waiting on the row, reads it anew (see
 * purgeUnsubscribed).
 */
const UNMARKED = `WITH unmarked AS (
       UPDATE subscribers SET follows_nothing_since = NULL WHERE id = $1 AND follows_nothing_since IS NOT NULL
     )`;

/**
 * Asks for a subscription; it stays pending until the opt-in is confirmed. An active one is left
 * as it is, unless its subscriber bounced: then it waits for the opt-in too, whose confirmation
 * shows the address works again. A pending one takes the wording of the latest form.
 * @returns false when the subscriber follows that case already (nothing waits for an opt-in).
 */
export async function insertPendingSubscription(db: Queryable, subscriberId: number, caseId: number | null, source: string, text: string) {
  // Not unmarked as following nothing (UNMARKED): anyone may ask for an address, and a request
  // would keep one who follows nothing for good. Its confirmation unmarks them.
  // One who gets every case's alerts follows this case already, as one following it by name does:
  // nothing waits, and the email they get carries the link to their preferences.
  const { rowCount } = await db.query(
    `INSERT INTO subscriptions (subscriber_id, case_id, status, consent_source, consent_text)
     SELECT $1, $2::bigint, 'pending', $3, $4
      WHERE $2::bigint IS NULL
         OR NOT EXISTS (SELECT 1 FROM subscriptions a JOIN subscribers s ON s.id = a.subscriber_id
                         WHERE a.subscriber_id = $1 AND a.case_id IS NULL AND a.status = 'active' AND s.status = 'active')
     ON CONFLICT (subscriber_id, coalesce(case_id, 0)) DO UPDATE
       SET status = 'pending', consent_source = EXCLUDED.consent_source, consent_text = EXCLUDED.consent_text, created_at = now()
       WHERE subscriptions.status = 'pending'
          OR EXISTS (SELECT 1 FROM subscribers s WHERE s.id = $1 AND s.status = 'bounced')`,
    [subscriberId, caseId, source, text],
  );
  return rowCount > 0;
}

/**
 * Whether the subscriber asked for this case (or all cases, `caseId` null) less than `seconds`
 * ago: it waits for the opt-in since then, or they follow it and their opt-in email (which then
 * carries the link to their preferences) was asked for or went since then.
 */
export async function askedMomentsAgo(db: Queryable, subscriberId: number, caseId: number | null, seconds: number) {
  const { rowCount } = await db.query(
    `SELECT 1 FROM subscriptions s
      WHERE s.subscriber_id = $1
        AND (coalesce(s.case_id, 0) = coalesce($2::bigint, 0) OR (s.case_id IS NULL AND s.status = 'active'))
        AND CASE s.status
              WHEN 'pending' THEN s.created_at > now() - make_interval(secs => $3)
              -- A bounced address asking again is to be asked to confirm, whatever went lately.
              WHEN 'active' THEN EXISTS (SELECT 1 FROM deliveries d WHERE d.kind = 'optin' AND d.source_id = $1
                                            AND d.updated_at > now() - make_interval(secs => $3))
                             AND NOT EXISTS (SELECT 1 FROM subscribers b WHERE b.id = $1 AND b.status = 'bounced')
              ELSE false END`,
    [subscriberId, caseId, seconds],
  );
  return rowCount > 0;
}

/** A subscription that needs no opt-in (a confirmed signer); a pending one becomes active. */
export async function upsertActiveSubscription(db: Queryable, subscriberId: number, caseId: number | null, source: string, text: string) {
  await db.query(
    `${UNMARKED}
     INSERT INTO subscriptions (subscriber_id, case_id, status, consent_source, consent_text, confirmed_at)
     VALUES ($1, $2, 'active', $3, $4, now())
     ON CONFLICT (subscriber_id, coalesce(case_id, 0)) DO UPDATE
       SET status = 'active', consent_source = EXCLUDED.consent_source, consent_text = EXCLUDED.consent_text,
           confirmed_at = now()
       WHERE subscriptions.status = 'pending'`,
    [subscriberId, caseId, source, text],
  );
}

/** The opt-in email; source_id is the subscriber. Nothing comes back when one exists already. */
export async function insertOptinDelivery(db: Queryable, subscriber: Pick<Subscriber, 'id' | 'email'>) {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO deliveries (kind, source_id, subscriber_id, recipient) VALUES ('optin', $1, $1, $2)
     ON CONFLICT DO NOTHING RETURNING id`,
    [subscriber.id, subscriber.email],
  );
  return rows[0]?.id;
}

/** The status of a subscriber's opt-in email (its one delivery row), if there is one. */
export async function getOptinStatus(db: Queryable, subscriberId: number) {
  const { rows } = await db.query<{ status: string }>(`SELECT status FROM deliveries WHERE kind = 'optin' AND source_id = $1`, [subscriberId]);
  return rows[0]?.status;
}

/** Retention counts unconfirmed requests from the latest one. */
export async function markOptinRequested(db: Queryable, id: number) {
  await db.query('UPDATE subscribers SET optin_requested_at = now() WHERE id = $1', [id]);
}

/** A new opt-in email with a new link: it says all that waits, so no email is owed any more. */
export async function setOptinRound(db: Queryable, id: number, round: number, confirmHash: string, manageHash: string) {
  await db.query(
    'UPDATE subscribers SET optin_round = $2, confirm_token_hash = $3, manage_token_hash = $4, optin_owed_at = NULL WHERE id = $1',
    [id, round, confirmHash, manageHash],
  );
}

/** An opt-in email is owed once the one being sent has gone (optinAgainJob); NULL: none is. */
export async function setOptinOwed(db: Queryable, id: number, owed: boolean) {
  await db.query(`UPDATE subscribers SET optin_owed_at = CASE WHEN $2 THEN now() END WHERE id = $1`, [id, owed]);
}

/** Subscribers owed an opt-in email for longer than `seconds`, oldest first. */
export async function listOwedOptins(db: Queryable, seconds: number, limit = 500) {
  const { rows } = await db.query<{ id: number }>(
    `SELECT id FROM subscribers WHERE optin_owed_at < now() - make_interval(secs => $1) ORDER BY optin_owed_at LIMIT $2`,
    [seconds, limit],
  );
  return rows.map((r) => Number(r.id));
}

/** Subscribers made without a form (confirmed signers) get their manage token hash on first use. */
export async function setManageTokenHash(db: Queryable, id: number, manageHash: string) {
  await db.query('UPDATE subscribers SET manage_token_hash = $2 WHERE id = $1 AND manage_token_hash IS NULL', [id, manageHash]);
}

/**
 * A subscriber, locked for the rest of the transaction: taken before their opt-in row, in the
 * order requestSubscription takes them (its upsert locks the subscriber first), or the two deadlock.
 */
export async function lockSubscriber(db: Queryable, id: number) {
  const { rows } = await db.query<Subscriber>('SELECT * FROM subscribers WHERE id = $1 FOR UPDATE', [id]);
  return rows[0];
}

export async function getSubscriber(db: Queryable, id: number) {
  const { rows } = await db.query<Subscriber>('SELECT * FROM subscribers WHERE id = $1', [id]);
  return rows[0];
}

/** `lock`: the row locked for the rest of the transaction, as committed (see lockSubscriber). */
export async function getSubscriberByConfirmHash(db: Queryable, hash: string, { lock = false } = {}) {
  const { rows } = await db.query<Subscriber>(`SELECT * FROM subscribers WHERE confirm_token_hash = $1${lock ? ' FOR UPDATE' : ''}`, [hash]);
  return rows[0];
}

/** `lock`: the row locked for the rest of the transaction, as committed (see lockSubscriber). */
export async function getSubscriberByManageHash(db: Queryable, hash: string, { lock = false } = {}) {
  const { rows } = await db.query<Subscriber>(`SELECT * FROM subscribers WHERE manage_token_hash = $1${lock ? ' FOR UPDATE' : ''}`, [hash]);
  return rows[0];
}

/** The cases a subscriber follows (or asked to follow), "all cases" first. */
export async function listSubscriptions(db: Queryable, subscriberId: number, status: 'pending' | 'active') {
  const { rows } = await db.query<Followed>(
    `SELECT x.case_id AS "caseId", c.slug, c.person_name AS "personName"
       FROM subscriptions x LEFT JOIN cases c ON c.id = x.case_id
      WHERE x.subscriber_id = $1 AND x.status = $2
      ORDER BY x.case_id NULLS FIRST`,
    [subscriberId, status],
  );
  return rows;
}

/** Confirms every pending subscription; the latest one's consent becomes the subscriber's. */
export async function dropActiveSubscriptions(db: Queryable, subscriberId: number) {
  await db.query(`DELETE FROM subscriptions WHERE subscriber_id = $1 AND status = 'active'`, [subscriberId]);
}

export async function activatePendingSubscriptions(db: Queryable, subscriberId: number) {
  const { rows } = await db.query<{ consent_source: string; consent_text: string; created_at: Date }>(
    `${UNMARKED}
     UPDATE subscriptions SET status = 'active', confirmed_at = now()
      WHERE subscriber_id = $1 AND status = 'pending'
      RETURNING consent_source, consent_text, created_at`,
    [subscriberId],
  );
  return rows.sort((a, b) => b.created_at.getTime() - a.created_at.getTime());
}

/** The opt-in is the consent: when, through which form, with which wording. */
export async function markActive(db: Queryable, id: number, consent: { source: string; text: string }) {
  await db.query(
    `UPDATE subscribers
        SET status = 'active', confirmed_at = coalesce(confirmed_at, now()), unsubscribed_at = NULL,
            consent_at = now(), consent_source = $2, consent_text = $3
      WHERE id = $1`,
    [id, consent.source, consent.text],
  );
}

/**
 * Leaving ends every subscription; the row stays (until RETENTION_UNSUBSCRIBED_DAYS, see
 * purgeUnsubscribed) so the manage link still answers and a signature confirmed meanwhile with the
 * box ticked does not bring the address back. A bounced subscriber who leaves has left too:
 * lifting the suppression must not make them active. A request still waiting for its opt-in
 * goes too, and its link with it (forgetDroppedOptins).
 */
export async function markUnsubscribed(db: Queryable, id: number) {
  await db.query(
    `UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = now()
      WHERE id = $1 AND status IN ('pending', 'active', 'bounced')`,
    [id],
  );
  const { rows: dropped } = await db.query<{ status: string }>('DELETE FROM subscriptions WHERE subscriber_id = $1 RETURNING status', [id]);
  if (dropped.some((d) => d.status === 'pending')) await forgetDroppedOptins(db, [id]);
}

/**
 * Makes the active subscriptions among `shownIds` exactly `caseIds` (0 stands for all cases): a
 * subscription the form did not show is left as it is. Unknown case ids are dropped by the join.
 * A pending subscription the subscriber now ticks becomes active: the manage link proves the
 * address as well as the opt-in would. One left unticked stays pending: the page shows it as
 * waiting for its email's button, and a save about other cases does not cancel what was asked.
 */
export async function replaceSubscriptions(db: Queryable, subscriberId: number, shownIds: number[], caseIds: number[], source: string) {
  await db.query(
    `DELETE FROM subscriptions
      WHERE subscriber_id = $1 AND status = 'active'
        AND coalesce(case_id, 0) = ANY ($3::bigint[]) AND NOT (coalesce(case_id, 0) = ANY ($2::bigint[]))`,
    [subscriberId, caseIds, shownIds],
  );
  await db.query(
    `INSERT INTO subscriptions (subscriber_id, case_id, status, consent_source, consent_text, confirmed_at)
     SELECT $1, nullif(k.id, 0), 'active', $3, $4 || ': ' || k.label, now()
       FROM (SELECT 0::bigint AS id, $5::text AS label WHERE 0 = ANY ($2::bigint[])
             UNION ALL SELECT id, person_name FROM cases WHERE id = ANY ($2::bigint[])) k
     ON CONFLICT (subscriber_id, coalesce(case_id, 0)) DO UPDATE
       SET status = 'active', confirmed_at = now()
       WHERE subscriptions.status = 'pending'`,
    [subscriberId, caseIds, source, PREFERENCES_WORDING.legend, PREFERENCES_WORDING.all],
  );
  // Marked when the page leaves nothing ticked, unmarked when it leaves something: written on the
  // row either way, so a purge of those who follow nothing waiting on it reads it anew.
  await db.query(
    `UPDATE subscribers s SET follows_nothing_since = CASE
       WHEN EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id AND x.status = 'active') THEN NULL ELSE coalesce(s.follows_nothing_since, now()) END
      WHERE s.id = $1`,
    [subscriberId],
  );
}

/**
 * The opt-in link of each subscriber in `ids` whose requests were all dropped unconfirmed (left
 * unticked on the preferences page, or deleted by retention) stops working: it would say "already
 * confirmed", or "already used", of a request nobody confirmed. It answers as an unknown link,
 * whose page says a request not confirmed is deleted.
 */
export async function forgetDroppedOptins(db: Queryable, ids: number[]) {
  await db.query(
    `UPDATE subscribers s SET confirm_token_hash = NULL
      WHERE s.id = ANY ($1::bigint[]) AND s.confirm_token_hash IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM subscriptions p WHERE p.subscriber_id = s.id AND p.status = 'pending')`,
    [ids],
  );
}
