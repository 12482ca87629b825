import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Job } from 'bullmq';
import { sweepDeliveries } from '../../src/deliveries/service.ts';
import { stableMessageId } from '../../src/mail/address.ts';
import { deliveryJobId, enqueueDeliveries, MAX_SEND_ATTEMPTS } from '../../src/queues.ts';
import type { Workers } from '../../workers/index.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { DB_KINDS } from '../helpers/db.ts';
import {
  copiesOf,
  createLetterCampaign,
  deliveriesOf,
  duplicatesIn,
  insertLetters,
  signAs,
  waitUntilSettled,
  type LetterCampaign,
} from '../helpers/faults.ts';
import { until } from '../helpers/signing.ts';

/** Every letter of the campaign arrived exactly once, and each row says so with the Message-ID that arrived. */
async function expectEachLetterOnce(ctx: TestContext, campaign: LetterCampaign, letters: number) {
  const rows = await waitUntilSettled(ctx.db, campaign);
  expect(rows).toHaveLength(letters);
  expect(rows.filter((r) => r.status !== 'sent')).toEqual([]);
  const copies = copiesOf(ctx.sink!.messages, campaign);
  expect(copies.size).toBe(letters);
  expect(duplicatesIn(copies)).toBe(0);
  const arrivedIds = ctx.sink!.messages.filter((m) => m.subject?.startsWith(campaign.tag)).map((m) => m.messageId);
  expect(rows.map((r) => r.message_id).sort()).toEqual(arrivedIds.sort());
  return rows;
}

