import os from 'node:os';
import { DelayedError, type Job } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { Db } from '../../src/db/index.ts';
import { deleteUnsendable, markFailed, markRetry, recordSentAndClaim, requeueFinished } from '../../src/deliveries/queries.ts';
import { insertSuppression, listSuppressions, takeSuppressedAsk } from '../../src/deliveries/suppression-queries.ts';
import { sendDelivery, settleSentMarks } from '../../src/deliveries/send.ts';
import type { Composers } from '../../src/deliveries/types.ts';
import { createMailer, type Mailer } from '../../src/mail/transport.ts';
import type { SendJob } from '../../src/queues.ts';
import { createTestDb, DB_KINDS, type TestDb } from '../helpers/db.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { createLetterCampaign, insertLetters } from '../helpers/faults.ts';

const composers: Composers = { confirm: async (_db, d) => ({ from: 'letters@appeal.test', to: d.recipient, subject: 's', text: 't' }) };

/** A pooled mailer to a real SMTP sink, both closed when the test ends: for a test that must send nothing. */
async function relay() {
  const sink = await startSmtpSink();
  const mailer = createMailer({ smtpUrl: sink.url, dataDir: os.tmpdir(), dkim: undefined, workerConcurrency: 1, mailFrom: { name: 'Appeal', address: 'letters@appeal.test' } });
  onTestFinished(async () => {
    mailer.close();
    await sink.close();
  });
  return { sink, mailer };
}

