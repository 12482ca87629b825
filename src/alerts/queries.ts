import { LOCK_OBJECT, type Db, type Queryable } from '../db/index.ts';
import type { CaseUpdate } from './types.ts';

// Who receives a case's alerts: active subscribers with an active subscription to the case or to
// all cases, less suppressed addresses (a mailbox that refused us for good is not an alert's
// recipient, nor a failure every time). EXISTS rather than a join, so following both still yields
// one row per subscriber; suppressions hold lower-cased addresses, so the check is a key probe.
const NOT_SUPPRESSED = `NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email = lower(s.email))`;
const FOLLOWS_CASE = `s.status = 'active'
  AND EXISTS (SELECT 1 FROM subscriptions x
               WHERE x.subscriber_id = s.id AND x.status = 'active' AND (x.case_id = $1 OR x.case_id IS NULL))
  AND ${NOT_SUPPRESSED}`;

/**
 * Stores an update with its recipient count, counted in the same statement, and the case as it is
 * now (its alerts show that). A repeated request key returns no row: the caller looks up the
 * update it made the first time.
 */
export async function insertCaseUpdate(
  db: Queryable,
  caseId: number,
  u: { title: string; body: string },
  publishedBy: number | null,
  requestKey: string | null,
) {
  const { rows } = await db.query<CaseUpdate>(
    `INSERT INTO case_updates (case_id, title, body, published_by, recipients, request_key, case_person_name, case_status, case_location)
     SELECT $1, $2, $3, $4, (SELECT count(*) FROM subscribers s WHERE ${FOLLOWS_CASE}), $5, k.person_name, k.status, k.location
       FROM cases k WHERE k.id = $1
     ON CONFLICT (case_id, request_key) WHERE request_key IS NOT NULL DO NOTHING
     RETURNING *`,
    [caseId, u.title, u.body, publishedBy, requestKey],
  );
  return rows[0];
}

export async function getCaseUpdateByRequestKey(db: Queryable, caseId: number, requestKey: string) {
  const { rows } = await db.query<CaseUpdate>('SELECT * FROM case_updates WHERE case_id = $1 AND request_key = $2', [caseId, requestKey]);
  return rows[0];
}

/**
 * The case's latest update with this title and text posted within the last day and not withdrawn:
 * a preview sent again (the browser's Back, then Resend) must not read as a new update.
 */
export async function getRecentSameUpdate(db: Queryable, caseId: number, u: { title: string; body: string }, organizerId: number | null) {
  // The organizer's own first: posted again by another since, it is still theirs to send again.
  const { rows } = await db.query<CaseUpdate & { request_key: string | null }>(
    `SELECT * FROM case_updates
      WHERE case_id = $1 AND title = $2 AND body = $3 AND withdrawn_at IS NULL AND published_at > now() - interval '1 day'
      ORDER BY published_by IS NOT DISTINCT FROM $4 DESC, id DESC LIMIT 1`,
    [caseId, u.title, u.body, organizerId],
  );
  return rows[0];
}

/**
 * The newest update this organizer posted on the case within the last `seconds` and did not
 * withdraw, if it has this title and text: a request without an Idempotency-Key sent again
 * (postCaseUpdate). One they posted since, with other words, makes the same words news again.
 */
export async function getOwnLatestUpdateIfSame(db: Queryable, caseId: number, u: { title: string; body: string }, organizerId: number | null, seconds: number) {
  const { rows } = await db.query<CaseUpdate>(
    `SELECT * FROM (
       SELECT * FROM case_updates
        WHERE case_id = $1 AND published_by IS NOT DISTINCT FROM $4 AND withdrawn_at IS NULL
          AND published_at > now() - make_interval(secs => $5)
        ORDER BY id DESC LIMIT 1) latest
      WHERE title = $2 AND body = $3`,
    [caseId, u.title, u.body, organizerId, seconds],
  );
  return rows[0];
}

// Any fixed number, the same in every process: with the case id it names one case's lock for posting updates.
const POST_UPDATE_LOCK = 7_417_003;

/**
 * Inside a transaction: waits for any other post of an update to the case to commit, and keeps the
 * next one waiting until this transaction ends, so two posts of one text, or of one key, cannot
 * both miss each other.
 */
