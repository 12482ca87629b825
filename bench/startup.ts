// 6. Start-up: `npm start` (scripts/start.mjs: build, then run) on an empty DATA_DIR, embedded
// PGlite, until GET /readyz answers 200. Includes migrating the new database and adding the demo data.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BENCH_REDIS_URL, deleteKeys } from './lib/bench-env.ts';
import { ROOT } from './lib/child.ts';
import type { MeasurementResult, Sizes } from './lib/result.ts';
import { sleep, summarize } from './lib/stats.ts';
import { loadConfig } from '../src/config.ts';
import { connectRedis } from '../src/redis.ts';

// Generous: on a crowded machine a cold start can take tens of seconds.
const TIMEOUT_MS = 180_000;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function ready(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs `npm start` (it builds, then runs the app) on `dataDir`. @returns seconds from spawn to the first 200 from /readyz. */
async function startOnce(dataDir: string, prefix: string): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  // A process group of its own: npm, its shell and the app are stopped together.
  const child = spawn('npm', ['start'], {
    cwd: ROOT,
    detached: true,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dataDir, PORT: String(port), REDIS_URL: BENCH_REDIS_URL, QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name);
    } catch {
      // Gone already.
    }
  };
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => void (stderr = (stderr + c.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}: ${stderr.trim()}`);
      if (await ready(`http://127.0.0.1:${port}/readyz`)) return (performance.now() - t0) / 1000;
      if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`/readyz not 200 after ${TIMEOUT_MS / 1000} s`);
      await sleep(25);
    }
  } finally {
    // SIGTERM: the app closes PGlite cleanly, so the restart below finds a sound DATA_DIR.
    signal('SIGTERM');
    const killer = setTimeout(() => signal('SIGKILL'), 15_000);
    await exited;
    // npm may leave before the app has closed its database: the restart waits for the whole group.
    while (groupAlive(child.pid!)) await sleep(25);
    clearTimeout(killer);
  }
}

export async function benchStartup(sizes: Sizes): Promise<MeasurementResult> {
  const started = performance.now();
  // A prefix per round: each empty DATA_DIR is a new installation, and a QUEUE_PREFIX is one installation's.
  const prefix = `bench-start-${crypto.randomBytes(4).toString('hex')}`;
  const cold: number[] = [];
  const warm: number[] = [];
  const redis = await connectRedis(loadConfig({ REDIS_URL: BENCH_REDIS_URL }));
  try {
    for (let r = 0; r < sizes.rounds; r++) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-start-'));
      try {
        cold.push(await startOnce(dataDir, `${prefix}-${r}`));
        warm.push(await startOnce(dataDir, `${prefix}-${r}`));
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    await deleteKeys(redis.client, `${prefix}-*`);
    await redis.close();
  }
  return {
    id: 'startup',
    title: '6. Start-up',
    setup:
      '`npm start` on an empty DATA_DIR: the app built from src/ into dist/main.js, embedded PGlite created (a copy of the template `npm install` made, migrations applied), demo data added, ' +
      'web and workers started; clock from spawn to the first 200 from GET /readyz (polled every 25 ms). Redis already running. ' +
      'Then stopped with SIGTERM and started again on the same DATA_DIR (database already there, demo data in it).',
    series: [
      { label: 'empty DATA_DIR: spawn → /readyz 200', unit: 's', values: cold },
      { label: 'same DATA_DIR again: spawn → /readyz 200', unit: 's', values: warm },
    ],
    targets: [{ name: 'median start-up on an empty DATA_DIR', value: summarize(cold).median, kind: 'below', target: 5, format: 'seconds' }],
    notes: [],
    seconds: (performance.now() - started) / 1000,
  };
}