describe.each(DB_KINDS)('deliveries on %s', (kind) => {
  let t: TestDb;
  beforeEach(async () => {
    t = await createTestDb(kind);
  });
  afterEach(async () => {
    await t.close();
  });

  describe('the send ledger', () => {
    async function delivery(status: string, leaseSeconds: number | null = null): Promise<number> {
      const { rows } = await t.db.query<{ id: number }>(
        `INSERT INTO deliveries (kind, source_id, recipient, status, attempts, lease_until)
         VALUES ('confirm', (SELECT coalesce(max(source_id), 0) + 1 FROM deliveries), 'someone@appeal.test', $1, $2,
                 CASE WHEN $3::int IS NULL THEN NULL ELSE now() + make_interval(secs => $3::int) END)
         RETURNING id`,
        [status, status === 'queued' ? 0 : 1, leaseSeconds],
      );
      return rows[0]!.id;
    }
    const row = async (id: number) =>
      (await t.db.query<{ status: string; attempts: number; message_id: string | null; lease_until: Date | null }>(
        'SELECT status, attempts, message_id, lease_until FROM deliveries WHERE id = $1',
        [id],
      )).rows[0]!;

    it('records a sent mark and claims other deliveries in the same statement', async () => {
      const sending = await delivery('sending', 90);
      const queued = await delivery('queued');
      const claimed = await recordSentAndClaim(t.db, [{ id: sending, messageId: '<one@appeal.test>' }], [queued], 90);
      expect(claimed.map((d) => d.id)).toEqual([queued]);
      expect(claimed[0]).toMatchObject({ status: 'sending', attempts: 1, suppressed: false });
      expect(await row(sending)).toMatchObject({ status: 'sent', message_id: '<one@appeal.test>', lease_until: null });
    });

    it('does not claim a delivery it marks sent in the same statement, even with its lease run out', async () => {
      const lapsed = await delivery('sending', -5);
      const claimed = await recordSentAndClaim(t.db, [{ id: lapsed, messageId: '<late@appeal.test>' }], [lapsed], 90);
      expect(claimed).toEqual([]);
      expect(await row(lapsed)).toMatchObject({ status: 'sent', attempts: 1, message_id: '<late@appeal.test>' });
    });

    it('claims a delivery whose lease ran out, but not one held by a live lease, nor one already sent', async () => {
      const lapsed = await delivery('sending', -5);
      const held = await delivery('sending', 90);
      const sent = await delivery('sent');
      const claimed = await recordSentAndClaim(t.db, [], [lapsed, held, sent], 90);
      expect(claimed.map((d) => d.id)).toEqual([lapsed]);
      expect((await row(lapsed)).attempts).toBe(2);
      expect((await row(held)).attempts).toBe(1);
    });

    it('a claim whose lease ran out and was claimed again changes nothing of the newer claim', async () => {
      const id = await delivery('sending', -5);
      const [newer] = await recordSentAndClaim(t.db, [], [id], 90);
      expect(newer!.attempts).toBe(2);
      const stale = { id, attempts: 1 };
      await markRetry(t.db, stale, 'late 451', 2_000);
      await markFailed(t.db, stale, 'late 550');
      await deleteUnsendable(t.db, { ...stale, kind: newer!.kind });
      expect(await row(id)).toMatchObject({ status: 'sending', attempts: 2 });
      await markRetry(t.db, newer!, '451 try later', 2_000);
      expect(await row(id)).toMatchObject({ status: 'retry', attempts: 2 });
    });

    it("sends a letter whose target's address was corrected while it was being sent to the new address when it goes again", async () => {
      const campaign = await createLetterCampaign(t.db, 2);
      await insertLetters(t.db, campaign, 1);
      // One signer's two letters, to the first target and to the second.
      const { rows: letters } = await t.db.query<{ id: number }>(
        'SELECT id FROM deliveries WHERE campaign_id = $1 ORDER BY recipient = $2 DESC',
        [campaign.id, campaign.targets[0]],
      );
      const claimed = await recordSentAndClaim(t.db, [], letters.map((l) => l.id), 90);
      const [first, second] = letters.map((l) => claimed.find((c) => c.id === l.id)!);
      // The console's edit moves letters waiting, not one being sent (updateTarget).
      const fixed = `fixed@${campaign.tag}.example`;
      await t.db.query('UPDATE targets SET email = $2 WHERE campaign_id = $1 AND email = $3', [campaign.id, fixed, campaign.targets[0]]);
      await markRetry(t.db, first!, '451 try later', 2_000);
      const recipientOf = async (id: number) =>
        (await t.db.query<{ recipient: string; last_error: string }>('SELECT recipient, last_error FROM deliveries WHERE id = $1', [id])).rows[0]!;
      expect(await recipientOf(first!.id)).toEqual({ recipient: fixed, last_error: 'to the previous address: 451 try later' });
      // Given an address another of its letters has (two targets, one address), a letter keeps its own.
      await t.db.query('UPDATE targets SET email = $2 WHERE campaign_id = $1 AND email = $3', [campaign.id, fixed, campaign.targets[1]]);
      await markRetry(t.db, second!, '451 try later', 2_000);
      expect(await recipientOf(second!.id)).toEqual({ recipient: campaign.targets[1], last_error: '451 try later' });
    });

    it('sends a letter refused for good at an address corrected meanwhile to the new one, the old one suppressed', async () => {
      const campaign = await createLetterCampaign(t.db, 1);
      await insertLetters(t.db, campaign, 2);
      const { rows: letters } = await t.db.query<{ id: number }>('SELECT id FROM deliveries WHERE campaign_id = $1 ORDER BY id', [campaign.id]);
      const [refused, untried] = await recordSentAndClaim(t.db, [], letters.map((l) => l.id), 90);
      const fixed = `fixed@${campaign.tag}.example`;
      await t.db.query('UPDATE targets SET email = $2 WHERE campaign_id = $1', [campaign.id, fixed]);
      await markFailed(t.db, refused!, '550 5.1.1 no such user', { suppress: { email: campaign.targets[0]!, reason: 'bounce: 550', kind: 'letter' } });
      const row = async (id: number) =>
        (await t.db.query<{ status: string; recipient: string; last_error: string }>('SELECT status, recipient, last_error FROM deliveries WHERE id = $1', [id])).rows[0]!;
      expect(await row(refused!.id)).toEqual({ status: 'retry', recipient: fixed, last_error: 'to the previous address: 550 5.1.1 no such user' });
      expect((await t.db.query('SELECT 1 FROM suppressions WHERE email = $1', [campaign.targets[0]])).rowCount).toBe(1);
      // Nothing sent (the database was away): the error is the database's, whatever the address.
      await markRetry(t.db, untried!, 'database unavailable: ECONNRESET', 2_000, { untried: true });
      expect(await row(untried!.id)).toEqual({ status: 'retry', recipient: fixed, last_error: 'database unavailable: ECONNRESET' });
    });

    it('puts a job off for a few seconds, using no attempt, when its claim finds the database away', async () => {
      const id = await delivery('queued');
      const away: unknown[] = [];
      const db: Db = {
        ...t.db,
        // Its statements go through the query below, claims too (plannedOnce).
        generic: undefined,
        async query(sql, params) {
          if (sql.startsWith('WITH sent AS')) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
          return t.db.query(sql, params);
        },
      };
      const delays: number[] = [];
      const job = { data: { deliveryId: id }, moveToDelayed: async (at: number) => void delays.push(at - Date.now()) } as unknown as Job<SendJob>;
      const { sink, mailer } = await relay();
      // Date stands still (timers do not), so the delay measured is the one asked for, however slow the machine.
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        await expect(sendDelivery(db, mailer, composers, job, 'token', () => {}, (err) => away.push(err))).rejects.toThrow(DelayedError);
      } finally {
        vi.useRealTimers();
      }
      expect(delays).toHaveLength(1);
      // And the worker is told, so its log says why sends stopped.
      expect(away).toEqual([expect.objectContaining({ code: 'ECONNREFUSED' })]);
      expect(delays[0]).toBeGreaterThan(3_000);
      expect(delays[0]).toBeLessThanOrEqual(5_000);
      expect(await row(id)).toMatchObject({ status: 'queued', attempts: 0 });
      // Any other failure of the claim is BullMQ's to retry, as before.
      const broken: Db = { ...t.db, generic: undefined, query: async () => { throw Object.assign(new Error('syntax error'), { code: '42601' }); } };
      await expect(sendDelivery(broken, mailer, composers, job, 'token', () => {}, (err) => away.push(err))).rejects.toThrow('syntax error');
      expect(away).toHaveLength(1);
      expect(delays).toHaveLength(1);
      expect(sink.messages).toEqual([]);
    });

    it('puts a job for a delivery another worker holds off until just after that lease ends, sending nothing and using no attempt', async () => {
      const held = await delivery('sending', 90);
      const { lease_until } = await row(held);
      const delayedTo: number[] = [];
      const job = { data: { deliveryId: held }, moveToDelayed: async (at: number, token?: string) => void delayedTo.push(token === 'token' ? at : NaN) } as unknown as Job<SendJob>;
      const { sink, mailer } = await relay();
      // Dropped instead, the job would leave the letter to the sweeper's next pass after the lease.
      await expect(sendDelivery(t.db, mailer, composers, job, 'token', () => {})).rejects.toThrow(DelayedError);
      expect(delayedTo).toEqual([lease_until!.getTime() + 1000]);
      expect(await row(held)).toMatchObject({ status: 'sending', attempts: 1, lease_until });
      // One no longer held is no one's to wait for: a sent delivery's job ends without a delay.
      const sent = await delivery('sent');
      expect(await sendDelivery(t.db, mailer, composers, { ...job, data: { deliveryId: sent } } as Job<SendJob>, 'token', () => {})).toBe('skipped');
      expect(delayedTo).toHaveLength(1);
      expect(sink.messages).toEqual([]);
    });

    it('builds and sends one digest at a time in a process, and sends none whose row another worker claimed while it waited', async () => {
      const digest = async () => (await t.db.query<{ id: number }>(
        `INSERT INTO deliveries (kind, source_id, recipient) VALUES ('digest', (SELECT coalesce(max(source_id), 0) + 1 FROM deliveries), 'official@gov.example') RETURNING id`,
      )).rows[0]!.id;
      const ids = [await digest(), await digest(), await digest()];
      let building = 0;
      let most = 0;
      const built: number[] = [];
      let letFirstGo!: () => void;
      const firstWaits = new Promise<void>((r) => (letFirstGo = r));
      const digests: Composers = {
        digest: async (_db, d) => {
          most = Math.max(most, ++building);
          built.push(d.id);
          if (d.id === ids[0]) await firstWaits;
          building -= 1;
          return { from: 'letters@appeal.test', to: d.recipient, subject: `digest ${d.id}`, text: 't' };
        },
      };
      const { sink, mailer } = await relay();
      const job = (id: number) => ({ data: { deliveryId: id }, moveToDelayed: async () => {} }) as unknown as Job<SendJob>;
      const outcomes = ids.map((id) => sendDelivery(t.db, mailer, digests, job(id), 'token', () => {}));
      await vi.waitFor(() => expect(built).toEqual([ids[0]]));
      // The second's lease ran out while it waited, and another worker claimed its row.
      await t.db.query(`UPDATE deliveries SET attempts = attempts + 1, lease_until = now() + interval '150 seconds' WHERE id = $1`, [ids[1]]);
      letFirstGo();
      expect(await Promise.all(outcomes)).toEqual(['sent', 'skipped', 'sent']);
      await settleSentMarks(t.db);
      expect(most).toBe(1);
      expect(built).toEqual([ids[0], ids[2]]);
      expect(sink.messages.map((m) => m.subject).sort()).toEqual([`digest ${ids[0]}`, `digest ${ids[2]}`].sort());
    });

    // A stray job (one the sweeper added again from a row it read as retried) must not revive a letter that failed for good.
    it('sends nothing for a delivery that failed for good, and leaves its row as it was', async () => {
      const failed = await delivery('failed');
      await t.db.query(`UPDATE deliveries SET attempts = 5, last_error = '550 5.1.1 no such user' WHERE id = $1`, [failed]);
      const { sink, mailer } = await relay();
      const job = { data: { deliveryId: failed }, moveToDelayed: async () => {} } as unknown as Job<SendJob>;
      expect(await sendDelivery(t.db, mailer, composers, job, 'token', () => {})).toBe('skipped');
      expect(sink.messages).toEqual([]);
      expect((await t.db.query('SELECT status, attempts, last_error FROM deliveries WHERE id = $1', [failed])).rows[0]).toEqual({ status: 'failed', attempts: 5, last_error: '550 5.1.1 no such user' });
    });

    it('gives the lease and the attempt back, and puts the job off a few seconds, when the database goes away while the email is composed', async () => {
      const id = await delivery('queued');
      let away = true;
      const reading: Composers = {
        confirm: async (db, d) => {
          if (away) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
          return composers.confirm!(db, d);
        },
      };
      const delays: number[] = [];
      const job = { data: { deliveryId: id }, moveToDelayed: async (at: number) => void delays.push(at - Date.now()) } as unknown as Job<SendJob>;
      const mailer = { kind: 'smtp', send: async () => ({ messageId: '<m@appeal.test>' }), close: async () => {} } as unknown as Mailer;
      await expect(sendDelivery(t.db, mailer, reading, job, 'token', () => {})).rejects.toThrow(DelayedError);
      expect(delays).toHaveLength(1);
      expect(delays[0]).toBeLessThanOrEqual(5_000);
      expect(await row(id)).toMatchObject({ status: 'retry', attempts: 0, lease_until: null });
      // Back: the next run claims and sends it, on its first attempt.
      away = false;
      await t.db.query(`UPDATE deliveries SET next_attempt_at = now() WHERE id = $1`, [id]);
      expect(await sendDelivery(t.db, mailer, reading, job, 'token', () => {})).toBe('sent');
      await settleSentMarks(t.db);
      expect(await row(id)).toMatchObject({ status: 'sent', attempts: 1 });
    });

    it('records a retry or a failure again when the connection drops under it, so the row is not left sending for its lease', async () => {
      const dropsLeft = { 'SET status = \'retry\'': 1, 'ELSE \'failed\' END': 1 };
      const db: Db = {
        ...t.db,
        // Its statements go through the query below, claims too (plannedOnce).
        generic: undefined,
        async query(sql, params) {
          for (const [write, left] of Object.entries(dropsLeft)) {
            if (sql.includes(write) && left > 0) {
              dropsLeft[write as keyof typeof dropsLeft] = left - 1;
              throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
            }
          }
          return t.db.query(sql, params);
        },
      };
      const refusing = (code: number) => ({ kind: 'smtp', send: async () => { throw Object.assign(new Error(`${code} no`), { responseCode: code, command: 'RCPT TO' }); }, close: async () => {} }) as unknown as Mailer;
      const job = (id: number) => ({ data: { deliveryId: id } }) as Job<SendJob>;
      const later = await delivery('queued');
      await expect(sendDelivery(db, refusing(451), composers, job(later), undefined, () => {})).rejects.toMatchObject({ name: 'TemporaryFailure', attempt: 1 });
      expect(await row(later)).toMatchObject({ status: 'retry', attempts: 1 });
      const never = await delivery('queued');
      await expect(sendDelivery(db, refusing(550), composers, job(never), undefined, () => {})).rejects.toThrow(/failed/);
      expect(await row(never)).toMatchObject({ status: 'failed', attempts: 1 });
      expect(dropsLeft).toEqual({ 'SET status = \'retry\'': 0, 'ELSE \'failed\' END': 0 });
    });

    it('records a timeout as one the relay may have answered late, since nodemailer names every timeout CONN', async () => {
      const silent = { kind: 'smtp', send: async () => { throw Object.assign(new Error('Timeout'), { code: 'ETIMEDOUT', command: 'CONN', timeoutType: 'SOCKET_TIMEOUT' }); }, close: async () => {} } as unknown as Mailer;
      const id = await delivery('queued');
      await expect(sendDelivery(t.db, silent, composers, { data: { deliveryId: id } } as Job<SendJob>, undefined, () => {})).rejects.toMatchObject({ name: 'TemporaryFailure' });
      expect((await t.db.query('SELECT status, last_error FROM deliveries WHERE id = $1', [id])).rows[0]).toEqual({
        status: 'retry', last_error: 'ETIMEDOUT CONN Timeout (the relay stopped answering; if it was taking the message, it may have it, and the next attempt is a copy)',
      });
      // A relay never reached, or that never greeted, has nothing.
      const unreached = { kind: 'smtp', send: async () => { throw Object.assign(new Error('Greeting never received'), { code: 'ETIMEDOUT', command: 'CONN', timeoutType: 'GREETING_TIMEOUT' }); }, close: async () => {} } as unknown as Mailer;
      const other = await delivery('queued');
      await expect(sendDelivery(t.db, unreached, composers, { data: { deliveryId: other } } as Job<SendJob>, undefined, () => {})).rejects.toMatchObject({ name: 'TemporaryFailure' });
      expect((await t.db.query('SELECT last_error FROM deliveries WHERE id = $1', [other])).rows[0]).toEqual({ last_error: 'ETIMEDOUT CONN Greeting never received' });
    });

    it("keeps a suppressed address's one asked-for email for the delivery that took it, through its retries only", async () => {
      const email = `asked.once@${Date.now()}.example`;
      await insertSuppression(t.db, email, 'bounce: 550 5.1.1', 'optin');
      const [taker, other] = [await delivery('sending'), await delivery('sending')];
      const take = (id: number, attempt: number) => takeSuppressedAsk(t.db, email, id, attempt);
      expect(await take(taker, 1)).toBe(true);
      // Its retries: a later attempt, or a try given back with the error that ended it.
      expect(await take(taker, 2)).toBe(true);
      await t.db.query(`UPDATE deliveries SET last_error = 'database unavailable: ECONNRESET' WHERE id = $1`, [taker]);
      expect(await take(taker, 1)).toBe(true);
      // The row used again for a new request (attempts and error cleared), or another delivery: a new ask.
      await t.db.query('UPDATE deliveries SET last_error = NULL WHERE id = $1', [taker]);
      expect(await take(taker, 1)).toBe(false);
      expect(await take(other, 1)).toBe(false);
      expect(await take(other, 3)).toBe(false);
      // Taken before asks were recorded with their delivery: used, whoever retries.
      await t.db.query('UPDATE suppressions SET asked_by = NULL WHERE email = $1', [email]);
      expect(await take(taker, 2)).toBe(false);
      expect(await take(other, 2)).toBe(false);
    });

    it('takes the ask from a row used again for a new request, so the refusal stays one though its mark is lost', async () => {
      const email = `Asked.Again@${Date.now()}.example`;
      await insertSuppression(t.db, email, 'bounce: 550 5.1.1', 'confirm');
      const { rows: [d] } = await t.db.query<{ id: number; source_id: number }>(
        `INSERT INTO deliveries (kind, source_id, recipient, status, attempts)
         VALUES ('confirm', (SELECT coalesce(max(source_id), 0) + 1 FROM deliveries), $1, 'sending', 1) RETURNING id, source_id`,
        [email],
      );
      expect(await takeSuppressedAsk(t.db, email, d!.id, 1)).toBe(true);
      await t.db.query(`UPDATE deliveries SET status = 'sent', sent_at = now() WHERE id = $1`, [d!.id]);
      expect(await requeueFinished(t.db, 'confirm', d!.source_id, 0)).toMatchObject({ id: d!.id });
      expect(await takeSuppressedAsk(t.db, email, d!.id, 1)).toBe(false);
      // The worker stopped before marking that refusal: the sweeper's job claims the row again, as attempt 2.
      expect(await takeSuppressedAsk(t.db, email, d!.id, 2)).toBe(false);
    });

    it("dates a supporter's suppression that an official's bounce takes over from that bounce, so organizers learn nothing of the supporter's", async () => {
      const email = `once.a.supporter@${Date.now()}.example`;
      await insertSuppression(t.db, email, 'bounce: 550 5.1.1 (an alert)', 'alert');
      await t.db.query(`UPDATE suppressions SET created_at = now() - interval '200 days', asked_at = now() - interval '100 days' WHERE email = $1`, [email]);
      expect(await listSuppressions(t.db, { search: email, officialsOnly: true, limit: 10 })).toEqual([]);
      // Added as a target by an organizer, and refused.
      await insertSuppression(t.db, email, 'bounce: 550 5.1.1 (a letter)', 'letter');
      const [shown] = await listSuppressions(t.db, { search: email, officialsOnly: true, limit: 10 });
      expect(shown).toMatchObject({ email, reason: 'bounce: 550 5.1.1 (a letter)' });
      expect(Date.now() - shown!.created_at.getTime()).toBeLessThan(60_000);
      expect((await t.db.query('SELECT asked_at FROM suppressions WHERE email = $1', [email])).rows).toEqual([{ asked_at: null }]);
    });

    it('a repeated or late sent mark changes nothing', async () => {
      const id = await delivery('sending', 90);
      await recordSentAndClaim(t.db, [{ id, messageId: '<first@appeal.test>' }], [], 90);
      await recordSentAndClaim(t.db, [{ id, messageId: '<second@appeal.test>' }], [], 90);
      expect(await row(id)).toMatchObject({ status: 'sent', message_id: '<first@appeal.test>' });
    });

    it('leaves a failed delivery failed: only a sending row becomes sent', async () => {
      const id = await delivery('failed');
      await recordSentAndClaim(t.db, [{ id, messageId: '<stray@appeal.test>' }], [], 90);
      expect(await row(id)).toMatchObject({ status: 'failed', message_id: null });
    });
  });

  describe('sending through a real SMTP sink', () => {
    let sink: SmtpSink;
    let mailer: Mailer;
    beforeEach(async () => {
      sink = await startSmtpSink();
      mailer = createMailer({ smtpUrl: sink.url, dataDir: os.tmpdir(), dkim: undefined, workerConcurrency: 10, mailFrom: { name: 'Appeal', address: 'letters@appeal.test' } });
    });
    afterEach(async () => {
      mailer.close();
      await sink.close();
    });

    it('a job ends once the relay has the message, and settleSentMarks waits for its row to say sent', async () => {
      const { rows } = await t.db.query<{ id: number }>(`INSERT INTO deliveries (kind, source_id, recipient) VALUES ('confirm', 1, 'r@appeal.test') RETURNING id`);
      const id = rows[0]!.id;
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      // Sent marks are held back until released, as a slow statement would be.
      const db: Db = {
        ...t.db,
        // Its statements go through the query below, claims too (plannedOnce).
        generic: undefined,
        async query(sql, params) {
          if (sql.startsWith('WITH sent AS') && (params![0] as number[]).length > 0) await held;
          return t.db.query(sql, params);
        },
      };
      expect(await sendDelivery(db, mailer, composers, { data: { deliveryId: id } } as Job<SendJob>, undefined, () => {})).toBe('sent');
      expect((await t.db.query<{ status: string }>('SELECT status FROM deliveries WHERE id = $1', [id])).rows[0]!.status).toBe('sending');
      let settled = false;
      const settling = settleSentMarks(db).then(() => void (settled = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(settled).toBe(false);
      release();
      await settling;
      expect((await t.db.query<{ status: string; message_id: string }>('SELECT status, message_id FROM deliveries WHERE id = $1', [id])).rows[0]).toEqual({ status: 'sent', message_id: sink.messages[0]!.messageId });
    });

    // A restart's sessions ended; a failover's demoted primary, which takes no writes; a database
    // closed to connections (Postgres's; on PGlite the restart alone). Each lasting seconds, past
    // the four tries given to any other failure.
    it.each([
      ['57P01', 'terminating connection due to administrator command', 'FATAL'],
      ['25006', 'cannot execute UPDATE in a read-only transaction', 'ERROR'],
      ['55000', 'database "appeal" is not currently accepting connections', 'FATAL'],
    ].slice(0, kind === 'postgres' ? undefined : 1))('when statements carrying sent marks fail for seconds (%s: %s), no claim commits before the marks they carried are recorded, and none is given up', async (code, message, severity) => {
      const { rows } = await t.db.query<{ id: number }>(
        `INSERT INTO deliveries (kind, source_id, recipient) SELECT 'confirm', i, 'r' || i || '@appeal.test' FROM generate_series(1, 3) i RETURNING id`,
      );
      const [a, b, c] = rows.map((r) => r.id) as [number, number, number];
      // What each ledger statement carried and whether it committed; the first five with a mark
      // fail (about 5 s of backoff: more than the four tries once given before a mark was dropped).
      const log: { marks: number[]; claims: number[]; ok: boolean }[] = [];
      let failures = 0;
      let failed = false;
      const db: Db = {
        ...t.db,
        // Its statements go through the query below, claims too (plannedOnce).
        generic: undefined,
        async query(sql, params) {
          if (!sql.startsWith('WITH sent AS')) return t.db.query(sql, params);
          const entry = { marks: params![0] as number[], claims: params![2] as number[], ok: false };
          log.push(entry);
          if (failures < 5 && entry.marks.length > 0) {
            failures += 1;
            failed = true;
            throw Object.assign(new Error(message), { code, severity });
          }
          const result = await t.db.query(sql, params);
          entry.ok = true;
          return result as never;
        },
      };
      const unrecorded: number[] = [];
      const send = (id: number) =>
        sendDelivery(db, mailer, composers, { data: { deliveryId: id } } as Job<SendJob>, undefined, (_err, deliveryId) => void unrecorded.push(deliveryId));

      expect(await send(a)).toBe('sent');
      // b's claim joins a's mark in the statement that fails; c asks once that failure is seen.
      const second = send(b);
      await expect.poll(() => failed).toBe(true);
      const third = send(c);
      expect(await second).toBe('sent');
      expect(await third).toBe('sent');
      await settleSentMarks(db);

      const firstCommitAfterFailure = log.slice(log.findIndex((e) => !e.ok) + 1).find((e) => e.ok)!;
      expect(firstCommitAfterFailure.marks).toContain(a);
      expect(log.filter((e) => !e.ok)).toHaveLength(5);
      expect(unrecorded).toEqual([]);
      const statuses = await t.db.query<{ status: string }>('SELECT status FROM deliveries ORDER BY id');
      expect(statuses.rows.map((r) => r.status)).toEqual(['sent', 'sent', 'sent']);
      expect(sink.messages).toHaveLength(3);
    });
  });
});
