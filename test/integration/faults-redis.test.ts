import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../src/queues.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { copiesOf, createLetterCampaign, duplicatesIn, insertLetters, statusCounts, waitUntilSettled } from '../helpers/faults.ts';
import { createLiveCampaign, createToken, uniq } from '../helpers/fixtures.ts';
import { confirmToken } from '../../src/signatures/service.ts';
import { until } from '../helpers/signing.ts';
import { signedIn } from '../helpers/admin-client.ts';
import { startWorkerProcess } from '../helpers/processes.ts';
import { freePort } from '../helpers/spawn.ts';

const LETTERS = 1_200;

/** A redis-server of this test's own that keeps nothing on disk, as on this machine. */
async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); }).on('error', () => resolve(false));
    });
    if (up) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on ${port} did not start`);
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

describe('when Redis restarts empty in the middle of a batch (postgres)', () => {
  let ctx: TestContext;
  let redis: ChildProcess;
  let port: number;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-redis-restart-'));

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port, dir);
    ctx = await createTestContext({ db: 'postgres', env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
  }, 60_000);
  afterAll(async () => {
    await ctx?.close();
    if (redis) await stop(redis, 'SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every letter still arrives exactly once: the schedules come back and the sweeper re-enqueues what Redis lost', { timeout: 240_000 }, async () => {
    const campaign = await createLetterCampaign(ctx.db, 3);
    const ids = await insertLetters(ctx.db, campaign, LETTERS / 3);
    await enqueueDeliveries(ctx.queues, ids);
    const workers = await ctx.startWorkers();
    try {
      // Let part of the batch go out, then take Redis away with every job in it.
      for (;;) {
        const sent = (await statusCounts(ctx.db, campaign)).sent ?? 0;
        if (sent >= LETTERS / 10) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await stop(redis, 'SIGKILL');
      const sentAtCrash = (await statusCounts(ctx.db, campaign)).sent ?? 0;
      redis = await startRedis(port, dir);
      expect(sentAtCrash).toBeLessThan(LETTERS);

      const rows = await waitUntilSettled(ctx.db, campaign, 200_000);
      expect(rows.map((r) => r.status)).toEqual(Array(LETTERS).fill('sent'));
      const copies = copiesOf(ctx.sink!.messages, campaign);
      expect(copies.size).toBe(LETTERS);
      // The process never died: whatever was sending when Redis went finished and was recorded,
      // so nothing may arrive twice.
      expect(duplicatesIn(copies)).toBe(0);
      console.log(`redis restart: ${sentAtCrash} of ${LETTERS} letters sent before the crash; all ${LETTERS} delivered once after it`);
    } finally {
      await workers.close();
    }
  });

  it('answers a signer, a confirmation and a case update at once while Redis is away, and sends their mail once it is back', { timeout: 120_000 }, async () => {
    const base = await ctx.startWeb();
    const { slug, caseSlug } = await createLiveCampaign(ctx.db);
    const apiToken = await createToken(ctx.db);
    const { client: admin } = await signedIn(base, ctx.db, 'admin');
    await stop(redis, 'SIGKILL');
    const email = `${uniq('outage')}@supporter.example`;
    const started = Date.now();
    const res = await fetch(`${base}/c/${slug}/sign`, {
      method: 'POST',
      body: new URLSearchParams({ full_name: 'Outage Signer', email }),
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    expect(res.status).toBe(303);
    expect(Date.now() - started).toBeLessThan(5_000);
    const { rows: [signature] } = await ctx.db.query<{ id: number; status: string }>(`SELECT id, status FROM signatures WHERE email = $1`, [email]);
    expect(signature).toMatchObject({ status: 'pending' });

    // Confirming and posting an update store their rows and answer; the jobs wait for Redis.
    const quick = async (url: string, init: RequestInit) => {
      const at = Date.now();
      const answer = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
      expect(Date.now() - at, url).toBeLessThan(5_000);
      return answer;
    };
    const confirmed = await quick(`${base}/confirm/${confirmToken(ctx.secret, signature!.id)}`, { method: 'POST', body: new URLSearchParams({ v: '0' }) });
    expect(confirmed.status).toBe(303);
    const posted = await quick(`${base}/api/v1/cases/${caseSlug}/updates`, {
      method: 'POST', headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Hearing moved', body: 'To next week.' }),
    });
    expect(posted.status).toBe(202);
    const { rows: letters } = await ctx.db.query<{ id: number }>(`SELECT id FROM deliveries WHERE kind = 'letter' AND source_id = $1 ORDER BY id`, [signature!.id]);
    expect(letters).toHaveLength(2);

    // An organizer retrying failed letters is answered at once too: the rows are queued again,
    // and their jobs follow once Redis is back.
    const fail = (id: number) => ctx.db.query(`UPDATE deliveries SET status = 'failed', last_error = '554 refused' WHERE id = $1`, [id]);
    await fail(letters[0]!.id);
    const organizer = async (path: string) => {
      const at = Date.now();
      const answer = await admin.post(path, { back: '/admin/deliveries/failed' });
      expect(Date.now() - at, path).toBeLessThan(5_000);
      return answer.status;
    };
    expect(await organizer(`/admin/deliveries/${letters[0]!.id}/retry`)).toBe(303);
    await fail(letters[1]!.id);
    expect(await organizer('/admin/deliveries/failed/retry-all')).toBe(303);
    expect((await ctx.db.query(`SELECT status FROM deliveries WHERE id = ANY ($1::bigint[])`, [letters.map((l) => l.id)])).rows).toEqual([{ status: 'queued' }, { status: 'queued' }]);
    // The queues board's data call says Redis is away, instead of leaving its page spinning.
    const at = Date.now();
    const board = await admin.get('/admin/queues/api/queues');
    expect(Date.now() - at).toBeLessThan(5_000);
    expect([board.status, board.text]).toEqual([503, expect.stringContaining('Redis is not answering')]);

    redis = await startRedis(port, dir);
    const workers = await ctx.startWorkers();
    try {
      // Its letters' jobs were added when Redis came back, or else by the sweeper (30 s of grace);
      // confirmed meanwhile, the signer needs no confirmation email any more.
      await until(() => (ctx.sink!.messages.filter((m) => m.text?.includes('Outage Signer')).length === 2 ? true : undefined), 'the two letters', 90_000);
    } finally {
      await workers.close();
    }
  });
  it('a worker process whose Redis goes away logs it once, and told to stop exits instead of hanging on as a worker that takes nothing', { timeout: 150_000 }, async () => {
    const worker = await startWorkerProcess({ ...ctx.env, LOG_LEVEL: 'warn' });
    try {
      await stop(redis, 'SIGKILL');
      // The log says so, once, rather than nothing or a line per reconnection attempt.
      await until(() => (worker.output().includes('Redis is out of reach') ? true : undefined), 'the log line', 15_000);
      const signalled = Date.now();
      worker.kill('SIGTERM');
      // The workers get the SMTP timeout and a little more (65 s), then the process closes Postgres and exits.
      const exit = await Promise.race([worker.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 100_000))]);
      expect(exit, worker.output()).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalled).toBeLessThan(85_000);
      // About a minute of reconnection attempts: a line per 30 s, saying how many alike it left out.
      const said = worker.output().split('\n').filter((l) => l.includes('Redis is out of reach'));
      expect(said.length).toBeLessThanOrEqual(4);
      expect(said.some((l) => /"alikeLeftOut":\d+/.test(l))).toBe(true);
    } finally {
      worker.kill('SIGKILL');
      redis = await startRedis(port, dir);
    }
  });
});
