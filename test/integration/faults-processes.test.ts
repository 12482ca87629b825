import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../src/queues.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import {
  copiesOf,
  createLetterCampaign,
  deliveriesOf,
  duplicatesIn,
  insertLetters,
  statusCounts,
  waitUntilSettled,
} from '../helpers/faults.ts';
import { killWorkerProcesses, startWorkerProcess } from '../helpers/processes.ts';

const CONCURRENCY = 10;

// A worker process of its own needs a database it can share: Postgres only (PGlite belongs to one process).
describe('when a worker process dies or is stopped (postgres)', () => {
  let ctx: TestContext;
  let env: Record<string, string>;

  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres' });
    env = { ...ctx.env, WORKER_CONCURRENCY: String(CONCURRENCY) };
  });
  afterAll(async () => {
    await killWorkerProcesses();
    await ctx?.close();
  });

  it('a worker killed with SIGKILL amid 1,000 letters: a new worker delivers every one, duplicates at most its concurrency', async () => {
    const campaign = await createLetterCampaign(ctx.db, 10);
    const ids = await insertLetters(ctx.db, campaign, 100);
    expect(ids).toHaveLength(1000);
    const first = await startWorkerProcess(env);
    // Started without PUBLIC_URL, as a worker beside a web process often is: it says what its links would be.
    expect(first.output()).toContain('PUBLIC_URL is not set: links in the emails this worker sends start with http://localhost:');
    const started = Date.now();
    await enqueueDeliveries(ctx.queues, ids);

    await ctx.sink!.waitFor(ctx.sink!.messages.length + 250, 60_000);
    first.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const killedAt = Date.now();
    const atKill = await statusCounts(ctx.db, campaign);
    expect(atKill.queued).toBeGreaterThan(0);
    // The dead worker's leases would run 150 s (LEASE_SECONDS); let that time pass.
    const { rows: held } = await ctx.db.query<{ id: number }>(
      `UPDATE deliveries SET lease_until = now() WHERE campaign_id = $1 AND status = 'sending' RETURNING id`,
      [campaign.id],
    );

    const second = await startWorkerProcess({ ...env, PUBLIC_URL: 'http://127.0.0.1:3000' });
    expect(second.output()).not.toContain('PUBLIC_URL is not set');
    const rows = await waitUntilSettled(ctx.db, campaign, 90_000);
    const settledAt = Date.now();
    expect(rows.filter((r) => r.status !== 'sent')).toEqual([]);
    const copies = copiesOf(ctx.sink!.messages, campaign);
    expect(copies.size).toBe(1000);
    const duplicates = duplicatesIn(copies);
    expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);
    // The jobs the dead worker held come back once their BullMQ lock lapses and a stalled check runs.
    const heldIds = new Set(held.map((r) => r.id));
    const recovered = Math.max(...rows.filter((r) => heldIds.has(r.id)).map((r) => r.sent_at!.getTime())) - killedAt;
    console.info(
      `SIGKILL fault: 1000 letters, killed after ${killedAt - started} ms with ${JSON.stringify(atKill)}; ` +
        `${duplicates} duplicate(s); its ${held.length} held letters sent ${recovered} ms after the kill; ` +
        `all settled ${settledAt - killedAt} ms after the kill`,
    );

    second.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  }, 150_000);

  it('SIGTERM lets a worker finish the letters it is sending, exit 0, and leave no row sending', async () => {
    const campaign = await createLetterCampaign(ctx.db, 10);
    const ids = await insertLetters(ctx.db, campaign, 20);
    // A job ends once the relay has its message, and its sent mark commits later (see ledger in
    // send.ts). Marks made slow here are still owed when the signal comes: a worker that closed
    // its database without waiting for them would leave those rows `sending`.
    await ctx.db.query(`CREATE FUNCTION slow_sent_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$;
      CREATE TRIGGER slow_sent_mark BEFORE UPDATE ON deliveries FOR EACH ROW
        WHEN (OLD.status = 'sending' AND NEW.status = 'sent') EXECUTE FUNCTION slow_sent_mark()`);
    const worker = await startWorkerProcess(env);
    await enqueueDeliveries(ctx.queues, ids);

    await ctx.sink!.waitFor(ctx.sink!.messages.length + 30, 60_000);
    const before = await statusCounts(ctx.db, campaign);
    worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    await ctx.db.query('DROP TRIGGER slow_sent_mark ON deliveries; DROP FUNCTION slow_sent_mark()');

    const after = await statusCounts(ctx.db, campaign);
    expect(after.sending ?? 0).toBe(0);
    expect(after.retry ?? 0).toBe(0);
    // It stopped taking jobs: letters are left for the next worker.
    expect(after.queued).toBeGreaterThan(0);
    // What the rows say went out is exactly what arrived.
    const sent = (await deliveriesOf(ctx.db, campaign)).filter((r) => r.status === 'sent');
    const arrived = ctx.sink!.messages.filter((m) => m.subject?.startsWith(campaign.tag));
    expect(sent.map((r) => r.message_id).sort()).toEqual(arrived.map((m) => m.messageId).sort());
    console.info(
      `SIGTERM: ${JSON.stringify(before)} when signalled, ${JSON.stringify(after)} at exit ` +
        `(${(after.sent ?? 0) - (before.sent ?? 0)} sends finished after the signal)`,
    );

    const workers = await ctx.startWorkers();
    await waitUntilSettled(ctx.db, campaign, 60_000);
    await workers.close();
    const copies = copiesOf(ctx.sink!.messages, campaign);
    expect(copies.size).toBe(200);
    expect(duplicatesIn(copies)).toBe(0);
  }, 120_000);
});