describe.each(DB_KINDS)('when the mail relay misbehaves (%s)', (kind) => {
  let ctx: TestContext;
  let workers: Workers;
  /** Every RCPT TO address the relay was asked to take, refused or not. */
  let rcpts: string[] = [];

  // Starting PGlite and migrating it takes seconds, and much longer on a busy machine.
  beforeAll(async () => {
    // Five job slots, so five pooled connections: the bound on duplicates below stays tight.
    ctx = await createTestContext({ db: kind, env: { WORKER_CONCURRENCY: '5' } });
    workers = await ctx.startWorkers();
  }, 180_000);
  afterEach(() => {
    ctx.sink!.behavior = {};
    rcpts = [];
  });
  afterAll(async () => {
    await ctx?.close();
  });

  const recordRcpts = (refuse?: (address: string) => { code: number } | undefined) => ({
    onRcptTo: (a: { address: string }) => {
      rcpts.push(a.address);
      return refuse?.(a.address);
    },
  });

  it('a relay answering 421 at MAIL FROM for a while gets every letter exactly once, after retries', async () => {
    // On a reused pooled connection nodemailer may see the relay hang up before it reads the
    // 421; start from fresh ones so the refusals reach the delivery rows as 421s.
    ctx.sink!.dropConnections();
    await new Promise((r) => setTimeout(r, 100));
    let refusals = 2;
    ctx.sink!.behavior = { onMailFrom: () => (refusals-- > 0 ? { code: 421, message: 'busy, try later' } : undefined) };
    const campaign = await createLetterCampaign(ctx.db, 3);
    await signAs(ctx, campaign, 'Dana Busy');

    const rows = await expectEachLetterOnce(ctx, campaign, 3);
    expect(refusals).toBeLessThan(0);
    expect(Math.max(...rows.map((r) => r.attempts))).toBeGreaterThan(1);
    expect(rows.reduce((n, r) => n + r.attempts, 0)).toBeLessThanOrEqual(3 + 2);
  });

  it('a relay answering 421 after DATA for a while gets every letter exactly once', async () => {
    let refusals = 2;
    ctx.sink!.behavior = { onData: () => (refusals-- > 0 ? { code: 421, message: 'cannot queue now' } : undefined) };
    const campaign = await createLetterCampaign(ctx.db, 3);
    await signAs(ctx, campaign, 'Dana Data');

    const rows = await expectEachLetterOnce(ctx, campaign, 3);
    expect(refusals).toBeLessThan(0);
    expect(Math.max(...rows.map((r) => r.attempts))).toBeGreaterThan(1);
  });

  it('a greylisting relay (450 at RCPT TO on first sight) gets the letter once, on a later attempt', async () => {
    const seen = new Set<string>();
    ctx.sink!.behavior = recordRcpts((address) => {
      if (seen.has(address)) return undefined;
      seen.add(address);
      return { code: 450 };
    });
    const campaign = await createLetterCampaign(ctx.db, 2);
    await signAs(ctx, campaign, 'Gert Grey');

    const rows = await expectEachLetterOnce(ctx, campaign, 2);
    expect(rows.map((r) => r.attempts)).toEqual([2, 2]);
    for (const target of campaign.targets) expect(rcpts.filter((a) => a === target)).toHaveLength(2);
  });

  it('a 550 for one recipient fails that delivery, suppresses the address, and the other letters go out', async () => {
    const campaign = await createLetterCampaign(ctx.db, 3);
    const refused = campaign.targets[1]!;
    ctx.sink!.behavior = recordRcpts((address) =>
      address === refused ? { code: 550, message: `5.1.1 <${address}>: Recipient address rejected, see https://relay.example/why?rcpt=${encodeURIComponent(address)}&fwd=other%40Mail.example; forwarded as <SRS0=AbCd=7Q=example.org=ann@forwarder.net>` } : undefined,
    );
    await signAs(ctx, campaign, 'Rita Refused');

    const rows = await waitUntilSettled(ctx.db, campaign);
    const bounced = rows.find((r) => r.recipient === refused)!;
    expect(bounced).toMatchObject({ status: 'failed', attempts: 1, message_id: null });
    expect(bounced.last_error).toBe('EENVELOPE RCPT TO 550 5.1.1 <[recipient]>: Recipient address rejected, see https://relay.example/why?rcpt=[recipient]&fwd=[address]; forwarded as <[address]>');
    // The relay quoted the address; neither the row's error nor the failed job in Redis repeats it.
    expect(bounced.last_error).not.toContain(refused);
    // The row says failed a moment before BullMQ moves the job to its failed set.
    const job = await vi.waitFor(
      async () => {
        const found = await ctx.queues.send.getJob(deliveryJobId(bounced.id));
        expect(found?.failedReason).toBeTypeOf('string');
        return found!;
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(job.failedReason).toMatch(/550/);
    expect(job.failedReason).not.toContain(refused);
    expect(rows.filter((r) => r !== bounced).map((r) => r.status)).toEqual(['sent', 'sent']);
    const copies = copiesOf(ctx.sink!.messages, campaign);
    expect([...copies.keys()].map((k) => k.split('|')[0]).sort()).toEqual(campaign.targets.filter((t) => t !== refused).sort());
    // Each of the others once: a 5xx for one recipient of the pool must not resend its neighbours.
    expect(duplicatesIn(copies)).toBe(0);
    const { rows: suppressed } = await ctx.db.query<{ email: string; reason: string }>('SELECT email, reason FROM suppressions WHERE email = $1', [refused]);
    expect(suppressed).toHaveLength(1);
    expect(suppressed[0]!.reason).toMatch(/^bounce: .*550/);

    // A later signer's letter to the suppressed address fails without the relay ever hearing of it.
    await signAs(ctx, campaign, 'Sam Second');
    const after = await waitUntilSettled(ctx.db, campaign);
    const second = after.filter((r) => r.recipient === refused && r.id !== bounced.id);
    expect(second).toHaveLength(1);
    // Never tried: the row says so, not one attempt that never reached a relay.
    expect(second[0]).toMatchObject({ status: 'failed', message_id: null, attempts: 0 });
    expect(second[0]!.last_error).toMatch(/suppress/);
    expect(rcpts.filter((a) => a === refused)).toHaveLength(1);
    expect(after.filter((r) => r.status === 'sent')).toHaveLength(4);
  });

  it('a supporter\'s bounce does not hold letters to the same address; its refusal of a letter makes it an official\'s, which holds the next', async () => {
    const campaign = await createLetterCampaign(ctx.db, 2);
    const target = campaign.targets[0]!;
    // The address bounced as a subscriber's: an organizer adding it as a target must not be able
    // to tell that from how its letters fare.
    await ctx.db.query(`INSERT INTO suppressions (email, reason, kind) VALUES ($1, 'bounce: 550', 'optin')`, [target]);
    ctx.sink!.behavior = recordRcpts();
    await signAs(ctx, campaign, 'Una Unheld');
    expect((await waitUntilSettled(ctx.db, campaign)).map((r) => r.status)).toEqual(['sent', 'sent']);
    expect(rcpts.filter((a) => a === target)).toHaveLength(1);

    ctx.sink!.behavior = recordRcpts((address) => (address === target ? { code: 550, message: '5.1.1 no such user' } : undefined));
    await signAs(ctx, campaign, 'Vic Refused');
    await waitUntilSettled(ctx.db, campaign);
    const { rows: suppression } = await ctx.db.query('SELECT kind, reason FROM suppressions WHERE email = $1', [target]);
    expect(suppression).toEqual([{ kind: 'letter', reason: expect.stringMatching(/^bounce: .*550/) }]);

    await signAs(ctx, campaign, 'Wen Held');
    const rows = await waitUntilSettled(ctx.db, campaign);
    expect(rows.filter((r) => r.recipient === target).map((r) => r.status)).toEqual(['sent', 'failed', 'failed']);
    expect(rows.filter((r) => r.recipient === target).at(-1)!.last_error).toMatch(/suppress/);
    expect(rcpts.filter((a) => a === target)).toHaveLength(2);
  });

  it('a relay that will not relay for us (554 5.7.1 at RCPT TO) fails the letters and suppresses no official', async () => {
    const campaign = await createLetterCampaign(ctx.db, 2);
    ctx.sink!.behavior = recordRcpts((address) => ({ code: 554, message: `5.7.1 <${address}>: Relay access denied` }));
    await signAs(ctx, campaign, 'Rolf Relay');
    const rows = await waitUntilSettled(ctx.db, campaign);
    expect(rows.map((r) => r.status)).toEqual(['failed', 'failed']);
    const { rows: suppressed } = await ctx.db.query('SELECT 1 FROM suppressions WHERE email = ANY ($1)', [campaign.targets]);
    expect(suppressed).toHaveLength(0);
  });

  /** One letter sent on the last attempt it has (the earlier ones spread over the last hour, as the backoff would have), and its row once settled. */
  async function sendOnLastAttempt() {
    const campaign = await createLetterCampaign(ctx.db, 1);
    const [id] = await insertLetters(ctx.db, campaign, 1);
    await ctx.db.query('UPDATE deliveries SET attempts = $2 WHERE id = $1', [id, MAX_SEND_ATTEMPTS - 1]);
    await enqueueDeliveries(ctx.queues, [id!]);
    const [row] = await waitUntilSettled(ctx.db, campaign);
    return { campaign, id: id!, row: row! };
  }

  it('a letter that keeps getting 4xx fails on its last allowed attempt, with no suppression', async () => {
    ctx.sink!.behavior = { onMailFrom: () => ({ code: 421, message: 'still busy' }) };
    const { campaign, id, row } = await sendOnLastAttempt();
    expect(row).toMatchObject({ status: 'failed', attempts: MAX_SEND_ATTEMPTS, message_id: null });
    // The relay closes the connection after its 421; nodemailer may see the close before the
    // reply, and then says only that.
    expect(row.last_error).toMatch(/421 still busy|after connection was closed/);
    await vi.waitFor(async () => expect(await ctx.queues.send.getJobState(deliveryJobId(id))).toBe('failed'), { timeout: 10_000, interval: 50 });
    const { rows: suppressed } = await ctx.db.query('SELECT 1 FROM suppressions WHERE email = $1', [campaign.targets[0]]);
    expect(suppressed).toEqual([]);
  });

  it('a relay that answers 421 on a reused connection and hangs up gets one try per attempt, not nodemailer\'s own resends at once', async () => {
    // The relay closes the line after its 421, and nodemailer may see the close first. Its pool would
    // send the message again on a new connection within a second, up to five times, outside the
    // backoff and the attempt count. First a connection that has sent a message already and
    // waits in the pool for the next: the race shows there.
    ctx.sink!.behavior = {};
    const warm = await createLetterCampaign(ctx.db, 1);
    await enqueueDeliveries(ctx.queues, await insertLetters(ctx.db, warm, 1));
    expect((await waitUntilSettled(ctx.db, warm)).map((r) => r.status)).toEqual(['sent']);

    let tries = 0;
    ctx.sink!.behavior = { onRcptTo: () => (tries++, { code: 421, message: '4.7.0 Try again later' }) };
    const { row } = await sendOnLastAttempt();
    expect(row).toMatchObject({ status: 'failed', attempts: MAX_SEND_ATTEMPTS, message_id: null });
    expect(tries).toBe(1);
  });

  it('a letter whose job was added afresh (Redis lost its data) backs off by its own attempts, not from 2 s again', async () => {
    ctx.sink!.behavior = { onMailFrom: () => ({ code: 421, message: 'still busy' }) };
    const campaign = await createLetterCampaign(ctx.db, 1);
    const [id] = await insertLetters(ctx.db, campaign, 1);
    // Six attempts made under a job that Redis has since lost; the sweeper gave it a new one.
    await ctx.db.query(`UPDATE deliveries SET status = 'retry', attempts = 6 WHERE id = $1`, [id]);
    await enqueueDeliveries(ctx.queues, [id!]);

    // Read once it is delayed: a job read before, while it ran, carries no delay yet.
    const job = await vi.waitFor(async () => {
      expect(await ctx.queues.send.getJobState(deliveryJobId(id!))).toBe('delayed');
      return (await ctx.queues.send.getJob(deliveryJobId(id!)))!;
    }, { timeout: 15_000, interval: 50 });
    const { rows: [row] } = await ctx.db.query<{ attempts: number; wait_ms: number }>(
      `SELECT attempts, extract(epoch FROM next_attempt_at - updated_at) * 1000 AS wait_ms FROM deliveries WHERE id = $1`, [id],
    );
    // The seventh attempt waits 2 s × 2^6 (half of it to all of it), in the row and in Redis alike.
    expect(row!.attempts).toBe(7);
    expect(Number(row!.wait_ms)).toBeGreaterThanOrEqual(64_000);
    expect(Number(row!.wait_ms)).toBeLessThanOrEqual(128_000);
    expect(job.delay).toBeGreaterThanOrEqual(64_000);
    expect(Math.abs(job.delay - Number(row!.wait_ms))).toBeLessThan(1_000);
    await job.remove();
    await ctx.db.query(`UPDATE deliveries SET status = 'failed' WHERE id = $1`, [id]);
  });

  it('a relay refusing the sender (its setup, not the letter) holds the letters for retry, suppresses no one, and sends each once it is fixed', async () => {
    let refusals = 2;
    ctx.sink!.behavior = { onMailFrom: () => (refusals-- > 0 ? { code: 553, message: 'sender not allowed' } : undefined) };
    const campaign = await createLetterCampaign(ctx.db, 2);
    await signAs(ctx, campaign, 'Fay Sender');

    const rows = await expectEachLetterOnce(ctx, campaign, 2);
    expect(rows.every((r) => r.status === 'sent')).toBe(true);
    const { rows: suppressed } = await ctx.db.query('SELECT email FROM suppressions WHERE email = ANY($1)', [campaign.targets]);
    expect(suppressed).toEqual([]);
  });

  it('a line dropped after the message was sent but before the relay answered is retried, each letter arriving once', async () => {
    let drops = 2;
    ctx.sink!.behavior = {
      onData: (session) => {
        if (drops-- <= 0) return undefined;
        // The relay dies before it says 250: it has not taken the message.
        ctx.sink!.dropConnection(session);
        return { code: 451 };
      },
    };
    const campaign = await createLetterCampaign(ctx.db, 4);
    await signAs(ctx, campaign, 'Lena Line');

    const rows = await expectEachLetterOnce(ctx, campaign, 4);
    expect(rows.reduce((n, r) => n + r.attempts, 0)).toBe(4 + 2);
  });

  it('connections dropped in the middle of a batch: every letter arrives, at most one extra copy per connection', async () => {
    let mailFroms = 0;
    ctx.sink!.behavior = {
      onMailFrom: () => {
        if (++mailFroms !== 6) return undefined;
        // Mid-batch: the other pooled connections may be anywhere in their own messages.
        ctx.sink!.dropConnections();
        return { code: 421 };
      },
    };
    const campaign = await createLetterCampaign(ctx.db, 4);
    for (const name of ['Ann Drop', 'Ben Drop', 'Cem Drop']) await signAs(ctx, campaign, name);

    const rows = await waitUntilSettled(ctx.db, campaign);
    expect(rows.map((r) => r.status)).toEqual(Array(12).fill('sent'));
    const copies = copiesOf(ctx.sink!.messages, campaign);
    expect(copies.size).toBe(12);
    expect(mailFroms).toBeGreaterThan(6);
    // The one window for a second copy: the relay took a message just as its line went, before
    // the worker heard 250. At most one message per pooled connection (createMailer opens one per
    // job slot, WORKER_CONCURRENCY).
    expect(duplicatesIn(copies)).toBeLessThanOrEqual(ctx.config.workerConcurrency);
    console.info(`dropped connections (${kind}): 12 letters, ${duplicatesIn(copies)} duplicate(s)`);
  });

  it('a reply to DATA lost on the line: the letter goes again with the same Message-ID, so the copies are one message', async () => {
    let dropped = false;
    ctx.sink!.behavior = {
      onData: (session) => {
        if (dropped) return undefined;
        dropped = true;
        // The relay has the message; the worker never hears its 250.
        ctx.sink!.dropConnection(session);
        return undefined;
      },
    };
    const campaign = await createLetterCampaign(ctx.db, 1);
    await signAs(ctx, campaign, 'Lia Lost');
    const rows = await waitUntilSettled(ctx.db, campaign);
    expect(rows).toMatchObject([{ status: 'sent', attempts: 2 }]);
    const arrived = ctx.sink!.messages.filter((m) => m.subject?.startsWith(campaign.tag));
    expect(arrived).toHaveLength(2);
    expect(arrived[1]!.messageId).toBe(arrived[0]!.messageId);
    expect(rows[0]!.message_id).toBe(arrived[0]!.messageId);
    // Keyed with the secret: the id says nothing of the delivery's number.
    expect(arrived[0]!.messageId).toMatch(/^<[A-Za-z0-9_-]{32}@appeal\.test>$/);
    expect(arrived[0]!.messageId).toBe(stableMessageId(ctx.secret, 'delivery', rows[0]!, 'letters@appeal.test'));
  });

  it('gives a letter of a database restored to before an earlier one a Message-ID of its own, though its row takes that one\'s number', async () => {
    const campaign = await createLetterCampaign(ctx.db, 1);
    await signAs(ctx, campaign, 'Ada Before');
    const [first] = await expectEachLetterOnce(ctx, campaign, 1);
    // As a restore from a backup made before that letter: its row gone, the next numbered as it was.
    await ctx.db.query('DELETE FROM deliveries WHERE id = $1', [first!.id]);
    await ctx.db.query(`SELECT setval(pg_get_serial_sequence('deliveries', 'id'), $1, false)`, [first!.id]);
    await signAs(ctx, campaign, 'Bea After');
    const rows = await waitUntilSettled(ctx.db, campaign);
    expect(rows).toMatchObject([{ id: first!.id, status: 'sent' }]);
    // The official's mailbox would drop a second message with an id it has seen.
    const arrived = ctx.sink!.messages.filter((m) => m.subject?.startsWith(campaign.tag));
    expect(arrived.map((m) => m.text?.includes('Bea After'))).toEqual([false, true]);
    expect(arrived[1]!.messageId).not.toBe(arrived[0]!.messageId);
  });

  // Which database does not matter here, and the wait is long: once.
  it.runIf(kind === 'postgres')('a relay that takes 35 s to answer the end of a message (scanning it) gets it once, though Redis lost its job meanwhile', async () => {
    let scanned: Promise<unknown> | undefined;
    ctx.sink!.behavior = {
      onData: () => {
        if (scanned) return undefined;
        scanned = new Promise((r) => setTimeout(r, 35_000));
        return scanned.then(() => undefined);
      },
    };
    const campaign = await createLetterCampaign(ctx.db, 1);
    await signAs(ctx, campaign, 'Sam Slow');
    await until(() => (scanned ? true : undefined), 'the message at the relay');
    // Redis restarted empty: the job is gone, the row still says sending. The sweeper, near the
    // end of the scan, must leave the row to its lease (LEASE_SECONDS), not send it again.
    await ctx.queues.send.obliterate({ force: true });
    await new Promise((r) => setTimeout(r, 30_000));
    expect(await sweepDeliveries(ctx.db, ctx.queues, 0)).toBe(0);
    await scanned;
    // Taken once the scan is done (and a copy sent meanwhile would have arrived by now).
    await new Promise((r) => setTimeout(r, 500));
    const rows = await expectEachLetterOnce(ctx, campaign, 1);
    expect(rows[0]!.attempts).toBe(1);
  }, 70_000);

  it('a second job for a delivery that was sent sends nothing', async () => {
    const campaign = await createLetterCampaign(ctx.db, 1);
    await signAs(ctx, campaign, 'Otto Once');
    const [row] = await expectEachLetterOnce(ctx, campaign, 1);
    // The row says sent once its mark commits, which may be before BullMQ has finished the first
    // job: until that job is gone, adding the same id would be a no-op. Its 'completed' may still
    // come after that, so only a job added from here on counts.
    await vi.waitFor(async () => expect(await ctx.queues.send.getJobState(deliveryJobId(row!.id))).toBe('unknown'), { timeout: 10_000, interval: 50 });
    const addedFrom = Date.now();

    const outcome = new Promise<unknown>((resolve) => {
      const onCompleted = (job: Job, result: unknown) => {
        if (job.data.deliveryId !== row!.id || job.timestamp < addedFrom) return;
        workers.workers[0]!.off('completed', onCompleted);
        resolve(result);
      };
      workers.workers[0]!.on('completed', onCompleted);
    });
    await enqueueDeliveries(ctx.queues, [row!.id]);
    expect(await outcome).toBe('skipped');
    expect(copiesOf(ctx.sink!.messages, campaign).size).toBe(1);
    expect((await deliveriesOf(ctx.db, campaign))[0]).toMatchObject({ status: 'sent', attempts: 1, message_id: row!.message_id });
  });

  it('a job for a delivery this database has no row for sends nothing, and says so apart', async () => {
    // Another database's job on the same prefix (a restored copy started on this Redis), or a row deleted since.
    const id = Number((await ctx.db.query<{ id: string }>(`SELECT coalesce(max(id), 0) + 1000 AS id FROM deliveries`)).rows[0]!.id);
    const outcome = new Promise<unknown>((resolve) => {
      const onCompleted = (job: Job, result: unknown) => {
        if (job.data.deliveryId !== id) return;
        workers.workers[0]!.off('completed', onCompleted);
        resolve(result);
      };
      workers.workers[0]!.on('completed', onCompleted);
    });
    const before = ctx.sink!.messages.length;
    await enqueueDeliveries(ctx.queues, [id]);
    expect(await outcome).toBe('missing');
    expect(ctx.sink!.messages.length).toBe(before);
  });

  it('a letter that cannot be composed gives its lease back, and goes out once when the cause is fixed', async () => {
    const campaign = await createLetterCampaign(ctx.db, 1);
    // Saved templates compile; a row changed behind the app's back is what a bug would look like.
    await ctx.db.query(`UPDATE campaigns SET letter_body = '{{#if}}broken' WHERE id = $1`, [campaign.id]);
    await signAs(ctx, campaign, 'Bea Broken');

    const deadline = Date.now() + 10_000;
    let row = (await deliveriesOf(ctx.db, campaign))[0]!;
    while (row.status !== 'retry' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      row = (await deliveriesOf(ctx.db, campaign))[0]!;
    }
    expect(row).toMatchObject({ status: 'retry', attempts: 1, lease_until: null });
    expect(row.last_error).toBeTruthy();

    await ctx.db.query(`UPDATE campaigns SET letter_body = 'Release her.' WHERE id = $1`, [campaign.id]);
    const [sent] = await expectEachLetterOnce(ctx, campaign, 1);
    expect(sent!.attempts).toBeGreaterThanOrEqual(2);
  });

  it('a job for a delivery another worker holds waits until the lease ends, then sends once', async () => {
    const campaign = await createLetterCampaign(ctx.db, 1);
    const [id] = await insertLetters(ctx.db, campaign, 1);
    const { rows } = await ctx.db.query<{ lease_until: Date }>(
      `UPDATE deliveries SET status = 'sending', attempts = 1, lease_until = now() + interval '1 second'
        WHERE id = $1 RETURNING lease_until`,
      [id],
    );
    await enqueueDeliveries(ctx.queues, [id!]);

    const [delivered] = await expectEachLetterOnce(ctx, campaign, 1);
    expect(delivered!.attempts).toBe(2);
    expect(delivered!.sent_at!.getTime()).toBeGreaterThanOrEqual(rows[0]!.lease_until.getTime());
  });
});

describe('a relay deferring every recipient (4xx at RCPT TO)', () => {
  it('is said in a warning once ten emails in a row were deferred and none accepted, not an hour on when attempts run out', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const ctx = await createTestContext({ db: 'postgres', log });
    try {
      await ctx.startWorkers();
      ctx.sink!.behavior = { onRcptTo: () => ({ code: 451 }) };
      const campaign = await createLetterCampaign(ctx.db, 12);
      await signAs(ctx, campaign, 'Dee Ferred');
      const warned = await until(() => lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.msg.startsWith('the mail relay deferred the last')), 'the warning', 60_000);
      expect(warned.level).toBe(40);
      expect(warned.msg).toMatch(/^the mail relay deferred the last 1\d emails in a row and accepted none \(last reply: .*451/);
    } finally {
      ctx.sink!.behavior = {};
      await ctx.close();
    }
  }, 120_000);
});
