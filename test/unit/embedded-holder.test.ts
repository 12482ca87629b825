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

  it('is the live process its pid file names in this boot, not one that has the number after a reboot', () => {
    const thisBoot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    fs.writeFileSync(path.join(dataDir, 'pglite.pid'), String(other.pid));
    fs.writeFileSync(path.join(dataDir, 'pglite.boot'), thisBoot);
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
