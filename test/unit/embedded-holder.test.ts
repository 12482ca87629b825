import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMAND_SOCKET, embeddedHolder, HolderGoneError, openEmbedded, sendCommand } from '../../src/db/embedded.ts';
import { createLog } from '../../src/log.ts';

const thisBoot = () => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

describe('who holds the embedded database', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-holder-'));
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  afterAll(() => {
    other.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('is the live process its pid file names in this boot, not one that has the number after a reboot', () => {
    fs.writeFileSync(path.join(dataDir, 'pglite.pid'), String(other.pid));
    fs.writeFileSync(path.join(dataDir, 'pglite.boot'), thisBoot());
    expect(embeddedHolder(dataDir)).toBe(other.pid);
    // Left by a run killed in an earlier boot (a power cut): the number now belongs to someone else.
    fs.writeFileSync(path.join(dataDir, 'pglite.boot'), '00000000-0000-4000-8000-000000000000');
    expect(embeddedHolder(dataDir)).toBeUndefined();
    // A pid file from before boot files were written counts as before: by whether the pid lives.
    fs.rmSync(path.join(dataDir, 'pglite.boot'));
    expect(embeddedHolder(dataDir)).toBe(other.pid);
    fs.writeFileSync(path.join(dataDir, 'pglite.pid'), '2147483646');
    expect(embeddedHolder(dataDir)).toBeUndefined();
  });
});

describe('a start that cannot open the embedded database', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-unopened-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('leaves no pid or boot file behind to refuse the next start for another process with that pid', async () => {
    // A database folder PGlite cannot open: a version file and nothing else.
    fs.mkdirSync(path.join(dataDir, 'pglite'));
    fs.writeFileSync(path.join(dataDir, 'pglite', 'PG_VERSION'), '17\n');
    await expect(openEmbedded(dataDir, createLog('silent'))).rejects.toThrow();
    expect(fs.readdirSync(dataDir).filter((name) => name.startsWith('pglite.'))).toEqual([]);
  });
});

describe('a command for the holder of the embedded database', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-command-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const hold = (pid: number) => {
    fs.writeFileSync(path.join(dataDir, 'pglite.pid'), String(pid));
    fs.writeFileSync(path.join(dataDir, 'pglite.boot'), thisBoot());
  };

  it('waits while the holder starts (no socket yet), and is answered once it listens', async () => {
    const starting = spawn('sleep', ['30'], { stdio: 'ignore' });
    hold(starting.pid!);
    const server = net.createServer((socket) => socket.once('data', () => socket.end(JSON.stringify({ stdout: 'done\n', stderr: '', code: 0 }))));
    try {
      const answered = sendCommand(dataDir, { argv: ['migrate'], stdin: '' });
      await new Promise((r) => setTimeout(r, 700));
      await new Promise<void>((r) => server.listen(path.join(dataDir, COMMAND_SOCKET), r));
      expect(await answered).toEqual({ stdout: 'done\n', stderr: '', code: 0 });
    } finally {
      server.close();
      starting.kill('SIGKILL');
    }
  });

  it('gives up waiting when the holder goes, so the caller can open the database itself', async () => {
    fs.rmSync(path.join(dataDir, COMMAND_SOCKET), { force: true });
    const leaving = spawn('sleep', ['30'], { stdio: 'ignore' });
    hold(leaving.pid!);
    const answered = sendCommand(dataDir, { argv: ['migrate'], stdin: '' });
    setTimeout(() => leaving.kill('SIGKILL'), 500);
    await expect(answered).rejects.toBeInstanceOf(HolderGoneError);
  });
});

describe('the command socket of the app holding the embedded database', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-socket-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('answers a request too long to be a command with an error, rather than leave the cli waiting', async () => {
    const holder = await openEmbedded(dataDir, createLog('silent'), async (_db, request) => ({ code: 0, stdout: `${request.argv.join(' ')}\n`, stderr: '' }));
    try {
      expect(await sendCommand(dataDir, { argv: ['organizer:add', 'a@appeal.test'], stdin: 'pw\n' })).toEqual({ code: 0, stdout: 'organizer:add a@appeal.test\n', stderr: '' });
      expect(await sendCommand(dataDir, { argv: ['organizer:add', 'a@appeal.test'], stdin: 'x'.repeat(70_000) })).toEqual({ code: 1, stdout: '', stderr: 'appeal: the command is too long\n' });
    } finally {
      await holder.close();
    }
  }, 60_000);
});
