import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLog } from '../../src/log.ts';
import { TemporaryFailure } from '../../src/deliveries/send.ts';

describe('the process log', () => {
  it('withholds what a database error quotes of its row, and keeps its code and message', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => void (lines.push(String(chunk)), done()) });
    const err = Object.assign(new Error('duplicate key value violates unique constraint "subscribers_email_key"'), {
      code: '23505',
      detail: 'Key (lower(email))=(dana@example.org) already exists.',
      // PGlite's errors carry the statement's parameters.
      params: ['dana@example.org', 'Dana Secret'],
    });
    createLog('info', sink).error({ err }, 'request failed');
    const logged = JSON.parse(lines.join('')) as { err: Record<string, unknown> };
    expect(lines.join('')).not.toMatch(/dana@example\.org|Dana Secret/);
    expect(logged.err).toMatchObject({ code: '23505', message: expect.stringContaining('subscribers_email_key') });
  });

  it("withholds a Redis error's command arguments (a BullMQ script's whole source), and keeps its name and message", () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => void (lines.push(String(chunk)), done()) });
    const script = `--[[ Adds a job ]] ${'local x = 1 '.repeat(2_000)}`;
    const err = Object.assign(new Error("OOM command not allowed when used memory > 'maxmemory'."), { command: { name: 'eval', args: [script, '8', 'appeal:send:wait'] } });
    createLog('info', sink).warn({ err }, 'send jobs not added');
    const line = lines.join('');
    expect(line.length).toBeLessThan(2_000);
    expect(JSON.parse(line).err).toMatchObject({ message: expect.stringContaining('OOM'), command: { name: 'eval', args: "[withheld: the command's arguments]" } });
  });

  it('withholds the pg client that pg-pool pins to an idle connection\'s error, and keeps its code and message', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => void (lines.push(String(chunk)), done()) });
    const client = { parsedStatements: { appeal_1: 'SELECT '.repeat(2_000) }, connectionParameters: { host: '127.0.0.1' } };
    const err = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01', client });
    createLog('info', sink).warn({ err }, 'a pooled Postgres connection was lost while idle');
    const line = lines.join('');
    expect(line.length).toBeLessThan(2_000);
    expect(JSON.parse(line).err).toMatchObject({ code: '57P01', client: '[withheld: the pg client]' });
  });
});

describe('a relay failure in the log', () => {
  it("keeps what the relay answered, its addresses already cut, where an operator reads it", () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => void (lines.push(String(chunk)), done()) });
    const reply = 'no working STARTTLS: Appeal sends a password only over TLS';
    createLog('info', sink).warn({ err: new TemporaryFailure('delivery 7: temporary failure (ETLS)', true, reply, 1, 2_000) }, 'the mail relay failed');
    expect(JSON.parse(lines.join('')).err).toMatchObject({ relayReply: reply });
  });
});
