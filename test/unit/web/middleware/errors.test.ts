import net from 'node:net';
import express from 'express';
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Views } from '../../../../src/views.ts';
import { errorHandler, mapError } from '../../../../src/web/middleware/errors.ts';

/** A port nothing listens on: one just closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe('what a failed request answers', () => {
  it('is 503 "may not have been saved, send it again" when the database cannot be reached or is restarting', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: await closedPort(), connectionTimeoutMillis: 2_000 });
    const refused = await client.connect().then(() => undefined, (err: unknown) => err);
    expect(mapError(refused)).toMatchObject({ status: 503, code: 'unavailable', message: expect.stringContaining('may not have been saved') });
    expect(mapError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toMatchObject({ status: 503 });
    expect(mapError(Object.assign(new Error('connection failure'), { code: '08006' }))).toMatchObject({ status: 503 });
    // A full disk under the database: nothing was written, and it passes once space is freed.
    expect(mapError(Object.assign(new Error('could not extend file: No space left on device'), { code: '53100' }))).toMatchObject({ status: 503, code: 'unavailable' });
    // Cancelled by the web process's statement limit.
    expect(mapError(Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }))).toMatchObject({ status: 503, code: 'unavailable', message: expect.stringContaining('took too long') });
  });

  it('is 503 "nothing was saved, send it again" when another transaction met this one and Postgres undid it', async () => {
    const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const [a, b] = [new pg.Client(url), new pg.Client(url)];
    await Promise.all([a.connect(), b.connect()]);
    const table = `deadlock_${process.pid}_${Date.now()}`;
    try {
      await a.query(`CREATE TABLE ${table} (id int PRIMARY KEY); INSERT INTO ${table} VALUES (1), (2)`);
      await Promise.all([a.query('BEGIN'), b.query('BEGIN')]);
      await a.query(`UPDATE ${table} SET id = id WHERE id = 1`);
      await b.query(`UPDATE ${table} SET id = id WHERE id = 2`);
      // Each now waits for the row the other holds: Postgres aborts one of them.
      const met = await Promise.allSettled([a.query(`UPDATE ${table} SET id = id WHERE id = 2`), b.query(`UPDATE ${table} SET id = id WHERE id = 1`)]);
      const undone = met.find((m): m is PromiseRejectedResult => m.status === 'rejected')!.reason as { code: string };
      expect(undone.code).toBe('40P01');
      expect(mapError(undone)).toMatchObject({ status: 503, code: 'busy', message: expect.stringContaining('nothing you sent was saved') });
      expect(mapError(Object.assign(new Error('could not serialize access'), { code: '40001' }))).toMatchObject({ status: 503, code: 'busy' });
    } finally {
      await Promise.all([a.query('ROLLBACK'), b.query('ROLLBACK')]);
      await a.query(`DROP TABLE IF EXISTS ${table}`);
      await Promise.all([a.end(), b.end()]);
    }
  });

  it('is 503 when the database takes no connections or no writes, or refuses the login: what a failover or a closed database says', async () => {
    const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const failure = (p: Promise<unknown>) => p.then(() => undefined, (err: unknown) => err as { code: string });
    // A standby, or a primary demoted by a failover: reads work, writes are refused (25006).
    const reader = new pg.Client(url);
    await reader.connect();
    const closed = `appeal_closed_${process.pid}_${Date.now()}`;
    try {
      await reader.query('SET default_transaction_read_only = on');
      const readOnly = await failure(reader.query('CREATE TEMP TABLE refused (id int)'));
      expect(readOnly!.code).toBe('25006');
      await reader.query('SET default_transaction_read_only = off');
      // ALLOW_CONNECTIONS false (55000), and a database that is not there (3D000).
      await reader.query(`CREATE DATABASE ${closed} WITH ALLOW_CONNECTIONS false`);
      const notAccepting = await failure(new pg.Client(url.replace(/\/[^/]*$/, `/${closed}`)).connect());
      expect(notAccepting!.code).toBe('55000');
      const missing = await failure(new pg.Client(url.replace(/\/[^/]*$/, `/${closed}_none`)).connect());
      expect(missing!.code).toBe('3D000');
      for (const err of [readOnly, notAccepting, missing]) expect(mapError(err)).toMatchObject({ status: 503, code: 'unavailable' });
      // The same code for a statement's own mistake is no outage: a 500, logged.
      await reader.query('CREATE TEMP SEQUENCE never_used');
      const mistake = await failure(reader.query(`SELECT currval('never_used')`));
      expect(mistake!.code).toBe('55000');
      expect(mapError(mistake)).toBeUndefined();
    } finally {
      await reader.query(`DROP DATABASE IF EXISTS ${closed}`);
      await reader.end();
    }
    // A password being rotated; a session ended by the server's idle limit.
    for (const code of ['28P01', '28000', '57P05']) expect(mapError(Object.assign(new Error(code), { code }))).toMatchObject({ status: 503, code: 'unavailable' });
  });

  it('is left to the 500 page for a statement that is wrong, which is logged', () => {
    expect(mapError(Object.assign(new Error('syntax error at or near "SELEC"'), { code: '42601' }))).toBeUndefined();
    expect(mapError(new Error('something else'))).toBeUndefined();
  });
});

describe('an error page that cannot be made', () => {
  it('is answered in plain words with its status, never with a stack trace or a file path', async () => {
    const views = { page: () => { throw Object.assign(new Error("EMFILE: too many open files, open '/srv/appeal/templates/pages/error.hbs'"), { code: 'EMFILE' }); } } as unknown as Views;
    const app = express();
    app.get('/gone', () => { throw new Error('at handler (/srv/appeal/src/web/routes/public.ts:1:1)'); });
    app.use(errorHandler(views, pino({ level: 'silent' })));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/gone`);
      expect(res.status).toBe(500);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const body = await res.text();
      expect(body).toMatch(/^Something went wrong\n\nSomething went wrong on our side/);
      expect(body).not.toMatch(/EMFILE|\/srv\/|\.ts|\bat /);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('the log while the database is away', () => {
  // Every request fails alike then: a line each buried the log at hundreds a second.
  it('writes one line per kind and route every 10 s, with how many alike it left out, naming the code and never the error', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const views = { page: () => 'Briefly unavailable' } as unknown as Views;
    const app = express();
    const away = () => Object.assign(new Error('connect ECONNREFUSED 10.0.0.9:5432 (secret detail)'), { code: 'ECONNREFUSED' });
    app.post('/c/:slug/sign', () => { throw away(); });
    app.post('/subscribe', () => { throw away(); });
    app.use(errorHandler(views, log));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    try {
      const answers = await Promise.all([...Array.from({ length: 30 }, (_, i) => `/c/c${i}/sign`), '/subscribe', '/subscribe'].map((p) => fetch(`${base}${p}`, { method: 'POST' })));
      expect(answers.map((a) => a.status)).toEqual(Array(32).fill(503));
      expect(lines.map((l) => [l.msg, l.path])).toEqual([
        ['request failed: database unavailable: the database server could not be reached', '/c/:slug/sign'],
        ['request failed: database unavailable: the database server could not be reached', '/subscribe'],
      ]);
      expect(lines[0]).toMatchObject({ level: 40, code: 'ECONNREFUSED', method: 'POST' });
      expect(JSON.stringify(lines)).not.toContain('secret detail');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
