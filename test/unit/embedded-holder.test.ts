import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddedHolder } from '../../src/db/embedded.ts';

describe('who holds the embedded database', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-holder-'));
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  afterAll(() => {
    other.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('is the live process its pid file names, not one that took the number after the file was written', async () => {
    const file = path.join(dataDir, 'pglite.pid');
    await new Promise((r) => setTimeout(r, 50));
    fs.writeFileSync(file, String(other.pid));
    expect(embeddedHolder(dataDir)).toBe(other.pid);
    // The file a killed run left a minute before this process started (its pid reused since, as after a reboot).
    const before = new Date(Date.now() - 60_000);
    fs.utimesSync(file, before, before);
    expect(embeddedHolder(dataDir)).toBeUndefined();
    // A dead pid holds nothing either.
    fs.writeFileSync(file, '2147483646');
    expect(embeddedHolder(dataDir)).toBeUndefined();
  });
});
