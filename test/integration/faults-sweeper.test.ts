import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { enqueueAfreshLater, sweepDeliveries } from '../../src/deliveries/service.ts';
import { sign } from '../../src/signatures/service.ts';
import { deliveryJobId, enqueueDeliveries, QUEUES, type SendJob } from '../../src/queues.ts';
import { SWEEP_EVERY_MS } from '../../workers/maintenance.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { DB_KINDS } from '../helpers/db.ts';
import { copiesOf, createLetterCampaign, duplicatesIn, insertLetters, signAs, waitUntilSettled, type LetterCampaign } from '../helpers/faults.ts';

describe.each(DB_KINDS)('when the send jobs are gone but the rows are not (%s)', (kind) => {
  let ctx: TestContext;

  // Starting PGlite and migrating it takes seconds, and much longer on a busy machine.
  beforeAll(async () => {
    ctx = await createTestContext({ db: kind });
  }, 180_000);
  afterAll(async () => {
    await ctx?.close();
  });

  /** Starts workers only once the scene is set, then lets them deliver everything. */
  async function deliverAll(campaign: LetterCampaign, letters: number) {
    const workers = await ctx.startWorkers();
    try {
      const rows = await waitUntilSettled(ctx.db, campaign);
      expect(rows.map((r) => r.status)).toEqual(Array(letters).fill('sent'));
      const copies = copiesOf(ctx.sink!.messages, campaign);
      expect(copies.size).toBe(letters);
      expect(duplicatesIn(copies)).toBe(0);
      return rows;
    } finally {
      await workers.close();
    }
  }

  const jobState = (id: number) => ctx.queues.send.getJobState(deliveryJobId(id));

  it('letters whose jobs Redis lost are each sent once after the sweeper runs', async () => {
    const campaign = await createLetterCampaign(ctx.db, 3);
    for (const name of ['Ada Lost', 'Bo Lost']) await signAs(ctx, campaign, name);
    // Every row has its job: nothing to do.
    expect(await sweepDeliveries(ctx.db, ctx.queues, 0)).toBe(0);

    await ctx.queues.send.obliterate({ force: true });
    expect(await ctx.queues.send.count()).toBe(0);
    // Rows younger than the grace period may still be on their way to the queue: left alone.
    expect(await sweepDeliveries(ctx.db, ctx.queues)).toBe(0);
    expect(await sweepDeliveries(ctx.db, ctx.queues, 0)).toBe(6);

    await deliverAll(campaign, 6);
  });

  it('a signature whose jobs cannot be added is still answered, its letters stay queued, and the sweeper adds them', async () => {
    const campaign = await createLetterCampaign(ctx.db, 2);
    const warned: unknown[] = [];
    // A send queue whose connection to Redis was lost after the rows committed: the real client,
    // disconnected, refuses every command.
    const away = new Queue<SendJob>(QUEUES.send, { connection: ctx.redis.options as ConnectionOptions, prefix: ctx.env.QUEUE_PREFIX });
    away.on('error', () => {});
    await away.waitUntilReady();
    await away.disconnect();
    const deps = { queues: { send: away, later: ctx.queues.later, redis: ctx.queues.redis, maintenance: ctx.queues.maintenance }, secret: ctx.secret, log: { warn: (...args: unknown[]) => void warned.push(args) } };
    const result = await sign(ctx.db, deps, campaign.slug, { fullName: 'Ada Away', email: 'ada.away@supporter.example' });
    expect(result.kind).toBe('signed');
    await ctx.queues.settled();
    await away.close().catch(() => undefined);
    expect(warned).toHaveLength(1);
    expect(await ctx.queues.send.count()).toBe(0);
    const { rows } = await ctx.db.query<{ id: number; status: string }>('SELECT id, status FROM deliveries WHERE campaign_id = $1', [campaign.id]);
    expect(rows.map((r) => r.status)).toEqual(['queued', 'queued']);
    expect(await sweepDeliveries(ctx.db, ctx.queues, 0)).toBe(2);
    await deliverAll(campaign, 2);
  });

  it('a row asked for again while its last job is finishing gets a job once that one is gone, without waiting for the sweeper', async () => {
    const campaign = await createLetterCampaign(ctx.db, 1);
    const [id] = await insertLetters(ctx.db, campaign, 1);
    // The job that sent the row a moment ago, not yet removed by BullMQ.
    await ctx.queues.send.add('send', { deliveryId: id! }, { jobId: deliveryJobId(id!), delay: 60_000 });
    const warned: unknown[] = [];
    enqueueAfreshLater(ctx.queues, { warn: (...args: unknown[]) => void warned.push(args) }, [id!]);
    await new Promise((r) => setTimeout(r, 50));
    await ctx.queues.send.remove(deliveryJobId(id!));
    await ctx.queues.settled();
    expect(warned).toEqual([]);
    expect(await jobState(id!)).toBe('waiting');
    await deliverAll(campaign, 1);
  });

  it('letters committed without a job (a crash before enqueue) are sent once by the scheduled sweep job', async () => {
    const campaign = await createLetterCampaign(ctx.db, 2);
    await insertLetters(ctx.db, campaign, 3);
    // The sweep job waits 30 s before it calls a queued row stranded; let that time pass.
    await ctx.db.query(`UPDATE deliveries SET updated_at = now() - interval '1 minute' WHERE campaign_id = $1`, [campaign.id]);

    const workers = await ctx.startWorkers();
    const swept: number[] = [];
    workers.workers[1]!.on('completed', (job: Job, result: { requeued?: number } | null) => {
      if (job.name === 'sweep') swept.push(result?.requeued ?? 0);
    });
    try {
      expect(await ctx.queues.maintenance.getJobScheduler('sweep')).toMatchObject({ every: SWEEP_EVERY_MS });
      await ctx.queues.maintenance.add('sweep', { task: 'sweep' });
      const rows = await waitUntilSettled(ctx.db, campaign);
      expect(rows.map((r) => r.status)).toEqual(Array(6).fill('sent'));
      // No job was ever added for these rows: only a sweep can have sent them. The one added here
      // may find them done by the schedule's own run, overdue when the workers started.
      await vi.waitFor(() => expect(swept.length).toBeGreaterThan(0), { timeout: 10_000, interval: 50 });
      expect(duplicatesIn(copiesOf(ctx.sink!.messages, campaign))).toBe(0);
      expect(copiesOf(ctx.sink!.messages, campaign).size).toBe(6);
    } finally {
      await workers.close();
    }
  });

  it('a delivery whose job failed in BullMQ while its row still says retry is re-enqueued and sent', async () => {
    const campaign = await createLetterCampaign(ctx.db, 1);
    const [id] = await insertLetters(ctx.db, campaign, 1);
    await enqueueDeliveries(ctx.queues, [id!]);
    // BullMQ gave up on the job (its own attempts ran out) before the row's attempts did.
    const failing = new Worker(QUEUES.send, async () => {
      throw new UnrecoverableError('simulated: job attempts used up');
    }, { connection: ctx.redis.options as ConnectionOptions, prefix: ctx.config.queuePrefix });
    await new Promise((resolve) => failing.once('failed', resolve));
    await failing.close();
    await ctx.db.query(
      `UPDATE deliveries SET status = 'retry', attempts = 3, next_attempt_at = now() - interval '1 second' WHERE id = $1`,
      [id],
    );
    expect(await jobState(id!)).toBe('failed');

    expect(await sweepDeliveries(ctx.db, ctx.queues, 0)).toBe(1);
    // A letter: behind the confirmations people wait for (sendPriority).
    expect(await jobState(id!)).toBe('prioritized');
    const [row] = await deliverAll(campaign, 1);
    expect(row!.attempts).toBe(4);
  });

  it('a delivery left sending past its lease, with no job, is re-enqueued and sent once', async () => {
    const campaign = await createLetterCampaign(ctx.db, 2);
    const ids = await insertLetters(ctx.db, campaign, 1);
    // Its worker claimed it and died; the lease has run out and Redis has no job for it.
    await ctx.db.query(
      `UPDATE deliveries SET status = 'sending', attempts = 1, lease_until = now() - interval '1 second' WHERE id = $1`,
      [ids[0]],
    );
    // The other one is still under a live lease: not the sweeper's to take.
    await ctx.db.query(
      `UPDATE deliveries SET status = 'sending', attempts = 1, lease_until = now() + interval '1 hour' WHERE id = $1`,
      [ids[1]],
    );
    expect(await sweepDeliveries(ctx.db, ctx.queues, 0)).toBe(1);
    expect(await jobState(ids[0]!)).toBe('prioritized');
    expect(await jobState(ids[1]!)).toBe('unknown');

    await ctx.db.query(`UPDATE deliveries SET lease_until = now() - interval '1 second' WHERE id = $1`, [ids[1]]);
    expect(await sweepDeliveries(ctx.db, ctx.queues, 0)).toBe(1);
    const rows = await deliverAll(campaign, 2);
    expect(rows.map((r) => r.attempts)).toEqual([2, 2]);
  });
});