export async function holdCaseForPosting(db: Queryable, caseId: number): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock($1, ${LOCK_OBJECT})`, [POST_UPDATE_LOCK, caseId]);
}

/**
 * The newest update of the case with this title and text posted within the last day and not
 * withdrawn, whoever posted it (see getRecentSameUpdate): its id, or 0.
 */
export async function latestSameUpdateId(db: Queryable, caseId: number, u: { title: string; body: string }): Promise<number> {
  const { rows } = await db.query<{ id: string | null }>(
    `SELECT max(id) AS id FROM case_updates
      WHERE case_id = $1 AND title = $2 AND body = $3 AND withdrawn_at IS NULL AND published_at > now() - interval '1 day'`,
    [caseId, u.title, u.body],
  );
  return Number(rows[0]?.id ?? 0);
}

export async function getCaseUpdate(db: Queryable, id: number) {
  const { rows } = await db.query<CaseUpdate>('SELECT * FROM case_updates WHERE id = $1', [id]);
  return rows[0];
}

/**
 * A keyset page of a case's updates, newest first. Ids follow the order updates are published in
 * (published_at is the inserting transaction's time), so the id alone is the page's key.
 */
export async function listCaseUpdates(db: Queryable, caseId: number, limit: number, withWithdrawn: boolean, beforeId: number | null) {
  const { rows } = await db.query<CaseUpdate>(
    `SELECT * FROM case_updates WHERE case_id = $1 AND ($3::boolean OR withdrawn_at IS NULL) AND ($4::bigint IS NULL OR id < $4)
      ORDER BY id DESC LIMIT $2`,
    [caseId, limit, withWithdrawn, beforeId],
  );
  return rows;
}

/**
 * Withdraws an update and drops its alerts that no worker has taken yet, in one statement: those
 * queued or waiting to retry, and those that failed (they reached no one, and a retry of one would
 * be dropped unsent: the console must not offer it). One being sent at this moment goes if its
 * worker had written it already, and is dropped when written after this (its composer finds the
 * update withdrawn). Its alerts are locked first, so that one a worker claims meanwhile is counted
 * as what it became.
 * @returns the update, how many alerts were dropped, sent (those cannot be taken back) and being
 * sent; undefined when there is no such update of that case, or it was withdrawn already (by this
 * call's twin, say).
 */
export async function withdrawCaseUpdate(db: Queryable, caseId: number, id: number, by: number | null) {
  const { rows } = await db.query<CaseUpdate & { dropped: number; sent: number; sending: number }>(
    `WITH taken AS (
       UPDATE case_updates SET withdrawn_at = now(), withdrawn_by = $3
        WHERE id = $2 AND case_id = $1 AND withdrawn_at IS NULL
       RETURNING *
     ), alerts AS (
       SELECT d.id, d.status FROM deliveries d WHERE d.kind = 'alert' AND d.source_id IN (SELECT id FROM taken) FOR UPDATE
     ), dropped AS (
       DELETE FROM deliveries WHERE id IN (SELECT id FROM alerts WHERE status IN ('queued', 'retry', 'failed'))
       RETURNING 1
     )
     SELECT taken.*, (SELECT count(*) FROM dropped)::int AS dropped,
            taken.folded_sent + (SELECT count(*) FROM alerts WHERE status = 'sent')::int AS sent,
            (SELECT count(*) FROM alerts WHERE status = 'sending')::int AS sending
       FROM taken`,
    [caseId, id, by],
  );
  return rows[0];
}

/**
 * One keyset page of the fan-out, in one statement: the next `limit` subscribers after
 * `afterId` by primary key, alert deliveries inserted for those who are active and follow the
 * case or all cases (ON CONFLICT DO NOTHING), and the ids to enqueue. A re-run after a crash
 * finds a page's rows already there: the conflict skips them, and those still `queued` come
 * back as `leftover` (the INSERT's own rows are invisible to the rest of the statement, so the
 * two sets never overlap). `cursor` is the last subscriber looked at; null when none is left.
 * `tokenless` are recipients without a manage token hash yet (subscribed as signers).
 *
 * Paging over subscribers rather than over matches bounds every page's work by `limit`,
 * whatever the statistics say (they are stale right after a bulk import) and however few
 * follow the case. The scalar subquery is one probe of subscriptions per subscriber, and the
 * LIMIT 1 keeps each leftover lookup a probe of deliveries_once_key: neither can become a join
 * over the whole table.
 */
export async function insertAlertPage(db: Queryable, u: { id: number; case_id: number }, afterId: number, limit: number) {
  const { rows } = await db.query<{ what: 'cursor' | 'inserted' | 'leftover' | 'tokenless' | 'withdrawn'; id: number | null }>(
    `WITH live AS (
       SELECT withdrawn_at IS NULL AS yes FROM case_updates WHERE id = $4
     ), span AS (
       SELECT s.id, s.email, s.status, s.manage_token_hash FROM subscribers s WHERE s.id > $2 ORDER BY s.id LIMIT $3
     ), page AS (
       SELECT s.id, s.email, s.manage_token_hash FROM span s
        WHERE s.status = 'active'
          AND (SELECT yes FROM live)
          AND coalesce((SELECT true FROM subscriptions x
                         WHERE x.subscriber_id = s.id AND x.status = 'active' AND (x.case_id = $1 OR x.case_id IS NULL)
                         LIMIT 1), false)
          AND ${NOT_SUPPRESSED}
     ), inserted AS (
       INSERT INTO deliveries (kind, source_id, subscriber_id, recipient)
       SELECT 'alert', $4, p.id, p.email FROM page p ORDER BY p.id
       ON CONFLICT DO NOTHING
       RETURNING id
     )
     SELECT 'cursor' AS what, max(id) AS id FROM span
     UNION ALL
     SELECT 'inserted', id FROM inserted
     UNION ALL
     SELECT 'leftover', d.id FROM page p
       CROSS JOIN LATERAL (SELECT d.id FROM deliveries d
                            WHERE d.kind = 'alert' AND d.source_id = $4 AND lower(d.recipient) = lower(p.email)
                              AND d.status = 'queued'
                            LIMIT 1) d
     UNION ALL
     SELECT 'tokenless', p.id FROM page p WHERE p.manage_token_hash IS NULL
     UNION ALL
     SELECT 'withdrawn', NULL FROM live WHERE NOT yes`,
    [u.case_id, afterId, limit, u.id],
  );
  const pick = (what: string) => rows.filter((r) => r.what === what).map((r) => r.id!);
  return {
    lastId: rows.find((r) => r.what === 'cursor')?.id ?? null,
    inserted: pick('inserted'),
    leftover: pick('leftover'),
    tokenless: pick('tokenless'),
    /** The update was withdrawn: this page added nothing, and no later page would. */
    withdrawn: rows.some((r) => r.what === 'withdrawn'),
  };
}

/** Stores manage token hashes for a page of subscribers in one statement. */
export async function setManageTokenHashes(db: Queryable, ids: number[], hashes: string[]) {
  await db.query(
    `UPDATE subscribers s SET manage_token_hash = t.hash
       FROM unnest($1::bigint[], $2::text[]) AS t(id, hash)
      WHERE s.id = t.id AND s.manage_token_hash IS NULL`,
    [ids, hashes],
  );
}

/**
 * Marks an update's fan-out done, with how many alerts it made (`reached`): posting counted the
 * subscribers of that moment, and people who confirmed or left before the fan-out ran change it.
 * Counted once the update is locked (as deleteUnsendable locks it before it drops an alert): a
 * drop that committed while this waited is not counted, and one after it takes itself off.
 */
export async function markFannedOut(db: Db, id: number) {
  await db.transaction(async (tx) => {
    await tx.query('SELECT 1 FROM case_updates WHERE id = $1 FOR NO KEY UPDATE', [id]);
    await tx.query(
      `UPDATE case_updates
          SET fanned_out_at = now(),
              reached = (SELECT count(*) FROM deliveries WHERE kind = 'alert' AND source_id = $1)
        WHERE id = $1 AND fanned_out_at IS NULL`,
      [id],
    );
  });
}

/** Updates whose fan-out never finished (a lost job, or one that failed for good), oldest first. */
export async function listUnfinishedFanouts(db: Queryable, olderThanSeconds: number) {
  const { rows } = await db.query<{ id: number }>(
    `SELECT id FROM case_updates
      WHERE fanned_out_at IS NULL AND published_at < now() - make_interval(secs => $1)
      ORDER BY id LIMIT 100`,
    [olderThanSeconds],
  );
  return rows.map((r) => r.id);
}

export interface AlertParts {
  title: string;
  body: string;
  published_at: Date;
  case_slug: string;
  person_name: string;
  case_status: string;
  location: string;
  language: string;
  subscriber_status: string;
  needs_manage_hash: boolean;
  /** Follows this case, or all cases; neither when they stopped after the fan-out. */
  follows_case: boolean;
  follows_all: boolean;
  withdrawn: boolean;
}

/**
 * The parts of many alerts in one statement, one row per (update, subscriber) pair that exists;
 * `ord` is the pair's 1-based position in the arguments.
 */
export async function getAlertPartsBatch(db: Queryable, pairs: readonly { caseUpdateId: number; subscriberId: number }[]) {
  const { rows } = await db.query<AlertParts & { ord: number }>(
    `SELECT x.ord, u.title, u.body, u.published_at, c.slug AS case_slug,
            -- The case as the update was posted about it (see migration 037).
            coalesce(u.case_person_name, c.person_name) AS person_name, coalesce(u.case_status, c.status) AS case_status,
            coalesce(u.case_location, c.location) AS location, c.language,
            s.status AS subscriber_status, s.manage_token_hash IS NULL AS needs_manage_hash,
            f.follows_case, f.follows_all, u.withdrawn_at IS NOT NULL AS withdrawn
       FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS x (case_update_id, subscriber_id, ord)
       JOIN case_updates u ON u.id = x.case_update_id
       JOIN cases c ON c.id = u.case_id
       JOIN subscribers s ON s.id = x.subscriber_id
       -- One look at the subscriber's active subscriptions answers both.
       CROSS JOIN LATERAL (
         SELECT coalesce(bool_or(f.case_id = u.case_id), false) AS follows_case, coalesce(bool_or(f.case_id IS NULL), false) AS follows_all
           FROM subscriptions f WHERE f.subscriber_id = s.id AND f.status = 'active'
       ) f`,
    [pairs.map((p) => p.caseUpdateId), pairs.map((p) => p.subscriberId)],
  );
  return rows;
}

/** How many subscribers an update of the case would reach now (the console's confirmation step). */
export async function countFollowers(db: Queryable, caseId: number) {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM subscribers s WHERE ${FOLLOWS_CASE}`, [caseId]);
  return rows[0]!.n;
}
